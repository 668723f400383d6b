"""``pixelcnn compress``, ``decompress`` and ``score``: the exact likelihood at work (``pixelcnn.coding``,
``pixelcnn.scores``).

IMAGES, for compress and score, is any mix of:

- image files (``a.png``), read as the model reads them (``pixelcnn.data.read_image``);
- folders (``my_images/``): every image file under them, in sorted order, named by
  their path inside the folder, with the labels of its ``labels.csv`` (file,label) if
  it has one (``pixelcnn decompress`` writes one);
- data set splits ``NAME:SPLIT`` (``mnist5k:test``, ``folder:PATH:train``), binarized
  as the run was when NAME is the run's data set, with their labels; image k is
  named ``NAME-SPLIT-0000k.png``.

A path that exists is a path; anything else must be ``NAME:SPLIT``.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from types import SimpleNamespace

from .errors import CommandError, UsageError
from .flags import (
    RUN_HELP,
    add_command,
    add_device_flag,
    add_force_flag,
    add_image_file_flags,
    add_out_flag,
    add_run_argument,
    positive,
)
from .images import pick_images
from .outputs import json_text, print_table, write_json, write_output, write_table, written_by_us
from .paths import output_path
from .runs import dataset_for, open_run

EXAMPLES = {
    "compress": """
  pixelcnn compress runs/gated mnist5k:test --out test.pxcz          # the 1,000 test digits and their labels
  pixelcnn compress runs/gated mnist5k:test --max-images 100 --method naive --out first100.pxcz
  pixelcnn compress runs/gated my_images/ --label 3 --out mine.pxcz   # every image file under a folder

IMAGES: image files, folders, or data set splits NAME:SPLIT (mnist5k:test, folder:PATH:train).
A class-conditional model codes each image under its label (stored in the file): a data
set's, or --label K for image files. The file decodes where it was made (same torch
version, device kind and dtype): see pixelcnn decompress --help.""",
    "decompress": """
  pixelcnn decompress test.pxcz --run runs/gated --out decoded/     # decoded/mnist5k-test-00000.png, ...
  pixelcnn compress runs/gated decoded/ --out again.pxcz            # the same images and labels again

Writes one PNG per image, named as it was compressed (an image file's extension becomes
.png), and labels.csv for a class-conditional model. A file made with another model or
on another platform (torch version, device kind, dtype) is refused; a truncated or
corrupted file is refused; every decoded image is checked against a CRC-32.""",
    "score": """
  pixelcnn score runs/gated mnist5k:test --csv scores.csv            # NLL in nats and bits/dim
  pixelcnn score runs/gated my_images/ --complexity --json          # and NLL minus PNG bits (Serra et al.)
  pixelcnn score runs/gated mnist5k:test --max-images 50 --background runs/gated --csv ratio.csv

--background RUN adds the likelihood ratio (Ren et al.): NLL minus the NLL of a background
model, trained with pixelcnn train --perturb RATE. Higher scores: more anomalous. A
class-conditional model scores data set images under their labels, image files under
--label K or, without it, under all classes (-log of the mean of p(x | k)).""",
}

SUFFIX = ".pxcz"
LABELS_FILE = "labels.csv"


def add_parsers(sub) -> None:
    compress = add_command(
        sub, "compress", "code images losslessly with a model, at about -log2 p(x) bits", EXAMPLES["compress"]
    )
    add_run_argument(compress)
    _add_images(compress)
    add_out_flag(compress, f"file to write (e.g. images{SUFFIX})")
    compress.add_argument(
        "--method",
        default="auto",
        choices=["auto", "fast", "naive"],
        help="step: fast (cached), naive (a full forward pass per pixel-channel) or auto "
        "(default: auto); decoding uses the same",
    )
    compress.add_argument(
        "--batch-size", type=int, default=64, help="images coded together, one part of the file each (default: 64)"
    )
    add_device_flag(compress)
    add_force_flag(compress)
    compress.set_defaults(handler=cmd_compress)

    decompress = add_command(
        sub, "decompress", "decode a file of pixelcnn compress into PNG files", EXAMPLES["decompress"]
    )
    decompress.add_argument("file", metavar="FILE", help="a file written by pixelcnn compress")
    add_run_argument(decompress, option="--run", help_text=f"the {RUN_HELP} that compressed it")
    add_out_flag(decompress, "folder to write the PNG files to")
    decompress.add_argument(
        "--ignore-platform",
        action="store_true",
        help="try a file made on another platform anyway (a wrong result is still refused)",
    )
    add_device_flag(decompress)
    add_force_flag(decompress)
    decompress.set_defaults(handler=cmd_decompress)

    score = add_command(
        sub, "score", "anomaly scores of images: NLL, likelihood ratio, NLL minus PNG bits", EXAMPLES["score"]
    )
    add_run_argument(score)
    _add_images(score)
    score.add_argument(
        "--background",
        metavar="RUN2",
        help="a background run (pixelcnn train --perturb RATE): add the likelihood ratio score",
    )
    score.add_argument(
        "--complexity",
        action="store_true",
        help="add the PNG bits and the complexity-corrected score (NLL bits minus PNG bits)",
    )
    score.add_argument(
        "--csv", help="CSV file to write, one row per image (without --csv or --json: a table is printed)"
    )
    score.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="JSON file to write (bare --json: print the JSON instead of a table); always valid JSON, "
        "a score that is not a finite number is null",
    )
    score.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    add_device_flag(score)
    add_force_flag(score)
    score.set_defaults(handler=cmd_score)


def _add_images(parser) -> None:
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGES",
        help="image files, folders, or data set splits NAME:SPLIT (e.g. mnist5k:test)",
    )
    parser.add_argument("--max-images", type=int, help="only the first N images of IMAGES")
    parser.add_argument(
        "--label",
        type=int,
        help="class of the images, for a class-conditional model (default: a data set's own labels)",
    )
    parser.add_argument(
        "--binarize",
        choices=["dynamic", "threshold"],
        help="binarization of a data set split (default: the run's, for its own data set)",
    )
    add_image_file_flags(parser)


# ------------------------------------------------------------------------------------- reading IMAGES
def read_images(run, args, notes: list | None = None):
    """IMAGES -> (int64 images [B, C, H, W], labels int64 [B] (-1: unknown), names [B]); ``notes`` receives
    one line per image file whose pixels were converted (--convert, --resize)."""
    import torch

    from .. import data

    model, limit = run.model, args.max_images
    if limit is not None:
        positive("--max-images", limit)
    parts, labels, names = [], [], []
    for source in args.images:
        left = None if limit is None else limit - len(names)
        if left == 0:
            break
        path = Path(source).expanduser()
        if path.is_file() or path.is_dir():
            files = (
                [path]
                if path.is_file()
                else sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in data.IMAGE_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
            if not files:
                raise UsageError(f"{source} holds no image files ({', '.join(sorted(data.IMAGE_SUFFIXES))})")
            files = files[:left]
            parts += [
                data.read_image(
                    f, model.image_shape, model.levels, resize=args.resize, convert=args.convert, notes=notes
                )
                for f in files
            ]
            found = [f.name if f == path else f.relative_to(path).as_posix() for f in files]
            known = labels_csv(path / LABELS_FILE) if path.is_dir() else {}
            labels += [known.get(_png_name(name), -1) for name in found]
            names += found
            continue
        name, _, split = source.rpartition(":")
        if not name or split not in ("train", "test"):
            raise FileNotFoundError(
                f"{source}: no such image file or folder, and not a data set split NAME:SPLIT (e.g. mnist5k:test)"
            )
        dataset = dataset_for(run, SimpleNamespace(data=name, binarize=args.binarize), split)
        count = len(dataset) if left is None else min(left, len(dataset))
        images, set_labels = pick_images(dataset, indices=list(range(count)))
        stem = Path(name.removeprefix("folder:")).name or "images"
        parts.append(images.long())
        labels += set_labels.tolist()
        names += [f"{stem}-{split}-{k:05d}.png" for k in range(count)]
    if not names:
        raise UsageError("no images to read")
    return torch.cat(parts), torch.tensor(labels, dtype=torch.long), names


def labels_csv(path: Path) -> dict:
    """file -> label, from a folder's labels.csv (as ``pixelcnn decompress`` writes it); {} when there is none."""
    if not path.is_file():
        return {}
    try:
        with open(path, newline="") as f:
            return {row["file"]: int(row["label"]) for row in csv.DictReader(f)}
    except (KeyError, ValueError, TypeError) as err:
        raise UsageError(f"{path}: expected the columns file,label with integer labels ({err})") from None


def _class_labels(model, labels, given: int | None):
    """The labels a class-conditional model codes the images under (None for other models): --label or the
    images' own; refuses unknown ones."""
    import torch

    classes = model.config.num_classes
    if classes is None:
        if given is not None:
            raise UsageError(f"--label given, but this {model.name} is not class-conditional")
        return None
    if given is not None:
        if not 0 <= given < classes:
            raise UsageError(f"--label must be in 0..{classes - 1}, got {given}")
        return torch.full_like(labels, given)
    return labels


def _png_name(name: str) -> str:
    return str(Path(name).with_suffix(".png").as_posix())


# ------------------------------------------------------------------------------------- compress
def cmd_compress(args) -> str:
    import torch

    from .. import coding
    from ..scores import nll

    positive("--batch-size", args.batch_size)
    out = output_path(args.out, args, own=written_by_us)
    run = open_run(args.run, args.device)
    model = run.model
    converted = []
    images, labels, names = read_images(run, args, converted)
    cond = _class_labels(model, labels, args.label)
    if cond is not None and (cond < 0).any():
        first = names[int(torch.nonzero(cond < 0)[0])]
        raise UsageError(f"this {model.name} is class-conditional and {first} has no label: give --label K")
    png_names = [_png_name(n) for n in names]
    try:
        coding.check_names(png_names, len(png_names))
    except ValueError as err:
        raise UsageError(f"decompress could not write the images back under their names: {err}") from None
    records = []
    for start in range(0, len(images), args.batch_size):
        stop = start + args.batch_size
        part_cond = None if cond is None else cond[start:stop].to(model._device())
        records.append(
            coding.compress(
                model,
                images[start:stop].to(model._device()),
                part_cond,
                method=args.method,
                names=names[start:stop],
                progress=sys.stderr.isatty(),
            )
        )
    blob = b"".join(records)
    write_output(out, blob)
    dims = len(images) * math.prod(model.image_shape)
    model_bits = float(nll(model, images.to(model._device()), cond).sum()) / math.log(2)
    report = (
        f"wrote {out}: {len(images)} images in {len(blob):,} bytes = {8 * len(blob) / dims:.4f} bits/dim "
        f"(the model's NLL: {model_bits / dims:.4f} bits/dim; {len(records)} part(s), "
        f"{coding.read_header(records[0]).step} step)"
    )
    if converted:  # lossless for the converted pixels only: say which files are not stored as they were
        report += (
            f"\nnot lossless for {len(converted)} image file(s): their pixels were converted before coding "
            f"(decompress gives the converted images):\n" + "\n".join(f"  {line}" for line in converted)
        )
    return report


# ------------------------------------------------------------------------------------- decompress
def save_image_file(image, levels: int, path: Path) -> Path:
    """One image [C, H, W] as a PNG at its own size: grey (L) for one channel, RGB for three, each value v
    drawn as round(v * 255 / (levels - 1)), which ``data.read_image`` reads back exactly."""
    from .. import viz
    from ..scores import to_pil

    return viz.save(to_pil(image.cpu().numpy(), levels, one_bit=False), path)


def write_labels(folder: Path, rows: list[tuple[str, int]]) -> Path:
    """FOLDER/labels.csv (file,label), the file compress reads back; recorded as ours (see ``outputs``)."""
    return write_table(folder / LABELS_FILE, [{"file": name, "label": label} for name, label in rows])


def cmd_decompress(args) -> str:
    from .. import coding

    path = Path(args.file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no compressed file at {path}")
    blob = path.read_bytes()
    try:
        records = coding.split_records(blob)
        headers = [coding.read_header(record) for record in records]
    except ValueError as err:  # truncated, corrupted or not ours: the input is wrong (exit 2)
        raise UsageError(f"{path}: {err}") from None
    run = open_run(args.run, args.device)
    model = run.model
    for header in headers:
        try:
            coding.check_model(model, header, not args.ignore_platform)
            coding.check_decodable(model, header)
        except ValueError as err:
            raise UsageError(f"{path}: {err}") from None
    out = output_path(args.out, args, kind="folder")
    targets = [out / _png_name(name) for header in headers for name in (header.names or [])]
    for target in targets:  # refuse before decoding anything, not halfway
        output_path(target, args)
    conditional = any(h.cond_kind in (coding.COND_CLASS_U8, coding.COND_CLASS_U16) for h in headers)
    if conditional:
        output_path(out / LABELS_FILE, args, own=written_by_us)
    written, label_rows = 0, []
    for record, header in zip(records, headers):
        try:
            images = coding.decompress(
                model, record, check_platform=not args.ignore_platform, progress=sys.stderr.isatty()
            ).cpu()
        except ValueError as err:
            raise CommandError(f"{path}: {err}") from None
        names = header.names or [f"{written + k:05d}.png" for k in range(header.batch)]
        cond = coding.read_condition(model, header)
        for k, (image, name) in enumerate(zip(images, names)):
            save_image_file(image, model.levels, output_path(out / _png_name(name), args))
            if header.cond_kind in (coding.COND_CLASS_U8, coding.COND_CLASS_U16):
                label_rows.append((_png_name(name), int(cond[k])))
        written += header.batch
    note = ""
    if label_rows:
        write_labels(out, label_rows)
        note = " and labels.csv"
    return f"wrote {written} PNG files{note} to {out}/ ({len(records)} part(s), every image checked by its CRC-32)"


# ------------------------------------------------------------------------------------- score
def cmd_score(args) -> str:
    import torch

    from ..scores import SCORE_COLUMNS, score_images, score_rows

    positive("--batch-size", args.batch_size)
    if args.csv:
        args.csv = output_path(args.csv, args, option="--csv", own=written_by_us)
    if args.json and args.json != "-":
        args.json = output_path(args.json, args, option="--json", own=written_by_us)
    run = open_run(args.run, args.device)
    model = run.model
    background = open_run(args.background, args.device).model if args.background else None
    images, labels, names = read_images(run, args)
    cond = _class_labels(model, labels, args.label)
    device = model._device()
    if background is not None and background._device() != device:
        background = background.to(device)
    try:
        scores = score_images(
            model,
            images.to(device),
            cond,
            background=background,
            complexity=args.complexity,
            batch_size=args.batch_size,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    rows = score_rows(names, scores, cond)
    means = {
        column: float(torch.as_tensor(scores[key]).mean()) for key, column in SCORE_COLUMNS.items() if key in scores
    }
    written = []
    if args.csv:
        written.append(str(write_table(args.csv, rows)))
    document = {"run": str(run.path), "model": model.name, "background": args.background, "images": rows, "mean": means}
    if args.json == "-":
        print(json_text(document))
    elif args.json:
        written.append(str(write_json(args.json, document)))
    extra = "".join(
        f", {column} {means[column]:.3f}" for column in ("likelihood_ratio", "complexity") if column in means
    )
    summary = (
        f"scored {len(rows)} images: mean NLL {means['nll_nats']:.3f} nats ({means['bits_per_dim']:.4f} "
        f"bits/dim){extra}"
    )
    if written:
        return f"{summary}; wrote {' and '.join(written)}"
    if args.json == "-":
        return ""
    return f"{print_table(rows)}\n{summary}"
