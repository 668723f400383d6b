"""Fast sampling of two source trees, interleaved: is one slower than the other by more than the noise?

    python benchmarks/sampling_ab.py --before /tmp/old/src --after src --out runs/sampling_ab.json

Runs ``benchmarks/sampling.py`` (fast sampling only: ``--naive-rows 0``, the process's CPU time,
one thread, the least of ``--repeats`` runs) once per round for each tree, alternating A B A B ...
(B A in odd rounds), each in its own process with the tree's ``src`` first on PYTHONPATH, so that
both see the same machine load over time. Per configuration and batch it prints the median over
the rounds of each tree, their ratio (after / before), and the noise: the largest spread
(max / min over the rounds) of either tree. A ratio within the noise is no change.
Written to compare the cached steps before and after their plans became named fields (issue 25).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import REPO, command_line, default_out, describe, print_machine, write_json

SCRIPT = REPO / "benchmarks" / "sampling.py"
DEFAULT = [
    "pixelcnn-mnist",
    "gated-mnist",
    "row_lstm-mnist",
    "diagonal_bilstm-mnist",
    "multiscale-mnist",
    "tiny-pixelcnnpp",
    "pixelcnn-cifar10",
    "gated-cifar10",
]


def _imported_from(src: Path) -> str:
    """The pixelcnn package a process with ``src`` first on PYTHONPATH imports (checked: not another tree)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", "import pixelcnn; print(pixelcnn.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"sampling_ab.py: with PYTHONPATH={src}, pixelcnn comes from {out}")
    return out


def _run(src: Path, args, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [
        sys.executable,
        str(SCRIPT),
        "--only",
        *args.only,
        "--batches",
        *map(str, args.batches),
        "--naive-rows",
        "0",
        "--clock",
        "cpu",
        "--threads",
        "1",
        "--repeats",
        str(args.repeats),
        "--out",
        str(out),
    ]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the src folder of the tree before")
    parser.add_argument("--after", type=Path, required=True, help="the src folder of the tree after")
    parser.add_argument("--only", nargs="+", default=DEFAULT, help=f"configurations (default: {' '.join(DEFAULT)})")
    parser.add_argument("--batches", nargs="+", type=int, default=[1])
    parser.add_argument("--rounds", type=int, default=4, help="runs of each tree, interleaved (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="sampling.py --repeats (default 3)")
    parser.add_argument("--out", type=Path, default=default_out("sampling_ab.json"))
    parser.add_argument(
        "--runs",
        type=Path,
        help="keep each run's sampling.py JSON in this folder (beforeR.json, afterR.json); with "
        "--rounds 0, only summarize the complete rounds already there",
    )
    args = parser.parse_args(argv)
    trees = {"before": args.before, "after": args.after}
    imported = {name: _imported_from(src) for name, src in trees.items()}
    machine = describe()
    print_machine(machine)
    with tempfile.TemporaryDirectory() as temporary:
        work = args.runs or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for name in order:
                _run(trees[name], args, work / f"{name}{round_}.json")
            print(f"round {round_ + 1} of {args.rounds} done", flush=True)
        rounds = 0
        while all((work / f"{name}{rounds}.json").is_file() for name in trees):
            rounds += 1
        times: dict[tuple, dict[str, list[float]]] = {}
        for round_ in range(rounds):
            for name in trees:
                for row in json.loads((work / f"{name}{round_}.json").read_text())["results"]:
                    times.setdefault((row["config"], row["batch"]), {"before": [], "after": []})[name].append(
                        row["fast_s_per_image"]
                    )
    rows = []
    header = f"{'config':<22} {'batch':>5} {'before s/img':>12} {'after s/img':>12} {'after/before':>12} {'noise':>6}"
    print("fast sampling, seconds of CPU time per image, median of the rounds\n" + header + "\n" + "-" * len(header))
    for (config, batch), runs in times.items():
        before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
        noise = max(max(r) / min(r) for r in runs.values())
        rows.append(
            {
                "config": config,
                "batch": batch,
                "before_s_per_image": runs["before"],
                "after_s_per_image": runs["after"],
                "before_median": before,
                "after_median": after,
                "after_over_before": round(after / before, 3),
                "noise_max_over_min": round(noise, 3),
            }
        )
        print(f"{config:<22} {batch:>5} {before:>12.4f} {after:>12.4f} {after / before:>12.3f} {noise:>6.3f}")
    write_json(
        args.out,
        {
            "machine": machine,
            "command": command_line(),
            "imported": imported,
            "clock": "cpu",
            "threads": 1,
            "repeats": args.repeats,
            "rounds": rounds,
            "results": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
