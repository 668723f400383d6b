"""PixelRNN against Gated PixelCNN on 28x28 binary images: training speed, peak memory, and
(optionally) test NLL on binarized mnist5k after equal training time.

    python benchmarks/pixelrnn_speed.py --threads 1
    python benchmarks/pixelrnn_speed.py --nll-minutes 5 --budget steps --threads 1

Speed: one training step = forward + backward + Adam on a batch of 32 random
binary images; the figure is the median over ``--steps`` steps after
``--warmup`` steps, in wall-clock time and in the process's CPU time (which a
busy machine disturbs less). Each configuration runs in its own subprocess, so
its peak memory (maximum resident set growth) is its own (``--in-process``
skips the subprocesses, for a quick check; the memory column then means
little).

NLL: each configuration trains unconditionally with ``pixelcnn.train`` on the
4,000 mnist5k training digits (dynamic binarization, batch ``--batch``, the
rest of the schedule of benchmarks/train_curves.py, which does the training)
for ``--nll-minutes`` and is scored on the 1,000 test digits. ``--budget
steps`` counts minutes as steps at an idle machine's speed: with ``--threads
1`` the CPU time per step measured above, else ``--step-ms`` or a timing taken
once the CPU is idle (see train_curves.py).

The configurations have about the same number of parameters: the size of the
PixelRNN paper's MNIST models (van den Oord et al., 2016, "Pixel Recurrent
Neural Networks", its MNIST experiments in section 5: 7 layers, h = 16) for the Row LSTM
and the Diagonal BiLSTM (its sections 3.1 and 3.2), and a Gated PixelCNN
("Conditional Image Generation with PixelCNN Decoders", section 2) of 7
layers whose width gives about as many. Prints a table and writes JSON to
``--out`` (default runs/pixelrnn_speed.json). The sampling speed of these
models is measured by benchmarks/sampling.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import command_line, default_out, describe, print_machine, write_json

MNIST = dict(image_shape=(1, 28, 28), levels=2)
# name -> (registry name, options); all on 28x28 binary images.
CONFIGS = {
    "rowlstm-7x16": ("row_lstm", dict(n_layers=7, hidden=16)),  # = preset rowlstm-mnist
    "diagbilstm-7x16": ("diagonal_bilstm", dict(n_layers=7, hidden=16)),  # = preset diagbilstm-mnist
    "gated-7x22": ("gated_pixelcnn", dict(n_layers=7, hidden=22)),  # about as many parameters
    "tiny-rowlstm": ("row_lstm", dict(n_layers=1, hidden=4)),  # a check that the script runs
}
DEFAULT = ["rowlstm-7x16", "diagbilstm-7x16", "gated-7x22"]


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
        "config": name,
        "model": model_name,
        **options,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "threads": torch.get_num_threads(),
        "step_s": round(wall_s, 4),
        "images_per_s": round(batch / wall_s, 1),
        "cpu_s_per_step": round(cpu_s, 4),
        "peak_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024, 1),
        "load_average": round(os.getloadavg()[0], 2),
    }


def train_for(
    name: str,
    minutes: float,
    budget: str,
    threads: int | None,
    seed: int,
    batch: int,
    step_ms: float | None,
    eval_images: int | None,
) -> dict:
    """Train one configuration on mnist5k for ``minutes`` with train_curves.py's loop and schedule."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import train_curves

    model_name, options = CONFIGS[name]
    # Unconditional, the shared schedule at this script's batch (the batch whose step time was measured).
    train_curves.CONFIGS[name] = (model_name, options, False, {"batch_size": batch})
    return train_curves.run_one(name, "mnist5k", minutes, [minutes], seed, threads, budget, step_ms, eval_images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(CONFIGS),
        help=f"configurations (default: {' '.join(DEFAULT)}; tiny-rowlstm checks the script)",
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="time in this process, not one subprocess per configuration (quick; no memory figure)",
    )
    parser.add_argument(
        "--nll-minutes",
        type=float,
        default=0.0,
        help="also train each configuration this long on mnist5k and report the test NLL",
    )
    parser.add_argument(
        "--budget",
        choices=["time", "steps"],
        default="time",
        help="--nll-minutes: real minutes, or steps at the idle machine's speed",
    )
    parser.add_argument(
        "--step-ms",
        type=float,
        help="--budget steps: milliseconds per step (default: the CPU time per step measured "
        "here with --threads 1, else timed once the CPU is idle)",
    )
    parser.add_argument("--eval-images", type=int, help="test images scored after training (default: all 1,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=default_out("pixelrnn_speed.json"), help="JSON file (default: %(default)s)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.steps, args.warmup, args.threads)))
        return 0

    from tqdm.auto import tqdm

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = describe()
    print_machine(machine)
    names = args.only or DEFAULT
    rows = []
    header = (
        f"{'config':<18} {'params':>8} {'threads':>7} {'s/step':>7} {'images/s':>9} {'CPU s/step':>10} "
        f"{'peak MB':>8} {'load':>5}"
    )
    print(header + "\n" + "-" * len(header), flush=True)
    for name in tqdm(names, desc="speed", unit="config"):
        if args.in_process:
            row = measure(name, args.batch, args.steps, args.warmup, args.threads)
            row["peak_mb"] = None
        else:
            command = [
                sys.executable,
                __file__,
                "--child",
                name,
                "--batch",
                str(args.batch),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
            ] + (["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        peak = "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
        tqdm.write(
            f"{name:<18} {row['parameters']:>8,d} {row['threads']:>7} {row['step_s']:>7.3f} "
            f"{row['images_per_s']:>9.1f} {row['cpu_s_per_step']:>10.3f} {peak:>8} "
            f"{row['load_average']:>5.1f}"
        )

    training = {}
    if args.nll_minutes > 0:
        print(
            f"\ntest NLL (nats) on binarized mnist5k after {args.nll_minutes:g} minutes of training "
            f"({args.budget} budget)",
            flush=True,
        )
        for name, row in zip(names, rows):
            # Steps budget with one thread: the CPU time per step measured above is the step
            # time of an idle machine, so no need to wait for one.
            step_ms = args.step_ms
            if step_ms is None and args.budget == "steps" and row["threads"] == 1:
                step_ms = 1000 * row["cpu_s_per_step"]
            run = train_for(
                name, args.nll_minutes, args.budget, args.threads, args.seed, args.batch, step_ms, args.eval_images
            )
            training[name] = run
            print(
                f"{name:<18} {run['final_nll']:>8.2f} +- {run['final_stderr']:.2f}   "
                f"{run['steps']} steps, {run['images_per_second']:.0f} images/s",
                flush=True,
            )

    write_json(
        args.out, {"machine": machine, "speed": rows, "nll_after_equal_training": training, "command": command_line()}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
