"""Training throughput and peak memory of each model at a few sizes.

    python benchmarks/train_speed.py --out runs/train_speed.json
    python benchmarks/train_speed.py --only gated-10x128 --steps 20

One training step = forward + backward + Adam step on a batch of random
images of the configuration's shape; the figure is the median over ``--steps``
steps after ``--warmup`` steps. Each configuration runs in a fresh subprocess,
so its peak memory (the process's maximum resident set on CPU, or
``torch.cuda.max_memory_allocated`` on CUDA) is its own (``--in-process``
skips the subprocesses, for a quick check; the memory column then means
little). Prints a table and writes JSON to ``--out`` (default
runs/train_speed.json).

Models: PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural
Networks", section 3.5) and the Gated PixelCNN ("Conditional Image Generation
with PixelCNN Decoders", section 2; ``-class``: conditioned on a label as in
its equation 4).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import command_line, default_out, describe, print_machine, write_json

# name -> (registry or preset name, config overrides). 28x28 binary images unless said otherwise.
MNIST = dict(image_shape=(1, 28, 28), levels=2)
CONFIGS = {
    "gated-10x128": ("gated_pixelcnn", dict(**MNIST, n_layers=10, hidden=128, kernel_size=3)),
    "gated-15x64": ("gated_pixelcnn", dict(**MNIST, n_layers=15, hidden=64, kernel_size=3)),
    "gated-8x64-k5": ("gated_pixelcnn", dict(**MNIST, n_layers=8, hidden=64, kernel_size=5, input_kernel_size=7)),
    "pixelcnn-7x32": ("pixelcnn", dict(**MNIST, n_layers=7, hidden=32)),
    "pixelcnn-15x64": ("pixelcnn", dict(**MNIST, n_layers=15, hidden=64)),
    "gated-10x128-class": ("gated_pixelcnn", dict(**MNIST, n_layers=10, hidden=128, kernel_size=3, num_classes=10)),
    "tiny-gated": ("tiny-gated", {}),                 # 8x8 binary: checks the script in seconds
}
DEFAULT = [name for name in CONFIGS if not name.startswith("tiny")]


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
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS),
                        help=f"configurations (default: {' '.join(DEFAULT)}; tiny-gated checks the script)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--in-process", action="store_true",
                        help="time in this process, not one subprocess per configuration (quick; no memory figure)")
    parser.add_argument("--out", type=Path, default=default_out("train_speed.json"),
                        help="JSON file (default: %(default)s)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.steps, args.warmup, args.device)))
        return 0

    from tqdm.auto import tqdm

    machine = describe()
    print_machine(machine)
    rows = []
    header = f"{'config':<20} {'params':>10} {'batch':>5} {'s/step':>8} {'images/s':>9} {'peak MB':>8}"
    print(header + "\n" + "-" * len(header), flush=True)
    for name in tqdm(args.only or DEFAULT, desc="train speed", unit="config"):
        if args.in_process:
            row = {**measure(name, args.batch, args.steps, args.warmup, args.device), "peak_mb": None}
        else:
            out = subprocess.run([sys.executable, __file__, "--child", name, "--batch", str(args.batch),
                                  "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        peak = "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
        tqdm.write(f"{name:<20} {row['parameters']:>10,d} {row['batch']:>5} {row['step_s']:>8.3f} "
                   f"{row['images_per_s']:>9.2f} {peak:>8}")
    write_json(args.out, {"machine": machine, "command": command_line(), "results": rows})
    return 0


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
