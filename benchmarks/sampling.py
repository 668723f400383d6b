"""Sampling speed: naive against fast (cached) generation, and fast against one forward pass.

    python benchmarks/sampling.py --out runs/sampling.json
    python benchmarks/sampling.py --only gated-mnist --batches 16
    python benchmarks/sampling.py --only gated-mnist --batches 16 --precisions fp32 bf16 --naive-rows 0

For each configuration and batch size: seconds per image of naive sampling
(one full forward pass per pixel-channel, the sampling procedure of van den
Oord et al., 2016, "Pixel Recurrent Neural Networks", section 2.1; extrapolated
from the last ``--naive-rows`` rows when a full run would take longer than
``--naive-full-limit`` seconds, and marked so), of fast sampling (cached
incremental generation, a full run), their ratio, and the ratio of fast
sampling to one full forward pass at the same batch (the floor: every
activation computed once). Prints a table and writes JSON to ``--out``
(default runs/sampling.json; rows of earlier runs in that file that this one
does not measure again are kept). ``--precisions``: each run again with the
network under that autocast (``pixelcnn.hardware``: "bf16" on a CPU with or
without bf16 units, "fp16" on CUDA; "auto" is what ``sample`` picks, float32
for the cached sampler on a CPU), side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import pixelcnn
from machine import command_line, default_out, describe, print_machine, write_json
from pixelcnn.hardware import PRECISIONS, choose_precision

# name -> (preset or model name, overrides)
CONFIGS = {
    "gated-mnist": ("gated-mnist", {}),  # 10 x 128, 28x28 binary
    "gated-cifar10": ("gated-cifar10", {}),  # 15 x 128, 5x5, 3x32x32, 256 levels
    "pixelcnn-mnist": ("pixelcnn-mnist", {}),
    "pixelcnn-cifar10": ("pixelcnn-cifar10", {}),
    "row_lstm-mnist": ("rowlstm-mnist", {}),
    "diagonal_bilstm-mnist": ("diagbilstm-mnist", {}),
    "multiscale-mnist": ("multiscale-mnist", {}),  # Diagonal BiLSTM 7 x 16 at both scales
    "pixelcnnpp-cifar10": ("pixelcnnpp-cifar10", {}),  # PixelCNN++, 53.7M parameters, 10 mixtures
    "tiny-gated": ("tiny-gated", {}),  # 8x8 binary: checks the script in seconds
    "tiny-pixelcnnpp": ("tiny-pixelcnnpp", {}),  # 8x8 binary PixelCNN++: checks its cache
}
DEFAULT = [name for name in CONFIGS if not name.startswith(("tiny", "pixelcnnpp"))]  # PixelCNN++: --only


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]  # --clock: the process's CPU time is less disturbed by other jobs


def _timed(fn, device) -> float:
    _sync(device)
    start = clock()
    fn()
    _sync(device)
    return clock() - start


@torch.no_grad()
def bench(
    name: str,
    batch: int,
    naive_rows: int,
    naive_full_limit_s: float,
    device: torch.device,
    repeats: int = 1,
    precision: str = "fp32",
) -> dict:
    """Forward, naive and fast sampling times (seconds of ``clock``) of one configuration at one batch size.

    ``repeats`` > 1: the forward pass and fast sampling are each the least of that many runs (the
    forward pass of three times as many), the least disturbed by other jobs; 1: the median of three
    forward passes and one fast run. ``precision``: the autocast of the forward pass and of both samplers."""
    model_name, overrides = CONFIGS[name]
    model = pixelcnn.build(model_name, **overrides).to(device).eval()
    C, H, W = model.image_shape
    x = torch.zeros(batch, C, H, W, dtype=torch.long, device=device)
    autocast = choose_precision(precision, device).autocast

    def forward():
        with autocast():
            model(x)

    forward()  # warm-up
    forward_runs = [_timed(forward, device) for _ in range(3 * repeats)]
    forward_s = statistics.median(forward_runs) if repeats == 1 else min(forward_runs)
    generator = torch.Generator(device).manual_seed(0)

    # Naive: every step is one full forward pass of the batch and a draw, whatever pixel it draws,
    # so the time of the last rows ([B, C, rows, W] pixel-channels) extrapolates linearly.
    naive_s, extrapolated = None, False
    if naive_rows > 0:
        rows = min(H, naive_rows)
        rows_s = _timed(
            lambda: model.complete(x, known_rows=H - rows, generator=generator, method="naive", precision=precision),
            device,
        )
        naive_s = rows_s * H / rows
        extrapolated = rows < H
        if extrapolated and naive_s < naive_full_limit_s:
            naive_s = _timed(
                lambda: model.sample(batch, generator=generator, method="naive", precision=precision), device
            )
            extrapolated = False

    try:
        fast_s = min(
            _timed(lambda: model.sample(batch, generator=generator, method="fast", precision=precision), device)
            for _ in range(repeats)
        )
    except ValueError:  # no cached sampler for this model
        fast_s = None
    return {
        "config": name,
        "clock": "cpu" if clock is time.process_time else "wall",
        "model": model.name,
        "image_shape": list(model.image_shape),
        "levels": model.levels,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "device": str(device),
        "repeats": repeats,
        "precision": precision,
        "forward_s": round(forward_s, 4),
        "naive_s_per_image": None if naive_s is None else round(naive_s / batch, 3),
        "naive_extrapolated": extrapolated,
        "fast_s_per_image": None if fast_s is None else round(fast_s / batch, 4),
        "naive_over_fast": None if fast_s is None or naive_s is None else round(naive_s / fast_s, 1),
        "fast_over_forward": None if fast_s is None else round(fast_s / forward_s, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(CONFIGS),
        help=f"configurations (default: {' '.join(DEFAULT)}; tiny-gated checks the script)",
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64], help="batch sizes (default: 1 16 64)")
    parser.add_argument(
        "--naive-rows",
        type=int,
        default=1,
        help="rows of naive sampling timed to extrapolate (0: no naive sampling, only fast against one forward pass)",
    )
    parser.add_argument(
        "--naive-full-limit",
        type=float,
        default=30.0,
        help="run naive sampling fully when it would take less than this many seconds",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time the forward pass and fast sampling this many times and keep the least "
        "(steadier on a shared machine; default 1: the median of 3 forward passes, one fast run)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=["fp32"],
        help="run each configuration under each of these precisions (default: fp32)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall-clock time, or the process's CPU time (steadier on a shared machine)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out("sampling.json"),
        help="JSON file (default: %(default)s; the committed results are benchmarks/results/sampling.json)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    from tqdm.auto import tqdm

    machine = describe()
    print_machine(machine)
    names = args.only or DEFAULT
    rows = []
    header = (
        f"{'config':<22} {'precision':>9} {'batch':>5} {'forward s':>9} {'naive s/img':>12} "
        f"{'fast s/img':>10} {'naive/fast':>10} {'fast/fwd':>8}"
    )
    print(f"seconds of {args.clock} time\n" + header + "\n" + "-" * len(header), flush=True)
    for precision in args.precisions:  # an impossible one (fp16 on a CPU) stops before any run
        try:
            choose_precision(precision, device)
        except ValueError as error:
            parser.error(f"--precisions: {error}")
    runs = [(name, batch, precision) for name in names for batch in args.batches for precision in args.precisions]
    for name, batch, precision in tqdm(runs, desc="sampling", unit="run"):
        row = bench(name, batch, args.naive_rows, args.naive_full_limit, device, args.repeats, precision)
        rows.append(row)
        naive = (
            "- "
            if row["naive_s_per_image"] is None
            else f"{row['naive_s_per_image']:.2f}{'*' if row['naive_extrapolated'] else ' '}"
        )
        fast = "-" if row["fast_s_per_image"] is None else f"{row['fast_s_per_image']:.3f}"
        ratio = "-" if row["naive_over_fast"] is None else f"{row['naive_over_fast']:.0f}x"
        floor = "-" if row["fast_over_forward"] is None else f"{row['fast_over_forward']:.2f}"
        tqdm.write(
            f"{name:<22} {precision:>9} {batch:>5} {row['forward_s']:>9.3f} {naive:>12} {fast:>10} {ratio:>10} "
            f"{floor:>8}"
        )
    print("* naive time extrapolated from its last rows (one full forward pass per pixel-channel)")

    # Keep the rows of earlier runs that this one did not measure again (another --only, another batch).
    def key(row):
        return row["config"], row["batch"], row["device"], row.get("clock", "wall"), row.get("precision", "fp32")

    measured = {key(row) for row in rows}
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {"results": []}
    kept = [row for row in earlier["results"] if key(row) not in measured]
    for row in kept:  # a kept row says which machine and command measured it
        row.setdefault("machine", earlier.get("machine"))
        row.setdefault("command", earlier.get("command"))
    write_json(args.out, {"machine": machine, "command": command_line(), "results": kept + rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
