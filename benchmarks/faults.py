"""Faults: SIGKILL a tiny ``pixelcnn train`` at random moments and resume; fuzz the API and the CLI; failed
writes and locks.

    python benchmarks/faults.py                          # 20 kills of a 300-step run, 100 fuzz examples per target
    python benchmarks/faults.py --kills 5 --steps 60     # a quicker look

An uninterrupted reference run trains ``--steps`` steps of a tiny Gated
PixelCNN on the bundled digits (CPU, one thread: deterministic), with a
checkpoint every ``--checkpoint-every`` steps. Then the same run is started
and SIGKILLed ``--kills`` times, each at a random moment of its life (start-up,
training steps, evaluation, checkpoint writes: the moments are uniform over the
reference run's wall time), and continued each time with ``--resume`` (or
started again when no checkpoint was written yet). After every kill the run
folder must hold a loadable model and checkpoint (once the first is written),
and no more steps may be lost than the checkpoint interval. At the end the
final weights (model/ and the checkpoint) must equal the reference's bit for bit.

The hostile corpus: ``tests/test_reliability_hostile.py`` and
``tests/test_reliability_signals.py`` (crafted .pxcz files and configs at their extremes, NaN and integer
weights, users' files next to every output option, signals at every phase of training), each case in a
child process under a memory cap (RLIMIT_AS, 1 GiB over the imported process) and a time limit; counted
as tried / handled, with the children's peak memory.

Fuzzing: the property-based tests ``tests/test_fuzz_api.py`` and
``tests/test_fuzz_cli.py`` (hypothesis) run again with ``--fuzz-examples``
fresh random examples per test, and every call is counted per target (API
function or command): a correct result, a clear error (a one-line
``ValueError``; for a command exit status 2 and one line on stderr), or
anything else. Failed writes and locks: the cases of
``tests/test_reliability.py`` that make a write fail (file-size limit, a
read-only folder, a full disk) and that start a second job in a held folder
run once more, and their outcomes are counted.

Prints a table (kills, resumes, steps lost per kill, kills that caught a
checkpoint write in progress, equal or not; fuzz cases tried and the rate of
allowed outcomes per target; write-failure and lock cases passed) and the CPU,
and writes JSON to ``--out`` (default runs/faults.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import torch

from machine import command_line, default_out, describe, print_cells, print_machine, write_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs at random moments (default: 20)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the run (default: 300)")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="steps between checkpoints (default: 10)")
    parser.add_argument("--eval-every", type=int, default=50, help="steps between evaluations (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the kill moments (default: 0)")
    parser.add_argument(
        "--fuzz-examples", type=int, default=100, help="random examples per fuzz test (default: 100; 0: no fuzzing)"
    )
    parser.add_argument("--no-cases", action="store_true", help="skip the write-failure and lock cases")
    parser.add_argument(
        "--no-hostile",
        action="store_true",
        help="skip the hostile corpus (tests/test_reliability_hostile.py and _signals.py)",
    )
    parser.add_argument("--work", help="folder for the two runs (default: a temporary folder, removed)")
    parser.add_argument("--out", type=Path, default=default_out("faults.json"), help="JSON to write")
    args = parser.parse_args(argv)
    for name in ("kills", "fuzz_examples", "steps", "checkpoint_every", "eval_every"):
        zero_ok = name in ("kills", "fuzz_examples")
        if getattr(args, name) < (0 if zero_ok else 1):
            parser.error(
                f"--{name.replace('_', '-')} must be {'>= 0' if zero_ok else 'positive'}, got {getattr(args, name)}"
            )
    return args


def train_command(args, folder: Path, *, resume: bool) -> list[str]:
    """The run's command: --resume once a checkpoint exists; before that a fresh start, with --force (train
    starts only in a new or empty folder, and a killed start may have left its config.json and log)."""
    base = [sys.executable, "-m", "pixelcnn", "train"]
    if resume:
        return base + ["--resume", str(folder)]
    return base + [
        "--force",
        "--model",
        "gated_pixelcnn",
        "--n-layers",
        "2",
        "--hidden",
        "8",
        "--data",
        "digits",
        "--class-conditional",
        "--batch-size",
        "16",
        "--max-steps",
        str(args.steps),
        "--checkpoint-every",
        str(args.checkpoint_every),
        "--eval-every",
        str(args.eval_every),
        "--eval-images",
        "64",
        "--sample-images",
        "10",
        "--log-every",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
        "--no-tensorboard",
        "--out",
        str(folder),
    ]


def last_logged_step(folder: Path) -> int:
    """The last training step in metrics.jsonl (0 if none): how far the killed job had got."""
    step = 0
    try:
        lines = (folder / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "train":
            step = max(step, int(record["step"]))
    return step


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def check_folder(folder: Path) -> int | None:
    """The checkpoint's step after checking that the checkpoint and model load (None: no checkpoint yet)."""
    import pixelcnn
    from pixelcnn.train import load_checkpoint

    if not (folder / "checkpoint.safetensors").exists():
        return None
    state = load_checkpoint(folder)  # raises if corrupt
    pixelcnn.load(folder / "model")
    return int(state["step"])


def final_weights(folder: Path) -> dict:
    import pixelcnn
    from pixelcnn.train import load_checkpoint

    state = load_checkpoint(folder)
    return {
        "model": pixelcnn.load(folder / "model").state_dict(),
        "checkpoint": state["weights"],
        "optimizer": state["optimizer"]["state"],
        "step": state["step"],
    }


def equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return a == b


REPO = Path(__file__).resolve().parents[1]
FUZZ_TESTS = ["tests/test_fuzz_api.py", "tests/test_fuzz_cli.py"]
# The cases of tests/test_reliability.py that make writes fail and that try a second job in a held folder.
CASES = {"write failures": "failed_write or nan_weights_are_never_saved", "locks": "lock or two_train_processes"}
# The hostile corpus: crafted files and users' files, each case in a child under a memory cap and a time limit.
HOSTILE_TESTS = ["tests/test_reliability_hostile.py", "tests/test_reliability_signals.py"]


def run_pytest(arguments: list[str], env: dict | None = None) -> tuple[int, dict[str, str]]:
    """``pytest ARGUMENTS`` in the repository -> (exit status, {test id: passed / failed / skipped})."""
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        status = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *arguments],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).returncode
        outcomes = {}
        if junit.exists():
            for case in ElementTree.parse(junit).iter("testcase"):
                failed = case.find("failure") is not None or case.find("error") is not None
                outcomes[case.get("name")] = (
                    "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
                )
    return status, outcomes


def run_fuzz(examples: int) -> tuple[list, list[dict]]:
    """The fuzz tests with ``examples`` fresh examples each -> (table rows, per-target counts)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "fuzz.json"
        started = time.perf_counter()
        _, outcomes = run_pytest(
            FUZZ_TESTS,
            env={
                "PIXELCNN_FUZZ_EXAMPLES": str(examples),
                "PIXELCNN_FUZZ_RANDOM": "1",
                "PIXELCNN_FUZZ_REPORT": str(report),
            },
        )
        seconds = time.perf_counter() - started
        targets = json.loads(report.read_text()) if report.exists() else []
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    tried = sum(t["tried"] for t in targets)
    allowed = sum(t["tried"] - sum(t["unclear"].values()) for t in targets)
    print(f"fuzzing: {len(outcomes)} tests, {examples} examples each, {seconds:.0f} s", flush=True)
    print_cells(
        [["target", "tried", "results", "clear errors", "other", "allowed"]]
        + [
            [
                t["target"],
                str(t["tried"]),
                str(t["results"]),
                str(t["clear_errors"]),
                ", ".join(f"{k[len('unclear: ') :]} x{v}" for k, v in t["unclear"].items()) or "-",
                f"{100 * t['allowed_rate']:.1f}%",
            ]
            for t in targets
        ]
    )
    rows = [
        ("fuzz cases tried (API and CLI)", f"{tried:,} over {len(targets)} targets"),
        (
            "fuzz outcomes a result or a clear error",
            f"{allowed:,}/{tried:,} ({100 * allowed / max(1, tried):.1f}%)"
            + (f"; failing tests: {', '.join(failed)}" if failed else ""),
        ),
    ]
    return rows, targets


def run_cases() -> tuple[list, dict]:
    rows, results = [], {}
    for name, selection in CASES.items():
        _, outcomes = run_pytest(["tests/test_reliability.py", "-k", selection])
        passed = sum(outcome == "passed" for outcome in outcomes.values())
        skipped = [case for case, outcome in outcomes.items() if outcome == "skipped"]
        results[name] = outcomes
        rows.append(
            (
                f"{name}: cases passed / run",
                f"{passed}/{len(outcomes) - len(skipped)}"
                + (f" ({len(skipped)} skipped here: {', '.join(skipped)})" if skipped else ""),
            )
        )
    return rows, results


def run_hostile() -> tuple[list, dict]:
    """The hostile-corpus tests -> (table rows, JSON): cases tried and handled (a one-line error or the right
    result, within the limits, every other file unchanged) and the peak memory of the capped children."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "hostile.jsonl"
        started = time.perf_counter()
        _, outcomes = run_pytest(HOSTILE_TESTS, env={"PIXELCNN_HOSTILE_REPORT": str(report)})
        seconds = time.perf_counter() - started
        children = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    handled = sum(outcome == "passed" for outcome in outcomes.values())
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    grew = max((c["grew"] for c in children), default=0)
    peak = max((c["peak"] for c in children), default=0)
    slowest = max(children, key=lambda c: c["seconds"], default=None)
    rows = [
        (
            "hostile cases handled / tried",
            f"{handled}/{len(outcomes)} tests ({len(children)} capped commands, "
            f"{seconds:.0f} s)" + (f"; failing: {', '.join(failed)}" if failed else ""),
        ),
        (
            "hostile cases: peak memory",
            f"{grew / 2**20:,.0f} MiB over the imported process (cap 1,024 MiB); "
            f"{peak / 2**20:,.0f} MiB resident in all",
        ),
        ("hostile cases: slowest", f"{slowest['seconds']:.2f} s ({slowest['case']})" if slowest else "-"),
    ]
    payload = {
        "tests": outcomes,
        "handled": handled,
        "tried": len(outcomes),
        "children": children,
        "peak_growth_bytes": grew,
        "peak_resident_bytes": peak,
        "seconds": round(seconds, 1),
    }
    return rows, payload


def main(argv=None) -> int:
    args = parse_args(argv)
    machine = describe()
    print_machine(machine)
    payload, rows, ok = {"machine": machine, "command": command_line()}, [], True
    if args.kills:
        kill_rows, kill_payload, ok = run_kills(args)
        rows += kill_rows
        payload.update(kill_payload)
    if args.fuzz_examples:
        fuzz_rows, targets = run_fuzz(args.fuzz_examples)
        rows += fuzz_rows
        payload["fuzz"] = {"examples_per_test": args.fuzz_examples, "targets": targets}
        ok = ok and all(not t["unclear"] for t in targets) and bool(targets)
    if not args.no_hostile:
        hostile_rows, hostile = run_hostile()
        rows += hostile_rows
        payload["hostile"] = hostile
        ok = ok and hostile["tried"] > 0 and hostile["handled"] == hostile["tried"]
    if not args.no_cases:
        case_rows, results = run_cases()
        rows += case_rows
        payload["cases"] = results
        ok = ok and all(outcome != "failed" for outcomes in results.values() for outcome in outcomes.values())
    width = max((len(name) for name, _ in rows), default=0)
    print("\n".join(f"  {name:<{width}}  {value}" for name, value in rows))
    write_json(args.out, payload)
    return 0 if ok else 1


def run_kills(args) -> tuple[list, dict, bool]:
    """The kill part (see the module docstring) -> (table rows, JSON, all checks passed)."""
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pixelcnn-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    reference, faulty = work / "reference", work / "faulty"
    for folder in (reference, faulty):
        if folder.exists():
            shutil.rmtree(folder)
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            train_command(args, reference, resume=False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        startup = None
        while process.poll() is None:
            if startup is None and last_logged_step(reference) > 0:
                startup = time.perf_counter() - started
            time.sleep(0.02)
        if process.returncode != 0:
            raise SystemExit(f"the reference run failed: {process.stderr.read().strip()[-500:]}")
        process.stderr.close()
        reference_seconds = time.perf_counter() - started
        startup = startup or reference_seconds
        # Every fifth kill falls in a job's start-up (importing, loading, taking the lock, rewriting the
        # metrics); the others at a random moment of its training, up to 1.5 / kills of the whole training,
        # so that the run is about three quarters through when the last kill comes.
        span = 1.5 * (reference_seconds - startup) / max(1, args.kills)
        print(
            f"reference: {args.steps} steps uninterrupted in {reference_seconds:.1f} s ({startup:.1f} s to the "
            f"first step); kills in start-up or 0..{span:.1f} s into training",
            flush=True,
        )

        rng = random.Random(args.seed)
        kills, resumes, restarts, lost, in_write, broken = [], 0, 0, [], 0, []
        while len(kills) < args.kills:
            resume = (faulty / "checkpoint.safetensors").exists()
            saved_before, log_before = (check_folder(faulty) if resume else 0), inode(faulty / "metrics.jsonl")
            if saved_before >= args.steps:  # the last kill came after the final checkpoint: nothing to resume
                print("the run finished before the remaining kills; starting it again is not needed", flush=True)
                break
            resumes += resume
            restarts += not resume
            process = subprocess.Popen(
                train_command(args, faulty, resume=resume), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            job_started = time.perf_counter()
            if len(kills) % 5 == 4:
                phase, moment = "start-up", rng.uniform(0, startup)
            else:
                phase, moment = "training", rng.uniform(0, span)
                while (
                    process.poll() is None
                    and inode(faulty / "metrics.jsonl") in (None, log_before)
                    and time.perf_counter() - job_started < 300
                ):
                    time.sleep(0.01)
            try:
                process.wait(timeout=moment)
            except subprocess.TimeoutExpired:
                pass
            delay = time.perf_counter() - job_started
            if process.poll() is not None:  # finished (or failed) before the kill
                err = process.stderr.read()
                if process.returncode != 0:
                    raise SystemExit(f"the run failed instead of being killed: {err.strip()[-500:]}")
                print("the run finished before the remaining kills; starting it again is not needed", flush=True)
                break
            writing = any(any((faulty / d).glob(".*.tmp")) for d in (".", "model"))
            process.send_signal(signal.SIGKILL)
            process.wait()
            process.stderr.close()
            # The steps this job logged (a job killed before it opened metrics.jsonl, which it rewrites
            # first, reached no step past the checkpoint it started from).
            progressed = inode(faulty / "metrics.jsonl") not in (None, log_before)
            done = last_logged_step(faulty) if progressed else saved_before
            try:
                saved = check_folder(faulty)
            except (OSError, ValueError) as err:
                broken.append(f"kill {len(kills) + 1}: {err}")
                saved = None
            steps_lost = max(0, done - (saved or 0))
            kills.append(
                {
                    "after_seconds": round(delay, 2),
                    "phase": phase,
                    "step_reached": done,
                    "checkpoint_step": saved,
                    "steps_lost": steps_lost,
                    "checkpoint_write_in_progress": writing,
                }
            )
            lost.append(steps_lost)
            in_write += writing
            print(
                f"kill {len(kills):>3}: after {delay:5.1f} s ({phase:<8}), step {done:>4} reached, checkpoint at "
                f"{saved if saved is not None else '-':>4}, {steps_lost} steps lost"
                + (", during a checkpoint write" if writing else ""),
                flush=True,
            )
        # Resume to the end unless the run already got there (a resume of a finished run is refused: its budget
        # flags would mean more training).
        if (check_folder(faulty) or 0) < args.steps:
            finish = subprocess.run(
                train_command(args, faulty, resume=(faulty / "checkpoint.safetensors").exists()),
                capture_output=True,
                text=True,
            )
            if finish.returncode != 0:
                raise SystemExit(f"the last resume failed: {finish.stderr.strip()[-500:]}")
            resumes += 1
        same = equal(final_weights(reference), final_weights(faulty))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    worst = max(lost) if lost else 0
    rows = [
        ("kills survived / tried", f"{len(kills) - len(broken)}/{len(kills)}"),
        ("resumes (--resume) / fresh starts", f"{resumes} / {restarts}"),
        (
            "steps lost per kill: mean / max",
            f"{sum(lost) / max(1, len(lost)):.1f} / {worst} (checkpoint every {args.checkpoint_every})",
        ),
        ("kills during a checkpoint write", str(in_write)),
        ("folder always loadable", "yes" if not broken else f"no: {broken[0]}"),
        ("final weights equal to the uninterrupted run", "yes" if same else "NO"),
    ]
    payload = {
        "steps": args.steps,
        "checkpoint_every": args.checkpoint_every,
        "reference_seconds": round(reference_seconds, 2),
        "startup_seconds": round(startup, 2),
        "kills": kills,
        "survived": len(kills) - len(broken),
        "resumes": resumes,
        "fresh_starts": restarts,
        "max_steps_lost": worst,
        "broken": broken,
        "equal": same,
    }
    return rows, payload, same and not broken and worst <= args.checkpoint_every


if __name__ == "__main__":
    sys.exit(main())
