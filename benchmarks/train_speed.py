"""Training throughput and peak memory of each model at a few sizes.

    python benchmarks/train_speed.py                 # the default table (a few minutes on 2 cores)
    python benchmarks/train_speed.py --only gated-10x128 --steps 20

One training step = forward + backward + Adam step on a batch of random
images of the configuration's shape; the figure is the median over ``--steps``
steps after ``--warmup`` steps. Each configuration runs in a fresh subprocess,
so its peak memory (the process's maximum resident set on CPU, or
``torch.cuda.max_memory_allocated`` on CUDA) is its own. Prints a table and
writes JSON to benchmarks/results/train_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# name -> (registry or preset name, config overrides). 28x28 binary images unless said otherwise.
MNIST = dict(image_shape=(1, 28, 28), levels=2)
CONFIGS = {
    "gated-10x128": ("gated_pixelcnn", dict(**MNIST, n_layers=10, hidden=128, kernel_size=3)),
    "gated-15x64": ("gated_pixelcnn", dict(**MNIST, n_layers=15, hidden=64, kernel_size=3)),
    "gated-8x64-k5": ("gated_pixelcnn", dict(**MNIST, n_layers=8, hidden=64, kernel_size=5, input_kernel_size=7)),
    "pixelcnn-7x32": ("pixelcnn", dict(**MNIST, n_layers=7, hidden=32)),
    "pixelcnn-15x64": ("pixelcnn", dict(**MNIST, n_layers=15, hidden=64)),
    "gated-10x128-class": ("gated_pixelcnn", dict(**MNIST, n_layers=10, hidden=128, kernel_size=3, num_classes=10)),
}
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.json"


def measure(name: str, batch: int, steps: int, warmup: int, device: str) -> dict:
    """Run in the child process: time ``steps`` training steps of one configuration."""
    import torch

    import pixelcnn

    torch.manual_seed(0)
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model_name, overrides = CONFIGS[name]
    model = pixelcnn.build(model_name, **overrides).to(device)
    C, H, W = model.image_shape
    x = torch.randint(0, model.levels, (batch, C, H, W), device=device)
    y = torch.randint(0, model.config.num_classes, (batch,), device=device) if model.config.num_classes else None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = -model.log_prob(x, y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024
    step_s = statistics.median(times)
    return {
        "config": name, "model": model_name, **{k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "parameters": sum(p.numel() for p in model.parameters()), "batch": batch, "device": device,
        "step_s": round(step_s, 4), "images_per_s": round(batch / step_s, 2), "peak_mb": round(peak_mb, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="configurations to run (default: all)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.steps, args.warmup, args.device)))
        return 0

    rows = []
    header = f"{'config':<20} {'params':>10} {'batch':>5} {'s/step':>8} {'images/s':>9} {'peak MB':>8}"
    print(header + "\n" + "-" * len(header))
    for name in args.only or list(CONFIGS):
        out = subprocess.run([sys.executable, __file__, "--child", name, "--batch", str(args.batch),
                              "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{name:<20} {row['parameters']:>10,d} {row['batch']:>5} {row['step_s']:>8.3f} "
              f"{row['images_per_s']:>9.2f} {row['peak_mb']:>8.0f}", flush=True)
    import torch
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(), "processor": platform.processor()},
        "results": rows}, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
