"""``pixelcnn viz``: pictures computed from a real model (see ``analysis.py`` and ``figures.py``).

    pixelcnn viz receptive-field --compare                  # PixelCNN's blind spot beside the fixes
    pixelcnn viz receptive-field --model pixelcnn --layers 6 --image-size 12 --pixel 8 6
    pixelcnn viz softmax RUN --test-index 0 --pixels 14,14 10,20
    pixelcnn viz nll-map RUN --test-index 0 3 | --image a.png b.png | --folder DIR --csv scores.csv
    pixelcnn viz animate RUN --n 16 --out sample.gif

RUN is a model saved by ``pixelcnn.save`` (a folder holding config.json and
model.safetensors) or a training run folder with such a folder inside it (its
``model/``); a run's own config.json says which data set ``--test-index``
reads. Errors are one line on stderr and exit status 2.

Hooked into the ``pixelcnn`` command by ``cli.py``; ``python -m
pixelcnn.cli_viz ...`` runs it alone.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

COMPARE_DEFAULT = ("pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm")
MODEL_FILES = ("config.json", "model.safetensors")
EXIT_ERROR = 2


class VizError(ValueError):
    """A problem with the command's arguments or inputs: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------ the parser
def _pixel(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a pixel is ROW,COL (two integers), got {text!r}") from None
    return row, col


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_run(parser, *, optional: bool = False) -> None:
    parser.add_argument("run", nargs="?" if optional else None, metavar="RUN",
                        help="a saved model folder (pixelcnn.save) or a training run folder")


def _add_image_source(parser, *, many: bool) -> None:
    nargs = "+" if many else None
    parser.add_argument("--image", nargs=nargs, metavar="PATH", help="image file(s) to analyse")
    parser.add_argument("--test-index", nargs=nargs, type=int, metavar="K",
                        help="test image(s) of the run's data set, by index (default: 0)")
    parser.add_argument("--label", type=int, help="class of --image for a class-conditional model")
    parser.add_argument("--resize", action="store_true",
                        help="scale and centre-crop image files to the model's size instead of refusing them")
    parser.add_argument("--data", help="data set for --test-index (default: the run's)")
    parser.add_argument("--binarize", choices=["dynamic", "threshold"],
                        help="binarize --data (default: as the run did)")
    parser.add_argument("--data-root", help="where --data is cached (default: the run's, or ~/.cache/pixelcnn)")


def add_viz_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``viz`` and its commands to the ``pixelcnn`` command's subparsers; returns the ``viz`` parser."""
    viz = subparsers.add_parser("viz", help="pictures of what a model does: receptive field, softmax, NLL map, "
                                            "sampling animation",
                                description="Pictures computed from a real model (PNG, or GIF for animate).")
    commands = viz.add_subparsers(dest="viz_command", metavar="COMMAND")

    field = commands.add_parser(
        "receptive-field", help="which input pixels one output reads: seen, blind spot, future",
        description="The receptive field of one output pixel, by gradient through a structural copy of the "
                    "model (small positive weights), so it shows every path the masks leave open. Without RUN the "
                    "model is freshly built: the map depends on the architecture only.")
    _add_run(field, optional=True)
    field.add_argument("--model", help="registry name of a freshly built model (pixelcnn.list_models())")
    field.add_argument("--compare", nargs="*", metavar="NAME",
                       help=f"fresh models side by side (default: {' '.join(COMPARE_DEFAULT)}); names this "
                            f"version lacks are skipped with a note")
    field.add_argument("--layers", type=_positive, help="n_layers of fresh models (default 4)")
    field.add_argument("--image-size", type=_positive, help="fresh models see S x S images (default 16)")
    field.add_argument("--hidden", type=_positive, help="hidden of fresh models (default 8; no effect on the map)")
    field.add_argument("--input-kernel-size", type=_positive,
                       help="first-layer kernel of fresh models (default 3, which shows the shapes clearly; "
                            "the papers use 7)")
    field.add_argument("--pixel", nargs=2, type=int, metavar=("ROW", "COL"),
                       help="the output pixel (default: 3/4 down, half way across)")
    field.add_argument("--channel", type=int, default=0, help="the output channel (default 0: R or grey)")
    field.add_argument("--cell", type=_positive, help="screen pixels per image pixel")
    field.add_argument("--out", default="receptive_field.png", help="PNG to write (default %(default)s)")

    softmax = commands.add_parser(
        "softmax", help="the predicted distribution of chosen pixel-channels, observed value marked",
        description="Bar plots of p(value | all before) for chosen pixels of one image.")
    _add_run(softmax)
    _add_image_source(softmax, many=False)
    softmax.add_argument("--pixels", nargs="+", type=_pixel, metavar="ROW,COL",
                         help="pixels to show (default: the --count the model is least sure of)")
    softmax.add_argument("--count", type=_positive, default=4, help="pixels chosen by default (%(default)s)")
    softmax.add_argument("--channels", nargs="+", type=int, metavar="C", help="channels to show (default: all)")
    softmax.add_argument("--out", default="softmax.png", help="PNG to write (default %(default)s)")

    nll = commands.add_parser(
        "nll-map", help="image beside a heat map of -log2 p per pixel; a CSV of scores for a folder",
        description="Per-pixel NLL in bits (summing to the image's exact NLL). With --folder: a CSV of every "
                    "image's score (for anomaly detection) and a figure of the --top highest.")
    _add_run(nll)
    _add_image_source(nll, many=True)
    nll.add_argument("--folder", help="score every image in this folder (and its subfolders)")
    nll.add_argument("--csv", default="nll_scores.csv", help="--folder: the CSV to write (default %(default)s)")
    nll.add_argument("--top", type=_positive, default=4, help="--folder: images in the figure (default %(default)s)")
    nll.add_argument("--batch-size", type=_positive, default=64, help="--folder: images per pass (%(default)s)")
    nll.add_argument("--out", default="nll_map.png", help="PNG to write (default %(default)s)")

    animate = commands.add_parser(
        "animate", help="a GIF of a grid of samples filling in, pixel by pixel",
        description="Sample --n images and write a frame every --every pixels (default: every row).")
    _add_run(animate)
    animate.add_argument("--n", type=_positive, default=16, help="images (default %(default)s)")
    animate.add_argument("--every", type=_positive, help="pixels per frame (default: one image row)")
    animate.add_argument("--label", type=int, help="class of every image (default: image i gets class i mod K)")
    animate.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    animate.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1)")
    animate.add_argument("--method", default="auto", choices=["auto", "fast", "naive"],
                         help="sampler (default auto: the fast cached one where the model has it)")
    animate.add_argument("--scale", type=_positive, help="screen pixels per image pixel")
    animate.add_argument("--frame-ms", type=_positive, default=60, help="milliseconds per frame (%(default)s)")
    animate.add_argument("--out", default="sample.gif", help="GIF to write (default %(default)s)")
    viz.set_defaults(viz_parser=viz)
    return viz


# ----------------------------------------------------------------------------- runs and inputs
def find_model_folder(run: str) -> tuple[Path, Path | None]:
    """RUN -> (the saved-model folder, the training run folder or None).

    RUN itself holds config.json + model.safetensors, or exactly one folder
    inside it does (a training run's ``model/`` is preferred).
    """
    path = Path(run).expanduser()
    if not path.exists():
        raise VizError(f"no run or saved model at {path}")
    if path.is_file():
        return path, None                                    # pixelcnn.load says what is wrong with it
    if all((path / name).is_file() for name in MODEL_FILES):
        parent = path.parent
        return path, parent if (parent / "checkpoint.safetensors").exists() or _train_config(parent) else None
    inside = sorted(d for d in path.iterdir() if d.is_dir() and all((d / name).is_file() for name in MODEL_FILES))
    if not inside:
        raise VizError(f"{path} holds no saved model: expected {' and '.join(MODEL_FILES)} in it or in a folder "
                       f"inside it (written by pixelcnn.save or pixelcnn train)")
    if len(inside) > 1:
        named = [d for d in inside if d.name == "model"]
        if not named:
            raise VizError(f"{path} holds several saved models ({', '.join(d.name for d in inside)}); "
                           f"give one of them")
        inside = named
    return inside[0], path


def _train_config(run_folder: Path | None):
    """The run's TrainConfig (its config.json), or None when there is none to read."""
    if run_folder is None or not (run_folder / "config.json").is_file():
        return None
    try:
        from .train.config import TrainConfig

        return TrainConfig.load(run_folder / "config.json")
    except (ImportError, ValueError, TypeError, FileNotFoundError):
        return None


def load_run(run: str):
    """RUN -> (model in eval mode, the run's TrainConfig or None)."""
    from .serialization import load

    folder, run_folder = find_model_folder(run)
    return load(folder), _train_config(run_folder)


def _test_images(model, train_config, args, indices: list[int]):
    """Test images of the run's (or --data's) data set -> (uint8 [B, C, H, W], labels [B], data set name)."""
    import torch

    name = args.data or (train_config.data if train_config else None)
    if name is None:
        raise VizError("--test-index needs a data set: RUN is not a training run folder, so pass --data NAME "
                       "(or use --image PATH)")
    binarize = args.binarize if args.data else (train_config.binarize if train_config else None)
    if args.data and binarize is None and model.levels == 2:
        binarize = "dynamic"
    root = args.data_root or (train_config.data_root if train_config else None)
    try:
        from . import data
    except ImportError as err:
        raise VizError(f"--test-index needs pixelcnn's data sets (pip install 'pixelcnn[data]'): {err}") from None
    dataset = data.load(name, "test", root=root, download=False, binarize=binarize)
    for k in indices:
        if not 0 <= k < len(dataset):
            raise VizError(f"--test-index {k} is out of range: {name} test has {len(dataset)} images (0..{len(dataset) - 1})")
    index = torch.tensor(indices)
    images = dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    if tuple(images.shape[1:]) != tuple(model.image_shape) or dataset.levels != model.levels:
        raise VizError(f"{name} test images are {tuple(images.shape[1:])} with {dataset.levels} levels; the model "
                       f"takes {tuple(model.image_shape)} with {model.levels} levels")
    return images, dataset.labels[index], name


def _labels_for(model, given: int | None, count: int, fallback=None):
    """The condition of ``count`` images: None, the dataset's labels, or --label; an error if one is missing."""
    import torch

    config = model.config
    if config.cond_dim is not None:
        raise VizError(f"this {model.name} takes condition vectors (cond_dim={config.cond_dim}); pixelcnn viz "
                       f"handles unconditional and class-conditional models (use pixelcnn.analysis from Python)")
    if config.num_classes is None:
        if given is not None:
            raise VizError(f"--label given, but this {model.name} is unconditional")
        return None
    if given is not None:
        if not 0 <= given < config.num_classes:
            raise VizError(f"--label must be in 0..{config.num_classes - 1}, got {given}")
        return torch.full((count,), given, dtype=torch.long)
    if fallback is None:
        raise VizError(f"this {model.name} is class-conditional ({config.num_classes} classes): pass --label K")
    return fallback


def _inputs(model, train_config, args):
    """The images the command analyses -> (int images [B, C, H, W], cond, captions)."""
    import torch

    from .analysis import load_image

    images_given = args.image if isinstance(args.image, list) else ([args.image] if args.image else [])
    indices = args.test_index if isinstance(args.test_index, list) else (
        [args.test_index] if args.test_index is not None else [])
    if images_given and indices:
        raise VizError("give --image or --test-index, not both")
    if images_given:
        images = torch.cat([load_image(p, model.image_shape, model.levels, resize=args.resize)
                            for p in images_given])
        return images, _labels_for(model, args.label, len(images)), [Path(p).name for p in images_given]
    images, labels, name = _test_images(model, train_config, args, indices or [0])
    cond = _labels_for(model, args.label, len(images), fallback=labels)
    captions = [f"{name} test image {k}" + (f" (label {int(y)})" if int(y) >= 0 else "")
                for k, y in zip(indices or [0], labels)]
    return images.long(), cond, captions


def _describe_model(model, train_config) -> str:
    where = f", trained on {train_config.data}" if train_config else ""
    return f"{model.name} ({sum(p.numel() for p in model.parameters()):,} parameters{where})"


# ------------------------------------------------------------------------------------ commands
def _receptive_field(args) -> str:
    from . import analysis, figures, list_models

    fresh_options = {"--layers": args.layers, "--image-size": args.image_size, "--hidden": args.hidden,
                     "--input-kernel-size": args.input_kernel_size}
    if args.run is not None:
        if args.model or args.compare is not None:
            raise VizError("give RUN (a trained model) or --model / --compare (fresh models), not both")
        given = [flag for flag, value in fresh_options.items() if value is not None]
        if given:
            raise VizError(f"{', '.join(given)} apply to freshly built models; RUN's model has its own sizes")
        model, train_config = load_run(args.run)
        pixel = tuple(args.pixel) if args.pixel else analysis.default_pixel(model.image_shape)
        field_map = analysis.receptive_field(model, pixel, args.channel)
        panels = [(_describe_model(model, train_config), field_map)]
        title = f"Receptive field of pixel {pixel}, channel {args.channel}: the saved {model.name} in {args.run}"
    else:
        if args.model and args.compare is not None:
            raise VizError("give --model NAME or --compare NAME ..., not both")
        if not args.model and args.compare is None:
            raise VizError("give RUN, --model NAME or --compare [NAME ...]")
        names = [args.model] if args.model else (args.compare or list(COMPARE_DEFAULT))
        available = list_models()
        if args.model and args.model not in available:
            raise VizError(f"unknown model {args.model!r}; choose from: {', '.join(available)}")
        for name in names:
            if name not in available:
                print(f"note: skipping {name}: not among this version's models ({', '.join(available)})",
                      file=sys.stderr)
        names = [name for name in names if name in available]
        if not names:
            raise VizError(f"none of the --compare models exist; choose from: {', '.join(available)}")
        sizes = dict(n_layers=args.layers or 4, image_size=args.image_size or 16, hidden=args.hidden or 8,
                     input_kernel_size=args.input_kernel_size or 3)
        pixel = tuple(args.pixel) if args.pixel else analysis.default_pixel((1, sizes["image_size"],
                                                                             sizes["image_size"]))
        panels = [(name, analysis.fresh_receptive_field(name, pixel=pixel, channel=args.channel, **sizes))
                  for name in names]
        title = (f"Receptive field of pixel {pixel}: freshly built models, {sizes['n_layers']} layers, "
                 f"{sizes['input_kernel_size']}x{sizes['input_kernel_size']} first layer, 3-wide kernels")
    figure = figures.receptive_field_figure(panels, title=title, cell=args.cell)
    path = figures.save_png(figure, args.out)
    lines = [f"wrote {path} ({figure.width}x{figure.height})"]
    for name, field_map in panels:
        counts = analysis.count_context(field_map)
        lines.append(f"  {name}: sees {counts['SEEN']} of {analysis.earlier_count(counts)} earlier pixel-channels; "
                     f"blind spot {counts['BLIND_SPOT']}, out of reach {counts['OUT_OF_REACH']}, "
                     f"later ones read {counts['LEAK']}")
    return "\n".join(lines)


def _softmax(args) -> str:
    from . import analysis, figures

    model, train_config = load_run(args.run)
    images, cond, captions = _inputs(model, train_config, args)
    distributions = analysis.pixel_distributions(model, images, args.pixels, channels=args.channels, cond=cond,
                                                 count=args.count)
    title = f"Predicted distributions, {captions[0]}: {_describe_model(model, train_config)}"
    figure = figures.softmax_figure(images[0], distributions, levels=model.levels, title=title)
    path = figures.save_png(figure, args.out)
    lines = [f"wrote {path} ({figure.width}x{figure.height})"]
    for d in distributions:
        lines.append(f"  pixel ({d.row}, {d.col}) channel {d.channel}: observed {d.observed} with p = "
                     f"{d.observed_prob:.4f}, most likely {int(d.probs.argmax())}, entropy {d.entropy_bits:.3f} bits")
    return "\n".join(lines)


def _nll_map(args) -> str:
    from . import analysis, figures

    model, train_config = load_run(args.run)
    if args.folder:
        if args.image or args.test_index:
            raise VizError("give --folder, --image or --test-index, one of them")
        return _score_folder(model, train_config, args)
    images, cond, captions = _inputs(model, train_config, args)
    bits = analysis.nll_bits(model, images, cond)
    title = f"-log2 p per pixel: {_describe_model(model, train_config)}"
    figure = figures.nll_figure(images.cpu(), bits, levels=model.levels, captions=captions, title=title)
    path = figures.save_png(figure, args.out)
    nats, per_dim = analysis.nll_totals(bits, model.image_shape)
    lines = [f"wrote {path} ({figure.width}x{figure.height})"]
    lines += [f"  {c}: NLL {float(n):.3f} nats, {float(b):.4f} bits/dim" for c, n, b in zip(captions, nats, per_dim)]
    return "\n".join(lines)


def _score_folder(model, train_config, args) -> str:
    import torch

    from . import analysis, figures

    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise VizError(f"--folder {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in analysis.IMAGE_SUFFIXES)
    if not files:
        raise VizError(f"--folder {folder} has no image files ({', '.join(analysis.IMAGE_SUFFIXES)})")
    rows, maps = [], []
    for start in range(0, len(files), args.batch_size):
        chunk = files[start: start + args.batch_size]
        images = torch.cat([analysis.load_image(p, model.image_shape, model.levels, resize=args.resize)
                            for p in chunk])
        cond = _labels_for(model, args.label, len(images))
        bits = analysis.nll_bits(model, images, cond)
        nats, per_dim = analysis.nll_totals(bits, model.image_shape)
        for k, path in enumerate(chunk):
            rows.append({"file": path.relative_to(folder).as_posix(), "nll_nats": float(nats[k]),
                         "bits_per_dim": float(per_dim[k]), "max_pixel_bits": float(bits[k].sum(0).max())})
            maps.append((float(nats[k]), path, images[k], bits[k]))
    csv_path = Path(args.csv)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    top = sorted(maps, key=lambda m: -m[0])[: args.top]
    figure = figures.nll_figure(torch.stack([m[2] for m in top]), torch.stack([m[3] for m in top]),
                                levels=model.levels, captions=[m[1].name for m in top],
                                title=f"Highest NLL of {len(files)} images in {folder.name}/: "
                                      f"{_describe_model(model, train_config)}")
    path = figures.save_png(figure, args.out)
    mean = sum(r["nll_nats"] for r in rows) / len(rows)
    return (f"scored {len(rows)} images: mean NLL {mean:.3f} nats; wrote {csv_path} and {path} (the {len(top)} "
            f"highest: {', '.join(m[1].name for m in top)})")


def _animate(args) -> str:
    import torch

    from . import analysis, figures

    model, train_config = load_run(args.run)
    cond = None
    if model.config.num_classes is not None and args.label is None:
        cond = torch.arange(args.n) % model.config.num_classes
    cond = _labels_for(model, args.label, args.n, fallback=cond)
    if not args.temperature > 0 or math.isinf(args.temperature):
        raise VizError(f"--temperature must be a positive number, got {args.temperature}")
    generator = torch.Generator().manual_seed(args.seed)
    frames = analysis.sampling_frames(model, args.n, cond=cond, every=args.every, temperature=args.temperature,
                                      generator=generator, method=args.method)
    title = f"{model.name}: {args.n} samples, {frames.method} sampler"
    pictures = figures.sampling_animation(frames, levels=model.levels, scale=args.scale, title=title)
    path = figures.save_gif(pictures, args.out, frame_ms=args.frame_ms)
    return f"wrote {path} ({len(pictures)} frames, {pictures[0].width}x{pictures[0].height}, {frames.method} sampler)"


COMMANDS = {"receptive-field": _receptive_field, "softmax": _softmax, "nll-map": _nll_map, "animate": _animate}


def run_viz(args) -> int:
    """Run the ``viz`` command parsed by ``add_viz_parser``; returns the exit status."""
    command = getattr(args, "viz_command", None)
    if command is None:
        args.viz_parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        print(COMMANDS[command](args))
    except (ValueError, FileNotFoundError, NotADirectoryError, ImportError, json.JSONDecodeError) as err:
        message = " ".join(str(err).split())
        print(f"pixelcnn viz {command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m pixelcnn.cli_viz COMMAND ...``: the same as ``pixelcnn viz COMMAND ...``."""
    parser = argparse.ArgumentParser(prog="pixelcnn")
    add_viz_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["viz", *(sys.argv[1:] if argv is None else argv)])
    return run_viz(args)


if __name__ == "__main__":
    sys.exit(main())
