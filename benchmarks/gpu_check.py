"""One prepared run that proves and times every CUDA path: correctness, training, sampling, projection.

    python benchmarks/gpu_check.py --device cuda --out benchmarks/results/gpu_check_cuda.json
    python benchmarks/gpu_check.py --device cpu --tiny

A GPU is lent to us now and then, for minutes; this script is written and tested on the CPU so
that those minutes go to running it. One process, a hard time budget (``--minutes``, default 8)
split into four parts. Each part gets its share of the time left (unused time passes on to the
next); an item whose estimated cost exceeds what its part has left is skipped with a note, and an
item still running when its part's time is up is cut (SIGALRM) and noted. A table is printed as
the run goes, and the JSON (``--out``, default runs/gpu_check.json) is written after every item,
so a run cut short still leaves its results. It records the CPU (``machine.py``) and the GPU,
its driver, CUDA, cuDNN and torch versions. Exit status 1 when a check failed.

1. Correctness on the device, for every registry model at a tiny size (RGB, 4 levels, class
   labels where the model takes them; the auto-encoder its code) and one paper preset per
   model: forward and backward finite; ``log_prob`` on the device equal to the CPU's within
   float32 tolerance (TF32 off); the causality Jacobian computed on the device
   (``pixelcnn.analysis.dependency_map``: every output for the tiny models, a few for the
   presets) reads no later pixel-channel; ``sample(method="fast")`` equals ``method="naive"``
   under the same device generator (the presets: the last row, by ``complete``); ``compress``
   then ``decompress`` on the device round trips bit for bit, and a file made on the CPU is
   either refused by ``decompress`` with a clear error or decoded exactly; save on the device,
   load on the CPU: the same weights and the same ``log_prob``.
2. Training images/s (steady state) and peak memory of ``gated-cifar10`` and
   ``pixelcnnpp-cifar10`` under fp32, bf16, fp16 + GradScaler (CUDA only), bf16 + compile,
   each through the training loop's own step (``pixelcnn.train.Trainer``, on the bundled
   ``photo-patches`` images, 3x32x32); and what ``--precision auto --compile auto`` picks
   (``pixelcnn.hardware``).
3. Sampling seconds per image of the same two presets at batch 1, 16, 64: cached against naive
   (naive from its last row, or from C*H*W forward passes where even a row would not fit the
   budget; cached from its last 4 rows; both extrapolated to the image, as ``sampling.py``
   does), in forward passes; the first cached run against the warm one; a CUDA-graph capture
   of one cached step, checked equal to the eager step, each timed.
4. Projection: hours to train the two presets for the papers' epochs at the measured speed,
   beside the papers' reported time and hardware.

``--tiny``: tiny models in every part (the test suite runs ``--device cpu --tiny`` in seconds);
the CUDA-only items report "skipped: no CUDA" on a CPU.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the budget counts from here: importing torch takes its share

import argparse
import contextlib
import copy
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

import pixelcnn
from machine import command_line, default_out, describe, print_machine, write_json
from pixelcnn import analysis, coding
from pixelcnn.hardware import choose_compile, choose_precision, first_line
from pixelcnn.train import TrainConfig, Trainer
from pixelcnn.train.device import resolve_device

# Each part's share of the time left when it starts (unused time passes on to the later parts).
SHARES = {"correctness": 0.35, "training": 0.30, "sampling": 0.25, "projection": 0.10}
# log_prob on the device against the CPU, in nats per image: float32 sums of C*H*W terms.
LOG_PROB_RTOL, LOG_PROB_ATOL = 1e-4, 1e-3
TINY_SIZES = dict(image_shape=(3, 4, 4), levels=4, n_layers=1, hidden=8)
# One paper preset per registry model (the auto-encoder's is ours: the paper states no size).
PAPER_PRESETS = {
    "pixelcnn": "pixelcnn-cifar10",
    "gated_pixelcnn": "gated-cifar10",
    "row_lstm": "rowlstm-cifar10",
    "diagonal_bilstm": "diagbilstm-cifar10",
    "multiscale_pixelrnn": "multiscale-mnist",
    "pixelcnn_ae": "ae-photo-patches",
    "pixelcnn_pp": "pixelcnnpp-cifar10",
}
TINY_PRESETS = {
    "pixelcnn": "tiny-pixelcnn",
    "gated_pixelcnn": "tiny-gated",
    "row_lstm": "tiny-rowlstm",
    "diagonal_bilstm": "tiny-diagbilstm",
    "multiscale_pixelrnn": "tiny-multiscale",
    "pixelcnn_ae": "tiny-ae",
    "pixelcnn_pp": "tiny-pixelcnnpp",
}
# Parts 2-4: (model or preset, model options); --tiny trains registry models of a few thousand weights.
SPEED_MODELS = {"gated-cifar10": ("gated-cifar10", {}), "pixelcnnpp-cifar10": ("pixelcnnpp-cifar10", {})}
TINY_SPEED_MODELS = {
    "tiny-gated": ("gated_pixelcnn", dict(n_layers=2, hidden=8)),
    "tiny-pixelcnnpp": ("pixelcnn_pp", dict(n_layers=1, hidden=8)),
}
TRAIN_DATA = "photo-patches"  # bundled, 3x32x32 with 256 levels: CIFAR-10's shape, offline
# setting -> (--precision, --compile), as a long training run would be asked for
TRAIN_SETTINGS = {
    "fp32": ("fp32", "off"),
    "bf16": ("bf16", "off"),
    "fp16+scaler": ("fp16", "off"),
    "bf16+compile": ("bf16", "on"),
}
LONG_RUN_STEPS = 10**6
COMPILE_GUESS_S = 90.0  # a compile's cost before one was measured (estimates only)
SAMPLE_BATCHES = (1, 16, 64)
TINY_SAMPLE_BATCHES = (1, 4)
CIFAR10_TRAIN_IMAGES = 50_000
# What the papers (and a public reproduction) report: the time and hardware of a run to their number.
PAPER_RUNS = {
    "gated-cifar10": [
        dict(
            source="Gated PixelCNN paper (van den Oord et al. 2016)",
            result="3.03 bits/dim",
            hardware="not stated",
            hours=None,
            epochs=None,
        ),
    ],
    "pixelcnnpp-cifar10": [
        dict(
            source="PixelCNN++ paper and reference code (Salimans et al. 2017)",
            result="2.92 bits/dim",
            hardware="8 Maxwell TITAN X, batch 16 per GPU",
            hours=5 * 24,
            epochs=None,
        ),
        dict(
            source="Flax PixelCNN++ example (its README and default config)",
            result="2.92 bits/dim",
            hardware="8 V100 (16 GB), batch 320",
            hours=24 + 14,
            epochs=200,
        ),
    ],
}
PROJECTION_EPOCHS = 200  # where a paper states none: the Flax example's, said so


class BudgetSpent(BaseException):
    """Raised (by SIGALRM) inside an item still running when its part's time is up.

    A BaseException, like KeyboardInterrupt: library code that catches ``Exception`` lets it through."""


@contextlib.contextmanager
def hard_deadline(seconds: float):
    """Raise ``BudgetSpent`` in the main thread after ``seconds``; any earlier timer is restored after.

    Without SIGALRM (Windows) or off the main thread the deadline is soft: items are still skipped
    by their estimates, but one that overruns runs to its end.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise BudgetSpent(f"the part's {seconds:.0f} s were spent")

    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_delay, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:  # (a test runner's own timeout, say)
            left = max(previous_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, previous_interval)


def start_watchdog(report: Report, deadline: float, grace_s: float) -> threading.Event:
    """Past ``deadline`` + ``grace_s``, write the report and end the process (os._exit): the last resort
    when the main thread is inside one long torch operation, which SIGALRM cannot interrupt. Setting the
    returned event (the run is over) stops the watchdog."""
    finished = threading.Event()

    def watch():
        if finished.wait(timeout=max(deadline + grace_s - time.monotonic(), 0)):
            return
        with report.lock:
            report.add(
                "run: stopped at the budget",
                "cut",
                f"still inside one operation {grace_s:g} s after "
                f"the budget ran out: the JSON holds every row before it",
            )
            print(
                f"took {time.monotonic() - report.started:.0f} s of a {deadline - report.started:.0f} s budget",
                flush=True,
            )
            os._exit(1 if report.failures() else 0)

    threading.Thread(target=watch, name="gpu_check watchdog", daemon=True).start()
    return finished


class Report:
    """The rows of the run, printed as they come and written to JSON after each one."""

    def __init__(self, out: Path, header: dict, started: float | None = None):
        self.out, self.header = out, header
        self.parts: dict[str, dict] = {}
        self.part = None
        self.part_end = math.inf
        self.started = time.monotonic() if started is None else started
        self.lock = threading.RLock()  # the watchdog thread may write the last row

    def begin(self, part: str, budget_s: float) -> None:
        self.part = part
        self.part_end = time.monotonic() + budget_s
        self.parts[part] = {"budget_s": round(budget_s, 1), "seconds": None, "rows": []}
        print(f"\n== {part} ({budget_s:.0f} s) ==", flush=True)

    def end(self) -> None:
        part = self.parts[self.part]
        part["seconds"] = round(time.monotonic() - self.part_end + part["budget_s"], 1)
        self.write()

    def left(self) -> float:
        return self.part_end - time.monotonic()

    def add(self, item: str, status: str, detail: str = "", **values) -> dict:
        row = {"item": item, "status": status, "detail": detail, **values}
        with self.lock:
            self.parts[self.part]["rows"].append(row)
            print(f"{item:<46} {status:<8} {detail}", flush=True)
            self.write()
        return row

    def rows(self, part: str) -> list[dict]:
        return self.parts.get(part, {}).get("rows", [])

    def failures(self) -> list[dict]:
        return [row for part in self.parts.values() for row in part["rows"] if row["status"] == "FAIL"]

    def summary(self) -> dict:
        return {
            **self.header,
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "failures": len(self.failures()),
            "parts": self.parts,
        }

    def write(self) -> None:
        payload = self.summary()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        write_json_quietly(tmp, payload)
        tmp.replace(self.out)

    def run(self, item: str, check, *, estimate_s: float | None = None) -> dict | None:
        """``check()`` -> (passed or None for a measurement, detail, values) as one row; skipped when the part's
        time left is below ``estimate_s``; an exception is a failed row (the run goes on); BudgetSpent passes."""
        left = self.left()
        if left <= 0 or (estimate_s is not None and estimate_s > left):
            why = f"needs ~{estimate_s:.0f} s, {max(left, 0):.0f} s left" if estimate_s else "no time left"
            return self.add(item, "skipped", f"budget: {why}")
        start = time.monotonic()
        try:
            passed, detail, values = check()
        except BudgetSpent:
            raise
        except Exception as error:  # one broken model must not hide the others' results
            return self.add(item, "FAIL", f"raised {first_line(error)}", seconds=round(time.monotonic() - start, 2))
        status = {True: "pass", False: "FAIL", None: "ok"}[passed]
        return self.add(item, status, detail, seconds=round(time.monotonic() - start, 2), **values)


def write_json_quietly(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ the device
def nvidia_driver(index: int) -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (None where it is missing or fails)."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return None
    try:
        lines = subprocess.run(
            [program, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return lines[min(index, len(lines) - 1)] if lines else None


def describe_device(device: torch.device) -> dict:
    """The GPU, its memory, compute capability, driver, CUDA and cuDNN versions; {"type": "cpu"} on a CPU."""
    info = {"type": device.type, "torch": torch.__version__}
    if device.type != "cuda":
        return info
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    info.update(
        name=props.name,
        capability=f"{props.major}.{props.minor}",
        memory_gib=round(props.total_memory / 2**30, 1),
        multiprocessors=props.multi_processor_count,
        bf16=torch.cuda.is_bf16_supported(),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version(),
        driver=nvidia_driver(index),
    )
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def strict_float32(device: torch.device):
    """float32 products and convolutions on a CUDA GPU (TF32 off), as on the CPU; restored after."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def timed(fn, device: torch.device) -> tuple[float, object]:
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


# ----------------------------------------------------------------------------------- part 1: correctness
def make_condition(model, batch: int, generator: torch.Generator):
    """A random valid condition on the CPU: class labels, a vector, the auto-encoder's code, or None."""
    config = model.config
    if config.num_classes is not None:
        return torch.randint(0, config.num_classes, (batch,), generator=generator)
    if config.cond_dim is not None:
        return torch.randn(batch, config.cond_dim, generator=generator)
    if getattr(config, "bottleneck", None) is not None:  # the PixelCNN auto-encoder: its code
        return torch.randn(batch, config.bottleneck, generator=generator)
    return None


def on(value, device):
    return None if value is None else value.to(device)


def check_forward_backward(model, x, cond):
    """The training loss and every gradient finite."""
    model.train()
    model.zero_grad(set_to_none=True)
    loss = model.loss(x, cond).mean()
    loss.backward()
    loss = float(loss.detach())
    bad = [name for name, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    model.zero_grad(set_to_none=True)
    model.eval()
    passed = math.isfinite(loss) and not bad
    return passed, f"loss {loss:.4g} nats" + (f"; non-finite gradients: {', '.join(bad[:3])}" if bad else ""), {}


def check_log_prob_matches_cpu(model, cpu_model, x, cond, device):
    """log_prob on the device (TF32 off) against the CPU's, within float32 tolerance."""
    model.eval()
    cpu_model.eval()
    with torch.no_grad():
        with strict_float32(device):
            here = model.log_prob(x, cond).double().cpu()
        default = model.log_prob(x, cond).double().cpu() if device.type == "cuda" else here  # TF32 as torch has it
        there = cpu_model.log_prob(x.cpu(), on(cond, "cpu")).double()
    diff = float((here - there).abs().max())
    allowed = float((LOG_PROB_ATOL + LOG_PROB_RTOL * there.abs()).min())
    default_diff = float((default - there).abs().max())
    detail = f"max |diff| {diff:.2e} nats (allowed {allowed:.1e}); torch's default TF32: {default_diff:.2e}"
    return diff <= allowed, detail, {"max_abs_diff": diff, "allowed": allowed, "default_tf32_diff": default_diff}


def check_causality(model, cond, device, outputs: int | None):
    """The structural Jacobian on the device: no output reads its own or a later pixel-channel.

    ``outputs`` None: every output (and the map must equal the CPU's); else that many outputs
    (the last channel of pixels spread over the image)."""
    channels, height, width = model.image_shape
    allowed = analysis.causal_order(model)  # [C, H, W, C, H, W]
    if outputs is None:
        seen = analysis.dependency_map(model, cond=cond, device=device)
        leaks = int((seen & ~allowed).sum())
        same = device.type == "cpu" or torch.equal(seen, analysis.dependency_map(model, cond=cond))
        detail = f"{seen.shape[0] * seen.shape[1] * seen.shape[2]} outputs, {leaks} reads of the future" + (
            "" if same else "; the map differs from the CPU's"
        )
        return leaks == 0 and same, detail, {"leaks": leaks, "equals_cpu": same}
    pixels = torch.linspace(0, height * width - 1, outputs).round().long()
    rows, cols = pixels // width, pixels % width
    chans = torch.full_like(rows, channels - 1)
    seen = analysis.outputs_read(model, chans, rows, cols, cond=cond, device=device)  # [P, C, H, W]
    leaks = int((seen & ~allowed[chans, rows, cols]).sum())
    reads = int(seen.sum())
    return leaks == 0 and reads > 0, f"{outputs} outputs, {reads} reads, {leaks} of the future", {"leaks": leaks}


def check_fast_equals_naive(model, x, cond, device, known_rows: int):
    """Cached and naive generation of rows ``known_rows``.. under the same device generator: equal images."""
    if "fast" not in model.sampling_methods():
        return None, f"{model.name} has no cached sampler", {}

    def draw(method):
        generator = torch.Generator(device=device).manual_seed(1)
        if known_rows == 0:
            return model.sample(x.shape[0], cond, generator=generator, method=method)
        return model.complete(x, known_rows, cond, generator=generator, method=method)

    naive_s, naive = timed(lambda: draw("naive"), device)
    fast_s, fast = timed(lambda: draw("fast"), device)
    differ = int((naive != fast).sum())
    rows = model.image_shape[1] - known_rows
    return (
        differ == 0,
        f"{rows} row(s) x {x.shape[0]} images: {differ} pixel-channels differ",
        {"differ": differ, "naive_s": round(naive_s, 3), "fast_s": round(fast_s, 3)},
    )


def check_round_trip(model, cpu_model, x, cond, *, cpu_file: bool = True):
    """compress / decompress on the device bit for bit; a CPU-made file refused clearly or decoded exactly.

    ``cpu_file``: also code x on the CPU and decode that file on the device (the tiny models only: coding
    runs on one CPU thread, minutes for a paper preset)."""
    coding_cond = None if model.name == "pixelcnn_ae" else cond  # the auto-encoder stores its own code
    data = coding.compress(model, x, coding_cond)
    back = coding.decompress(model, data)
    exact = torch.equal(back.cpu(), x.cpu())
    detail = f"{len(data)} bytes, round trip {'exact' if exact else 'WRONG'}"
    values = {"bytes": len(data), "round_trip_exact": exact}
    if cpu_file and cpu_model is not model:  # (on a CPU: the same platform, so it must decode exactly)
        cpu_data = coding.compress(cpu_model, x.cpu(), on(coding_cond, "cpu"))
        try:
            other = coding.decompress(model, cpu_data)
            values["cpu_file"] = "decoded exactly" if torch.equal(other.cpu(), x.cpu()) else "decoded WRONG"
        except ValueError as error:
            values["cpu_file"] = "refused: " + str(error)[:160]
        try:  # the platform check off: the image CRC must still catch a difference
            forced = coding.decompress(model, cpu_data, check_platform=False)
            values["cpu_file_unchecked"] = "decoded exactly" if torch.equal(forced.cpu(), x.cpu()) else "decoded WRONG"
        except ValueError as error:
            values["cpu_file_unchecked"] = "refused: " + str(error)[:160]
        detail += f"; CPU file: {values['cpu_file'][:60]}; unchecked: {values['cpu_file_unchecked'][:40]}"
        exact = exact and "WRONG" not in values["cpu_file"] + values["cpu_file_unchecked"]
    return exact, detail, values


def check_save_load(model, cpu_model, x, cond):
    """save on the device, load on the CPU: the same weights, and the CPU copy's log_prob exactly."""
    with tempfile.TemporaryDirectory() as folder:
        pixelcnn.save(model, Path(folder) / "model")
        loaded = pixelcnn.load(Path(folder) / "model", map_location="cpu").eval()
    same_weights = all(
        torch.equal(a.cpu(), b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values())
    )
    with torch.no_grad():
        equal = torch.equal(
            loaded.log_prob(x.cpu(), on(cond, "cpu")), cpu_model.eval().log_prob(x.cpu(), on(cond, "cpu"))
        )
    passed = same_weights and equal and next(loaded.parameters()).device.type == "cpu"
    return passed, f"weights {'equal' if same_weights else 'DIFFER'}, log_prob {'equal' if equal else 'DIFFERS'}", {}


def correctness(report: Report, device: torch.device, tiny: bool) -> None:
    """Part 1: every registry model at a tiny size, then one preset per model."""
    generator = torch.Generator().manual_seed(0)
    for name in pixelcnn.list_models():
        sizes = {**TINY_SIZES, **({} if name == "pixelcnn_ae" else dict(num_classes=3))}
        torch.manual_seed(0)
        model_checks(report, f"{name} (tiny)", pixelcnn.build(name, **sizes), device, generator, preset=False)
    for _name, preset in (TINY_PRESETS if tiny else PAPER_PRESETS).items():
        torch.manual_seed(0)
        model = report_build(report, preset)
        if model is not None:
            model_checks(report, preset, model, device, generator, preset=True)


def report_build(report: Report, preset: str):
    try:
        return pixelcnn.build(preset)
    except (ValueError, RuntimeError) as error:
        report.add(f"{preset}: build", "FAIL", first_line(error))
        return None


def model_checks(report: Report, label: str, cpu_model, device, generator, *, preset: bool) -> None:
    """The six checks of part 1 on one model; a preset's expensive ones only as its measured cost allows."""
    cpu_model.eval()
    model = copy.deepcopy(cpu_model).to(device)
    channels, height, width = model.image_shape
    batch = 2
    x_cpu = torch.randint(0, model.levels, (batch, channels, height, width), generator=generator)
    cond_cpu = make_condition(model, batch, generator)
    x, cond = x_cpu.to(device), on(cond_cpu, device)
    row = report.run(f"{label}: forward/backward finite", lambda: check_forward_backward(model, x, cond))
    pass_s = row.get("seconds", 1.0) if row else 1.0  # a first forward and backward pass
    forward_s = pass_s
    if preset and row and row["status"] == "pass":  # a warm forward pass: what a naive step costs
        with torch.no_grad():
            forward_s = timed(lambda: model(x, cond), device)[0]
    report.run(
        f"{label}: log_prob device == CPU",
        lambda: check_log_prob_matches_cpu(model, cpu_model, x, cond, device),
        estimate_s=2 * pass_s if preset else None,
    )
    report.run(
        f"{label}: causality on the device",
        lambda: check_causality(
            model, on(cond_cpu[:1], "cpu") if cond_cpu is not None else None, device, 4 if preset else None
        ),
        estimate_s=8 * pass_s if preset else None,
    )
    # A preset: its last row only; one full pass per pixel-channel of it (naive), at batch 2.
    known = height - 1 if preset else 0
    # (The tiny models go without estimates: their first pass is mostly one-time set-up, and the part's
    # hard deadline still holds.)
    rows = report.run(
        f"{label}: fast == naive sampling",
        lambda: check_fast_equals_naive(model, x, cond, device, known),
        estimate_s=1.5 * (height - known) * width * channels * forward_s if preset else None,
    )
    fast_row_s = rows.get("fast_s") if rows else None
    # Coding runs the cached step over the whole image, as sampling does (naive where there is none).
    estimate = (
        None if not preset else (fast_row_s * height * 3 if fast_row_s else height * width * channels * forward_s)
    )
    report.run(
        f"{label}: compress/decompress",
        lambda: check_round_trip(model, cpu_model, x, cond, cpu_file=not preset),
        estimate_s=estimate,
    )
    report.run(
        f"{label}: save on device, load on CPU",
        lambda: check_save_load(model, cpu_model, x, cond),
        estimate_s=2 * pass_s if preset else None,
    )


# ------------------------------------------------------------------------------------- part 2: training
def train_speed(
    spec: tuple[str, dict], setting: str, device: torch.device, batch: int, warmup: int, steps: int
) -> dict:
    """Time the training loop's own step (``Trainer._train_step``: autocast, GradScaler, clipping, EMA,
    compile with its eager fallback) on ``TRAIN_DATA`` batches: images/s, first step, peak CUDA memory."""
    model, options = spec
    precision, compile_choice = TRAIN_SETTINGS[setting]
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            model=model,
            model_options=dict(options),
            data=TRAIN_DATA,
            out=str(Path(folder) / "run"),
            batch_size=batch,
            max_steps=LONG_RUN_STEPS,
            device=str(device),
            precision=precision,
            compile=compile_choice,
            progress=False,
            tensorboard=False,
            eval_every=None,
            sample_images=0,
            checkpoint_every=LONG_RUN_STEPS,
        )
        trainer = Trainer(config, log=lambda message: None)
        try:
            trainer._setup()  # the run's set-up: model, optimizer, precision, scaler, compile
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for step in range(warmup + steps):
                images, labels = trainer._batch(step)
                seconds, (loss, _, _) = timed(lambda: trainer._train_step(images, labels), device)
                trainer.step += 1
                times.append(seconds)
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
            compiled, reason = trainer.compiled, trainer.compile_reason
            chosen = trainer.precision.name
        finally:
            trainer._release_folder()
    step_s = statistics.median(times[warmup:])
    return {
        "precision": chosen,
        "compiled": compiled,
        "compile_reason": reason,
        "batch": batch,
        "first_step_s": round(times[0], 3),
        "step_s": round(step_s, 4),
        "images_per_s": round(batch / step_s, 3),
        "peak_mb": None if peak is None else round(peak, 1),
        "loss": round(loss, 3),
    }


def training(report: Report, device: torch.device, tiny: bool, batch: int | None) -> None:
    """Part 2: each precision / compile setting of each model through the training step; what auto picks."""
    cuda = device.type == "cuda"
    auto = choose_precision("auto", device)
    compile_on, compile_reason = choose_compile("auto", device, planned_steps=LONG_RUN_STEPS, precision=auto.name)
    auto_setting = next(
        (
            setting
            for setting, (precision, compile_choice) in TRAIN_SETTINGS.items()
            if precision == auto.name and (compile_choice == "on") == compile_on
        ),
        None,
    )
    report.add(
        "--precision auto --compile auto picks",
        "ok",
        f"{auto}; {compile_reason}",
        precision=auto.name,
        compile=compile_on,
        setting=auto_setting,
    )
    batch = batch or (2 if tiny else 64 if cuda else 4)
    warmup, steps = (3, 10) if cuda and not tiny else (1, 2)
    models = TINY_SPEED_MODELS if tiny else SPEED_MODELS
    if not cuda:  # said first, so that a part cut short still says it
        for label in models:
            report.add(
                f"{label} train fp16+scaler",
                "skipped",
                "skipped: no CUDA (float16 training needs gradient scaling on a GPU)",
            )
    for label, spec in models.items():
        fp32_step_s = None
        for setting in TRAIN_SETTINGS:
            item = f"{label} train {setting}"
            if setting.startswith("fp16") and not cuda:
                continue
            if setting.endswith("compile") and tiny:
                report.add(item, "skipped", "skipped: --tiny (a compile takes tens of seconds)")
                continue
            estimate = None
            if fp32_step_s is not None:
                estimate = (warmup + steps) * fp32_step_s + (COMPILE_GUESS_S if setting.endswith("compile") else 0)

            def measure(setting=setting):
                row = train_speed(spec, setting, device, batch, warmup, steps)
                memory = "-" if row["peak_mb"] is None else f"{row['peak_mb']:,.0f} MB"
                detail = (
                    f"{row['images_per_s']:,.3g} images/s (batch {batch}), first step {row['first_step_s']:.1f} s, "
                    f"peak {memory}"
                    + ("" if row["compiled"] or not setting.endswith("compile") else f"; {row['compile_reason']}")
                )
                return None, detail, {"model": label, "setting": setting, **row}

            row = report.run(item, measure, estimate_s=estimate)
            if setting == "fp32" and row and row["status"] == "ok":
                fp32_step_s = row["step_s"]


# ------------------------------------------------------------------------------------- part 3: sampling
def graph_step(model, x, cond, device, repeats: int = 200):
    """Capture one cached step (the first of the last row) in a CUDA graph: equal to the eager step? Times."""
    height = model.image_shape[1]
    with torch.inference_mode():
        h = model.encode_condition(model.check_cond(cond, x.shape[0])) if cond is not None else None
        cache = model.fast_cache(model.scale_input(x), h, height - 1)

        def step():
            return cache.step(height - 1, 0, 0)  # params [B, P]

        eager = step().clone()
        if not torch.equal(step(), eager):
            return None, "the cached step is not repeatable (it accumulates state): no graph check", {}
        stream = torch.cuda.Stream(device)  # warm-up on a side stream, as documented
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                step()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                captured = step()
        except RuntimeError as error:  # a step that synchronizes or allocates on the CPU cannot be captured
            return None, f"not capturable: {first_line(error)}", {"capturable": False}
        graph.replay()
        synchronize(device)
        equal = torch.equal(captured, eager)
        eager_s, _ = timed(lambda: [step() for _ in range(repeats)], device)
        graph_s, _ = timed(lambda: [graph.replay() for _ in range(repeats)], device)
    eager_us, graph_us = 1e6 * eager_s / repeats, 1e6 * graph_s / repeats
    return (
        equal,
        (
            f"graph {'equal to' if equal else 'DIFFERS from'} eager; a step: eager {eager_us:.0f} us, "
            f"graph {graph_us:.0f} us ({eager_us / graph_us:.1f}x)"
        ),
        {"equal": equal, "eager_step_us": round(eager_us, 1), "graph_step_us": round(graph_us, 1)},
    )


def sample_speed(model, batch: int, device: torch.device, naive_rows: int, fast_rows: int, time_left: float):
    """Seconds per image: one forward pass, naive (extrapolated from ``naive_rows`` rows), cached (first and warm
    run of ``fast_rows`` rows, extrapolated), all under ``torch.no_grad``, float32.

    Naive sampling is one full forward pass per pixel-channel, so when its rows would take more than a third
    of ``time_left`` its time is that of C*H*W forward passes instead (marked ``naive_from_forward``)."""
    channels, height, width = model.image_shape
    generator = torch.Generator().manual_seed(batch)
    x = torch.randint(0, model.levels, (batch, channels, height, width), generator=generator).to(device)
    cond = on(make_condition(model, batch, generator), device)
    with torch.no_grad():
        model(x, cond)
        forward_s = statistics.median(timed(lambda: model(x, cond), device)[0] for _ in range(3))

    def rows_s(method: str, rows: int) -> float:
        device_generator = torch.Generator(device=device).manual_seed(0)
        seconds, _ = timed(
            lambda: model.complete(x, height - rows, cond, generator=device_generator, method=method), device
        )
        return seconds * height / rows / batch  # per image, extrapolated to the image

    from_forward = naive_rows * width * channels * forward_s > time_left / 3
    naive = forward_s * channels * height * width / batch if from_forward else rows_s("naive", naive_rows)
    first = rows_s("fast", fast_rows)
    warm = rows_s("fast", fast_rows)
    values = {
        "batch": batch,
        "forward_s": round(forward_s, 4),
        "naive_s_per_image": round(naive, 4),
        "naive_from_forward": from_forward,
        "fast_first_s_per_image": round(first, 4),
        "fast_s_per_image": round(warm, 4),
        "naive_over_fast": round(naive / warm, 1),
        "fast_in_forward_passes": round(warm * batch / forward_s, 1),
        "naive_rows": naive_rows,
        "fast_rows": fast_rows,
    }
    naive_note = " (C*H*W forward passes)" if from_forward else ""
    detail = (
        f"naive {naive:.3g} s/img{naive_note}, cached {warm:.3g} s/img (first run {first:.3g}), "
        f"{naive / warm:.0f}x; {warm * batch / forward_s:.1f} forward passes"
    )
    return None, detail, values


def sampling(report: Report, device: torch.device, tiny: bool) -> None:
    """Part 3: cached against naive sampling at batch 1, 16, 64; a CUDA graph of the cached step."""
    models = TINY_SPEED_MODELS if tiny else SPEED_MODELS
    batches = TINY_SAMPLE_BATCHES if tiny else SAMPLE_BATCHES
    if device.type != "cuda":  # said first, so that a part cut short still says it
        for label in models:
            report.add(f"{label} CUDA graph of a cached step", "skipped", "skipped: no CUDA")
    for label, (name, options) in models.items():
        torch.manual_seed(0)
        model = pixelcnn.build(name, **options, **(dict(image_shape=(3, 4, 4), levels=4) if tiny else {}))
        model = model.to(device).eval()
        naive_rows, fast_rows = (1, 2) if tiny else (1, 4)
        for batch in batches:
            report.run(
                f"{label} sample batch {batch}",
                lambda batch=batch: sample_speed(model, batch, device, naive_rows, fast_rows, report.left()),
            )
        for batch in batches if device.type == "cuda" else ():
            item = f"{label} CUDA graph of a cached step, batch {batch}"
            generator = torch.Generator().manual_seed(batch)
            x = torch.randint(0, model.levels, (batch, *model.image_shape), generator=generator).to(device)
            cond = on(make_condition(model, batch, generator), device)
            report.run(item, lambda x=x, cond=cond: graph_step(model, x, cond, device))


# ----------------------------------------------------------------------------------- part 4: projection
def projection(report: Report, tiny: bool) -> None:
    """Part 4: hours for the papers' epochs at the fastest measured setting and at auto's, beside the papers."""
    trained = [row for row in report.rows("training") if row["status"] == "ok" and "images_per_s" in row]
    auto = next((row.get("setting") for row in report.rows("training") if row["item"].startswith("--precision")), None)
    for label in TINY_SPEED_MODELS if tiny else SPEED_MODELS:
        rows = [row for row in trained if row["model"] == label]
        if not rows:
            report.add(f"{label} projection", "skipped", "no training speed was measured (part 2 skipped it)")
            continue
        best = max(rows, key=lambda row: row["images_per_s"])
        picked = next((row for row in rows if row["setting"] == auto), None)
        for paper in PAPER_RUNS.get(label, [None]):
            epochs = (paper or {}).get("epochs") or PROJECTION_EPOCHS
            hours = {
                row["setting"]: epochs * CIFAR10_TRAIN_IMAGES / row["images_per_s"] / 3600
                for row in (best, picked)
                if row
            }
            ours = ", ".join(f"{h:,.1f} h at {setting}" for setting, h in hours.items())
            if paper is None:
                detail = f"{epochs} epochs of 50,000 images: {ours}"
                values = {}
            else:
                said = f"{paper['hours']:g} h" if paper["hours"] else "time not stated"
                epochs_note = f"{epochs} epochs" + ("" if paper["epochs"] else " (not stated; the Flax example's)")
                detail = f"{epochs_note}: {ours}; {paper['source']}: {said} on {paper['hardware']} ({paper['result']})"
                values = {"paper": paper}
            report.add(
                f"{label} projection",
                "ok",
                detail,
                model=label,
                epochs=epochs,
                hours={k: round(v, 2) for k, v in hours.items()},
                **values,
            )


# ---------------------------------------------------------------------------------------------- the run
def main(argv=None, *, started: float | None = None) -> int:
    """The run; its budget counts from ``started`` (``time.monotonic()``; default: now)."""
    started = time.monotonic() if started is None else started
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cuda, cuda:N or cpu (default: cuda when there is one)",
    )
    parser.add_argument("--minutes", type=float, default=8.0, help="the whole run's time budget (default: 8)")
    parser.add_argument(
        "--out", type=Path, default=default_out("gpu_check.json"), help="JSON file (default: %(default)s)"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny models everywhere: checks the script in seconds")
    parser.add_argument("--train-batch", type=int, help="training batch (default: 64 on CUDA, 4 on a CPU, 2 --tiny)")
    parser.add_argument(
        "--grace",
        type=float,
        default=15.0,
        help="seconds past the budget after which a run stuck inside one long operation writes its "
        "JSON and exits (default: 15; 0: never, for a caller that must not be exited)",
    )
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(f"--device: {error}")
    if not args.minutes > 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")
    if not args.grace >= 0:
        parser.error(f"--grace must be 0 or more seconds, got {args.grace:g}")
    if args.train_batch is not None and args.train_batch < 1:
        parser.error(f"--train-batch must be a positive integer, got {args.train_batch}")

    machine = describe()
    print_machine(machine)
    gpu = describe_device(device)
    if device.type == "cuda":
        print(
            f"GPU: {gpu['name']} ({gpu['memory_gib']} GiB, compute {gpu['capability']}, bf16 {gpu['bf16']}); "
            f"driver {gpu['driver']}, CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']}, torch {gpu['torch']}",
            flush=True,
        )
    else:
        print(f"device {device}: no CUDA here; the CUDA-only items are skipped", flush=True)
    report = Report(
        args.out,
        {
            "machine": machine,
            "device": gpu,
            "command": command_line(),
            "tiny": args.tiny,
            "budget_s": args.minutes * 60,
        },
        started,
    )
    deadline = started + args.minutes * 60
    finished = start_watchdog(report, deadline, args.grace) if args.grace > 0 else threading.Event()
    try:
        return run_parts(report, device, args, deadline)
    finally:
        finished.set()


def run_parts(report: Report, device: torch.device, args, deadline: float) -> int:
    """The four parts, each under its share of the time left, then the summary; exit status 1 on a failure."""
    parts = {
        "correctness": lambda: correctness(report, device, args.tiny),
        "training": lambda: training(report, device, args.tiny, args.train_batch),
        "sampling": lambda: sampling(report, device, args.tiny),
        "projection": lambda: projection(report, args.tiny),
    }
    for index, (name, run_part) in enumerate(parts.items()):
        shares_left = sum(list(SHARES.values())[index:])
        budget = max(deadline - time.monotonic(), 0.0) * SHARES[name] / shares_left
        report.begin(name, budget)
        try:
            with hard_deadline(budget):
                run_part()
        except BudgetSpent as spent:
            report.add(f"{name}: cut", "cut", f"{spent}; the item running then was stopped, the rest skipped")
            torch._dynamo.reset()  # a compile cut halfway leaves nothing behind for the next part
        report.end()
    failures = report.failures()
    print(
        f"\n{len(failures)} check(s) failed"
        + "".join(f"\n  {row['item']}: {row['detail']}" for row in failures)
        + f"\ntook {time.monotonic() - report.started:.0f} s of a {args.minutes * 60:.0f} s budget",
        flush=True,
    )
    with report.lock:
        write_json(args.out, report.summary())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(started=STARTED))
