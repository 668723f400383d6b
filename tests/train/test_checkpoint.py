"""Checkpoints: tensors in safetensors, the rest as JSON in its header, written atomically, never pickled."""

import json
import os
import struct

import pytest
import torch

from pixelcnn.train import checkpoint as ckpt


def _state():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return {
        "weights": model.state_dict(),
        "optimizer": optimizer.state_dict(),  # integer keys, 0-dim step tensors, tuples, floats, bools
        "step": 7,
        "nothing": None,
        "rng": {"torch": torch.get_rng_state()},
        "names": ["a", "b"],
    }


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_round_trip_keeps_every_value_and_type(tmp_path):
    state = _state()
    ckpt.save_checkpoint(state, tmp_path)
    loaded = ckpt.load_checkpoint(tmp_path)
    assert _same(state, loaded)
    assert set(loaded["optimizer"]["state"]) == {0, 1}  # integer keys stay integers
    # The loaded optimizer state is usable as such.
    model = torch.nn.Linear(3, 2)
    torch.optim.Adam(model.parameters()).load_state_dict(loaded["optimizer"])


def test_the_file_is_safetensors_with_json_header_not_a_pickle(tmp_path):
    path = ckpt.save_checkpoint(_state(), tmp_path)
    raw = path.read_bytes()
    assert not raw.startswith(b"PK") and raw[:1] != b"\x80"
    header_size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_size])
    assert header["__metadata__"]["format"] == ckpt.FORMAT
    assert json.loads(header["__metadata__"]["state"])["step"] == 7


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    ckpt.save_checkpoint({"step": 1, "w": torch.ones(3)}, tmp_path)
    import safetensors.torch

    def write_half_then_fail(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint({"step": 2, "w": torch.zeros(3)}, tmp_path)
    monkeypatch.undo()
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded["step"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert os.listdir(tmp_path) == [ckpt.CHECKPOINT_FILE]  # no temporary file left behind


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / ckpt.CHECKPOINT_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match="corrupt or not a pixelcnn checkpoint"):
        ckpt.load_checkpoint(tmp_path)
    from safetensors.torch import save_file

    save_file({"x": torch.ones(1)}, str(tmp_path / ckpt.CHECKPOINT_FILE))  # safetensors, not ours
    with pytest.raises(ValueError, match="not a pixelcnn checkpoint"):
        ckpt.load_checkpoint(tmp_path)


def test_unstorable_values_are_refused():
    with pytest.raises(TypeError, match="cannot store object"):
        ckpt.split_tensors({"bad": object()})
