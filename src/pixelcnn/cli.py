"""The ``pixelcnn`` command: train, eval, sample, complete, demo, models (and, from their own modules,
``viz`` in ``cli_viz.py`` and the auto-encoder commands in ``cli_ae.py``).

Every command has ``--help`` with examples. Errors (an unknown data set, a
missing run, a bad flag) are one line on stderr and a non-zero exit status:
2 for a bad command line, 1 for anything else, 130 when aborted by Ctrl-C.

A RUN argument is a run folder written by ``pixelcnn train`` (it holds
``config.json``, ``model/``, ``checkpoint.safetensors``) or a model folder
written by ``pixelcnn.save`` (then give ``--data``).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import re
import sys
from pathlib import Path

PROG = "pixelcnn"

# Model config fields that training does not take from flags: the data set gives
# image_shape and levels, --class-conditional gives num_classes, and vector
# conditions (cond_dim) need data that carries vectors.
MODEL_FIELDS_FROM_DATA = ("image_shape", "levels", "num_classes", "cond_dim")

# The demo's class-conditional Gated PixelCNN and how it trains; benchmarks/train_curves.py measures both.
DEMO_MODEL = dict(n_layers=4, hidden=32, kernel_size=5)
DEMO_SCHEDULE = dict(batch_size=16, lr=4e-3, warmup_steps=50, lr_decay="cosine", ema_decay=0.998, grad_clip=1.0)


class CommandError(Exception):
    """A problem to report in one line (no traceback)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line: the problem and where to find help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------------------- flags
def field_comments(cls) -> dict[str, str]:
    """The ``# comment`` after each field of a dataclass and its bases, as help text."""
    comments = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for match in re.finditer(r"^\s+(\w+)\s*:[^=\n]+=[^#\n]*#\s*(.+)$", source, re.M):
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _parse_none(convert):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else convert(text)
    parse.__name__ = convert.__name__
    return parse


def _add_field_flags(group, fields, comments: dict[str, str], *, skip=(), choices=None) -> list[str]:
    """One flag per dataclass field (``batch_size`` -> ``--batch-size``); default SUPPRESS, so that
    only the flags given appear in the parsed namespace. Returns the field names."""
    names = []
    for f in fields:
        if f.name in skip:
            continue
        kind = str(f.type)
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{comments.get(f.name, '')} (default: {default!r})".replace("%", "%%")
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        else:
            convert = {"int": int, "float": float}.get(kind.split(" | ")[0].strip(), str)
            if "None" in kind:
                convert = _parse_none(convert)
            options = (choices or {}).get(f.name)
            group.add_argument(flag, type=convert, default=argparse.SUPPRESS, choices=options,
                               metavar="{" + ",".join(map(str, options)) + "}" if options else f.name.upper(),
                               help=help_text + ("; 'none' for None" if "None" in kind else ""))
        names.append(f.name)
    return names


def _model_fields():
    """The union of every model's config fields that training takes from flags."""
    from .models.registry import MODELS

    fields, comments = {}, {}
    for model_class in MODELS.values():
        for f in dataclasses.fields(model_class.config_class):
            if f.name not in MODEL_FIELDS_FROM_DATA:
                fields.setdefault(f.name, f)
        comments.update(field_comments(model_class.config_class))
    return list(fields.values()), comments


# ------------------------------------------------------------------------------------- parser
EXAMPLES = {
    "train": """examples:
  pixelcnn train --model gated_pixelcnn --data mnist5k --binarize dynamic --class-conditional \\
                 --n-layers 5 --hidden 32 --max-minutes 10 --lr-decay cosine --out runs/mnist
  pixelcnn train --preset gated-cifar10 --data photo-patches --epochs 20 --out runs/photos
  pixelcnn train --resume runs/mnist --max-minutes 30        # continue, with a longer budget
  torchrun --nproc_per_node 4 -m pixelcnn train ...          # several GPUs (DDP)

The run folder gets config.json, checkpoint.safetensors, model/ (pixelcnn.load),
metrics.jsonl, samples/*.png and, if tensorboard is installed, tensorboard/.
Ctrl-C or SIGTERM saves a checkpoint and exits; --resume continues exactly.""",
    "eval": """examples:
  pixelcnn eval runs/mnist                      # test NLL (nats/image and bits/dim) +- standard error
  pixelcnn eval runs/mnist --split train --json
  pixelcnn eval runs/mnist/model --data mnist5k --binarize dynamic""",
    "sample": """examples:
  pixelcnn sample runs/mnist --n 64 --out samples.png
  pixelcnn sample runs/mnist --per-class --n 8 --out per_class.png     # 8 images of each class
  pixelcnn sample runs/mnist --label 3 --n 16 --temperature 0.9 --out threes.png""",
    "complete": """examples:
  pixelcnn complete runs/mnist --rows 14 --n 8 --out completions.png
  pixelcnn complete runs/mnist --rows 10 --n 4 --samples 6 --split train --out more.png
Each row: the original test image, what the model was given (hidden rows tinted),
then --samples completions of the hidden rows.""",
    "demo": """examples:
  pixelcnn demo                     # about 5 minutes of training on 2 CPU cores, then numbers and pictures
  pixelcnn demo --minutes 10 --out runs/demo10
Trains a class-conditional Gated PixelCNN on binarized mnist5k (4,000 bundled
MNIST digits), evaluates the test NLL on the 1,000 test digits, and writes a
per-class sample grid and a completion grid.""",
}


def _command(sub, name: str, help_text: str):
    return sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES.get(name),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_run_args(parser, *, data: bool = True) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder (pixelcnn train --out) or model folder (pixelcnn.save)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    if data:
        parser.add_argument("--data", help="data set (default: the run's); needed for a bare model folder")
        parser.add_argument("--binarize", choices=["dynamic", "threshold"], help="binarization (default: the run's)")
        parser.add_argument("--split", choices=["test", "train"], default="test", help="split to use (default: test)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, list_models, presets
    from .train.config import BINARIZE, LR_DECAYS, OPTIMIZERS, TrainConfig

    parser = OneLineParser(
        prog=PROG,
        description="Exact-likelihood autoregressive image models: PixelCNN, Gated / Conditional PixelCNN, "
                    "PixelRNN (Row LSTM, Diagonal BiLSTM, multi-scale), PixelCNN auto-encoder.",
        epilog="models: " + ", ".join(list_models()) + "\npresets: " + ", ".join(sorted(presets))
        + "\n\nstart with: pixelcnn demo     (see pixelcnn COMMAND --help)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pixelcnn {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")

    info = sub.add_parser("models", help="list the models and presets with their parameter counts")
    info.add_argument("--count", action="store_true", help="build each preset and count its parameters")

    # -- train: every TrainConfig field and every model option is a flag
    train = _command(sub, "train", "train a model on a data set (resumable)")
    which = train.add_mutually_exclusive_group()
    which.add_argument("--model", metavar="NAME", default=argparse.SUPPRESS,
                       help=f"model name: {', '.join(list_models())} (default: gated_pixelcnn)")
    which.add_argument("--preset", metavar="NAME", default=argparse.SUPPRESS, dest="model",
                       help=f"a named configuration: {', '.join(sorted(presets))}")
    which.add_argument("--resume", metavar="RUN", default=argparse.SUPPRESS,
                       help="continue the run in this folder where it stopped (its config; budget flags may change)")
    train_comments = field_comments(TrainConfig)
    group = train.add_argument_group("training options (TrainConfig)")
    _add_field_flags(group, dataclasses.fields(TrainConfig), train_comments, skip=("model", "model_options"),
                     choices={"optimizer": OPTIMIZERS, "lr_decay": LR_DECAYS, "binarize": BINARIZE})
    model_fields, model_comments = _model_fields()
    group = train.add_argument_group("model options (the model's config; a preset's values are the defaults)")
    _add_field_flags(group, model_fields, model_comments)

    evaluate = _command(sub, "eval", "test NLL of a trained model, nats/image and bits/dim with standard errors")
    _add_run_args(evaluate)
    evaluate.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    evaluate.add_argument("--max-images", type=int, help="score only the first N images of the split")
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object")

    sample = _command(sub, "sample", "draw images from a trained model into a PNG grid")
    _add_run_args(sample, data=False)
    sample.add_argument("--n", type=int, default=16, help="images (with --per-class: of each class) (default: 16)")
    cond = sample.add_mutually_exclusive_group()
    cond.add_argument("--label", type=int, help="class of every image (class-conditional models)")
    cond.add_argument("--per-class", action="store_true", help="one row of --n images per class")
    sample.add_argument("--temperature", type=float, default=1.0, help="divides the logits (default: 1.0)")
    sample.add_argument("--seed", type=int, default=0, help="random seed of the draws (default: 0)")
    sample.add_argument("--method", default="auto", help="sampler: auto, fast or naive (default: auto)")
    sample.add_argument("--scale", type=int, help="pixels per image pixel in the PNG (default: about 56 px per image)")
    sample.add_argument("--out", required=True, help="PNG file to write")

    complete = _command(sub, "complete", "hide the bottom of test images and let the model fill it in")
    _add_run_args(complete)
    complete.add_argument("--rows", type=int, required=True, help="rows kept from the top of each image")
    complete.add_argument("--n", type=int, default=8, help="images to complete (default: 8)")
    complete.add_argument("--samples", type=int, default=4, help="completions of each image (default: 4)")
    complete.add_argument("--temperature", type=float, default=1.0, help="divides the logits (default: 1.0)")
    complete.add_argument("--seed", type=int, default=0, help="random seed of the draws (default: 0)")
    complete.add_argument("--method", default="auto", help="sampler: auto, fast or naive (default: auto)")
    complete.add_argument("--scale", type=int, help="pixels per image pixel in the PNG (default: about 56 px per image)")
    complete.add_argument("--out", required=True, help="PNG file to write")

    demo = _command(sub, "demo", "train a class-conditional Gated PixelCNN on bundled MNIST digits, "
                                 "evaluate it, draw samples and completions")
    demo.add_argument("--minutes", type=float, default=5.0, help="minutes of training (default: 5)")
    demo.add_argument("--out", default="runs/demo",
                      help="run folder (default: runs/demo; runs/demo-2, ... if it exists)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--per-class", type=int, default=8, help="samples of each digit in the grid (default: 8)")
    demo.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    # Commands that live in their own modules: the auto-encoder pictures and ``viz``.
    from .cli_ae import add_ae_parsers
    from .cli_viz import add_viz_parser

    add_ae_parsers(sub)
    add_viz_parser(sub)
    return parser


# ------------------------------------------------------------------------------------- runs
def _device(name: str):
    from .train.loop import resolve_device

    return resolve_device(name)


def open_run(path: str, device: str):
    """RUN (run folder or model folder) -> (model, TrainConfig or None)."""
    from .serialization import CONFIG_FILE, FORMAT, load
    from .train.config import TrainConfig
    from .train.loop import CONFIG_FILE as RUN_CONFIG, MODEL_DIR

    folder = Path(path)
    if not folder.is_dir():
        raise CommandError(f"no run or model folder at {folder}")
    if (folder / MODEL_DIR / CONFIG_FILE).is_file():
        return load(folder / MODEL_DIR, map_location=_device(device)), TrainConfig.load(folder / RUN_CONFIG)
    try:
        saved = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and saved.get("format") == FORMAT:
        return load(folder, map_location=_device(device)), None
    if isinstance(saved, dict) and "data" in saved:
        raise CommandError(f"{folder} is a run folder without a saved model yet ({folder / MODEL_DIR} is missing): "
                           f"let the run reach a checkpoint, or resume it with pixelcnn train --resume {folder}")
    raise CommandError(f"{folder} is neither a run folder (pixelcnn train --out) nor a model folder (pixelcnn.save)")


def _dataset(args, run_config, split: str):
    from . import data

    name = args.data or (run_config.data if run_config else None)
    if name is None:
        raise CommandError(f"{args.run} is a bare model folder: say which data set with --data NAME")
    binarize = args.binarize or (run_config.binarize if run_config and not args.data else None)
    root = run_config.data_root if run_config else None
    return data.load(name, split, root=root, binarize=binarize)


def _scale(image_shape, requested: int | None) -> int:
    from .viz import default_scale

    if requested is not None:
        if requested < 1:
            raise CommandError(f"--scale must be a positive integer, got {requested}")
        return requested
    return default_scale(image_shape)


def _positive(name: str, value) -> None:
    if value < 1:
        raise CommandError(f"{name} must be a positive integer, got {value}")


def _check_temperature(value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise CommandError(f"--temperature must be a positive number, got {value}")


# ------------------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    from . import build, list_models, presets

    print("models: " + ", ".join(list_models()))
    for name, preset in sorted(presets.items()):
        count = ""
        if args.count:
            count = f"{sum(p.numel() for p in build(name).parameters()):>12,d}  "
        print(f"  {name:<24} {preset.model:<16} {count}{preset.description}")
    return 0


def train_config_from_args(args):
    """The TrainConfig the flags describe (for --resume: the run's, with the flags given applied)."""
    from .train.config import RESUMABLE_FIELDS, TrainConfig
    from .train.loop import CONFIG_FILE

    given = {k: v for k, v in vars(args).items() if k not in ("command", "resume")}
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    train_values = {k: v for k, v in given.items() if k in train_names}
    model_values = {k: v for k, v in given.items() if k not in train_names}
    if getattr(args, "resume", None):
        run = Path(args.resume)
        if not (run / CONFIG_FILE).is_file():
            raise CommandError(f"nothing to resume at {run}: no {CONFIG_FILE} (not a run folder of pixelcnn train)")
        saved = TrainConfig.load(run / CONFIG_FILE)
        fixed = sorted([k for k, v in train_values.items() if k not in RESUMABLE_FIELDS and v != getattr(saved, k)]
                       + [k for k, v in model_values.items() if saved.model_options.get(k, object()) != v])
        if fixed:
            raise CommandError(f"--resume continues a run as it was configured; these cannot change: "
                               f"{', '.join('--' + k.replace('_', '-') for k in fixed)} "
                               f"(may change: {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_FIELDS)})")
        return dataclasses.replace(saved, **{**train_values, "out": str(run)}), True
    return TrainConfig(**train_values, model_options=model_values), False


def cmd_train(args) -> int:
    from .train.loop import Trainer

    config, resume = train_config_from_args(args)
    if not config.has_budget:
        raise CommandError("say when to stop: --epochs N, --max-steps N or --max-minutes M")
    result = Trainer(config, resume=resume).run()
    if result.final_eval is not None:
        print(f"test: {result.final_eval}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate

    _positive("--batch-size", args.batch_size)
    if args.max_images is not None:
        _positive("--max-images", args.max_images)
    model, run_config = open_run(args.run, args.device)
    dataset = _dataset(args, run_config, args.split)
    result = evaluate(model, dataset, batch_size=args.batch_size, max_images=args.max_images,
                      progress=not args.json and sys.stderr.isatty())
    print(json.dumps(result.to_dict()) if args.json else str(result))
    return 0


def _labels_for(model, *, n: int, label: int | None, per_class: bool):
    """Labels of the images to draw (None for an unconditional model)."""
    import torch

    classes = model.config.num_classes
    if classes is None:
        if label is not None or per_class:
            raise CommandError("this model is unconditional: --label and --per-class need a class-conditional model")
        return None
    if label is not None:
        if not 0 <= label < classes:
            raise CommandError(f"--label must be a class in 0..{classes - 1}, got {label}")
        return torch.full((n,), label, dtype=torch.long)
    if per_class:
        return torch.arange(classes).repeat_interleave(n)
    return torch.arange(classes).repeat_interleave(max(1, n // classes))    # class-conditional: spread --n


def cmd_sample(args) -> int:
    import torch

    from . import viz

    _positive("--n", args.n)
    _check_temperature(args.temperature)
    model, run_config = open_run(args.run, args.device)
    labels = _labels_for(model, n=args.n, label=args.label, per_class=args.per_class)
    count = args.n if labels is None else len(labels)
    images = model.sample(count, labels, temperature=args.temperature, method=args.method,
                          generator=torch.Generator().manual_seed(args.seed), progress=sys.stderr.isatty())
    scale = _scale(model.image_shape, args.scale)
    if labels is not None and args.label is None:
        grid = viz.class_grid(images, labels, levels=model.levels, scale=scale)
    else:
        grid = viz.image_grid(images, levels=model.levels, scale=scale)
    per_class = "" if labels is None or args.label is not None else \
        f": {count // model.config.num_classes} of each of {model.config.num_classes} classes"
    print(f"wrote {viz.save(grid, args.out)} ({count} images{per_class})")
    return 0


def completion_inputs(dataset, n: int):
    """``n`` images spread evenly over ``dataset`` (its classes are often stored in order) and their labels."""
    import torch

    if n > len(dataset):
        raise CommandError(f"--n {n} is more than the {len(dataset)} images of {dataset.name} {dataset.split}")
    index = torch.linspace(0, len(dataset) - 1, n).round().long()
    images = dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    return images, dataset.labels[index]


def complete_images(model, images, labels, *, rows: int, samples: int, temperature: float, seed: int,
                    method: str = "auto"):
    """``samples`` completions of each image below its top ``rows`` rows: [B, samples, C, H, W]."""
    import torch

    height = model.image_shape[1]
    if not 0 <= rows <= height:
        raise CommandError(f"--rows must be in 0..{height} (the images have {height} rows), got {rows}")
    repeated = images.repeat_interleave(samples, dim=0)                              # [B*S, C, H, W]
    cond = labels.repeat_interleave(samples) if model.config.num_classes is not None else None
    done = model.complete(repeated, rows, cond, temperature=temperature, method=method,
                          generator=torch.Generator().manual_seed(seed))
    return done.view(len(images), samples, *done.shape[1:]).cpu()                   # [B, S, C, H, W]


def cmd_complete(args) -> int:
    from . import viz

    _positive("--n", args.n)
    _positive("--samples", args.samples)
    _check_temperature(args.temperature)
    model, run_config = open_run(args.run, args.device)
    dataset = _dataset(args, run_config, args.split)
    from .evaluate import check_compatible

    check_compatible(model, dataset)
    images, labels = completion_inputs(dataset, args.n)
    done = complete_images(model, images, labels, rows=args.rows, samples=args.samples,
                           temperature=args.temperature, seed=args.seed, method=args.method)
    grid = viz.completion_grid(images, done, known_rows=args.rows, levels=model.levels,
                               scale=_scale(model.image_shape, args.scale))
    print(f"wrote {viz.save(grid, args.out)} ({args.n} images x {args.samples} completions, "
          f"top {args.rows} rows kept)")
    return 0


def _fresh_folder(path: str) -> Path:
    folder = Path(path)
    number = 2
    while folder.exists() and any(folder.iterdir()):
        folder = Path(f"{path}-{number}")
        number += 1
    return folder


def cmd_demo(args) -> int:
    import time

    import torch

    from . import data, load, viz
    from .train.config import TrainConfig
    from .train.loop import Trainer

    if not args.minutes > 0:
        raise CommandError(f"--minutes must be positive, got {args.minutes}")
    _positive("--per-class", args.per_class)
    out = _fresh_folder(args.out)
    config = TrainConfig(
        model="gated_pixelcnn", model_options=dict(DEMO_MODEL), class_conditional=True,
        data="mnist5k", binarize="dynamic", out=str(out), max_minutes=args.minutes, eval_every=None,
        sample_images=0, checkpoint_every=500, device=args.device, seed=args.seed, progress=args.progress,
        **DEMO_SCHEDULE,
    )
    print(f"pixelcnn demo: training a class-conditional Gated PixelCNN on binarized mnist5k "
          f"(4,000 train / 1,000 test digits) for {args.minutes:g} minutes in {out}")
    result = Trainer(config).run()
    if result.interrupted:
        return 130
    model = load(result.model_path, map_location=_device(args.device))
    started = time.perf_counter()
    labels = torch.arange(10).repeat_interleave(args.per_class)
    samples = model.sample(len(labels), labels, generator=torch.Generator().manual_seed(args.seed))
    per_class_path = viz.save(viz.class_grid(samples, labels, levels=2, scale=2), out / "per_class_samples.png")
    test = data.load("mnist5k", "test", binarize="dynamic")
    images, test_labels = completion_inputs(test, 10)
    done = complete_images(model, images, test_labels, rows=14, samples=4, temperature=1.0, seed=args.seed)
    completion_path = viz.save(viz.completion_grid(images, done, known_rows=14, levels=2, scale=2),
                               out / "completions.png")
    drawing = time.perf_counter() - started
    ev = result.final_eval
    print()
    print(f"trained   {result.step} steps ({result.epoch:.1f} epochs) in {result.train_minutes:.1f} minutes, "
          f"{result.images_per_second:.0f} images/s on {config.device if config.device != 'auto' else _device('auto')}")
    print(f"test NLL  {ev.nll:.2f} +- {ev.nll_stderr:.2f} nats per image ({ev.bits_per_dim:.4f} bits/dim) "
          f"on the {ev.images} binarized mnist5k test digits")
    print(f"samples   {per_class_path}  (one row per digit 0-9, {args.per_class} each)")
    print(f"completed {completion_path}  (10 test digits: original, top half given, 4 completions)")
    print(f"model     {result.model_path}  (pixelcnn.load; pixelcnn eval / sample / complete {out})")
    print(f"          drawing took {drawing:.1f} s; metrics in {out / 'metrics.jsonl'}")
    return 0


COMMANDS = {"models": cmd_models, "train": cmd_train, "eval": cmd_eval, "sample": cmd_sample,
            "complete": cmd_complete, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from . import cli_ae, cli_viz

    if args.command in cli_ae.COMMAND_NAMES:
        return cli_ae.run_ae(args)
    if args.command == "viz":
        return cli_viz.run_viz(args)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: aborted (the last checkpoint saved, if any, is intact)", file=sys.stderr)
        return 130
    except (CommandError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, FloatingPointError,
            ModuleNotFoundError) as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # e.g. a download that failed, a disk that is full
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
