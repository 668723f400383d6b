"""``pixelcnn viz``: pictures computed from a real model (``analysis`` computes, ``pixelcnn.viz`` draws).

RUN is a run folder or a model folder (see ``runs.open_run``); a run's own
config says which data set ``--test-index`` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UsageError
from .flags import (
    add_command,
    add_draw_flags,
    add_force_flag,
    add_image_file_flags,
    add_out_flag,
    add_run_argument,
    check_temperature,
    positive_int,
)
from .images import pick_images
from .outputs import written_by_us
from .paths import output_path
from .runs import dataset_for, open_run

COMPARE_DEFAULT = ("pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm")

EXAMPLES = {
    "receptive-field": """
  pixelcnn viz receptive-field --compare --out rf.png        # PixelCNN's blind spot beside the fixes
  pixelcnn viz receptive-field --model pixelcnn --layers 6 --image-size 12 --pixel 8 6 --out rf6.png
  pixelcnn viz receptive-field runs/gated --out rf_gated.png    # the trained model's own""",
    "softmax": """
  pixelcnn viz softmax runs/gated --test-index 0 --out softmax.png
  pixelcnn viz softmax runs/gated --test-index 3 --pixels 14,14 10,20 --out softmax3.png""",
    "nll-map": """
  pixelcnn viz nll-map runs/gated --test-index 0 3 --out nll_map.png
  pixelcnn viz nll-map runs/gated --folder my_images/ --csv scores.csv --out top.png   # see sample --folder

With --folder every image is scored as pixelcnn score scores it: a class-conditional
model scores each image under --label, or its label in the folder's labels.csv
(file,label: what sample --folder and decompress write), or else under the marginal
over classes, -log of the mean of p(x | k) (the CSV's label column says which).""",
    "animate": """
  pixelcnn viz animate runs/gated --n 16 --out sample.gif
  pixelcnn viz animate runs/gated --n 4 --label 3 --every 28 --out threes.gif""",
}


def _pixel(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a pixel is ROW,COL (two integers), got {text!r}") from None
    return row, col


def _add_image_source(parser, *, many: bool) -> None:
    nargs = "+" if many else None
    parser.add_argument("--image", nargs=nargs, metavar="PATH", help="image file(s) to analyse")
    parser.add_argument(
        "--test-index",
        nargs=nargs,
        type=int,
        metavar="K",
        help="test image(s) of the run's data set, by index (default: 0)",
    )
    parser.add_argument("--label", type=int, help="class of the images for a class-conditional model")
    add_image_file_flags(parser)
    parser.add_argument("--data", help="data set for --test-index (default: the run's)")
    parser.add_argument("--binarize", choices=["dynamic", "threshold"], help="binarize --data (default: the run's)")


def add_parsers(sub) -> None:
    viz = add_command(
        sub,
        "viz",
        "pictures of what a model does: receptive field, softmax, NLL map, sampling animation",
        "\n".join(line for text in EXAMPLES.values() for line in text.strip("\n").splitlines()[:1]),
        description="Pictures computed from a real model (PNG, or GIF for animate).",
    )
    viz.set_defaults(handler=lambda args: _no_subcommand(viz))
    commands = viz.add_subparsers(dest="viz_command", metavar="COMMAND", parser_class=type(viz))

    field = add_command(
        commands,
        "receptive-field",
        "which input pixels one output reads: seen, blind spot, future",
        EXAMPLES["receptive-field"],
        description="The receptive field of one output pixel, by gradient through a structural copy "
        "of the model (small positive weights), so it shows every path the masks leave "
        "open. Without RUN the model is freshly built: the map depends on the "
        "architecture only.",
    )
    add_run_argument(field, optional=True)
    field.add_argument("--model", help="registry name of a freshly built model (pixelcnn.list_models())")
    field.add_argument(
        "--compare",
        nargs="*",
        metavar="NAME",
        help=f"fresh models side by side (default: {' '.join(COMPARE_DEFAULT)}); names this "
        f"version lacks are skipped with a note",
    )
    field.add_argument("--layers", type=positive_int, help="n_layers of fresh models (default 4)")
    field.add_argument("--image-size", type=positive_int, help="fresh models see S x S images (default 16)")
    field.add_argument("--hidden", type=positive_int, help="hidden of fresh models (default 8; no effect on the map)")
    field.add_argument(
        "--input-kernel-size",
        type=positive_int,
        help="first-layer kernel of fresh models (default 3, which shows the shapes clearly; the papers use 7)",
    )
    field.add_argument(
        "--pixel",
        nargs=2,
        type=int,
        metavar=("ROW", "COL"),
        help="the output pixel (default: 3/4 down, half way across)",
    )
    field.add_argument("--channel", type=int, default=0, help="the output channel (default 0: R or grey)")
    field.add_argument("--cell", type=positive_int, help="screen pixels per image pixel")
    add_out_flag(field, default="receptive_field.png")
    add_force_flag(field)
    field.set_defaults(handler=cmd_receptive_field)

    softmax = add_command(
        commands,
        "softmax",
        "the predicted distribution of chosen pixel-channels, observed value marked",
        EXAMPLES["softmax"],
        description="Bar plots of p(value | all before) for chosen pixels of one image.",
    )
    add_run_argument(softmax)
    _add_image_source(softmax, many=False)
    softmax.add_argument(
        "--pixels",
        nargs="+",
        type=_pixel,
        metavar="ROW,COL",
        help="pixels to show (default: the --count the model is least sure of)",
    )
    softmax.add_argument("--count", type=positive_int, default=4, help="pixels chosen by default (%(default)s)")
    softmax.add_argument("--channels", nargs="+", type=int, metavar="C", help="channels to show (default: all)")
    add_out_flag(softmax, default="softmax.png")
    add_force_flag(softmax)
    softmax.set_defaults(handler=cmd_softmax)

    nll = add_command(
        commands,
        "nll-map",
        "image beside a heat map of -log2 p per pixel; a CSV of scores for a folder",
        EXAMPLES["nll-map"],
        description="Per-pixel NLL in bits (summing to the image's exact NLL). With --folder: a CSV of "
        "every image's score (for anomaly detection) and a figure of the --top highest.",
    )
    add_run_argument(nll)
    _add_image_source(nll, many=True)
    nll.add_argument("--folder", help="score every image in this folder (and its subfolders)")
    nll.add_argument("--csv", default="nll_scores.csv", help="--folder: the CSV to write (default %(default)s)")
    nll.add_argument("--top", type=positive_int, default=4, help="--folder: images in the figure (default %(default)s)")
    nll.add_argument("--batch-size", type=positive_int, default=64, help="--folder: images per pass (%(default)s)")
    add_out_flag(nll, default="nll_map.png")
    add_force_flag(nll)
    nll.set_defaults(handler=cmd_nll_map)

    animate = add_command(
        commands,
        "animate",
        "a GIF of a grid of samples filling in, pixel by pixel",
        EXAMPLES["animate"],
        description="Sample --n images and write a frame every --every pixels (default: every row).",
    )
    add_run_argument(animate)
    animate.add_argument("--n", type=positive_int, default=16, help="images (default %(default)s)")
    animate.add_argument("--every", type=positive_int, help="pixels per frame (default: one image row)")
    animate.add_argument("--label", type=int, help="class of every image (default: image i gets class i mod K)")
    add_draw_flags(animate, scale=False)  # its --scale: a positive int, the frames' own default
    animate.add_argument("--scale", type=positive_int, help="screen pixels per image pixel")
    animate.add_argument("--frame-ms", type=positive_int, default=60, help="milliseconds per frame (%(default)s)")
    add_out_flag(animate, "GIF file to write", default="sample.gif")
    add_force_flag(animate)
    animate.set_defaults(handler=cmd_animate)


def _no_subcommand(viz) -> str:
    viz.print_help(sys.stderr)
    raise UsageError("say which picture: pixelcnn viz COMMAND (receptive-field, softmax, nll-map, animate)")


# ----------------------------------------------------------------------------- inputs
def _labels(model, given: int | None, count: int, fallback=None):
    """The condition of ``count`` images: None, --label, or ``fallback``; an error when one is needed and missing."""
    import torch

    config = model.config
    if config.cond_dim is not None:
        raise UsageError(
            f"this {model.name} takes condition vectors (cond_dim={config.cond_dim}); pixelcnn viz "
            f"handles unconditional and class-conditional models (use pixelcnn.analysis from Python)"
        )
    if config.num_classes is None:
        if given is not None:
            raise UsageError(f"--label given, but this {model.name} is unconditional")
        return None
    if given is not None:
        if not 0 <= given < config.num_classes:
            raise UsageError(f"--label must be in 0..{config.num_classes - 1}, got {given}")
        return torch.full((count,), given, dtype=torch.long)
    if fallback is None:
        raise UsageError(f"this {model.name} is class-conditional ({config.num_classes} classes): pass --label K")
    return fallback


def _inputs(run, args):
    """The images the command analyses -> (int images [B, C, H, W], cond, captions)."""
    import torch

    from .. import data

    model = run.model
    files = args.image if isinstance(args.image, list) else ([args.image] if args.image else [])
    indices = (
        args.test_index
        if isinstance(args.test_index, list)
        else ([args.test_index] if args.test_index is not None else [])
    )
    if files and indices:
        raise UsageError("give --image or --test-index, not both")
    if files:
        images = torch.cat(
            [
                data.read_image(p, model.image_shape, model.levels, resize=args.resize, convert=args.convert)
                for p in files
            ]
        )
        return images, _labels(model, args.label, len(images)), [Path(p).name for p in files]
    indices = indices or [0]
    dataset = dataset_for(run, args, "test", needs="--test-index needs a data set: ")
    images, labels = pick_images(dataset, indices=indices)
    cond = _labels(model, args.label, len(images), fallback=labels)
    captions = [
        f"{dataset.name} test image {k}" + (f" (label {int(y)})" if int(y) >= 0 else "")
        for k, y in zip(indices, labels)
    ]
    return images.long(), cond, captions


def _describe(run) -> str:
    where = f", trained on {run.data}" if run.data else ""
    return f"{run.model.name} ({sum(p.numel() for p in run.model.parameters()):,} parameters{where})"


# ------------------------------------------------------------------------------------ commands
def cmd_receptive_field(args) -> str:
    args.out = output_path(args.out, args)
    from .. import analysis, list_models, viz

    fresh_options = {
        "--layers": args.layers,
        "--image-size": args.image_size,
        "--hidden": args.hidden,
        "--input-kernel-size": args.input_kernel_size,
    }
    if args.run is not None:
        if args.model or args.compare is not None:
            raise UsageError("give RUN (a trained model) or --model / --compare (fresh models), not both")
        given = [flag for flag, value in fresh_options.items() if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} apply to freshly built models; RUN's model has its own sizes")
        run = open_run(args.run)
        pixel = tuple(args.pixel) if args.pixel else analysis.default_pixel(run.model.image_shape)
        panels = [(_describe(run), analysis.receptive_field(run.model, pixel, args.channel))]
        title = f"Receptive field of pixel {pixel}, channel {args.channel}: the saved {run.model.name} in {args.run}"
    else:
        if args.model and args.compare is not None:
            raise UsageError("give --model NAME or --compare NAME ..., not both")
        if not args.model and args.compare is None:
            raise UsageError("give RUN, --model NAME or --compare [NAME ...]")
        names = [args.model] if args.model else (args.compare or list(COMPARE_DEFAULT))
        available = list_models()
        if args.model and args.model not in available:
            raise UsageError(f"unknown model {args.model!r}; choose from: {', '.join(available)}")
        for name in names:
            if name not in available:
                print(
                    f"note: skipping {name}: not among this version's models ({', '.join(available)})", file=sys.stderr
                )
        names = [name for name in names if name in available]
        if not names:
            raise UsageError(f"none of the --compare models exist; choose from: {', '.join(available)}")
        sizes = dict(
            n_layers=args.layers or 4,
            image_size=args.image_size or 16,
            hidden=args.hidden or 8,
            input_kernel_size=args.input_kernel_size or 3,
        )
        pixel = (
            tuple(args.pixel) if args.pixel else analysis.default_pixel((1, sizes["image_size"], sizes["image_size"]))
        )
        panels = [
            (name, analysis.fresh_receptive_field(name, pixel=pixel, channel=args.channel, **sizes)) for name in names
        ]
        title = (
            f"Receptive field of pixel {pixel}: freshly built models, {sizes['n_layers']} layers, "
            f"{sizes['input_kernel_size']}x{sizes['input_kernel_size']} first layer, 3-wide kernels"
        )
    figure = viz.receptive_field_figure(panels, title=title, cell=args.cell)
    lines = [f"wrote {viz.save(figure, args.out)} ({figure.width}x{figure.height})"]
    for name, field_map in panels:
        counts = analysis.count_context(field_map)
        lines.append(
            f"  {name}: sees {counts['SEEN']} of {analysis.earlier_count(counts)} earlier pixel-channels; "
            f"blind spot {counts['BLIND_SPOT']}, out of reach {counts['OUT_OF_REACH']}, "
            f"later ones read {counts['LEAK']}"
        )
    return "\n".join(lines)


def cmd_softmax(args) -> str:
    args.out = output_path(args.out, args)
    from .. import analysis, viz

    run = open_run(args.run)
    images, cond, captions = _inputs(run, args)
    distributions = analysis.pixel_distributions(
        run.model, images, args.pixels, channels=args.channels, cond=cond, count=args.count
    )
    figure = viz.softmax_figure(
        images[0],
        distributions,
        levels=run.model.levels,
        title=f"Predicted distributions, {captions[0]}: {_describe(run)}",
    )
    lines = [f"wrote {viz.save(figure, args.out)} ({figure.width}x{figure.height})"]
    for d in distributions:
        lines.append(
            f"  pixel ({d.row}, {d.col}) channel {d.channel}: observed {d.observed} with p = "
            f"{d.observed_prob:.4f}, most likely {int(d.probs.argmax())}, entropy {d.entropy_bits:.3f} bits"
        )
    return "\n".join(lines)


def cmd_nll_map(args) -> str:
    args.out = output_path(args.out, args)
    if args.folder:
        args.csv = output_path(args.csv, args, option="--csv", own=written_by_us)
    from .. import analysis, viz

    run = open_run(args.run)
    if args.folder:
        if args.image or args.test_index:
            raise UsageError("give --folder, --image or --test-index, one of them")
        return _score_folder(run, args)
    images, cond, captions = _inputs(run, args)
    bits = analysis.nll_bits(run.model, images, cond)
    figure = viz.nll_figure(
        images.cpu(), bits, levels=run.model.levels, captions=captions, title=f"-log2 p per pixel: {_describe(run)}"
    )
    nats, per_dim = analysis.nll_totals(bits, run.model.image_shape)
    lines = [f"wrote {viz.save(figure, args.out)} ({figure.width}x{figure.height})"]
    lines += [f"  {c}: NLL {float(n):.3f} nats, {float(b):.4f} bits/dim" for c, n, b in zip(captions, nats, per_dim)]
    return "\n".join(lines)


def _most_likely_labels(model, images):
    """For a class-conditional model: each image's class of highest likelihood, int64 [B]."""
    import torch

    with torch.no_grad():
        scores = torch.stack(
            [
                model.log_prob(images, torch.full((len(images),), k, dtype=torch.long)).cpu()
                for k in range(model.config.num_classes)
            ],
            dim=1,
        )  # [B, classes]
    return scores.argmax(1)


def _score_folder(run, args) -> str:
    """--folder: every image scored by ``scores.score_images`` (the rule of ``pixelcnn score``: under its label
    from --label or the folder's labels.csv, else under the marginal over classes), a CSV of the scores and a
    figure of the --top highest (their maps drawn under the label, or under the most likely class)."""
    import torch

    from .. import analysis, data, viz
    from ..scores import score_images
    from .coding import LABELS_FILE, labels_csv
    from .outputs import write_table

    model = run.model
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise UsageError(f"--folder {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in data.IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"--folder {folder} has no image files ({', '.join(sorted(data.IMAGE_SUFFIXES))})")
    conditional = model.config.num_classes is not None
    _labels(model, args.label, 0, fallback=torch.zeros(0))  # refuses a --label the model cannot take
    known = labels_csv(folder / LABELS_FILE) if conditional else {}
    rows, maps, notes = [], [], []
    for start in range(0, len(files), args.batch_size):
        chunk = files[start : start + args.batch_size]
        names = [p.relative_to(folder).as_posix() for p in chunk]
        images = torch.cat(
            [
                data.read_image(
                    p, model.image_shape, model.levels, resize=args.resize, convert=args.convert, notes=notes
                )
                for p in chunk
            ]
        )
        labels = None
        if conditional:
            labels = (
                torch.full((len(chunk),), args.label, dtype=torch.long)
                if args.label is not None
                else torch.tensor([known.get(name, -1) for name in names], dtype=torch.long)
            )
        scores = score_images(model, images, labels, batch_size=args.batch_size)
        drawn_under = None
        if conditional:  # a per-pixel map needs one class: the label, else the most likely one
            drawn_under = torch.where(labels >= 0, labels, _most_likely_labels(model, images))
        bits = analysis.nll_bits(model, images, drawn_under)
        for k, name in enumerate(names):
            row = {"file": name}
            if conditional:
                row["label"] = int(labels[k]) if labels[k] >= 0 else "marginal"
            row.update(
                nll_nats=float(scores["nll"][k]),
                bits_per_dim=float(scores["bits_per_dim"][k]),
                max_pixel_bits=float(bits[k].sum(0).max()),
            )
            rows.append(row)
            maps.append((float(scores["nll"][k]), chunk[k], images[k], bits[k]))
    csv_path = write_table(args.csv, rows)
    top = sorted(maps, key=lambda m: -m[0])[: args.top]
    figure = viz.nll_figure(
        torch.stack([m[2] for m in top]),
        torch.stack([m[3] for m in top]),
        levels=model.levels,
        captions=[m[1].name for m in top],
        title=f"Highest NLL of {len(files)} images in {folder.name}/: {_describe(run)}",
    )
    path = viz.save(figure, args.out)
    mean = sum(r["nll_nats"] for r in rows) / len(rows)
    under = ""
    if conditional:
        labelled = sum(r["label"] != "marginal" for r in rows)
        under = (
            f" (under --label {args.label})"
            if args.label is not None
            else f" ({labelled} under their label in {LABELS_FILE}, {len(rows) - labelled} unlabelled under the "
            f"marginal over classes)"
        )
    converted = f"\nconverted: {'; '.join(notes)}" if notes else ""
    return (
        f"scored {len(rows)} images{under}: mean NLL {mean:.3f} nats; wrote {csv_path} and {path} (the "
        f"{len(top)} highest: {', '.join(m[1].name for m in top)}){converted}"
    )


def cmd_animate(args) -> str:
    args.out = output_path(args.out, args)
    import torch

    from .. import analysis, viz

    run = open_run(args.run)
    model = run.model
    cond = None
    if model.config.num_classes is not None and args.label is None:
        cond = torch.arange(args.n) % model.config.num_classes
    cond = _labels(model, args.label, args.n, fallback=cond)
    check_temperature(args.temperature)
    frames = analysis.sampling_frames(
        model,
        args.n,
        cond=cond,
        every=args.every,
        temperature=args.temperature,
        generator=torch.Generator().manual_seed(args.seed),
        method=args.method,
    )
    pictures = viz.sampling_animation(
        frames, levels=model.levels, scale=args.scale, title=f"{model.name}: {args.n} samples, {frames.method} sampler"
    )
    path = viz.save_gif(pictures, args.out, frame_ms=args.frame_ms)
    return f"wrote {path} ({len(pictures)} frames, {pictures[0].width}x{pictures[0].height}, {frames.method} sampler)"
