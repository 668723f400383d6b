"""PixelRNN against Gated PixelCNN on 28x28 binary images: training speed, peak memory, and
(optionally) test NLL on binarized mnist5k after equal training time.

    python benchmarks/pixelrnn_speed.py                        # speed and memory (a few minutes on 2 cores)
    python benchmarks/pixelrnn_speed.py --threads 1            # the same with one torch thread
    python benchmarks/pixelrnn_speed.py --nll-minutes 10       # + 10 minutes of training each, test NLL
    python benchmarks/pixelrnn_speed.py --nll-minutes 10 --budget steps --threads 1   # on a shared machine

Speed: one training step = forward + backward + Adam on a batch of 32 random
binary images; the figure is the median over ``--steps`` steps after
``--warmup`` steps, in wall-clock time and in the process's CPU time (which a
busy machine disturbs less: on 2 cores shared with other jobs, wall-clock
time measures them as much as the model). Each configuration runs in its own
subprocess, so its peak memory (maximum resident set growth) is its own.

NLL: each configuration trains with ``pixelcnn.train`` on the 4,000 mnist5k
training digits (dynamic binarization, batch 32, the schedule of
``benchmarks/train_curves.py``, which does the training) for ``--nll-minutes``
and is scored on the 1,000 test digits. ``--budget steps`` counts minutes as
steps at an idle machine's speed: with ``--threads 1`` the CPU time per step
measured above, otherwise timed once the CPU is idle (see that script).

The configurations have about the same number of parameters: the PixelRNN
paper's MNIST size (7 layers, h = 16) for both LSTMs, and a Gated PixelCNN
of 7 layers whose width gives about as many. Prints a table and writes JSON
to benchmarks/results/pixelrnn_speed.json.
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

RESULTS = Path(__file__).resolve().parent / "results" / "pixelrnn_speed.json"
MNIST = dict(image_shape=(1, 28, 28), levels=2)
# name -> (registry name, options); all on 28x28 binary images.
CONFIGS = {
    "rowlstm-7x16": ("row_lstm", dict(n_layers=7, hidden=16)),            # = preset rowlstm-mnist
    "diagbilstm-7x16": ("diagonal_bilstm", dict(n_layers=7, hidden=16)),  # = preset diagbilstm-mnist
    "gated-7x22": ("gated_pixelcnn", dict(n_layers=7, hidden=22)),        # about as many parameters
}


def measure(name: str, batch: int, steps: int, warmup: int, threads: int | None) -> dict:
    """In the child process: time training steps of one configuration."""
    import torch

    import pixelcnn

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model_name, options = CONFIGS[name]
    model = pixelcnn.build(model_name, **MNIST, **options)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randint(0, 2, (batch, 1, 28, 28))
    wall, cpu = [], []
    for step in range(warmup + steps):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        loss = -model.log_prob(images).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            wall.append(time.perf_counter() - started_wall)
            cpu.append(time.process_time() - started_cpu)
    wall_s, cpu_s = statistics.median(wall), statistics.median(cpu)
    return {
        "config": name, "model": model_name, **options,
        "parameters": sum(p.numel() for p in model.parameters()), "batch": batch,
        "threads": torch.get_num_threads(), "step_s": round(wall_s, 4), "images_per_s": round(batch / wall_s, 1),
        "cpu_s_per_step": round(cpu_s, 4),
        "peak_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024, 1),
        "load_average": round(os.getloadavg()[0], 2),
    }


def train_for(name: str, minutes: float, budget: str, threads: int | None, seed: int,
              step_s: float | None) -> dict:
    """Train one configuration on mnist5k for ``minutes`` with train_curves.py's loop and schedule."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import train_curves

    model_name, options = CONFIGS[name]
    train_curves.CONFIGS[name] = (model_name, options, False, {})        # unconditional, the shared schedule
    step_ms = None if step_s is None else 1000 * step_s
    return train_curves.run_one(name, minutes, [minutes], seed, threads, budget, step_ms)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS), help="configurations (default: all)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--nll-minutes", type=float, default=0.0,
                        help="also train each configuration this long on mnist5k and report the test NLL")
    parser.add_argument("--budget", choices=["time", "steps"], default="time",
                        help="--nll-minutes: real minutes, or steps at the idle machine's speed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.steps, args.warmup, args.threads)))
        return 0

    names = args.only or list(CONFIGS)
    rows = []
    header = (f"{'config':<18} {'params':>8} {'threads':>7} {'s/step':>7} {'images/s':>9} {'CPU s/step':>10} "
              f"{'peak MB':>8} {'load':>5}")
    print(header + "\n" + "-" * len(header))
    for name in names:
        command = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--steps",
                   str(args.steps), "--warmup", str(args.warmup)] + (["--threads", str(args.threads)]
                                                                     if args.threads else [])
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{name:<18} {row['parameters']:>8,d} {row['threads']:>7} {row['step_s']:>7.3f} "
              f"{row['images_per_s']:>9.1f} {row['cpu_s_per_step']:>10.3f} {row['peak_mb']:>8.0f} "
              f"{row['load_average']:>5.1f}", flush=True)

    training = {}
    if args.nll_minutes > 0:
        print(f"\ntest NLL (nats) on binarized mnist5k after {args.nll_minutes:g} minutes of training "
              f"({args.budget} budget)")
        for name, row in zip(names, rows):
            # Steps budget with one thread: the CPU time per step measured above is the step
            # time of an idle machine, so no need to wait for one.
            step_s = row["cpu_s_per_step"] if args.budget == "steps" and row["threads"] == 1 else None
            run = train_for(name, args.nll_minutes, args.budget, args.threads, args.seed, step_s)
            training[name] = run
            print(f"{name:<18} {run['final_nll']:>8.2f} +- {run['final_stderr']:.2f}   "
                  f"{run['steps']} steps, {run['images_per_second']:.0f} images/s", flush=True)

    import torch
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
                    "processor": platform.processor()},
        "speed": rows, "nll_after_equal_training": training,
        "command": "python benchmarks/pixelrnn_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
