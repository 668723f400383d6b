"""The training configuration: one dataclass, printed at start and saved as ``RUN/config.json``.

Every field is a command-line flag of ``pixelcnn train`` (``lr`` -> ``--lr``,
``grad_clip`` -> ``--grad-clip``), its --help the text of its ``option(default,
help)`` (``cli.flags.add_dataclass_flags``); the model's own fields (``n_layers``,
``hidden``, ...) travel in ``model_options`` and have flags of their own.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..fields import (
    check_types,
    fraction,
    non_negative,
    one_of,
    option,
    positive_int,
    positive_number,
    raise_problems,
    seed,
)
from ..hardware import COMPILE_CHOICES, PRECISIONS

OPTIMIZERS = ("adam", "rmsprop")
LR_DECAYS = ("none", "cosine", "linear", "exponential")
BINARIZE = (None, "dynamic", "threshold")
ON_NAN = ("stop", "skip")
DEVICES_HINT = "auto, cpu, cuda, cuda:N or mps"

# The schedule of ``pixelcnn demo`` and of the training curves in benchmarks/train_curves.py (defined beside
# the presets that train with it, gated-demo and pixelcnn-12x32-k5).
from ..models.base import DEMO_SCHEDULE  # noqa: E402, F401 (re-exported: benchmarks and the CLI import it from here)

# Fields that may differ when a run is resumed: when to stop, how often to
# log / evaluate / save, and where to run. Everything else must match the
# saved config, or the resumed run would not continue the same training.
RESUMABLE_FIELDS = (
    "out",
    "data_root",
    "epochs",
    "max_steps",
    "max_minutes",
    "log_every",
    "eval_every",
    "eval_every_minutes",
    "eval_images",
    "sample_images",
    "checkpoint_every",
    "device",
    "threads",
    "progress",
    "tensorboard",
    "on_nan",
    "checkpoint_every_minutes",
    "precision",
    "compile",
)
# The budget: on resume, the ones given mean *more* training (``Trainer(..., more=True)``).
BUDGET_FIELDS = ("epochs", "max_steps", "max_minutes")


def changed_on_resume(saved: TrainConfig, given: dict) -> list[str]:
    """The one resume check: the names of fields in ``given`` (TrainConfig fields, and model options as
    ``model_options.NAME`` or in a ``model_options`` dict) that differ from the ``saved`` run's and may not
    change (everything but ``RESUMABLE_FIELDS``); empty when the run can continue as configured."""
    changed = []
    for name, value in given.items():
        if name == "model_options":
            options = value or {}
            changed += [
                f"model_options.{k}"
                for k in sorted(set(options) | set(saved.model_options))
                if options.get(k, object()) != saved.model_options.get(k, object())
            ]
        elif name.startswith("model_options."):
            key = name.split(".", 1)[1]
            if saved.model_options.get(key, object()) != value:
                changed.append(name)
        elif name not in RESUMABLE_FIELDS and getattr(saved, name) != value:
            changed.append(name)
    return changed


# Fields of older configs and what they mean now: amp (mixed precision on CUDA only) and compile (a bool).
LEGACY_FIELDS = {
    "amp": ("precision", {True: "auto", False: "fp32"}),
    "compile": ("compile", {True: "on", False: "off"}),
}


@dataclass
class TrainConfig:
    # --- what to train, on what
    model: str = option("pixelcnn-6x32-k5", "model or preset name; the data set sets image_shape and levels")
    model_options: dict = option(default_factory=dict, help="model config fields: n_layers, hidden, kernel_size, ...")
    class_conditional: bool = option(False, "condition on the data set's labels (num_classes from the data)")
    data: str = option("mnist5k", "data set name (pixelcnn.data.list_datasets())")
    binarize: str | None = option(None, 'None, "dynamic" (fresh draw per batch) or "threshold"')
    data_root: str | None = option(None, "download cache; None: ~/.cache/pixelcnn or $PIXELCNN_DATA")
    out: str = option("runs/run", "run folder: config.json, checkpoint, model/, metrics.jsonl, PNGs")
    perturb: float = option(
        0.0, "replace this fraction of training values at random (a background model, Ren et al. 2019)"
    )

    # --- optimisation
    batch_size: int = option(32, "images per step (per process under torchrun)")
    optimizer: str = option("adam", '"adam" or "rmsprop" (the PixelRNN paper\'s)')
    lr: float = option(1e-3, "peak learning rate, reached after warm-up")
    beta1: float = option(0.9, "Adam's first-moment decay; RMSProp's momentum")
    beta2: float = option(0.999, "Adam's second-moment decay; RMSProp's squared-gradient decay")
    weight_decay: float = option(0.0, "decoupled (AdamW-style) for Adam, L2 for RMSProp")
    warmup_steps: int = option(0, "linear warm-up from 0 to lr over this many steps")
    lr_decay: str = option("none", 'after warm-up: "none", "cosine", "linear" or "exponential"')
    decay_steps: int | None = option(None, "cosine / linear horizon; None: the run's budget (steps or minutes)")
    final_lr_ratio: float = option(0.0, "cosine / linear end at lr * this")
    decay_rate: float = option(0.5, "exponential: lr multiplied by this every decay_every steps")
    decay_every: int = option(1000, "exponential: steps per decay_rate factor")
    grad_clip: float | None = option(1.0, "clip the global gradient norm to this; None or 0: no clipping")
    ema_decay: float | None = option(0.999, "Polyak / EMA weights used for evaluation and saved; None: off")
    on_nan: str = option("stop", 'a NaN / inf loss or gradient: "stop" (keep the last checkpoint) or "skip" the step')

    # --- when to stop (the first reached; at least one is required)
    epochs: float | None = option(None, "passes over the training split")
    max_steps: int | None = option(None, "optimizer steps")
    max_minutes: float | None = option(None, "minutes of training (evaluation and sampling not counted)")

    # --- hardware and reproducibility
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    precision: str = option("auto", "auto (bf16 on a GPU or a CPU with bf16 units, else fp32), fp32, bf16, fp16")
    compile: str = option("auto", "torch.compile the training step: auto (runs of >= 1000 steps or 3 minutes), on, off")
    threads: int | None = option(None, "CPU threads for torch; None: torch's default")
    seed: int = option(0, "model init, batch order and binarization draws")

    # --- logging, evaluation, checkpoints
    log_every: int = option(10, "steps per metrics.jsonl line and progress-bar update")
    eval_every: int | None = option(500, "steps between test-split evaluations (and at the end); None: end only")
    eval_every_minutes: float | None = option(None, "also evaluate every this many minutes of training; None: never")
    eval_images: int | None = option(None, "test images per evaluation; None: the whole split")
    sample_images: int = option(16, "images in the sample grid at each evaluation; 0: none")
    checkpoint_every: int = option(500, "steps between checkpoints (one is always written at the end)")
    checkpoint_every_minutes: float | None = option(
        None, "also checkpoint after this many wall-clock minutes; None: off"
    )
    progress: bool = option(True, "tqdm progress bar")
    tensorboard: bool = option(True, "TensorBoard event files when tensorboard is installed")

    def __post_init__(self):
        check_types(self)
        problems = [
            one_of("optimizer", self.optimizer, OPTIMIZERS),
            one_of("lr_decay", self.lr_decay, LR_DECAYS),
            one_of("precision", self.precision, PRECISIONS),
            one_of("compile", self.compile, COMPILE_CHOICES),
            one_of("on_nan", self.on_nan, ON_NAN),
            one_of("binarize", self.binarize, BINARIZE),
        ]
        problems += [
            positive_int(name, getattr(self, name))
            for name in ("batch_size", "log_every", "checkpoint_every", "decay_every")
        ]
        problems += [non_negative(name, getattr(self, name)) for name in ("warmup_steps", "sample_images")]
        problems += [
            positive_number(name, getattr(self, name), optional=True)
            for name in (
                "epochs",
                "max_steps",
                "max_minutes",
                "eval_every",
                "eval_every_minutes",
                "eval_images",
                "decay_steps",
                "threads",
                "checkpoint_every_minutes",
            )
        ]
        problems += [
            positive_number("lr", self.lr),
            fraction("beta1", self.beta1),
            fraction("beta2", self.beta2),
            non_negative("weight_decay", self.weight_decay),
            fraction("final_lr_ratio", self.final_lr_ratio, one=True),
            fraction("decay_rate", self.decay_rate, zero=False, one=True),
            non_negative("grad_clip", self.grad_clip, optional=True),
            fraction("ema_decay", self.ema_decay, optional=True),
            seed("seed", self.seed),
            fraction("perturb", self.perturb),
        ]
        from ..models.registry import model_class, presets

        if self.model not in presets:  # only names of the registry are ever built
            try:
                model_class(self.model)
            except ValueError as err:
                problems.append(str(err))
        raise_problems(problems)

    @property
    def has_budget(self) -> bool:
        return any(v is not None for v in (self.epochs, self.max_steps, self.max_minutes))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        for old, (new, meaning) in LEGACY_FIELDS.items():  # a config saved before precision / compile were words
            if isinstance(values.get(old), bool):
                values[new] = meaning[values.pop(old)]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def save(self, path: str | Path) -> None:
        from ..serialization import _atomic_write

        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        _atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        from ..serialization import read_json

        path = Path(path)
        try:
            values = read_json(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no training config at {path}: not a run folder written by pixelcnn train"
            ) from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} is not a training config (expected a JSON object)")
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as err:  # a wrong field: name the file and the field
            raise ValueError(f"{path}: {' '.join(str(err).split())}") from None

    def describe(self) -> str:
        """The config as aligned ``name = value`` lines, for printing at the start of a run."""
        rows = self.to_dict()
        width = max(len(name) for name in rows)
        return "\n".join(f"  {name:<{width}} = {value!r}" for name, value in rows.items())
