"""Training checkpoints: one safetensors file, tensors in its body and JSON in its header. No pickle.

``RUN/checkpoint.safetensors`` holds everything a run needs to continue
exactly: model, optimizer, EMA weights, the step / epoch counters, the
learning-rate schedule's position and every random-number generator's state.
The nested state (dicts, lists, numbers, tensors) is split in two: each tensor
is stored under its path (``optimizer/state/3/exp_avg``) and replaced in the
JSON by ``{"__tensor__": path}``; the JSON travels in the file's metadata.

The file is written to a temporary name in the same folder and renamed over
the old one (``os.replace`` is atomic), so a crash or Ctrl-C while saving
leaves the previous checkpoint intact; there is never a half-written one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "pixelcnn-checkpoint"
TENSOR_KEY = "__tensor__"


def split_tensors(state, prefix: str = "", tensors: dict | None = None):
    """Nested state -> (JSON-able structure, {path: tensor}); see the module docstring."""
    tensors = {} if tensors is None else tensors
    if isinstance(state, torch.Tensor):
        tensors[prefix] = state.detach().cpu().clone()  # own storage: safetensors refuses shared memory
        return {TENSOR_KEY: prefix}, tensors
    if isinstance(state, dict):
        out = {}
        for key, value in state.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint keys must be str or int, got {type(key).__name__} at {prefix!r}")
            # JSON keys are strings; remember integer keys (optimizer state is keyed by parameter index).
            name = f"{'#' if isinstance(key, int) else ''}{key}"
            out[name] = split_tensors(value, f"{prefix}/{key}" if prefix else str(key), tensors)[0]
        return out, tensors
    if isinstance(state, (list, tuple)):
        return [split_tensors(v, f"{prefix}/{i}", tensors)[0] for i, v in enumerate(state)], tensors
    if state is None or isinstance(state, (bool, int, float, str)):
        return state, tensors
    raise TypeError(f"cannot store {type(state).__name__} at {prefix!r} in a checkpoint")


def join_tensors(structure, tensors: dict):
    """The inverse of ``split_tensors``."""
    if isinstance(structure, dict):
        if set(structure) == {TENSOR_KEY}:
            return tensors[structure[TENSOR_KEY]]
        return {(int(k[1:]) if k.startswith("#") else k): join_tensors(v, tensors) for k, v in structure.items()}
    if isinstance(structure, list):
        return [join_tensors(v, tensors) for v in structure]
    return structure


def save_checkpoint(state: dict, run_dir: str | os.PathLike) -> Path:
    """Write ``state`` (nested dicts / lists / numbers / tensors) atomically to RUN/checkpoint.safetensors."""
    from safetensors.torch import save_file

    from ..serialization import _atomic_write

    path = Path(run_dir) / CHECKPOINT_FILE
    structure, tensors = split_tensors(state)
    metadata = {"format": FORMAT, "state": json.dumps(structure)}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def load_checkpoint(run_dir: str | os.PathLike) -> dict:
    """Read the state written by ``save_checkpoint``; a clear error when missing or corrupt."""
    from safetensors import SafetensorError, safe_open

    from ..serialization import parse_json

    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        if metadata.get("format") != FORMAT:
            raise ValueError("not a pixelcnn training checkpoint")
        state = join_tensors(parse_json(metadata["state"], "its state"), tensors)
        if not isinstance(state, dict):
            raise ValueError("its state is not a JSON object")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise ValueError(
            f"{path} is corrupt or not a pixelcnn checkpoint ({' '.join(str(err).split())[:300]})"
        ) from None
    return state
