"""Lossless compression against real codecs: our files vs the model's NLL, PNG, WebP and JPEG-XL.

    python benchmarks/compression.py                                  # train briefly on each set, then code
    python benchmarks/compression.py --images 4 --train-steps 20      # a smoke run: seconds
    python benchmarks/compression.py --data mnist5k --run runs/mnist  # a trained run folder instead

For each test split (``mnist5k`` binarized, ``digits``, ``photo-patches``), on
its first ``--images`` images, with a model trained for ``--train-steps``
steps by ``pixelcnn.train`` (or the ``--run`` folder given):

- bits/dim of our files, header included: one file holding the whole set
  ("set"), and one file per image ("per image", each with its own header);
- the model's NLL in bits/dim on the same images (what an ideal coder reaches);
- PNG (Pillow, optimize=True), WebP lossless (Pillow, method 6) and JPEG-XL
  lossless (the ``pillow-jxl-plugin`` package, effort 9; skipped with a note when
  it is not installed), one file per image, each checked to decode exactly, and
  one file of the whole set (the images stacked into one tall image: the
  codec's counterpart of our set file, one header, neighbours across images);
- encode / decode seconds per image: the cached step on the whole set at once
  and on single images, the naive step (one full forward pass per
  pixel-channel) on ``--naive-images`` images (extrapolated from one forward
  pass, and marked so, when a round trip would take over ``--naive-limit``
  seconds). Every file is decoded and checked bit for bit.

Prints a table, the CPU (``lscpu``'s model name and its bf16 flags) and writes
JSON to ``--out`` (default runs/compression.json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pixelcnn
from machine import describe, print_cells, print_machine
from pixelcnn import data
from pixelcnn.coding import read_header
from pixelcnn.scores import LOSSLESS_CODECS as CODECS
from pixelcnn.scores import codec_available, codec_bytes
from pixelcnn.train import TrainConfig, train

# name -> how to load its test split and the model trained on it when no --run is given.
DATASETS = {
    "mnist5k": dict(binarize="dynamic", model="pixelcnn", options=dict(n_layers=4, hidden=32, kernel_size=5)),
    "digits": dict(
        binarize=None, model="pixelcnn", options=dict(n_layers=4, hidden=32, kernel_size=3, input_kernel_size=5)
    ),
    "photo-patches": dict(binarize=None, model="pixelcnn", options=dict(n_layers=4, hidden=32, kernel_size=3)),
}


# ------------------------------------------------------------------------------------ codecs
def codec_set_bytes(images: np.ndarray, levels: int, codec: str) -> int:
    """Bytes of the images [N, C, H, W] stacked into one [C, N * H, W] image in one file of ``codec``."""
    count, channels, height, width = images.shape
    tall = images.transpose(1, 0, 2, 3).reshape(1, channels, count * height, width)
    return codec_bytes(tall, levels, codec)[0]


# ------------------------------------------------------------------------------------ our files
def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def code_and_check(model, x: torch.Tensor, method: str) -> tuple[bytes, float, float]:
    """Compress x, decompress, check equality: (file, encode seconds, decode seconds)."""
    blob, encode_s = timed(lambda: pixelcnn.compress(model, x, method=method))
    decoded, decode_s = timed(lambda: pixelcnn.decompress(model, blob))
    if not torch.equal(decoded, x):
        raise RuntimeError("a decoded file differs from its images")
    return blob, encode_s, decode_s


def naive_times(model, x: torch.Tensor, limit_s: float) -> tuple[float, float, bool]:
    """Encode and decode seconds per image with the naive step: (encode, decode, extrapolated).

    A full round trip (checked) when it should take under ``limit_s``; else one full forward pass,
    timed on one thread as coding runs, times the C * H * W pixel-channels (the range coder's
    share, small, left out).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            model._params(x, None)  # warm-up
            _, forward_s = timed(lambda: model._params(x, None))
    finally:
        torch.set_num_threads(threads)
    estimate = forward_s * math.prod(model.image_shape)
    if 2 * estimate <= limit_s:
        _, encode_s, decode_s = code_and_check(model, x, "naive")
        return encode_s / len(x), decode_s / len(x), False
    return estimate / len(x), estimate / len(x), True


def get_model(name: str, args, spec: dict):
    if name in args.runs:
        folder = Path(args.runs[name])
        return pixelcnn.load(folder / "model" if (folder / "model").is_dir() else folder), str(folder)
    steps = args.train_steps
    folder = Path(args.work) / f"{name}-{steps}steps-seed{args.seed}"
    if (folder / "model").is_dir():  # trained by an earlier run
        return pixelcnn.load(folder / "model"), f"trained {steps} steps -> {folder / 'model'} (reused)"
    config = TrainConfig(
        model=spec["model"],
        model_options=spec["options"],
        data=name,
        binarize=spec["binarize"],
        out=str(folder),
        max_steps=steps,
        batch_size=16,
        lr=4e-3,
        warmup_steps=min(50, steps // 5),
        lr_decay="cosine",
        ema_decay=0.998 if steps >= 500 else None,
        eval_every=None,
        eval_images=min(args.images, 256),
        sample_images=0,
        checkpoint_every=10**9,
        progress=False,
        tensorboard=False,
        seed=args.seed,
        device="cpu",
        threads=args.threads,
    )
    result = train(config)
    if result.interrupted:  # stopped by a signal: the saved model is not the one asked for
        raise SystemExit(
            f"training of {folder} was interrupted: resume it (pixelcnn train --resume {folder}) or remove it"
        )
    return pixelcnn.load(result.model_path), f"trained {steps} steps -> {result.model_path}"


def bench(name: str, args) -> dict:
    spec = DATASETS[name]
    test = data.load(name, "test", binarize=spec["binarize"])
    model, source = get_model(name, args, spec)
    model.eval()
    count = min(args.images, len(test))
    x = test.images[:count].long()  # [N, C, H, W]
    if getattr(model.config, "num_classes", None) is not None:
        raise SystemExit(f"{source}: a class-conditional model; this benchmark codes unconditional models")
    dims = math.prod(model.image_shape)
    with torch.no_grad():
        nll_bits = (-model.log_prob(x) / math.log(2)).double()  # [N]

    blob, encode_s, decode_s = code_and_check(model, x, "auto")
    header = read_header(blob)
    singles = [code_and_check(model, x[i : i + 1], "auto") for i in range(min(args.single_images, count))]
    naive_count = min(args.naive_images, count)
    naive = naive_times(model, x[:naive_count], args.naive_limit) if naive_count else None

    row = {
        "data": name,
        "images": count,
        "image_shape": list(model.image_shape),
        "levels": model.levels,
        "model": model.name,
        "model_source": source,
        "parameters": sum(p.numel() for p in model.parameters()),
        "nll_bits_per_dim": float(nll_bits.sum()) / (count * dims),
        "ours_set_bits_per_dim": 8 * len(blob) / (count * dims),
        "ours_set_bytes": len(blob),
        "ours_header_bytes": header.size,
        "ours_per_image_bits_per_dim": 8 * float(np.mean([len(s[0]) for s in singles])) / dims if singles else None,
        "fast_step": header.step,
        "encode_s_per_image_set": encode_s / count,
        "decode_s_per_image_set": decode_s / count,
        "encode_s_per_image_batch1": float(np.mean([s[1] for s in singles])) if singles else None,
        "decode_s_per_image_batch1": float(np.mean([s[2] for s in singles])) if singles else None,
        "naive_images": naive_count,
        "encode_s_per_image_naive": naive[0] if naive else None,
        "decode_s_per_image_naive": naive[1] if naive else None,
        "naive_extrapolated": naive[2] if naive else None,
    }
    row["ours_over_nll"] = row["ours_set_bits_per_dim"] / row["nll_bits_per_dim"]
    # Without the header (and the stored condition): what the range coder adds to the NLL.
    row["stream_over_nll"] = 8 * (len(blob) - header.size) / float(nll_bits.sum())
    images = test.images[:count].numpy()
    for codec in CODECS:
        if not codec_available(codec):
            row["jxl_bits_per_dim"] = row["jxl_set_bits_per_dim"] = None
            row["jxl_note"] = "pillow-jxl-plugin is not installed (pip install pillow-jxl-plugin)"
            continue
        row[f"{codec}_bits_per_dim"] = 8 * sum(codec_bytes(images, test.levels, codec)) / (count * dims)
        row[f"{codec}_set_bits_per_dim"] = 8 * codec_set_bytes(images, test.levels, codec) / (count * dims)
    return row


def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    columns = [
        ("data", "data", None),
        ("images", "N", None),
        ("nll_bits_per_dim", "NLL", 3),
        ("ours_set_bits_per_dim", "ours set", 3),
        ("ours_per_image_bits_per_dim", "ours/img", 3),
        ("png_bits_per_dim", "PNG", 3),
        ("webp_bits_per_dim", "WebP", 3),
        ("jxl_bits_per_dim", "JXL", 3),
        ("png_set_bits_per_dim", "PNG set", 3),
        ("webp_set_bits_per_dim", "WebP set", 3),
        ("jxl_set_bits_per_dim", "JXL set", 3),
        ("encode_s_per_image_set", "enc s/img", 4),
        ("decode_s_per_image_set", "dec s/img", 4),
        ("encode_s_per_image_batch1", "enc b1", 3),
        ("decode_s_per_image_batch1", "dec b1", 3),
        ("encode_s_per_image_naive", "enc naive", 2),
        ("decode_s_per_image_naive", "dec naive", 2),
    ]
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([_fmt(r.get(k), d) if d else _fmt(r.get(k)) for k, _, d in columns])
        if r.get("naive_extrapolated"):
            cells[-1][-2:] = [cell + "*" for cell in cells[-1][-2:]]
    print_cells(cells)
    print(
        "bits/dim, header included (set: one file for all N images, for the codecs one tall image; ours/img and "
        "the codecs' plain columns: one file per image). "
        "Seconds per image: cached step on the whole set, cached at batch 1, naive step (* extrapolated)."
    )


def parse_runs(values: list[str], names: list[str]) -> dict:
    runs = {}
    for value in values or []:
        if "=" in value:
            name, path = value.split("=", 1)
        elif len(names) == 1:
            name, path = names[0], value
        else:
            raise SystemExit(f"--run {value}: with several --data, give DATA=RUN")
        if name not in DATASETS:
            raise SystemExit(f"--run {value}: unknown data set {name!r}; choose from {', '.join(DATASETS)}")
        runs[name] = path
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--data",
        nargs="+",
        choices=list(DATASETS),
        default=list(DATASETS),
        help="test splits to code (default: all three)",
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="[DATA=]RUN",
        help="a trained run folder (or its model/) for a data set, instead of training one",
    )
    parser.add_argument("--images", type=int, default=100, help="test images coded per data set (default: 100)")
    parser.add_argument(
        "--single-images",
        type=int,
        default=8,
        help="of those, coded one per file, for per-image sizes and batch-1 times (default: 8)",
    )
    parser.add_argument(
        "--naive-images", type=int, default=1, help="of those, coded with the naive step, for its times (default: 1)"
    )
    parser.add_argument(
        "--naive-limit",
        type=float,
        default=20.0,
        help="seconds: a longer naive round trip is extrapolated from one forward pass (default: %(default)s)",
    )
    parser.add_argument(
        "--train-steps", type=int, default=300, help="steps of training when no --run is given (default: 300)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training (coding uses one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work",
        default="runs/compression",
        help="folder for the trained runs, one per data set, steps and seed (reused when there)",
    )
    parser.add_argument("--out", default="runs/compression.json", help="JSON results (default: %(default)s)")
    args = parser.parse_args(argv)
    for option in ("images", "train_steps"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive integer")
    args.runs = parse_runs(args.run, args.data)

    facts = describe()
    rows = []
    for name in args.data:
        print(f"== {name}", file=sys.stderr, flush=True)
        rows.append(bench(name, args))
    print_table(rows)
    print_machine(facts)
    for row in rows:
        if row.get("jxl_note"):
            print(f"JPEG-XL skipped: {row['jxl_note']}")
            break
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": facts, "settings": {k: v for k, v in vars(args).items()}, "rows": rows}, indent=2) + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
