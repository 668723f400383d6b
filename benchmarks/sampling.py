"""Sampling speed: naive vs fast (cached) generation, and fast vs one forward pass.

    python benchmarks/sampling.py                       # every model with a fast sampler, batch 1, 16, 64
    python benchmarks/sampling.py --only gated-mnist --batches 16

For each configuration and batch size: seconds per image of naive sampling
(one full forward pass per pixel-channel; extrapolated from ``--naive-steps``
steps when a full run would take too long, and marked so), of fast sampling
(a full run), their ratio, and the ratio of fast sampling to one full forward
pass at the same batch (the floor: every activation computed once).
Prints a table and writes JSON to benchmarks/results/sampling.json (rows of earlier
runs that this one does not measure again are kept).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import pixelcnn
from pixelcnn.sampling import naive_generate

RESULTS = Path(__file__).resolve().parent / "results" / "sampling.json"
# name -> (preset or model name, overrides)
CONFIGS = {
    "gated-mnist": ("gated-mnist", {}),                              # 10 x 128, 28x28 binary
    "gated-cifar10": ("gated-cifar10", {}),                          # 15 x 128, 5x5, 3x32x32, 256 levels
    "pixelcnn-mnist": ("pixelcnn-mnist", {}),
    "pixelcnn-cifar10": ("pixelcnn-cifar10", {}),
    "row_lstm-mnist": ("rowlstm-mnist", {}),
    "diagonal_bilstm-mnist": ("diagbilstm-mnist", {}),
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def bench(name: str, batch: int, naive_steps: int, naive_full_limit_s: float, device: torch.device) -> dict:
    model_name, overrides = CONFIGS[name]
    model = pixelcnn.build(model_name, **overrides).to(device).eval()
    C, H, W = model.image_shape
    x = torch.zeros(batch, C, H, W, dtype=torch.long, device=device)
    model(x)                                                              # warm-up
    forward_s = statistics.median(_timed(lambda: model(x), device) for _ in range(3))
    total_steps = C * H * W
    generator = torch.Generator().manual_seed(0)

    # Naive: time a few steps (each is one full forward pass + a draw); run fully only when cheap.
    steps = min(total_steps, naive_steps)
    step_s = _timed(lambda: [model.head.sample(model._params(x, None)[:, 0, :, 0, 0], generator=generator)
                             for _ in range(steps)], device) / steps
    naive_s = step_s * total_steps
    extrapolated = True
    if naive_s < naive_full_limit_s:
        naive_s = _timed(lambda: naive_generate(model, x.clone(), 0, None, generator=generator), device)
        extrapolated = False

    methods = model.sampling_methods()
    fast_s = None
    if "fast" in methods:
        fast_s = _timed(lambda: model.sample(batch, generator=generator, method="fast"), device)
    return {
        "config": name, "model": model.name, "image_shape": list(model.image_shape), "levels": model.levels,
        "parameters": sum(p.numel() for p in model.parameters()), "batch": batch, "device": str(device),
        "forward_s": round(forward_s, 4), "naive_s_per_image": round(naive_s / batch, 3),
        "naive_extrapolated": extrapolated,
        "fast_s_per_image": None if fast_s is None else round(fast_s / batch, 4),
        "naive_over_fast": None if fast_s is None else round(naive_s / fast_s, 1),
        "fast_over_forward": None if fast_s is None else round(fast_s / forward_s, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 16, 64])
    parser.add_argument("--naive-steps", type=int, default=5, help="naive steps timed for extrapolation")
    parser.add_argument("--naive-full-limit", type=float, default=30.0,
                        help="run naive sampling fully when it would take less than this many seconds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    available = set(pixelcnn.presets) | set(pixelcnn.list_models())
    rows = []
    header = (f"{'config':<22} {'batch':>5} {'forward s':>9} {'naive s/img':>12} {'fast s/img':>10} "
              f"{'naive/fast':>10} {'fast/fwd':>8}")
    print(header + "\n" + "-" * len(header))
    for name in args.only or list(CONFIGS):
        if CONFIGS[name][0] not in available:
            print(f"{name:<22} (not built in this version)")
            continue
        for batch in args.batches:
            row = bench(name, batch, args.naive_steps, args.naive_full_limit, device)
            rows.append(row)
            naive = f"{row['naive_s_per_image']:.2f}{'*' if row['naive_extrapolated'] else ' '}"
            fast = "-" if row["fast_s_per_image"] is None else f"{row['fast_s_per_image']:.3f}"
            ratio = "-" if row["naive_over_fast"] is None else f"{row['naive_over_fast']:.0f}x"
            floor = "-" if row["fast_over_forward"] is None else f"{row['fast_over_forward']:.2f}"
            print(f"{name:<22} {batch:>5} {row['forward_s']:>9.3f} {naive:>12} {fast:>10} {ratio:>10} {floor:>8}",
                  flush=True)
    print("* naive time extrapolated from its first steps (one full forward pass each)")
    # Keep the rows of earlier runs that this one did not measure again (another --only, another batch).
    measured = {(row["config"], row["batch"], row["device"]) for row in rows}
    earlier = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    kept = [row for row in earlier if (row["config"], row["batch"], row["device"]) not in measured]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "results": kept + rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
