"""Training throughput of each model under each precision and compile setting, side by side.

    python benchmarks/train_speed.py --out runs/train_speed.json
    python benchmarks/train_speed.py --only gated-10x128 pixelcnn-6x32-k5 --settings fp32 bf16 bf16+compile

One training step = forward (under the setting's autocast), backward and an
Adam step on a batch of random images of the configuration's shape; the
figure is the median over ``--steps`` steps after ``--warmup`` steps (the
first of which compiles, for a ``+compile`` setting: its time is the
``first_step_s`` column, compile time included). Settings: ``fp32`` (float32,
eager), ``bf16`` (bfloat16 autocast, eager), ``bf16+compile``, ``fp32+compile``,
and ``auto`` (what ``--precision auto --compile auto`` picks on this machine
for a long run). ``--channels-last`` runs every setting with the model and
the images in channels-last memory order. Each (configuration, setting) runs
in a fresh subprocess with its own empty compile cache, so its peak memory
(the process's maximum resident set on CPU, or ``torch.cuda.max_memory_allocated``
on CUDA) and its compile time are its own (``--in-process`` skips the
subprocesses, for a quick check; the memory column then means little).
Prints the CPU model and its bf16 capability, a table with each setting's
speed against float32 eager, and writes JSON to ``--out`` (default
runs/train_speed.json).

Models: PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural
Networks", section 3.5) and the Gated PixelCNN ("Conditional Image Generation
with PixelCNN Decoders", section 2; ``-class``: conditioned on a label as in
its equation 4).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import command_line, default_out, describe, print_cells, print_machine, write_json

# name -> (registry or preset name, config overrides, batch). 28x28 binary images unless said otherwise.
MNIST = dict(image_shape=(1, 28, 28), levels=2)
CONFIGS = {
    "gated-10x128": ("gated_pixelcnn", dict(**MNIST, n_layers=10, hidden=128, kernel_size=3), 32),
    "pixelcnn-6x32-k5": ("pixelcnn", dict(**MNIST, n_layers=6, hidden=32, kernel_size=5), 16),
    "pixelcnn-12x32-k5": ("pixelcnn", dict(**MNIST, n_layers=12, hidden=32, kernel_size=5), 16),
    "gated-4x32-k5": ("gated_pixelcnn", dict(**MNIST, n_layers=4, hidden=32, kernel_size=5), 16),
    "gated-15x64": ("gated_pixelcnn", dict(**MNIST, n_layers=15, hidden=64, kernel_size=3), 32),
    "gated-8x64-k5": ("gated_pixelcnn", dict(**MNIST, n_layers=8, hidden=64, kernel_size=5, input_kernel_size=7), 32),
    "pixelcnn-7x32": ("pixelcnn", dict(**MNIST, n_layers=7, hidden=32), 32),
    "pixelcnn-15x64": ("pixelcnn", dict(**MNIST, n_layers=15, hidden=64), 32),
    "gated-10x128-class": ("gated_pixelcnn", dict(**MNIST, n_layers=10, hidden=128, kernel_size=3, num_classes=10), 32),
    "tiny-gated": ("tiny-gated", {}, 32),  # 8x8 binary: checks the script in seconds
}
DEFAULT = ["gated-10x128", "pixelcnn-6x32-k5", "gated-4x32-k5"]
# setting -> (--precision, --compile) of a long training run
SETTINGS = {
    "fp32": ("fp32", "off"),
    "bf16": ("bf16", "off"),
    "bf16+compile": ("bf16", "on"),
    "fp32+compile": ("fp32", "on"),
    "auto": ("auto", "auto"),
}
DEFAULT_SETTINGS = ["fp32", "bf16", "bf16+compile"]
LONG_RUN_STEPS = 10**6  # what "auto" compile is asked about: a long training run


def cpu_seconds() -> float:
    """CPU time of this process (``time.process_time``: to the microsecond; ``os.times`` ticks every 10 ms,
    longer than a tiny model's step) and of the children it waited for (the C++ compiler that torch.compile
    runs, whose time only ``os.times`` reports)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


CLOCKS = {"wall": time.perf_counter, "cpu": cpu_seconds}


def measure(
    name: str,
    setting: str,
    batch: int,
    steps: int,
    warmup: int,
    device: str,
    channels_last: bool = False,
    clock: str = "wall",
) -> dict:
    """Run in the child process: time ``steps`` training steps of one configuration under one setting."""
    import torch

    import pixelcnn
    from pixelcnn.hardware import choose_compile, choose_precision

    torch.manual_seed(0)
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model_name, overrides, _ = CONFIGS[name]
    model = pixelcnn.build(model_name, **overrides).to(device)
    precision = choose_precision(SETTINGS[setting][0], device)
    compiled, _ = choose_compile(SETTINGS[setting][1], device, planned_steps=LONG_RUN_STEPS, precision=precision.name)
    C, H, W = model.image_shape
    x = torch.randint(0, model.levels, (batch, C, H, W), device=device)
    y = torch.randint(0, model.config.num_classes, (batch,), device=device) if model.config.num_classes else None
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    loss_fn = torch.compile(model.loss, dynamic=False) if compiled else model.loss
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = CLOCKS[clock]()
        with precision.autocast():
            loss = loss_fn(x, y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(CLOCKS[clock]() - start)
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024
    step_s = statistics.median(times[warmup:])
    return {
        "config": name,
        "setting": setting,
        "precision": precision.name,
        "compile": compiled,
        "channels_last": channels_last,
        "clock": clock,
        "threads": torch.get_num_threads(),
        "model": model_name,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "device": device,
        "first_step_s": round(times[0], 3),
        "step_s": round(step_s, 4),
        "images_per_s": round(batch / max(step_s, 1e-9), 2),
        "peak_mb": round(peak_mb, 1),
        "step_times_s": [round(t, 4) for t in times],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(CONFIGS),
        help=f"configurations (default: {' '.join(DEFAULT)}; tiny-gated checks the script)",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=list(SETTINGS),
        default=DEFAULT_SETTINGS,
        help=f"precision / compile settings (default: {' '.join(DEFAULT_SETTINGS)})",
    )
    parser.add_argument("--batch", type=int, help="images per step (default: each configuration's, 32 or 16)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--channels-last", action="store_true", help="model and images in channels-last order")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall-clock time, or the CPU time of the process and the compilers it ran (steadier on a shared machine)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="time in this process, not one subprocess per configuration (quick; no memory figure)",
    )
    parser.add_argument(
        "--out", type=Path, default=default_out("train_speed.json"), help="JSON file (default: %(default)s)"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        print(
            json.dumps(
                measure(*args.child, args.batch, args.steps, args.warmup, args.device, args.channels_last, args.clock)
            )
        )
        return 0

    from tqdm.auto import tqdm

    machine = describe()
    print_machine(machine)
    rows = []
    jobs = [(name, setting) for name in args.only or DEFAULT for setting in args.settings]
    for name, setting in tqdm(jobs, desc="train speed", unit="run"):
        batch = args.batch or CONFIGS[name][2]
        if args.in_process:
            row = {
                **measure(name, setting, batch, args.steps, args.warmup, args.device, args.channels_last, args.clock),
                "peak_mb": None,
            }
        else:
            flags = (
                [
                    "--batch",
                    str(batch),
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                    "--device",
                    args.device,
                    "--clock",
                    args.clock,
                ]
                + (["--channels-last"] if args.channels_last else [])
                + (["--threads", str(args.threads)] if args.threads else [])
            )
            # A cold compile (no cache of an earlier run), in the process (its CPU time counts it).
            with tempfile.TemporaryDirectory() as cache:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", name, setting, *flags],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TORCHINDUCTOR_COMPILE_THREADS": "1"},
                )
            row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
    print_table(rows)
    write_json(args.out, {"machine": machine, "command": command_line(), "results": rows})
    return 0


def print_table(rows: list[dict]) -> None:
    """One line per (configuration, setting), with its speed against the configuration's fp32 eager row."""
    base = {row["config"]: row["images_per_s"] for row in rows if row["setting"] == "fp32"}
    for row in rows:
        if row["config"] in base:
            row["vs_fp32"] = round(row["images_per_s"] / base[row["config"]], 2)
    print(f"seconds of {rows[0]['clock']} time, {rows[0]['threads']} thread(s)" if rows else "no rows")
    cells = [["config", "setting", "params", "batch", "first step s", "s/step", "images/s", "x fp32", "peak MB"]]
    for row in rows:
        cells.append(
            [
                row["config"],
                row["setting"],
                f"{row['parameters']:,d}",
                str(row["batch"]),
                f"{row['first_step_s']:.1f}",
                f"{row['step_s']:.3f}",
                f"{row['images_per_s']:.1f}",
                f"{row['vs_fp32']:.2f}" if "vs_fp32" in row else "-",
                "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}",
            ]
        )
    print_cells(cells)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
