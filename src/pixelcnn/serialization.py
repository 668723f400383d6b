"""Save and load models as safetensors weights plus a JSON config. Never pickle.

A saved model is a folder::

    PATH/config.json         {"format": "pixelcnn-model", "model": NAME, "config": {...}, "version": ...}
    PATH/model.safetensors   the state dict (masks are rebuilt, not stored)

The config is enough to rebuild the model without the code that trained it.
Both files are written to a temporary name and renamed into place, so an
interrupted save never leaves a half-written model over a good one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch

from . import zoo

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "pixelcnn-model"
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin"}

CONVERT_HINT = (
    "pixelcnn.load reads only safetensors folders written by pixelcnn.save, never pickle files "
    "(unpickling can run arbitrary code). If you trust the file, convert it once: "
    "state = torch.load(PATH, weights_only=True); model = pixelcnn.build(NAME, ...); "
    "model.load_state_dict(state); pixelcnn.save(model, FOLDER)"
)


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file over ``path``.

    A write that fails (disk full, file-size limit, read-only folder) leaves ``path`` as it was, removes
    the temporary file and raises one ``OSError`` naming the file (also for safetensors' own error type).
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, (KeyboardInterrupt, SystemExit, ValueError, TypeError)):
            raise
        if isinstance(err, Exception):  # an OSError, or e.g. safetensors' SafetensorError: "File too large"
            raise _write_error(path, err) from None
        raise


def parse_json(text: str | bytes, what) -> object:
    """``json.loads`` whose every failure is one ValueError naming ``what``: not JSON, not UTF-8, nested
    too deeply for Python's parser (a RecursionError otherwise), or an integer too long to convert."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} is corrupt (not valid JSON: nested too deeply)") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{what} is corrupt (not valid JSON: {' '.join(str(err).split())[:200]})") from None


def read_json(path: str | os.PathLike) -> object:
    """The JSON value in the file ``path`` (see ``parse_json``); OSError when it cannot be read."""
    return parse_json(Path(path).read_bytes(), path)


def _write_error(path: Path, err: Exception) -> OSError:
    """One line: which file could not be written, and why (the errno kept)."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else " ".join(str(err).split())
    error = OSError(f"cannot write {path} ({reason})")
    error.errno = getattr(err, "errno", None)
    return error


def save(model, path: str | os.PathLike) -> Path:
    """Write ``model`` to the folder ``path`` (created if needed); returns the folder."""
    from safetensors.torch import save_file

    from .version import __version__

    if not isinstance(model, torch.nn.Module) or not getattr(model, "name", "") or not hasattr(model, "config"):
        raise ValueError(
            f"pixelcnn.save saves a model made by pixelcnn.build or pixelcnn.load, got {type(model).__name__}"
        )
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"pixelcnn.save writes a folder; {folder} exists and is a file")
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    config = {"format": FORMAT, "model": model.name, "config": model.config.to_dict(), "version": __version__}
    _atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))
    _atomic_write(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    return folder


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors file starts with its header's length (8 bytes, little-endian), then "{": a
    # length whose low byte is 0x80 must not pass for a pickle's protocol byte.
    if head[8:9] == b"{":
        return False
    # torch.save writes a zip archive ("PK\x03\x04"); raw pickles start with protocol byte 0x80.
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


RUN_MODEL_DIR = "model"  # a training run's saved model: RUN/model (pixelcnn train --out RUN)


def _resolve_folder(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"no saved model at {path}: expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE} "
            f"written by pixelcnn.save"
        )
    if path.is_dir():
        # A run folder of pixelcnn train holds its model in RUN/model: load that (the CLI takes either too).
        if not (path / WEIGHTS_FILE).is_file() and (path / RUN_MODEL_DIR / WEIGHTS_FILE).is_file():
            return path / RUN_MODEL_DIR
        return path
    if path.suffix.lower() in PICKLE_SUFFIXES or _looks_like_pickle(path):
        raise ValueError(f"{path} looks like a pickle / torch.save file. {CONVERT_HINT}")
    if path.name in (CONFIG_FILE, WEIGHTS_FILE):
        return path.parent
    raise ValueError(
        f"{path} is not a saved pixelcnn model: expected a folder with {CONFIG_FILE} "
        f"and {WEIGHTS_FILE} written by pixelcnn.save"
    )


def model_from_config(name, fields, source) -> torch.nn.Module:
    """A fresh model of the registry name ``name`` with config ``fields`` (a dict read from ``source``).

    Only names of the registry are built, never a class or module named in a file; wrong or
    missing fields, wrong types and sizes that would not fit in memory are one ValueError naming
    ``source``. Nothing is allocated before the config is checked."""
    from .models.registry import check_fits_in_memory, model_class

    try:
        cls = model_class(name)
    except ValueError as err:
        raise ValueError(f"{source} names a model this version of pixelcnn does not have: {err}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"{source} has no {name} config (expected a JSON object of its fields)")
    known = {field.name for field in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(fields) - known)
    if unknown:  # (a newer version's field, or a typo: named, with the fields this version knows)
        raise ValueError(
            f"{source} has an invalid {name} config: no field {', '.join(map(repr, unknown))} in this version of "
            f"pixelcnn; its fields are: {', '.join(sorted(known))}"
        )
    try:
        config = cls.config_class(**fields)
        check_fits_in_memory(name, config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source} has an invalid {name} config: {' '.join(str(err).split())}") from None
    return cls(config)


def read_config(path: str | os.PathLike) -> dict:
    """The JSON config of a saved model folder, checked."""
    from .models.registry import model_class

    folder = _resolve_folder(Path(path))
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}: not a model saved by pixelcnn.save")
    saved = read_json(config_path)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or not isinstance(saved.get("config"), dict):
        raise ValueError(
            f"{config_path} is not a pixelcnn model config (expected keys 'format': '{FORMAT}', 'model', 'config')"
        )
    try:
        model_class(saved.get("model"))
    except ValueError as err:
        raise ValueError(f"{config_path} names a model this version of pixelcnn does not have: {err}") from None
    return saved


def check_weights(state: dict, expected: dict, source) -> None:
    """Refuse, naming the tensor, weights that would load but compute nonsense: a tensor of another kind
    than the model's (an integer or boolean tensor where the model has floats: ``load_state_dict`` would
    cast it in silence) and a NaN or infinite value (every score NaN, every sample black)."""
    for name, tensor in state.items():
        want = expected.get(name)
        if want is None:
            continue  # (load_state_dict names unexpected keys)
        if want.is_floating_point() != tensor.is_floating_point() or tensor.is_complex():
            raise ValueError(
                f"{source}: tensor {name!r} is {str(tensor.dtype).replace('torch.', '')}; the model "
                f"needs {str(want.dtype).replace('torch.', '')} (corrupt or not this model's weights)"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(
                f"{source}: tensor {name!r} holds {bad:,} NaN or infinite value(s) of {tensor.numel():,}: "
                f"these weights cannot score or sample (a diverged run saved by other code?)"
            )


def load(path: str | os.PathLike, map_location: str | torch.device | None = None):
    """Rebuild a model saved by ``pixelcnn.save`` from its folder, or a zoo model (``"zoo:NAME"``); in eval mode.

    ``path`` is the model folder, or a run folder of ``pixelcnn train`` (its
    ``model/`` is loaded). ``map_location`` is the device to put it on (default:
    the CPU). Pickle files (``.pt``, ``.pth``, ...) are refused with instructions
    to convert; weights of the wrong kind or not finite are refused naming the tensor.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if zoo.is_zoo_name(path):
        path = zoo.model_folder(path)
    saved = read_config(path)
    folder = _resolve_folder(Path(path))
    model = model_from_config(saved["model"], saved["config"], folder / CONFIG_FILE)

    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise FileNotFoundError(f"{folder} has no {WEIGHTS_FILE}: the weights are missing")
    if _looks_like_pickle(weights_path):
        raise ValueError(f"{weights_path} is a pickle / torch.save file, not safetensors. {CONVERT_HINT}")
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{weights_path} is corrupt or not a safetensors file ({err})") from None
    check_weights(state, model.state_dict(), weights_path)
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) == 1:
        model = model.to(dtypes.pop())
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[0]
        raise ValueError(f"{weights_path} does not match its config ({first_line} ...)") from None
    device = torch.device(map_location) if map_location is not None else torch.device("cpu")
    return model.to(device).eval()
