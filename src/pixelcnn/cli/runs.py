"""One way to open what a RUN argument names: a run folder, a model folder or ``zoo:NAME`` -> ``Run`` (the model,
and the data set it was trained on), and the data set a command reads from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import zoo
from .errors import UsageError


@dataclass
class Run:
    """What a RUN argument names: a saved model and, for a run folder, the data it was trained on."""

    path: Path
    model: object  # the loaded model, in eval mode
    train_config: object = None  # the TrainConfig of a ``pixelcnn train`` run folder
    identity: dict | None = None  # RUN/identity.json of a ``pixelcnn identity`` run folder
    data: str | None = None  # the data set the model was trained on (None: a bare model folder)
    binarize: str | None = None
    data_root: str | None = None
    image_size: int | None = None  # folder:PATH runs made with --image-size N: every image was resized to N x N


def is_model_folder(folder: Path) -> bool:
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
    if is_model_folder(folder):
        return folder, None
    if is_model_folder(folder / MODEL_DIR):
        return folder / MODEL_DIR, folder
    inside = sorted(d.name for d in folder.iterdir() if d.is_dir() and is_model_folder(d))
    if len(inside) == 1:
        return folder / inside[0], folder
    if inside:
        raise UsageError(f"{folder} holds several saved models ({', '.join(inside)}); give one of them")
    try:
        saved = read_json(folder / "config.json")
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and "data" in saved:
        raise UsageError(
            f"{folder} is a run folder without a saved model yet ({folder / MODEL_DIR} is missing): "
            f"let the run reach a checkpoint, or resume it with pixelcnn train --resume {folder}"
        )
    raise UsageError(f"{folder} is neither a run folder (pixelcnn train --out) nor a model folder (pixelcnn.save)")


def run_folder(spec: str | Path) -> Path:
    """RUN as a folder: ``zoo:NAME`` becomes the entry's folder (an unknown NAME is a usage error)."""
    if zoo.is_zoo_name(str(spec)):
        try:
            return zoo.path(str(spec))
        except ValueError as err:
            raise UsageError(str(err)) from None
    return Path(spec)


def resolve_device(name: str):
    from ..train.device import resolve_device as resolve

    return resolve(name)


def open_run(path: str | Path, device: str = "auto") -> Run:
    """RUN (a run folder of ``pixelcnn train`` or ``pixelcnn identity``, a model folder, or ``zoo:NAME``) -> ``Run``."""
    from ..identity import IDENTITY_FILE, read_identity
    from ..serialization import load
    from ..train.config import TrainConfig
    from ..train.run_folder import CONFIG_FILE

    folder = run_folder(path)  # zoo:NAME: a trained model of the package, with its card
    card = zoo.card(str(path)) if zoo.is_zoo_name(str(path)) else None
    path = folder
    model_folder, holder = find_model_folder(path)
    model = load(model_folder, map_location=resolve_device(device))
    run = Run(path=Path(path), model=model)
    if card is not None:  # the data set it was trained on is the default --data
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


def precision_for(requested: str, model, method: str = "auto"):
    """The precision ``requested`` for sampling with ``method`` on the model's device (``str()`` says which
    and why, for the report); the model's ``sample`` / ``complete`` choose the same from the same words."""
    from ..hardware import choose_precision

    cached = method == "fast" or (method == "auto" and "fast" in model.sampling_methods())
    return choose_precision(requested, next(model.parameters()).device, cached_sampler=cached)


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
