"""``pixelcnn sample`` and ``complete``: new images from a trained model, and test images completed by it."""

from __future__ import annotations

import sys

from .errors import UsageError
from .flags import (
    add_command,
    add_data_flags,
    add_device_flag,
    add_draw_flags,
    add_force_flag,
    add_out_flag,
    add_precision_flag,
    add_run_argument,
    check_temperature,
    positive,
)
from .images import pick_images, scale_for
from .paths import output_path
from .runs import dataset_for, open_run, precision_for

EXAMPLES = {
    "sample": """
  pixelcnn sample runs/mnist --n 64 --out samples.png       # a class-conditional model cycles through the classes
  pixelcnn sample runs/mnist --per-class 8 --out per_class.png     # 8 images of each class, a row per class
  pixelcnn sample runs/mnist --label 3 --n 16 --temperature 0.9 --out threes.png
  pixelcnn sample runs/mnist --n 20 --folder my_images/     # one PNG per image""",
    "complete": """
  pixelcnn complete runs/mnist --rows 14 --n 8 --out completions.png
  pixelcnn complete runs/mnist --rows 10 --n 4 --samples 6 --split train --out more.png

Each row: the original test image, what the model was given (hidden rows tinted),
then --samples completions of the hidden rows.""",
}


def add_parsers(sub) -> None:
    sample = add_command(sub, "sample", "draw images from a trained model into a PNG grid", EXAMPLES["sample"])
    add_run_argument(sample)
    sample.add_argument(
        "--n",
        type=int,
        help="images (default: 16); a class-conditional model draws classes "
        "0, 1, ..., K-1, 0, 1, ... in turn unless --label is given",
    )
    cond = sample.add_mutually_exclusive_group()
    cond.add_argument("--label", type=int, help="class of every image (class-conditional models)")
    cond.add_argument(
        "--per-class",
        type=int,
        nargs="?",
        const=0,
        metavar="N",
        help="N images of each class, one row per class (bare --per-class: --n of each)",
    )
    add_draw_flags(sample)
    where = sample.add_argument_group("output (one or both)")
    add_out_flag(where, "PNG file to write: the images in a grid", required=False)
    where.add_argument(
        "--folder",
        help="folder to write each image to, as its own PNG at its own size "
        "(NNNN.png, or NNNN_class_K.png and labels.csv for a class-conditional "
        "model; e.g. for viz nll-map --folder or compress)",
    )
    add_device_flag(sample)
    add_precision_flag(sample)
    add_force_flag(sample)
    sample.set_defaults(handler=cmd_sample)

    complete = add_command(
        sub, "complete", "hide the bottom of test images and let the model fill it in", EXAMPLES["complete"]
    )
    add_run_argument(complete)
    complete.add_argument("--rows", type=int, required=True, help="rows kept from the top of each image")
    complete.add_argument("--n", type=int, default=8, help="images to complete, spread over the split (default: 8)")
    complete.add_argument("--samples", type=int, default=4, help="completions of each image (default: 4)")
    add_draw_flags(complete)
    add_out_flag(complete)
    add_device_flag(complete)
    add_precision_flag(complete)
    add_data_flags(complete)
    add_force_flag(complete)
    complete.set_defaults(handler=cmd_complete)


def labels_for(model, *, n: int | None, label: int | None, per_class: int | None):
    """Labels of the images to draw [count] (None for an unconditional model), from --n / --label / --per-class."""
    import torch

    from ..models.base import check_batch_fits

    classes = model.config.num_classes
    if per_class is not None:
        if per_class == 0:  # bare --per-class: --n of each class
            per_class = 16 if n is None else n
        elif n is not None:
            raise UsageError("give --per-class N (N of each class) or --n N, not both")
        positive("--per-class", per_class)
    n = 16 if n is None else n
    positive("--n", n)
    # A huge count is refused here, before the labels and file names for it are made (the smaller bound, the
    # cached step's: model.sample checks again for the sampler it runs).
    check_batch_fits(
        model,
        n if per_class is None else per_class * (classes or 1),
        what=f"--per-class {per_class}" if per_class is not None else f"--n {n}",
        cached=True,
    )
    if classes is None:
        if label is not None or per_class is not None:
            raise UsageError("this model is unconditional: --label and --per-class need a class-conditional model")
        return None
    if label is not None:
        if not 0 <= label < classes:
            raise UsageError(f"--label must be a class in 0..{classes - 1}, got {label}")
        return torch.full((n,), label, dtype=torch.long)
    if per_class is not None:
        return torch.arange(classes).repeat_interleave(per_class)  # [classes * per_class]
    return torch.arange(n) % classes  # [n]: the classes in turn


def cmd_sample(args) -> str:
    import torch

    from .. import viz

    check_temperature(args.temperature)
    if args.out is None and args.folder is None:
        raise UsageError(
            "the following arguments are required: --out FILE.png (a grid) or --folder DIR (one PNG each), or both"
        )
    if args.out is not None:
        args.out = output_path(args.out, args)
    model = open_run(args.run, args.device).model
    labels = labels_for(model, n=args.n, label=args.label, per_class=args.per_class)
    count = (16 if args.n is None else args.n) if labels is None else len(labels)
    names = [f"{k:04d}.png" if labels is None else f"{k:04d}_class_{int(labels[k])}.png" for k in range(count)]
    if args.folder is not None:
        from .coding import LABELS_FILE
        from .outputs import written_by_us

        folder = output_path(args.folder, args, option="--folder", kind="folder")
        for name in names:
            output_path(folder / name, args, option="--folder")
        if labels is not None:
            output_path(folder / LABELS_FILE, args, option="--folder", own=written_by_us)
    precision = precision_for(args.precision, model, args.method)
    images = model.sample(
        count,
        labels,
        temperature=args.temperature,
        method=args.method,
        precision=args.precision,
        generator=torch.Generator().manual_seed(args.seed),
        progress=sys.stderr.isatty(),
    )
    written = []
    if args.folder is not None:
        from .coding import save_image_file, write_labels

        for name, image in zip(names, images):
            save_image_file(image, model.levels, folder / name)
        if labels is not None:  # what compress and viz nll-map --folder read back
            write_labels(folder, [(name, int(label)) for name, label in zip(names, labels)])
        written.append(f"{folder}/ ({count} PNG files{' and labels.csv' if labels is not None else ''})")
    if args.out is None:
        return f"wrote {written[0]}; {precision}"
    scale = scale_for(model.image_shape, args.scale)
    if labels is not None and args.label is None:
        grid = viz.class_grid(images, labels, levels=model.levels, scale=scale)
        classes = model.config.num_classes
        which = (
            f": {count // classes} of each of {classes} classes"
            if args.per_class is not None
            else f": classes 0..{classes - 1} in turn, a row per class"
        )
    else:
        grid, which = viz.image_grid(images, levels=model.levels, scale=scale), ""
    return f"wrote {' and '.join([*written, str(viz.save(grid, args.out))])} ({count} images{which}); {precision}"


def complete_images(
    model,
    images,
    labels,
    *,
    rows: int,
    samples: int,
    temperature: float,
    seed: int,
    method: str = "auto",
    precision: str = "fp32",
):
    """``samples`` completions of each image below its top ``rows`` rows: [B, samples, C, H, W]."""
    import torch

    height = model.image_shape[1]
    if not 0 <= rows <= height:
        raise UsageError(f"--rows must be in 0..{height} (the images have {height} rows), got {rows}")
    repeated = images.repeat_interleave(samples, dim=0)  # [B*S, C, H, W]
    cond = labels.repeat_interleave(samples) if model.config.num_classes is not None else None
    done = model.complete(
        repeated,
        rows,
        cond,
        temperature=temperature,
        method=method,
        precision=precision,
        generator=torch.Generator().manual_seed(seed),
    )
    return done.view(len(images), samples, *done.shape[1:]).cpu()  # [B, S, C, H, W]


def cmd_complete(args) -> str:
    args.out = output_path(args.out, args)
    from .. import viz

    positive("--n", args.n)
    positive("--samples", args.samples)
    check_temperature(args.temperature)
    run = open_run(args.run, args.device)
    images, labels = pick_images(dataset_for(run, args, args.split), n=args.n)
    precision = precision_for(args.precision, run.model, args.method)
    done = complete_images(
        run.model,
        images,
        labels,
        rows=args.rows,
        samples=args.samples,
        temperature=args.temperature,
        seed=args.seed,
        method=args.method,
        precision=args.precision,
    )
    grid = viz.completion_grid(
        images, done, known_rows=args.rows, levels=run.model.levels, scale=scale_for(run.model.image_shape, args.scale)
    )
    return (
        f"wrote {viz.save(grid, args.out)} ({args.n} images x {args.samples} completions, "
        f"top {args.rows} rows kept); {precision}"
    )
