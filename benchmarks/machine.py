"""What the benchmark scripts share: the machine a number came from, the output path, the JSON write.

Every script prints the CPU model and whether it has bfloat16 units before its
table, and stores the same description in its JSON, because a number without
its machine cannot be compared with another: bf16 matrix units (AMX, AVX-512
BF16) change what a CPU can do by several times.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the repository root, whatever the working directory
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _lscpu() -> dict[str, str]:
    """``lscpu``'s "Key: value" lines as a dict ({} where lscpu is missing)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {
        key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines()) if value
    }


def describe() -> dict:
    """The CPU (model name, cores, bf16 flags), torch and Python versions, and any CUDA device."""
    import torch

    info = _lscpu()
    flags = set(info.get("Flags", "").split())
    cpu_check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # torch's own check, where it has one
    machine = {
        "cpu": info.get("Model name") or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "bf16_flags": [flag for flag in BF16_FLAGS if flag in flags],
        "torch_avx512_bf16": bool(cpu_check()) if cpu_check else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        machine["cuda_device"] = torch.cuda.get_device_name()
        machine["cuda_bf16"] = torch.cuda.is_bf16_supported()
    return machine


def print_machine(machine: dict) -> None:
    """One line: the CPU, its bf16 capability, the thread count (and the GPU, if any)."""
    bf16 = ", ".join(machine["bf16_flags"]) or "no bf16 units (neither amx_bf16 nor avx512_bf16)"
    line = (
        f"CPU: {machine['cpu']}, {machine['cpu_count']} cores, {bf16}; torch {machine['torch']}, "
        f"{machine['torch_threads']} threads"
    )
    if "cuda_device" in machine:
        line += f"; GPU: {machine['cuda_device']} (bf16: {machine['cuda_bf16']})"
    print(line, flush=True)


def print_cells(cells: list[list[str]]) -> None:
    """A plain-text table: the first row is the header, underlined; columns right-aligned."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for index, row in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def default_out(name: str) -> Path:
    """Where a script writes its JSON unless ``--out`` says otherwise: runs/NAME under the working directory.

    Not benchmarks/results/: the committed results are replaced only by an explicit
    ``--out benchmarks/results/NAME``.
    """
    return Path("runs") / name


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}", flush=True)


def command_line() -> str:
    """The command that produced a result, for its JSON."""
    return " ".join(["python", *sys.argv])
