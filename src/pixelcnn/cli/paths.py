"""The one check of every path a command writes (``output_path``): never over a run's own files, never over
a file that pixelcnn did not write unless --force says so."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .runs import is_model_folder

# What a run or model folder owns: a command never writes over these (the run would be destroyed).
RUN_OWN_FILES = (
    "config.json",
    "checkpoint.safetensors",
    "model",
    "model.safetensors",
    "metrics.jsonl",
    "samples",
    "tensorboard",
    "identity.json",
    "identity-config.json",  # an identity run's settings, written first (identity/config.py STARTED_FILE)
    "stages",  # an identity run's saved stage states (STAGES_DIR)
    "train.lock",
)
# What marks a folder as a run: a ``pixelcnn train`` run (config.json beside one of its files), or an identity
# run (``pixelcnn identity``: no config.json of its own, its model in model/).
IDENTITY_RUN_FILES = ("identity.json", "identity-config.json")


def _run_folder_of(path: Path) -> Path | None:
    """The run or model folder whose own files ``path`` is (or lies inside), else None."""
    for folder in path.parents:
        inside = path.relative_to(folder).parts
        trained_run = (folder / "config.json").is_file() and any(
            (folder / name).exists()
            for name in ("checkpoint.safetensors", "model", "model.safetensors", "identity.json", "metrics.jsonl")
        )
        identity_run = any((folder / name).is_file() for name in IDENTITY_RUN_FILES)
        if inside and inside[0] in RUN_OWN_FILES and (trained_run or identity_run):
            return folder
    return None


def written_by_pixelcnn(path: Path) -> bool:
    """True for a picture that a pixelcnn command wrote: it carries ``viz.MARK`` (a PNG text chunk, a GIF comment)."""
    from ..viz import MARK

    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return MARK.encode() in head


def output_path(path, args=None, *, option: str = "--out", kind: str = "file", own=written_by_pixelcnn) -> Path:
    """The one check of every path a command writes; returns it as a Path, or raises UsageError.

    Rules (README, "Reliability"): never inside a run or model folder's own files (config.json,
    checkpoint.safetensors, model/, metrics.jsonl, samples/, ...); a ``kind="file"`` output never
    replaces a folder, and replaces an existing file only with --force or when the file is the
    command's own earlier output (``own(path)``: pictures carry pixelcnn's mark; tables and JSON are
    recorded when written, ``outputs.written_by_us``); a ``kind="folder"``
    output (a folder of PNG files) must not be a file; a ``kind="run"`` output (the run folder of train
    or identity) must not be a file or a saved model folder.
    """
    path = Path(path).expanduser()
    where = path if path.is_absolute() else Path.cwd() / path
    where = where.parent.resolve() / where.name if where.name else where.resolve()
    run = _run_folder_of(where)
    if run is not None:
        raise UsageError(
            f"{option} {path} would write over {where.relative_to(run).parts[0]} of the run folder "
            f"{run}: choose a path outside it"
        )
    if kind == "run":
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path} is a file, not a run folder")
        if is_model_folder(path):
            raise UsageError(f"{option} {path} is a saved model folder (pixelcnn.save): choose a new run folder")
        return path
    if kind == "folder":
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path} is a file, not a folder")
        return path
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not getattr(args, "force", False) and not (own is not None and own(path)):
        raise UsageError(
            f"{option} {path} exists and was not written by pixelcnn: give --force to replace it, or another path"
        )
    return path
