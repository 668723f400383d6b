"""What every command shares: the error types and exit rule, one way to open a run folder, the common flags.

Exit rule (``exit_status``): 0 on success; 2 for a usage error (the command
line asks for something that cannot be done: a bad flag or value, a folder
that is not a run, a model or data set that does not fit the command); 1 for
a failure at run time (a file that cannot be read or written, a download that
fails, training that diverges); 130 when stopped with Ctrl-C, 143 with SIGTERM
(``pixelcnn train`` first saves a checkpoint when stopped during its steps). Every error is
one line on stderr, ``pixelcnn COMMAND: error: ...``, without a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from .. import zoo

PROG = "pixelcnn"
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (default: auto)"


# ------------------------------------------------------------------------------------- errors
class CommandError(Exception):
    """A failure at run time, reported in one line; exit status 1."""

    exit_status = 1


class UsageError(CommandError, ValueError):
    """The command line asks for something that cannot be done, reported in one line; exit status 2."""

    exit_status = 2


# Exceptions reported as one line. A ValueError is the library's "the input you gave is wrong" (see
# DESIGN: bad images, an unknown name, a value out of range), so it is a usage error; the others are
# failures while doing a valid request.
REPORTED = (CommandError, ValueError, OSError, FloatingPointError, ImportError, RuntimeError)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``terminate_on_sigterm``): the command stops like on Ctrl-C; exit status 143 (128 + 15)."""


@contextlib.contextmanager
def terminate_on_sigterm():
    """While a command runs, SIGTERM raises ``Terminated`` (exit 143, one line, no traceback); ``pixelcnn train``
    installs its own handler for the steps (save a checkpoint, then stop)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(error: BaseException) -> int:
    """The exit status of a command that raised ``error`` (one of ``REPORTED`` or KeyboardInterrupt)."""
    if isinstance(error, Terminated):
        return 143
    if isinstance(error, KeyboardInterrupt):
        return 130
    if isinstance(error, CommandError):
        return error.exit_status
    return 2 if isinstance(error, ValueError) else 1


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line: the problem and where to find help (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_command(subparsers, name: str, help_text: str, examples: str, *, description: str | None = None):
    """A subcommand whose --help ends with ``examples`` (lines of ``pixelcnn ...``, comments allowed)."""
    return subparsers.add_parser(name, help=help_text, description=description or help_text,
                                 epilog="examples:\n" + examples.strip("\n"),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


# ------------------------------------------------------------------------------------- flags and checks
def add_device_flag(parser) -> None:
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_precision_flag(parser, default: str = "auto") -> None:
    """--precision: what the network runs in (the head always scores and draws in float32 or better)."""
    from ..hardware import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help=f"network precision: auto (bf16 on a GPU or a CPU with bf16 units, else fp32), fp32, "
                             f"bf16, fp16 (CUDA); the head is float32 (default: {default})")


def precision_for(requested: str, model, method: str = "auto"):
    """The precision ``requested`` for sampling with ``method`` on the model's device (``str()`` says which
    and why, for the report); the model's ``sample`` / ``complete`` choose the same from the same words."""
    from ..hardware import choose_precision

    cached = method == "fast" or (method == "auto" and "fast" in model.sampling_methods())
    return choose_precision(requested, next(model.parameters()).device, cached_sampler=cached)


def add_data_flags(parser, *, split: bool = True) -> None:
    """--data, --binarize (and --split): which images a command reads (default: those the run trained on)."""
    parser.add_argument("--data", help="data set (default: the run's); needed for a bare model folder")
    parser.add_argument("--binarize", choices=["dynamic", "threshold"], help="binarization (default: the run's)")
    if split:
        parser.add_argument("--split", choices=["test", "train"], default="test", help="split (default: test)")


def add_draw_flags(parser, *, scale: bool = True) -> None:
    """--seed, --temperature, --method (and --scale) of the commands that draw samples."""
    parser.add_argument("--seed", type=seed, default=0, help="random seed of the draws, 0..2**64-1 (default: 0)")
    parser.add_argument("--temperature", type=float, default=1.0, help="divides the logits (default: 1.0)")
    parser.add_argument("--method", default="auto", choices=["auto", "fast", "naive"],
                        help="sampler: auto, fast or naive (default: auto)")
    if scale:
        parser.add_argument("--scale", type=int, help="screen pixels per image pixel (default: about 56 px an image)")


SEED_MAX = 2 ** 64 - 1          # torch.Generator.manual_seed takes 64 bits
MAX_SCALED_SIDE = 2048          # --scale: screen pixels of one image's longer side, at most


def seed(text: str) -> int:
    """argparse type of --seed: an integer in 0..2**64-1 (larger ones overflowed inside torch)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..2**64-1, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..2**64-1, got {text}")
    return value


def positive(name: str, value) -> None:
    if value is None or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value}")


def check_temperature(value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"--temperature must be a positive number, got {value}")


def scale_for(image_shape, requested: int | None) -> int:
    """--scale, or the default that makes an image of ``image_shape`` (C, H, W) about 56 pixels high."""
    from ..viz import default_scale

    if requested is not None:
        largest = max(1, MAX_SCALED_SIDE // max(image_shape[1:]))      # a picture that fits in memory and on screen
        if not 1 <= requested <= largest:
            raise UsageError(f"--scale must be in 1..{largest} for {image_shape[2]}x{image_shape[1]} images "
                             f"(at most {MAX_SCALED_SIDE} screen pixels a side), got {requested}")
        return requested
    return default_scale(image_shape)


def resolve_device(name: str):
    from ..train.device import resolve_device as resolve

    return resolve(name)


# ------------------------------------------------------------------------------------- run folders
@dataclass
class Run:
    """What a RUN argument names: a saved model and, for a run folder, the data it was trained on."""

    path: Path
    model: object                    # the loaded model, in eval mode
    train_config: object = None      # the TrainConfig of a ``pixelcnn train`` run folder
    identity: dict | None = None     # RUN/identity.json of a ``pixelcnn identity`` run folder
    data: str | None = None          # the data set the model was trained on (None: a bare model folder)
    binarize: str | None = None
    data_root: str | None = None
    image_size: int | None = None    # folder:PATH runs made with --image-size N: every image was resized to N x N


def _is_model_folder(folder: Path) -> bool:
    from ..serialization import CONFIG_FILE, WEIGHTS_FILE

    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def find_model_folder(path: str | Path) -> tuple[Path, Path | None]:
    """RUN -> (its saved-model folder, the run folder holding it or None for a bare model folder).

    RUN is a model folder (``pixelcnn.save``: config.json + model.safetensors)
    or a folder with one inside it: a run's ``model/`` (``pixelcnn train``,
    ``pixelcnn identity``) or its only saved model.
    """
    from ..serialization import read_json
    from ..train.run_folder import MODEL_DIR

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UsageError(f"no run or model folder at {folder}")
    if _is_model_folder(folder):
        return folder, None
    if _is_model_folder(folder / MODEL_DIR):
        return folder / MODEL_DIR, folder
    inside = sorted(d.name for d in folder.iterdir() if d.is_dir() and _is_model_folder(d))
    if len(inside) == 1:
        return folder / inside[0], folder
    if inside:
        raise UsageError(f"{folder} holds several saved models ({', '.join(inside)}); give one of them")
    try:
        saved = read_json(folder / "config.json")
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and "data" in saved:
        raise UsageError(f"{folder} is a run folder without a saved model yet ({folder / MODEL_DIR} is missing): "
                         f"let the run reach a checkpoint, or resume it with pixelcnn train --resume {folder}")
    raise UsageError(f"{folder} is neither a run folder (pixelcnn train --out) nor a model folder (pixelcnn.save)")


def run_folder(spec: str | Path) -> Path:
    """RUN as a folder: ``zoo:NAME`` becomes the entry's folder (an unknown NAME is a usage error)."""
    if zoo.is_zoo_name(str(spec)):
        try:
            return zoo.path(str(spec))
        except ValueError as err:
            raise UsageError(str(err)) from None
    return Path(spec)


def open_run(path: str | Path, device: str = "auto") -> Run:
    """RUN (a run folder of ``pixelcnn train`` or ``pixelcnn identity``, a model folder, or ``zoo:NAME``) -> ``Run``."""
    from ..identity import IDENTITY_FILE, read_identity
    from ..serialization import load
    from ..train.config import TrainConfig
    from ..train.run_folder import CONFIG_FILE

    folder = run_folder(path)                   # zoo:NAME: a trained model of the package, with its card
    card = zoo.card(str(path)) if zoo.is_zoo_name(str(path)) else None
    path = folder
    model_folder, holder = find_model_folder(path)
    model = load(model_folder, map_location=resolve_device(device))
    run = Run(path=Path(path), model=model)
    if card is not None:                        # the data set it was trained on is the default --data
        run.data, run.binarize = card["data"], card["binarize"]
    if holder is not None and (holder / IDENTITY_FILE).is_file():
        run.identity = read_identity(holder)
        run.data, run.binarize = run.identity["config"]["data"], run.identity["config"]["binarize"]
        run.image_size = run.identity["config"].get("image_size")
    elif holder is not None and (holder / CONFIG_FILE).is_file():
        run.train_config = TrainConfig.load(holder / CONFIG_FILE)
        run.data, run.binarize = run.train_config.data, run.train_config.binarize
        run.data_root = run.train_config.data_root
    return run


def dataset_for(run: Run, args, split: str = "test", *, needs: str = ""):
    """The data set a command reads: --data (binarized by --binarize, or as a 2-level model needs), else the
    run's own; checked against the model. ``needs`` starts the error for a bare model folder."""
    from .. import data
    from ..evaluate import check_compatible

    name, binarize, root = getattr(args, "data", None), getattr(args, "binarize", None), None
    if name is None:
        if run.data is None:
            raise UsageError(f"{needs}{run.path} is a bare model folder: say which data set with --data NAME")
        name, binarize, root = run.data, binarize or run.binarize, run.data_root
    elif binarize is None and run.model.levels == 2 and name == run.data:
        binarize = run.binarize
    # the run's own images, sized as it saw them (a faces folder read at --image-size N)
    image_size = run.image_size if name == run.data else None
    dataset = data.load(name, split, root=root, binarize=binarize, image_size=image_size)
    try:
        check_compatible(run.model, dataset)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return dataset


def pick_images(dataset, *, n: int | None = None, indices=None, classes: str | None = None, per_class: int = 1):
    """Images of ``dataset`` by index, by class (``per_class`` of each, spread within it) or ``n`` spread over it
    (data sets often store their classes in order).

    Returns (uint8 images [B, C, H, W] as the model reads them, labels [B]).
    """
    import torch

    from ..identity import parse_classes

    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(dataset)]
        if bad:
            raise UsageError(f"image index {bad[0]} is out of range: {dataset.name} {dataset.split} has "
                             f"{len(dataset)} images (0..{len(dataset) - 1})")
        index = torch.tensor(indices)
    elif classes is not None:
        positive("--per-class", per_class)
        chosen = []
        for c in parse_classes(classes):
            members = torch.nonzero(dataset.labels == c).flatten()
            if len(members) == 0:
                raise UsageError(f"{dataset.name} {dataset.split} has no image of class {c}")
            chosen.append(members[torch.linspace(0, len(members) - 1, min(per_class, len(members))).round().long()])
        index = torch.cat(chosen)
    else:
        positive("--n", n)
        if n > len(dataset):
            raise UsageError(f"--n {n} is more than the {len(dataset)} images of {dataset.name} {dataset.split}")
        index = torch.linspace(0, len(dataset) - 1, n).round().long()
    images = dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    return images, dataset.labels[index]


# ------------------------------------------------------------------------------------- output paths
# What a run or model folder owns: a command never writes over these (the run would be destroyed).
RUN_OWN_FILES = ("config.json", "checkpoint.safetensors", "model", "model.safetensors", "metrics.jsonl", "samples",
                 "tensorboard", "identity.json", "train.lock")


def add_force_flag(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output file that pixelcnn did not write")


def _run_folder_of(path: Path) -> Path | None:
    """The run or model folder whose own files ``path`` is (or lies inside), else None."""
    for folder in path.parents:
        inside = path.relative_to(folder).parts
        if inside and inside[0] in RUN_OWN_FILES and (folder / "config.json").is_file() and any(
                (folder / name).exists() for name in ("checkpoint.safetensors", "model", "model.safetensors",
                                                      "identity.json", "metrics.jsonl")):
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
        raise UsageError(f"{option} {path} would write over {where.relative_to(run).parts[0]} of the run folder "
                         f"{run}: choose a path outside it")
    if kind == "run":
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path} is a file, not a run folder")
        if _is_model_folder(path):
            raise UsageError(f"{option} {path} is a saved model folder (pixelcnn.save): choose a new run folder")
        return path
    if kind == "folder":
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path} is a file, not a folder")
        return path
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not getattr(args, "force", False) and not (own is not None and own(path)):
        raise UsageError(f"{option} {path} exists and was not written by pixelcnn: give --force to replace it, "
                         f"or another path")
    return path
