"""Auto-encoder commands: ``interpolate``, ``reconstruct``, ``identity``, ``identity-sample``.

    pixelcnn interpolate RUN --from 0 --to 700 --steps 8 --out interp.png      # the paper's Figure 5
    pixelcnn reconstruct RUN --n 8 --mse-run RUN2 --out recon.png              # the paper's Figure 6
    pixelcnn identity --classes 0-6 --minutes 5 --out runs/identity           # triplet net, then the PixelCNN
    pixelcnn identity-sample runs/identity --classes 7-9 --out identity.png   # new images of unseen classes

RUN is a run folder of ``pixelcnn train`` (it holds ``model/``), a model
folder written by ``pixelcnn.save`` (then give ``--data``), or a run folder
of ``pixelcnn identity``. Test images are chosen by index in the test split
(``--index``, ``--from``, ``--to``), by class (``--classes``) or spread evenly
over the split. Errors are one line on stderr and exit status 2.

Hooked into the ``pixelcnn`` command by ``cli.py``; ``python -m
pixelcnn.cli_ae ...`` runs it alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_ERROR = 2
COMMAND_NAMES = ("interpolate", "reconstruct", "identity", "identity-sample")

EXAMPLES = {
    "interpolate": """examples:
  pixelcnn interpolate runs/ae --from 0 --to 700 --steps 8 --out interp.png
  pixelcnn interpolate runs/identity --from 700 --to 900 --rows 3 --out interp.png
Each row: test image A, --steps decodings of the codes on the line from A's code
to B's (ends included), test image B. A row's samples all use the same seed, so
the row varies only through the code; --rows N draws N rows with seeds
--seed, --seed+1, ... (an MSE auto-encoder decodes its mean: one row).""",
    "reconstruct": """examples:
  pixelcnn reconstruct runs/ae --n 8 --out recon.png
  pixelcnn reconstruct runs/ae --mse-run runs/mse --n 8 --samples 4 --out recon.png
  pixelcnn reconstruct runs/identity --classes 7-9 --per-class 2 --out sevens_to_nines.png
Each row: the test image | its MSE auto-encoder reconstruction (with --mse-run, or
when RUN is an mse_ae) | --samples PixelCNN auto-encoder decodings of its code.""",
    "identity": """examples:
  pixelcnn identity --classes 0-6 --minutes 5 --out runs/identity
  pixelcnn identity --data mnist5k --classes 0-4 --triplet-steps 1000 --steps 2000 --out runs/identity04
Trains an embedding network with a triplet loss on the training images of
--classes only, then a conditional PixelCNN on (image, embedding) pairs of
those classes (a pixelcnn_ae whose encoder is the frozen embedding network);
writes RUN/model, RUN/identity.json and RUN/identity.png: images of the
classes neither network saw, each followed by new images drawn from its
embedding.""",
    "identity-sample": """examples:
  pixelcnn identity-sample runs/identity --out identity.png          # the unseen classes
  pixelcnn identity-sample runs/identity --classes 0-9 --per-class 1 --samples 6 --out all.png""",
}


# identity flag -> (IdentityConfig field, type, help); the defaults are the config's
IDENTITY_FLAGS = {
    "--embedding-dim": ("embedding_dim", int, "size of the embedding"),
    "--triplet-steps": ("triplet_steps", int, "steps of the triplet stage"),
    "--margin": ("margin", float, "triplet margin"),
    "--minutes": ("decoder_minutes", float, "minutes of PixelCNN training"),
    "--steps": ("decoder_steps", int, "steps of PixelCNN training; the first of --steps and --minutes stops it"),
    "--n-layers": ("n_layers", int, "the PixelCNN's gated layers"),
    "--hidden": ("hidden", int, "the PixelCNN's maps per layer"),
    "--batch-size": ("batch_size", int, "images per PixelCNN step"),
}


class AECommandError(ValueError):
    """A problem with the command's arguments or inputs: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------- parser
def _add_common(parser, *, data: bool = True, seed: bool = True) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    if data:
        parser.add_argument("--data", help="data set of the test images (default: the run's); needed for a "
                                           "bare model folder")
        parser.add_argument("--binarize", choices=["dynamic", "threshold"], help="binarization (default: the run's)")
        parser.add_argument("--split", choices=["test", "train"], default="test", help="split (default: test)")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="random seed of the draws (default: 0)")
        parser.add_argument("--temperature", type=float, default=1.0, help="divides the logits (default: 1.0)")
        parser.add_argument("--method", default="auto", help="sampler: auto, fast or naive (default: auto)")
    parser.add_argument("--scale", type=int, help="pixels per image pixel in the PNG (default: about 56 px per image)")


def _add_choice_of_images(parser, *, per_class_default: int) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, nargs="+", metavar="I", help="test images by index in the split")
    which.add_argument("--classes", metavar="LIST", help="test images of these classes, e.g. 7-9 or 1,7")
    parser.add_argument("--per-class", type=int, default=per_class_default,
                        help=f"with --classes: images of each class (default: {per_class_default})")


def add_ae_parsers(subparsers) -> None:
    """Add the auto-encoder commands to an ``add_subparsers()`` object (``pixelcnn``'s)."""
    from .embedding import IdentityConfig

    def command(name: str, help_text: str):
        return subparsers.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)

    interpolate = command("interpolate", "decode codes on the line between two test images' codes (Fig. 5)")
    interpolate.add_argument("run", metavar="RUN", help="pixelcnn_ae or mse_ae: run folder or model folder")
    interpolate.add_argument("--from", dest="from_index", type=int, required=True, metavar="A",
                             help="index of the first test image")
    interpolate.add_argument("--to", dest="to_index", type=int, required=True, metavar="B",
                             help="index of the last test image")
    interpolate.add_argument("--steps", type=int, default=8, help="codes on the line, ends included (default: 8)")
    interpolate.add_argument("--rows", type=int, default=1, help="rows, one seed each (default: 1)")
    interpolate.add_argument("--out", required=True, help="PNG file to write")
    _add_common(interpolate)

    reconstruct = command("reconstruct", "test images | MSE auto-encoder reconstruction | PixelCNN "
                                         "auto-encoder samples (Fig. 6)")
    reconstruct.add_argument("run", metavar="RUN", help="pixelcnn_ae (or mse_ae): run folder or model folder")
    reconstruct.add_argument("--mse-run", metavar="RUN2", help="an mse_ae run or model folder: add its reconstructions")
    reconstruct.add_argument("--n", type=int, default=8, help="test images, spread over the split (default: 8)")
    reconstruct.add_argument("--samples", type=int, default=4, help="decodings of each image (default: 4)")
    _add_choice_of_images(reconstruct, per_class_default=2)
    reconstruct.add_argument("--out", required=True, help="PNG file to write")
    _add_common(reconstruct)

    defaults = IdentityConfig()
    identity = command("identity", "train a triplet embedding network and a PixelCNN on it, on some classes; "
                                   "draw new images of the others")
    identity.add_argument("--data", default=defaults.data, help=f"labelled data set (default: {defaults.data})")
    identity.add_argument("--binarize", choices=["dynamic", "threshold", "none"], default=defaults.binarize,
                          help=f"binarization (default: {defaults.binarize})")
    identity.add_argument("--classes", default="0-6", help="the classes both networks train on (default: 0-6)")
    for flag, (field, kind, text) in IDENTITY_FLAGS.items():
        default = getattr(defaults, field)
        identity.add_argument(flag, dest=field, type=kind, default=default, help=f"{text} (default: {default})")
    identity.add_argument("--per-class", type=int, default=2, help="unseen images of each class drawn (default: 2)")
    identity.add_argument("--samples", type=int, default=8, help="new images of each (default: 8)")
    identity.add_argument("--out", required=True, help="run folder to write (must not hold an identity run)")
    _add_common(identity, data=False)

    identity_sample = command("identity-sample", "new images of the identity of test images, from their "
                                                 "embedding (default: the classes not trained on)")
    identity_sample.add_argument("run", metavar="RUN", help="a run folder of pixelcnn identity")
    identity_sample.add_argument("--samples", type=int, default=8, help="new images of each (default: 8)")
    _add_choice_of_images(identity_sample, per_class_default=2)
    identity_sample.add_argument("--out", required=True, help="PNG file to write")
    _add_common(identity_sample, data=False)


# ------------------------------------------------------------------------------------- runs and images
# The checks and loaders shared with the other commands come from cli.py (``cli._positive`` and so on);
# it is imported inside functions because cli.py imports this module to hook the commands in.
def open_model(run: str, device: str):
    """RUN -> (model, (data set, binarize, data root) it was trained on, or None for a bare model folder)."""
    from . import cli
    from .embedding import IDENTITY_FILE, MODEL_DIR, read_identity
    from .serialization import load

    folder = Path(run)
    if (folder / IDENTITY_FILE).is_file():
        config = read_identity(folder)["config"]
        return load(folder / MODEL_DIR, map_location=cli._device(device)), (config["data"], config["binarize"], None)
    model, train_config = cli.open_run(run, device)
    if train_config is None:
        return model, None
    return model, (train_config.data, train_config.binarize, train_config.data_root)


def open_autoencoder(run: str, device: str, *, command: str):
    """``open_model`` for a pixelcnn_ae or an mse_ae; anything else is an error."""
    model, trained_on = open_model(run, device)
    if model.name not in ("pixelcnn_ae", "mse_ae"):
        raise AECommandError(f"{command} needs an auto-encoder (pixelcnn_ae or mse_ae); {run} is a {model.name}")
    return model, trained_on


def _test_set(args, model, trained_on):
    from . import data
    from .evaluate import check_compatible

    if getattr(args, "data", None):
        name, binarize, root = args.data, args.binarize, None
    elif trained_on is not None:
        name, binarize, root = trained_on
        binarize = getattr(args, "binarize", None) or binarize
    else:
        raise AECommandError(f"{args.run} is a bare model folder: say which data set with --data NAME")
    dataset = data.load(name, getattr(args, "split", "test"), root=root, binarize=binarize)
    check_compatible(model, dataset)
    return dataset


def pick_images(dataset, *, n: int | None = None, indices=None, classes: str | None = None, per_class: int = 1):
    """Test images by index, by class (``per_class`` of each, spread within it) or ``n`` spread over the split.

    Returns (uint8 images [B, C, H, W] as the model reads them, labels [B]).
    """
    import torch

    from . import cli
    from .embedding import parse_classes

    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(dataset)]
        if bad:
            raise AECommandError(f"image index {bad[0]} is out of range: {dataset.name} {dataset.split} has "
                                 f"{len(dataset)} images (0..{len(dataset) - 1})")
        index = torch.tensor(indices)
    elif classes is not None:
        cli._positive("--per-class", per_class)
        chosen = []
        for c in parse_classes(classes):
            members = torch.nonzero(dataset.labels == c).flatten()
            if len(members) == 0:
                raise AECommandError(f"{dataset.name} {dataset.split} has no image of class {c}")
            chosen.append(members[torch.linspace(0, len(members) - 1, min(per_class, len(members))).round().long()])
        index = torch.cat(chosen)
    else:
        cli._positive("--n", n)
        if n > len(dataset):
            raise AECommandError(f"--n {n} is more than the {len(dataset)} images of {dataset.name} {dataset.split}")
        index = torch.linspace(0, len(dataset) - 1, n).round().long()
    images = dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    return images, dataset.labels[index]


def _check_draws(args, *counts: str) -> None:
    """--samples / --rows / ... positive and --temperature valid."""
    from . import cli

    for name in counts:
        cli._positive("--" + name.replace("_", "-"), getattr(args, name))
    cli._check_temperature(args.temperature)


def to_display(images, levels: int):
    """Integer images (0..levels-1) or floats in [0, 1] (an MSE decoding) -> int64 0..255, for one 256-level grid."""
    if images.dtype.is_floating_point:
        return (images.clamp(0, 1) * 255).round().long().cpu()
    return (images.double() * (255 / (levels - 1))).round().long().cpu()


def _save_table(table, path: str, scale: int | None) -> Path:
    """Cells of 0..255 images [rows, columns, C, H, W] -> one PNG grid, a table row per grid row."""
    from . import cli, viz

    grid = viz.image_grid(table.flatten(0, 1), levels=256, columns=table.shape[1],
                          scale=cli._scale(table.shape[3], scale))
    return viz.save(grid, path)


# ------------------------------------------------------------------------------------- commands
def cmd_interpolate(args) -> str:
    import torch

    _check_draws(args, "rows")
    if args.steps < 2:
        raise AECommandError(f"--steps must be >= 2 (both ends are included), got {args.steps}")
    model, trained_on = open_autoencoder(args.run, args.device, command="interpolate")
    images, _ = pick_images(_test_set(args, model, trained_on), indices=[args.from_index, args.to_index])
    if model.name == "mse_ae":                                    # deterministic: its decoded means, one row
        lines = [model.interpolate(images[:1], images[1:], args.steps)]
    else:
        lines = [model.interpolate(images[:1], images[1:], args.steps, seed=args.seed + row,
                                   temperature=args.temperature, method=args.method)
                 for row in range(args.rows)]                                  # each [steps, C, H, W]
    ends = to_display(images, model.levels)                                          # [2, C, H, W]
    table = torch.stack([torch.cat([ends[:1], to_display(line, model.levels), ends[1:]]) for line in lines])
    path = _save_table(table, args.out, args.scale)                                  # [rows, steps + 2, ...]
    return (f"wrote {path}: test image {args.from_index} | {args.steps} decodings of the codes from its code to "
            f"{args.to_index}'s | test image {args.to_index}" + (f"; {len(lines)} rows" if len(lines) > 1 else ""))


def cmd_reconstruct(args) -> str:
    import torch

    _check_draws(args, "samples")
    model, trained_on = open_autoencoder(args.run, args.device, command="reconstruct")
    mse = model if model.name == "mse_ae" else None
    if args.mse_run is not None:
        if mse is not None:
            raise AECommandError("RUN is already the mse_ae: give the pixelcnn_ae as RUN and the mse_ae as --mse-run")
        mse, _ = open_model(args.mse_run, args.device)
        if mse.name != "mse_ae":
            raise AECommandError(f"--mse-run must be an mse_ae; {args.mse_run} is a {mse.name}")
        if (mse.image_shape, mse.levels) != (model.image_shape, model.levels):
            raise AECommandError(f"--mse-run models images {mse.image_shape} with {mse.levels} levels; RUN models "
                                 f"{model.image_shape} with {model.levels}")
    dataset = _test_set(args, model, trained_on)
    images, _ = pick_images(dataset, n=args.n, indices=args.index, classes=args.classes, per_class=args.per_class)
    columns = [to_display(images, model.levels)[:, None]]                            # [B, 1, C, H, W]
    parts = ["test image"]
    if mse is not None:
        columns.append(to_display(mse.reconstruct(images), model.levels)[:, None])
        parts.append("MSE auto-encoder reconstruction")
    if model.name == "pixelcnn_ae":
        drawn = model.reconstruct(images, args.samples, temperature=args.temperature, method=args.method,
                                  generator=torch.Generator().manual_seed(args.seed))  # [B, samples, C, H, W]
        columns.append(to_display(drawn, model.levels))
        parts.append(f"{args.samples} PixelCNN auto-encoder samples")
    path = _save_table(torch.cat(columns, dim=1), args.out, args.scale)
    return f"wrote {path}: {len(images)} rows of " + " | ".join(parts)


def _identity_picture(model, test_set, images, labels, args) -> tuple:
    """Rows of [test image | ``args.samples`` new images from its embedding] -> (PNG path, identity agreement)."""
    import torch

    from .embedding import class_centroids, embed, identity_agreement

    drawn = model.reconstruct(images, args.samples, temperature=args.temperature, method=args.method,
                              generator=torch.Generator().manual_seed(args.seed))      # [B, samples, C, H, W]
    table = torch.cat([to_display(images, model.levels)[:, None], to_display(drawn, model.levels)], dim=1)
    path = _save_table(table, args.out, args.scale)
    all_classes = list(range(test_set.num_classes))
    centroids = class_centroids(embed(model, test_set), test_set.labels, all_classes)
    agreement = identity_agreement(model, drawn, labels, centroids, all_classes)
    return path, (f"new images whose nearest class centroid (in the embedding) is their source's class: "
                  f"{agreement['agreement']:.3f}; assigned classes: {agreement['assigned']}")


def cmd_identity(args) -> str:
    from . import cli, data
    from .embedding import IdentityConfig, parse_classes, train_identity
    from .serialization import load

    _check_draws(args, "samples", "per_class")
    config = IdentityConfig(data=args.data, binarize=None if args.binarize == "none" else args.binarize,
                            train_classes=parse_classes(args.classes), seed=args.seed,
                            **{field: getattr(args, field) for field, _, _ in IDENTITY_FLAGS.values()})
    result = train_identity(config, args.out, device=cli._device(args.device), log=print)
    seen = result.measurements["test_seen"]
    lines = [f"embedding 1-NN accuracy on the test images of the training classes: "
             f"{seen['nearest_neighbour_accuracy']:.3f}; test NLL given the embedding: "
             f"{seen['nll_given_embedding']:.2f} nats"]
    unseen = result.measurements["unseen_classes"]
    if not unseen:
        return "\n".join(lines + [f"trained on every class of {config.data}: no unseen class to draw"])
    never = result.measurements["test_unseen"]
    lines.append(f"the same for the unseen classes {unseen}: {never['nearest_neighbour_accuracy']:.3f}; "
                 f"{never['nll_given_embedding']:.2f} nats")
    model = load(result.model_path, map_location=cli._device(args.device))
    test_set = data.load(config.data, "test", binarize=config.binarize)
    images, labels = pick_images(test_set, classes=",".join(map(str, unseen)), per_class=args.per_class)
    args.out = str(Path(args.out) / "identity.png")
    path, agreement = _identity_picture(model, test_set, images, labels, args)
    return "\n".join(lines + [agreement, f"wrote {path}: each row an unseen test image, then {args.samples} new "
                                         f"images from its embedding"])


def cmd_identity_sample(args) -> str:
    from . import data
    from .embedding import read_identity

    _check_draws(args, "samples")
    config = read_identity(args.run)["config"]
    model, _ = open_model(args.run, args.device)
    test_set = data.load(config["data"], "test", binarize=config["binarize"])
    classes = args.classes
    if classes is None and args.index is None:
        classes = ",".join(str(c) for c in range(test_set.num_classes) if c not in config["train_classes"])
        if not classes:
            raise AECommandError("the run trained on every class: give --classes or --index")
    images, labels = pick_images(test_set, indices=args.index, classes=classes, per_class=args.per_class)
    path, agreement = _identity_picture(model, test_set, images, labels, args)
    return "\n".join([agreement, f"wrote {path}: each row a test image (classes {sorted(set(labels.tolist()))}), "
                                 f"then {args.samples} new images from its embedding"])


COMMANDS = {"interpolate": cmd_interpolate, "reconstruct": cmd_reconstruct, "identity": cmd_identity,
            "identity-sample": cmd_identity_sample}


def run_ae(args) -> int:
    """Run an auto-encoder command parsed by ``add_ae_parsers``; returns the exit status."""
    from .cli import CommandError

    try:
        print(COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print(f"pixelcnn {args.command}: aborted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, FloatingPointError,
            ModuleNotFoundError, json.JSONDecodeError) as err:
        message = " ".join(str(err).split())
        print(f"pixelcnn {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m pixelcnn.cli_ae COMMAND ...``: the same as ``pixelcnn COMMAND ...``."""
    from .cli import OneLineParser

    parser = OneLineParser(prog="pixelcnn", description="auto-encoder commands: " + ", ".join(COMMAND_NAMES))
    add_ae_parsers(parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND",
                                         required=True))
    return run_ae(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
