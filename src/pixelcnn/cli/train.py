"""``pixelcnn train``, ``eval``, ``demo``, ``models`` and ``data``: training runs and what to train on."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ..fields import field_help
from ..heads import HEADS
from .errors import Terminated, UsageError
from .flags import (
    add_command,
    add_data_flags,
    add_dataclass_flags,
    add_device_flag,
    add_draw_flags,
    add_field_flag,
    add_out_flag,
    add_precision_flag,
    add_run_argument,
    positive,
)
from .images import pick_images
from .paths import output_path
from .runs import dataset_for, open_run, resolve_device

# Model config fields that training does not take from flags: the data set gives
# image_shape and levels, --class-conditional gives num_classes, and vector
# conditions (cond_dim) need data that carries vectors.
MODEL_FIELDS_FROM_DATA = ("image_shape", "levels", "num_classes", "cond_dim")

# The output distribution's fields: the baselines have none (their configs refuse other values).
HEAD_FIELDS = ("head", "n_mixtures")

# Model config fields whose flag takes one of a few names.
MODEL_CHOICES = {"head": HEADS}

DEMO_PRESET = "gated-demo"  # the demo's class-conditional Gated PixelCNN, 4 layers x 32, 5x5

EXAMPLES = {
    "train": """
  pixelcnn train --model gated_pixelcnn --data mnist5k --binarize dynamic --class-conditional \\
                 --n-layers 5 --hidden 32 --max-minutes 10 --lr-decay cosine --out runs/mnist
  pixelcnn train --preset gated-cifar10 --data photo-patches --epochs 20 --out runs/photos
  pixelcnn train --resume runs/mnist --max-minutes 30        # continue: 30 more minutes of training
  pixelcnn train --model gated_pixelcnn --data mnist5k --binarize dynamic --max-steps 3000 \\
                 --precision fp32 --compile off --out runs/f32     # float32 eager whatever the hardware

Several GPUs (DDP): torchrun --nproc_per_node 4 -m pixelcnn train ... (the same flags).
The first lines say which precision and compile setting were chosen, and why.
The run folder gets config.json, checkpoint.safetensors, model/ (pixelcnn.load),
metrics.jsonl, samples/*.png and, if tensorboard is installed, tensorboard/.
--out must be a new or empty folder (--force replaces the run files of a folder that is not).
Ctrl-C or SIGTERM during training saves a checkpoint and exits (130 / 143); --resume continues
exactly. During start-up, data loading, model build or compiling it stops at once.""",
    "eval": """
  pixelcnn eval runs/mnist                      # test NLL (nats/image and bits/dim) +- standard error
  pixelcnn eval runs/mnist --split train --json
  pixelcnn eval runs/mnist --precision auto     # faster: the network in bf16 where the chip has it
  pixelcnn eval runs/mnist --split train --compile on   # a long evaluation: compile the scoring first
  pixelcnn eval runs/mnist/model --data mnist5k --binarize dynamic""",
    "demo": """
  pixelcnn demo                     # about 5 minutes of training on 2 CPU cores, then numbers and pictures
  pixelcnn demo --minutes 10 --out runs/demo10

Trains a class-conditional Gated PixelCNN (the gated-demo preset) on binarized
mnist5k (4,000 bundled MNIST digits), evaluates the test NLL on the 1,000 test
digits, and writes RUN/per_class_samples.png (one row per digit), RUN/completions.png
and RUN/model/.""",
    "models": """
  pixelcnn models                   # the registry names and the presets
  pixelcnn models --count           # build each preset and count its parameters (a minute)
  pixelcnn models --count --match mnist    # only the presets whose name contains mnist""",
    "data": """
  pixelcnn data                     # the data sets by name
  pixelcnn data --details           # with the bundled sets' sizes, image shapes and classes""",
}


# ------------------------------------------------------------------------------------- train flags
def _model_classes() -> dict:
    """Every model a run can train, by registry name, the MSE baseline included."""
    from ..models import registry

    return {**registry.MODELS, **registry.BASELINES}


def model_option_help() -> dict:
    """field -> (a field of some model's config, help text true for every model that has it).

    Models that agree on a field's meaning and default share one phrase; where they differ,
    the help names each group: "gated layers (default 15) for gated_pixelcnn; LSTM layers ..."."""
    from ..models import registry

    meanings: dict[str, dict[str, list[str]]] = {}
    fields = {}
    for name, model_class in _model_classes().items():
        for f in dataclasses.fields(model_class.config_class):
            if f.name in MODEL_FIELDS_FROM_DATA or (f.name in HEAD_FIELDS and name in registry.BASELINES):
                continue
            fields.setdefault(f.name, f)
            default = f.default if f.default is not dataclasses.MISSING else None
            phrase = f"{field_help(f) or f.name.replace('_', ' ')} (default: {default!r})"
            meanings.setdefault(f.name, {}).setdefault(phrase, []).append(name)
    helps = {}
    for field_name, by_phrase in meanings.items():
        helps[field_name] = (
            fields[field_name],
            "; ".join(f"{', '.join(names)}: {phrase}" for phrase, names in by_phrase.items()),
        )
    return helps


def add_parsers(sub) -> None:
    from .. import list_models, presets
    from ..hardware import COMPILE_AUTO_MIN_STEPS, COMPILE_CHOICES, PRECISIONS
    from ..train.config import BINARIZE, LR_DECAYS, ON_NAN, OPTIMIZERS, TrainConfig

    info = add_command(
        sub, "models", "list the models and presets (with --count: their parameter counts)", EXAMPLES["models"]
    )
    info.add_argument("--count", action="store_true", help="build each preset and count its parameters")
    info.add_argument("--match", metavar="TEXT", help="only the presets whose name contains TEXT")
    info.set_defaults(handler=cmd_models)

    datasets = add_command(sub, "data", "list the data sets that --data accepts", EXAMPLES["data"])
    datasets.add_argument(
        "--details",
        action="store_true",
        help="load the bundled sets and print their sizes, image shapes, levels and classes",
    )
    datasets.set_defaults(handler=cmd_data)

    train = add_command(sub, "train", "train a model on a data set (resumable)", EXAMPLES["train"])
    which = train.add_mutually_exclusive_group()
    which.add_argument(
        "--model",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help=f"model name: {', '.join(list_models())}, or the baseline mse_ae "
        f"(default: the {TrainConfig.model} preset)",
    )
    which.add_argument(
        "--preset",
        metavar="NAME",
        default=argparse.SUPPRESS,
        dest="model",
        help=f"a named configuration: {', '.join(sorted(presets))}",
    )
    which.add_argument(
        "--resume",
        metavar="RUN",
        nargs="?",
        const=True,
        default=argparse.SUPPRESS,
        help="continue the run in folder RUN (or in --out) where it stopped, with its config; "
        "budget flags given with it mean MORE training from where it stopped (--max-steps 100: "
        "100 more steps; --max-minutes 2: 2 more minutes; they replace the run's budget); "
        "without them the run finishes its own budget",
    )
    train.add_argument(
        "--force",
        action="store_true",
        help="start in a folder that is not empty, replacing the run files it holds (config.json, "
        "checkpoint, model/, metrics.jsonl, samples/); without it --out must be new or empty",
    )
    group = train.add_argument_group(
        "training options (TrainConfig; a preset's schedule, such as pixelcnnpp-cifar10's, replaces these defaults)"
    )
    add_dataclass_flags(
        group,
        TrainConfig,
        skip=("model", "model_options"),
        choices={
            "optimizer": OPTIMIZERS,
            "lr_decay": LR_DECAYS,
            "binarize": BINARIZE,
            "on_nan": ON_NAN,
            "precision": PRECISIONS,
            "compile": COMPILE_CHOICES,
        },
    )
    group = train.add_argument_group(
        "model options (fields of the model's config; each names the models that have it, with their defaults; "
        "a preset's values replace the defaults)"
    )
    for f, help_text in model_option_help().values():
        add_field_flag(group, f, help_text, choices=MODEL_CHOICES.get(f.name))
    train.set_defaults(handler=cmd_train)

    evaluate = add_command(
        sub, "eval", "test NLL of a trained model, nats/image and bits/dim with standard errors", EXAMPLES["eval"]
    )
    add_run_argument(evaluate)
    add_device_flag(evaluate)
    add_precision_flag(evaluate, default="fp32")  # a reported NLL: float32 unless asked otherwise
    evaluate.add_argument(
        "--compile",
        choices=COMPILE_CHOICES,
        default="auto",
        help=f"torch.compile the scoring: auto is on for at least {COMPILE_AUTO_MIN_STEPS} batches "
        "(a compile takes tens of seconds on a CPU); a failed compile warns and scores in "
        "eager mode (default: auto)",
    )
    add_data_flags(evaluate)
    evaluate.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    evaluate.add_argument("--max-images", type=int, help="score only the first N images of the split")
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object")
    evaluate.set_defaults(handler=cmd_eval)

    demo = add_command(
        sub,
        "demo",
        "train a class-conditional Gated PixelCNN on bundled MNIST digits, evaluate it, draw samples and completions",
        EXAMPLES["demo"],
    )
    demo.add_argument("--minutes", type=float, default=5.0, help="minutes of training (default: 5)")
    add_out_flag(demo, "run folder; runs/demo-2, ... when it holds files", default="runs/demo")
    add_device_flag(demo)
    add_draw_flags(demo, sampler=False, scale=False, seeds="the training and the draws")
    demo.add_argument("--per-class", type=int, default=8, help="samples of each digit in the grid (default: 8)")
    demo.add_argument("--n-layers", type=int, help=f"gated layers (default: the {DEMO_PRESET} preset's, 4)")
    demo.add_argument("--hidden", type=int, help=f"maps per layer (default: the {DEMO_PRESET} preset's, 32)")
    demo.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    demo.set_defaults(handler=cmd_demo)


# ------------------------------------------------------------------------------------- commands
def cmd_models(args) -> str:
    from .. import build, list_models, presets

    lines = ["models: " + ", ".join(list_models())]
    for name, preset in sorted(presets.items()):
        if args.match is not None and args.match not in name:
            continue
        count = f"{sum(p.numel() for p in build(name).parameters()):>12,d}  " if args.count else ""
        lines.append(f"  {name:<24} {preset.model:<20} {count}{preset.description}")
    return "\n".join(lines)


def cmd_data(args) -> str:
    from .. import data

    lines = []
    for name, source in data.SOURCES.items():
        where = "bundled, offline" if source.bundled else source.where or f"downloaded once into {data.default_root()}"
        if args.details and source.bundled:
            train, test = data.load(name, "train"), data.load(name, "test")
            classes = f"{train.num_classes} classes" if train.num_classes else "no labels"
            where += (
                f"; {len(train):,} train / {len(test):,} test images {tuple(train.image_shape)}, "
                f"{train.levels} levels, {classes}"
            )
        lines.append(f"  {name:<16} {where}")
    lines.append(f"  {'folder:PATH':<16} any folder of images (train/ and test/ subfolders, or a fixed 1-in-10 split)")
    return "data sets (pixelcnn train --data NAME; pixelcnn.data.load(NAME, split)):\n" + "\n".join(lines)


def train_config_from_args(args):
    """(the TrainConfig the flags describe, resume?): for --resume, the run's config with the flags given applied
    (refused by the one resume check, ``changed_on_resume``, when one may not change); budget flags given on
    resume replace the run's budget (``resume_adds_budget``: they count from where it stopped)."""
    from ..train.config import BUDGET_FIELDS, RESUMABLE_FIELDS, TrainConfig, changed_on_resume
    from ..train.run_folder import CONFIG_FILE

    given = {k: v for k, v in vars(args).items() if k not in ("command", "resume", "handler", "force")}
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    train_values = {k: v for k, v in given.items() if k in train_names}
    model_values = {k: v for k, v in given.items() if k not in train_names}
    resume = getattr(args, "resume", None)
    if resume is None:
        return TrainConfig(
            **{**preset_schedule(train_values.get("model", TrainConfig.model)), **train_values},
            model_options=model_values,
        ), False
    if resume is True:  # bare --resume: the run in --out
        if "out" not in train_values:
            raise UsageError("--resume needs the run folder: --resume RUN (or --resume --out RUN)")
        resume = train_values["out"]
    elif Path(train_values.get("out", resume)).resolve() != Path(resume).resolve():
        raise UsageError(
            f"--resume {resume} continues that run in its own folder; --out {train_values['out']} "
            f"names another (a resumed run cannot move: copy the folder first, then resume the copy)"
        )
    run = Path(resume)
    if not (run / CONFIG_FILE).is_file():
        raise UsageError(f"nothing to resume at {run}: no {CONFIG_FILE} (not a run folder of pixelcnn train)")
    saved = TrainConfig.load(run / CONFIG_FILE)
    fixed = changed_on_resume(saved, {**train_values, **{f"model_options.{k}": v for k, v in model_values.items()}})
    if fixed:
        raise UsageError(
            f"--resume continues a run as it was configured; these cannot change: "
            f"{', '.join(_flag(k) for k in fixed)} "
            f"(may change: {', '.join(_flag(k) for k in RESUMABLE_FIELDS if k != 'out')})"
        )
    if resume_adds_budget(args):  # the budget given replaces the run's: N more steps, M more minutes
        train_values = {**{k: None for k in BUDGET_FIELDS}, **train_values}
    return dataclasses.replace(saved, **{**train_values, "out": str(run)}), True


def resume_adds_budget(args) -> bool:
    """Whether budget flags (--max-steps, --max-minutes, --epochs) were given with --resume: more training."""
    from ..train.config import BUDGET_FIELDS

    return getattr(args, "resume", None) is not None and any(hasattr(args, k) for k in BUDGET_FIELDS)


def _flag(name: str) -> str:
    return "--" + name.removeprefix("model_options.").replace("_", "-")


def preset_schedule(name: str) -> dict:
    """A preset's training schedule (its paper's recipe), the defaults that flags given explicitly override."""
    from .. import presets

    return dict(presets[name].schedule) if name in presets else {}


def flag_names(message: str, names) -> str:
    """``lr must be ...; n_layers must be ...`` -> ``--lr must be ...; --n-layers must be ...``, for the fields
    in ``names``."""
    parts = []
    for part in message.split("; "):
        name, space, rest = part.partition(" ")
        parts.append((_flag(name) if name in names and rest.startswith("must ") else name) + space + rest)
    return "; ".join(parts)


def cmd_train(args) -> str:
    import signal

    from ..train.loop import Trainer

    names = {k for k in vars(args) if k not in ("command", "handler")}
    trainer = None
    try:
        config, resume = train_config_from_args(args)
        if not resume:
            output_path(config.out, option="--out", kind="run")
        if not config.has_budget:
            raise UsageError("say when to stop: --epochs N, --max-steps N or --max-minutes M")
        trainer = Trainer(config, resume=resume, force=args.force, more=resume_adds_budget(args))
        result = trainer.run()
    except UsageError:
        raise
    except ValueError as err:  # out-of-range values name the flag: "--lr must be ..., got -1"
        raise UsageError(flag_names(" ".join(str(err).split()), names)) from None
    except KeyboardInterrupt:  # stopped at once by a signal (start-up, build, compile): 143 or 130
        if trainer is not None and trainer.stop_signal == signal.SIGTERM:
            raise Terminated() from None
        raise
    if result.interrupted:  # stopped by a signal after saving a checkpoint: 143 or 130 as well
        raise Terminated() if trainer.stop_signal == signal.SIGTERM else KeyboardInterrupt()
    return f"test: {result.final_eval}" if result.final_eval is not None else ""


def cmd_eval(args) -> str:
    from ..evaluate import evaluate

    positive("--batch-size", args.batch_size)
    if args.max_images is not None:
        positive("--max-images", args.max_images)
    run = open_run(args.run, args.device)
    dataset = dataset_for(run, args, args.split)
    result = evaluate(
        run.model,
        dataset,
        batch_size=args.batch_size,
        max_images=args.max_images,
        progress=not args.json and sys.stderr.isatty(),
        precision=args.precision,
        compile=args.compile,
    )
    return json.dumps(result.to_dict()) if args.json else str(result)


def _fresh_folder(path: str) -> Path:
    folder = Path(path)
    number = 2
    while folder.exists() and any(folder.iterdir()):
        folder = Path(f"{path}-{number}")
        number += 1
    return folder


def _demo_model(args) -> tuple[str, dict]:
    """The demo's model: the gated-demo preset's model and sizes, with --n-layers / --hidden applied.

    The run's config names the model (gated_pixelcnn) and its sizes, so it reads like any
    other run; the data set gives the image shape, levels and classes."""
    from .. import presets

    sizes = {k: v for k, v in (("n_layers", args.n_layers), ("hidden", args.hidden)) if v is not None}
    for name, value in sizes.items():
        positive("--" + name.replace("_", "-"), value)
    preset = presets[DEMO_PRESET]
    options = {k: v for k, v in preset.config.items() if k not in MODEL_FIELDS_FROM_DATA}
    return preset.model, {**options, **sizes}


def cmd_demo(args) -> str:
    import torch

    from .. import data, load, viz
    from ..train.config import DEMO_SCHEDULE, TrainConfig
    from ..train.loop import Trainer
    from .generate import complete_images

    if not args.minutes > 0:
        raise UsageError(f"--minutes must be positive, got {args.minutes}")
    positive("--per-class", args.per_class)
    model_name, model_options = _demo_model(args)
    out = _fresh_folder(args.out)
    config = TrainConfig(
        model=model_name,
        model_options=model_options,
        class_conditional=True,
        data="mnist5k",
        binarize="dynamic",
        out=str(out),
        max_minutes=args.minutes,
        eval_every=None,
        sample_images=0,
        checkpoint_every=500,
        device=args.device,
        seed=args.seed,
        progress=args.progress,
        **DEMO_SCHEDULE,
    )
    print(
        f"pixelcnn demo: training a class-conditional Gated PixelCNN on binarized mnist5k "
        f"(4,000 train / 1,000 test digits) for {args.minutes:g} minutes in {out}",
        flush=True,
    )
    trainer = Trainer(config)
    result = trainer.run()
    if result.interrupted:
        raise KeyboardInterrupt
    model = load(result.model_path, map_location=resolve_device(args.device))
    started = time.perf_counter()
    labels = torch.arange(10).repeat_interleave(args.per_class)
    samples = model.sample(len(labels), labels, generator=torch.Generator().manual_seed(args.seed), precision="auto")
    grid = viz.class_grid(samples, labels, levels=2, scale=2)
    samples_path = viz.save(grid, out / "per_class_samples.png")
    images, test_labels = pick_images(data.load("mnist5k", "test", binarize="dynamic"), n=10)
    done = complete_images(
        model, images, test_labels, rows=14, samples=4, temperature=1.0, seed=args.seed, precision="auto"
    )
    completion_path = viz.save(
        viz.completion_grid(images, done, known_rows=14, levels=2, scale=2), out / "completions.png"
    )
    drawing = time.perf_counter() - started
    ev = result.final_eval
    device = config.device if config.device != "auto" else resolve_device("auto")
    return "\n".join(
        [
            "",
            f"trained   {result.step} steps ({result.epoch:.1f} epochs) in {result.train_minutes:.1f} minutes, "
            f"{result.images_per_second:.0f} images/s on {device} ({trainer.precision.name}"
            f"{', compiled' if trainer.compiled else ''})",
            f"test NLL  {ev.nll:.2f} +- {ev.nll_stderr:.2f} nats per image ({ev.bits_per_dim:.4f} bits/dim) "
            f"on the {ev.images} binarized mnist5k test digits",
            f"samples   {samples_path}  (one row per digit 0-9, {args.per_class} each)",
            f"completed {completion_path}  (10 test digits: original, top half given, 4 completions)",
            f"model     {result.model_path}  (pixelcnn.load; pixelcnn eval / sample / complete {out})",
            f"          drawing took {drawing:.1f} s; metrics in {out / 'metrics.jsonl'}",
        ]
    )
