"""Which precision and whether to compile, chosen for the hardware: the ``--precision`` and ``--compile`` switches.

    from pixelcnn.hardware import choose_precision, choose_compile
    precision = choose_precision("auto", torch.device("cpu"))
    print(precision)            # precision bf16: auto: this CPU has bfloat16 units (AVX512-BF16)
    with precision.autocast():
        loss = model.loss(x)

``auto`` precision: bfloat16 autocast on a CUDA GPU that supports it (float16
with gradient scaling on older GPUs), bfloat16 on a CPU with native bfloat16
units (AMX or AVX512-BF16), float32 everywhere else (an AVX2-only CPU
emulates bfloat16 and would run slower). Autocast runs the convolutions and
matrix products in the low precision and keeps the weights, the optimizer and
the head's log-likelihood in float32 (``AutoregressiveModel.log_prob`` scores
with autocast off), so a reported NLL is the float32 likelihood of what the
network computed.

``auto`` compile: ``torch.compile`` where it pays, i.e. for training runs long
enough to win back the compile time (``COMPILE_AUTO_MIN_STEPS``, measured in
benchmarks/README.md, "Precision and compilation"); evaluation and sampling
stay eager. A compile that fails falls back to eager with one warning (the
training loop does that, see ``train.loop``).

This module imports only torch, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_CHOICES = ("auto", "on", "off")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# ``--compile auto`` compiles a training run planned for at least this many steps (or this many minutes):
# compiling the training step of the models here takes ~25-60 s on 2 CPU cores and saves 20-40% of a
# step afterwards, so it pays after a few hundred steps (benchmarks/README.md, "Precision and compilation").
COMPILE_AUTO_MIN_STEPS = 1000
COMPILE_AUTO_MIN_MINUTES = 3.0
# In float32 on a CPU compiling does not pay: 1.09x (PixelCNN 6 x 32) and 0.96x (Gated 4 x 32) of eager,
# after 27-34 s of compiling (AMD EPYC, one thread; benchmarks/README.md). auto leaves it off there, so
# that on a CPU without bf16 units auto is float32 eager: never slower than it.


def cpu_bf16_units() -> str | None:
    """The CPU's native bfloat16 units as torch sees them: "AMX", "AVX512-BF16" or None (bf16 is emulated)."""
    cpu = getattr(torch, "cpu", None)
    amx = getattr(cpu, "_is_amx_tile_supported", None)
    avx512_bf16 = getattr(cpu, "_is_avx512_bf16_supported", None)
    if amx is not None and amx():
        return "AMX"
    if avx512_bf16 is not None and avx512_bf16():
        return "AVX512-BF16"
    return None


def _cuda_bf16(device: torch.device) -> bool:
    """Whether the GPU ``device`` (its index; the current one without) computes in bfloat16 natively."""
    with torch.cuda.device(device) if device.index is not None else contextlib.nullcontext():
        return torch.cuda.is_bf16_supported()


@dataclass(frozen=True)
class Precision:
    """The precision a job runs its network in, on one device type, and why it was chosen."""

    name: str  # "fp32", "bf16" or "fp16"
    device_type: str  # "cpu", "cuda" or "mps": the autocast device
    reason: str  # why, in words: "auto: this CPU has bfloat16 units (AVX512-BF16)"

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def mixed(self) -> bool:
        """True when the network runs under autocast (bf16 / fp16); the weights stay float32 either way."""
        return self.name != "fp32"

    @property
    def grad_scaling(self) -> bool:
        """float16 gradients need loss scaling (torch.amp.GradScaler); bfloat16 has float32's range."""
        return self.name == "fp16"

    def autocast(self):
        """A context that runs the network's convolutions and products in this precision (nothing for fp32)."""
        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def nll_note(self) -> str:
        """What precision a likelihood computed under this precision was computed in, for reports."""
        if not self.mixed:
            return "network and head in float32"
        return f"network in {self.name} (autocast), head in float32"

    def __str__(self) -> str:
        return f"precision {self.name}: {self.reason}"


def choose_precision(requested: str, device: torch.device | str, *, cached_sampler: bool = False) -> Precision:
    """The precision for ``requested`` ("auto", "fp32", "bf16" or "fp16") on ``device``; ValueError if impossible.

    ``cached_sampler``: the job is the cached (fast) sampler, whose steps are a few dozen tiny products:
    on a CPU, ``auto`` keeps it in float32 (measured: bf16 autocast made it 2x slower, the casts costing
    more than the products)."""
    device = torch.device(device)
    kind = device.type
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto" and cached_sampler and kind == "cpu":
        return Precision("fp32", kind, "auto: the cached sampler's steps are too small for bf16 to pay on a CPU")
    if kind not in ("cpu", "cuda", "mps"):
        if requested in ("auto", "fp32"):
            return Precision("fp32", kind, f"{requested}: float32 on {kind}")
        raise ValueError(f"precision {requested} is not available on {kind}; use fp32")
    if requested == "auto":
        if kind == "cuda":
            if _cuda_bf16(device):
                return Precision("bf16", kind, "auto: this GPU supports bfloat16")
            return Precision("fp16", kind, "auto: this GPU has no bfloat16, float16 with gradient scaling")
        if kind == "cpu":
            units = cpu_bf16_units()
            if units:
                return Precision("bf16", kind, f"auto: this CPU has bfloat16 units ({units})")
            return Precision("fp32", kind, "auto: this CPU has no bfloat16 units (neither AMX nor AVX512-BF16)")
        return Precision("fp32", kind, "auto: float32 on mps")
    if requested == "fp32":
        return Precision("fp32", kind, "asked for")
    if requested == "fp16":
        if kind != "cuda":
            raise ValueError(f"precision fp16 needs a CUDA GPU (gradient scaling); on {kind} use bf16 or fp32")
        return Precision("fp16", kind, "asked for, with gradient scaling")
    if kind == "cuda" and not _cuda_bf16(device):
        raise ValueError("precision bf16 asked for, but this GPU does not support bfloat16; use fp16 or fp32")
    if kind == "cpu" and not cpu_bf16_units():
        return Precision(
            "bf16", kind, "asked for; this CPU has no bfloat16 units, so it is emulated and likely slower than fp32"
        )
    return Precision("bf16", kind, "asked for")


def compiler_available() -> bool:
    """torch.compile's CPU backend writes C++: it needs a compiler on the PATH."""
    return any(shutil.which(name) for name in ("g++", "c++", "clang++"))


def choose_compile(
    requested: str,
    device: torch.device | str,
    *,
    planned_steps: int | None = None,
    planned_minutes: float | None = None,
    precision: str | None = None,
) -> tuple[bool, str]:
    """Whether to ``torch.compile`` a training step, and why: (on, reason).

    ``auto``: on for a run whose budget (steps and / or minutes: it stops at the first) is at least
    ``COMPILE_AUTO_MIN_STEPS`` steps and ``COMPILE_AUTO_MIN_MINUTES`` minutes, on a CPU (with a C++
    compiler) or a CUDA GPU; off otherwise, and off on a CPU whose job runs in float32 (``precision``:
    the name the job's ``choose_precision`` gave, "fp32" / "bf16" / "fp16"; None: not known).
    """
    kind = torch.device(device).type
    if requested not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, got {requested!r}")
    if requested == "off":
        return False, "compile off: asked for"
    if requested == "on":
        return True, "compile on: asked for"
    if kind not in ("cpu", "cuda"):
        return False, f"compile auto: off on {kind}"
    if kind == "cpu" and not compiler_available():
        return False, "compile auto: off, no C++ compiler for torch.compile's CPU backend"
    if kind == "cpu" and precision == "fp32":
        return False, "compile auto: off, float32 on a CPU gains too little from compiling to pay for it"
    # A run stops at the first budget it reaches: it is long only when every budget it has is long.
    budgets = [(planned_steps, COMPILE_AUTO_MIN_STEPS), (planned_minutes, COMPILE_AUTO_MIN_MINUTES)]
    given = [(value, minimum) for value, minimum in budgets if value is not None]
    long_run = bool(given) and all(value >= minimum for value, minimum in given)
    if long_run:
        return True, (
            f"compile auto: on, the run is long enough to pay for compiling "
            f"(>= {COMPILE_AUTO_MIN_STEPS} steps, >= {COMPILE_AUTO_MIN_MINUTES:g} minutes)"
        )
    return False, (
        f"compile auto: off, a run shorter than {COMPILE_AUTO_MIN_STEPS} steps or "
        f"{COMPILE_AUTO_MIN_MINUTES:g} minutes would not win back the compile time"
    )


def first_line(error: BaseException) -> str:
    """An exception as one short line, for the compile fallback's warning."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes this process may still allocate on ``device``: a GPU's total memory; for the CPU the least of the
    machine's available memory (/proc/meminfo MemAvailable, else its physical memory) and what the process's
    address-space limit (``ulimit -v``, RLIMIT_AS) leaves."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory
    try:
        available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        available = 2**40
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            available = min(available, max(0, limit - used))
    except (ImportError, OSError, ValueError):
        pass
    return available
