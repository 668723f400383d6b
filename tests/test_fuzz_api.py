"""Fuzzed calls of the public API: a correct result or a one-line ValueError, nothing else (see fuzzing.py).

build, log_prob, sample, complete, save / load (corrupted files, hostile JSON),
data.load (folders holding files that are not images), compress / decompress
(hostile images, corrupted streams). A few examples each (``fuzzing.EXAMPLES``);
``benchmarks/faults.py`` runs more and counts the outcomes.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import pixelcnn
from fuzzing import (
    HUGE_INTS,
    NON_FINITE,
    api_call,
    corrupted_bytes,
    hostile_json_text,
    hostile_number,
    hostile_value,
    png_bytes,
    quick,
)
from pixelcnn import data
from pixelcnn.models.registry import presets

pytestmark = pytest.mark.slow  # property tests (hypothesis): the slow tier

WORK = Path(tempfile.mkdtemp(prefix="pixelcnn-fuzz-"))
IMAGE_SHAPE = (1, 4, 4)


@functools.cache
def tiny(kind: str):
    """Tiny Gated PixelCNNs on 4x4 images with 4 levels: unconditional, class- or vector-conditional."""
    extra = {"none": {}, "classes": dict(num_classes=3), "vector": dict(cond_dim=2)}[kind]
    torch.manual_seed(0)
    return pixelcnn.build("gated_pixelcnn", image_shape=IMAGE_SHAPE, levels=4, n_layers=1, hidden=4, **extra).eval()


@functools.cache
def saved_model() -> tuple[bytes, bytes]:
    """The two files of a saved tiny model: (config.json, model.safetensors)."""
    folder = pixelcnn.save(tiny("classes"), WORK / "saved")
    return (folder / "config.json").read_bytes(), (folder / "model.safetensors").read_bytes()


def fresh(name: str) -> Path:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# ----------------------------------------------------------------------------------- inputs
DTYPES = [
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
    torch.float16,
    torch.float32,
    torch.float64,
    torch.bfloat16,
    torch.complex64,
]


@st.composite
def images(draw, shape=IMAGE_SHAPE, levels=4):
    """Tensors (and other things) where images [B, 1, 4, 4] of values 0..3 are expected."""
    kind = draw(st.sampled_from(["good", "good", "dtype", "shape", "values", "empty", "huge batch", "other"]))
    batch = draw(st.integers(1, 3))
    good = torch.randint(0, levels, (batch, *shape), generator=torch.Generator().manual_seed(draw(st.integers(0, 9))))
    if kind == "good":
        return (
            good.to(draw(st.sampled_from([torch.uint8, torch.int64, torch.int32])))
            if draw(st.booleans())
            else good.numpy()
        )
    if kind == "dtype":
        return good.to(draw(st.sampled_from(DTYPES)))
    if kind == "shape":
        dims = draw(st.lists(st.integers(0, 5), min_size=0, max_size=6))
        return torch.zeros(dims, dtype=torch.long)
    if kind == "values":
        value = draw(st.sampled_from([-1, levels, 255, 2**31 - 1, -(2**63)]))
        bad = good.clone().long()
        bad.view(-1)[draw(st.integers(0, bad.numel() - 1))] = value
        return bad
    if kind == "empty":
        return torch.zeros((0, *shape), dtype=torch.long)
    if kind == "huge batch":  # a view of one image as 10**9 (no memory): the forward pass must not start
        return torch.zeros((1, *shape), dtype=torch.long).expand(draw(st.sampled_from([10**9, 10**12])), *shape)
    return draw(hostile_value)


@st.composite
def conditions(draw, batch: int):
    """What may come as ``cond``: labels, vectors (NaN / inf among them), wrong dtypes and shapes, numbers."""
    kind = draw(st.sampled_from(["none", "labels", "vectors", "int", "other"]))
    if kind == "none":
        return None
    if kind == "labels":
        values = draw(st.lists(st.integers(-2, 4) | st.sampled_from([2**40]), min_size=0, max_size=4))
        return torch.tensor(
            values,
            dtype=draw(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32]))
            if max(values, default=0) < 256 and min(values, default=0) >= 0
            else torch.int64,
        )
    if kind == "vectors":
        rows = draw(st.sampled_from([batch, batch + 1, 0])) if batch < 5 else 1  # a huge batch is refused first
        cols = draw(st.sampled_from([2, 1, 3]))
        values = torch.randn(rows, cols)
        if rows and draw(st.booleans()):
            values.view(-1)[0] = draw(st.sampled_from(NON_FINITE + [1e30]))
        return values.to(draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64])))
    if kind == "int":
        return draw(st.integers(-2, 4) | st.sampled_from(HUGE_INTS))
    return draw(hostile_value)


def good_log_prob(batch: int):
    def check(result):
        assert isinstance(result, torch.Tensor) and result.shape == (batch,), result
        assert torch.isfinite(result).all() and (result <= 0).all(), result

    return check


def good_images(n: int, shape=IMAGE_SHAPE, levels=4):
    def check(result):
        assert isinstance(result, torch.Tensor) and result.dtype == torch.int64, result
        assert result.shape == (n, *shape), result.shape
        assert 0 <= int(result.min()) and int(result.max()) < levels

    return check


def batch_of(x) -> int:
    return x.shape[0] if isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim else 1


# ----------------------------------------------------------------------------------- build
BUILD_FIELDS = [
    "image_shape",
    "levels",
    "num_classes",
    "cond_dim",
    "spatial_cond",
    "spatial_channels",
    "n_layers",
    "hidden",
    "kernel_size",
    "head",
    "bottleneck",
    "factor",
    "layer",
    "no_such_field",
]


@quick
@given(
    name=st.sampled_from(
        [
            "gated_pixelcnn",
            "pixelcnn",
            "row_lstm",
            "diagonal_bilstm",
            "multiscale_pixelrnn",
            "pixelcnn_ae",
            "mse_ae",
            "tiny-gated",
            "no_such_model",
            "",
        ]
    )
    | st.text(max_size=6),
    overrides=st.dictionaries(
        st.sampled_from(BUILD_FIELDS),
        hostile_value | st.tuples(hostile_number, hostile_number, hostile_number),
        max_size=3,
    ),
)
def test_build_with_hostile_options(name, overrides):
    base = dict(image_shape=(1, 4, 4), levels=4, n_layers=1, hidden=4) if name not in presets else {}
    if name in ("multiscale_pixelrnn",):
        base["image_shape"] = (1, 4, 4)
    options = {**base, **overrides}

    def check(model):
        assert isinstance(model, torch.nn.Module)
        if (
            hasattr(model, "log_prob")
            and name != "pixelcnn_ae"
            and model.config.num_classes is None
            and model.config.cond_dim is None
        ):
            x = torch.zeros((1, *model.image_shape), dtype=torch.long)
            assert torch.isfinite(model.log_prob(x)).all()

    valid = not overrides and (name in pixelcnn.list_models() or name in presets)  # the base sizes, or a preset
    api_call("build", lambda: pixelcnn.build(name, **options), check=check, valid=valid)


# ----------------------------------------------------------------------------------- log_prob, sample, complete
@quick
@given(kind=st.sampled_from(["none", "classes", "vector"]), x=images(), data_=st.data())
def test_log_prob_with_hostile_images_and_conditions(kind, x, data_):
    cond = data_.draw(conditions(batch_of(x)))
    api_call("log_prob", lambda: tiny(kind).log_prob(x, cond), check=good_log_prob(batch_of(x)))


@quick
@given(
    kind=st.sampled_from(["none", "classes", "vector"]),
    n=st.integers(1, 2) | st.sampled_from([0, -1, 2**40, 10**30, 1.0, True, "2", None]),
    temperature=st.sampled_from([1.0, 0.5, 2]) | hostile_value,
    method=st.sampled_from(["auto", "fast", "naive", "bogus", None, 3]),
    data_=st.data(),
)
def test_sample_with_hostile_arguments(kind, n, temperature, method, data_):
    cond = data_.draw(conditions(n if isinstance(n, int) and 0 < n < 5 else 1))
    expected = n if isinstance(n, int) and not isinstance(n, bool) else 0
    valid = (
        kind == "none"
        and cond is None
        and expected in (1, 2)
        and method in ("auto", "fast", "naive")
        and type(temperature) in (int, float)
        and temperature in (1.0, 0.5, 2)
    )
    api_call(
        "sample",
        lambda: tiny(kind).sample(
            n, cond, temperature=temperature, method=method, generator=torch.Generator().manual_seed(0)
        ),
        check=good_images(expected),
        valid=valid,
    )


@quick
@given(
    kind=st.sampled_from(["none", "classes"]),
    x=images(),
    known_rows=st.integers(-1, 5) | st.sampled_from([2**63, 1.5, None, "2"]),
    data_=st.data(),
)
def test_complete_with_hostile_arguments(kind, x, known_rows, data_):
    cond = data_.draw(conditions(batch_of(x)))

    def check(result):
        good_images(batch_of(x))(result)
        assert torch.equal(result[:, :, :known_rows], torch.as_tensor(x).long()[:, :, :known_rows])

    api_call(
        "complete",
        lambda: tiny(kind).complete(x, known_rows, cond, generator=torch.Generator().manual_seed(0)),
        check=check,
    )


# ----------------------------------------------------------------------------------- save / load
@quick
@given(data_=st.data(), which=st.sampled_from(["config.json", "model.safetensors", "both"]))
def test_load_of_corrupted_files(data_, which):
    config, weights = saved_model()
    folder = fresh("load")
    if which in ("config.json", "both"):
        config = data_.draw(hostile_json_text(json.loads(config))).encode("utf-8", "surrogatepass")
    if which in ("model.safetensors", "both"):
        weights = data_.draw(corrupted_bytes(weights))
    (folder / "config.json").write_bytes(config)
    (folder / "model.safetensors").write_bytes(weights)

    def check(model):
        x = torch.zeros((1, *model.image_shape), dtype=torch.long)
        if model.config.num_classes is None and model.config.cond_dim is None and model.name != "pixelcnn_ae":
            model.log_prob(x)

    api_call("load", lambda: pixelcnn.load(folder), check=check)


@quick
@given(
    path=st.sampled_from(["", ".", "missing/..", "file.txt", "a.pt", "model.safetensors", "config.json"]),
    content=st.binary(max_size=64),
)
def test_load_of_things_that_are_not_model_folders(path, content):
    folder = fresh("notmodel")
    target = folder / path
    if target != folder and not str(path).endswith(".."):
        target.write_bytes(content)
    api_call("load", lambda: pixelcnn.load(target), errors=(ValueError, FileNotFoundError))


@quick
@given(model=st.sampled_from([None, "model", 3]), path=st.sampled_from(["file", "nested/deep/m"]))
def test_save_with_hostile_arguments(model, path):
    folder = fresh("save")
    (folder / "file").write_text("a file, not a folder")
    target = tiny("none") if model == "model" else model
    api_call(
        "save",
        lambda: pixelcnn.save(target, folder / path),
        check=lambda out: pixelcnn.load(out).config == tiny("none").config,
    )


# ----------------------------------------------------------------------------------- data.load
@st.composite
def image_folders(draw) -> Path:
    """A folder of image files: good PNGs, files named .png that are not images, truncated ones, empty
    ones, a PNG claiming to be gigapixels, text files, nested folders."""
    folder = fresh("images")
    n = draw(st.integers(0, 6))
    for i in range(n):
        kind = draw(
            st.sampled_from(
                [
                    "good",
                    "good",
                    "good",
                    "other size",
                    "rgb",
                    "garbage",
                    "truncated",
                    "empty",
                    "bomb",
                    "text",
                    "folder named .png",
                ]
            )
        )
        sub = folder / draw(st.sampled_from(["", "train", "test", "a", "b"]))
        sub.mkdir(exist_ok=True)
        name = sub / f"img{i}{draw(st.sampled_from(['.png', '.PNG', '.jpg', '.gif']))}"
        if kind == "good":
            name.write_bytes(png_bytes(4, 4))
        elif kind == "other size":
            name.write_bytes(png_bytes(5, 3))
        elif kind == "rgb":
            name.write_bytes(png_bytes(4, 4, grey=False))
        elif kind == "garbage":
            name.write_bytes(draw(st.binary(max_size=40)))
        elif kind == "truncated":
            name.write_bytes(png_bytes(4, 4)[: draw(st.integers(8, 50))])
        elif kind == "empty":
            name.write_bytes(b"")
        elif kind == "bomb":  # a header promising 10^10 pixels and a few bytes of pixels
            name.write_bytes(png_bytes(100_000, 100_000, body=zlib_small()))
        elif kind == "text":
            (sub / f"notes{i}.txt").write_text("not an image")
        else:
            name.mkdir()
    return folder


def zlib_small() -> bytes:
    return zlib.compress(b"\x00" * 100)


@quick
@given(
    folder=image_folders(),
    split=st.sampled_from(["train", "test", "valid", None, 1]),
    image_size=st.none() | st.integers(1, 6) | st.sampled_from([0, -1, 10**6, 2**40, 2.5, "4"]),
    channels=st.none() | st.sampled_from([1, 3, 2, 0, "1"]),
)
def test_data_load_of_a_folder_of_hostile_files(folder, split, image_size, channels):
    def check(dataset):
        images = dataset.images
        assert images.dtype == torch.uint8 and images.ndim == 4 and len(images) == len(dataset.labels) > 0
        if image_size is not None:
            assert images.shape[2:] == (image_size, image_size)

    api_call(
        "data.load", lambda: data.load(f"folder:{folder}", split, image_size=image_size, channels=channels), check=check
    )


@quick
@given(
    name=st.sampled_from(["digits", "no-such-set", "folder:", "mnist"]) | hostile_value,
    split=st.sampled_from(["train", "test"]) | hostile_value,
    binarize=st.sampled_from([None, "dynamic", "threshold"]) | hostile_value,
)
def test_data_load_with_hostile_arguments(name, split, binarize):
    root = fresh("root")  # empty: a standard set would download; download=False keeps this offline
    # A standard set that is not there: a FileNotFoundError saying where to put it.
    api_call(
        "data.load",
        lambda: data.load(name, split, binarize=binarize, root=root, download=False),
        errors=(ValueError, FileNotFoundError),
    )


# ----------------------------------------------------------------------------------- compress / decompress
@quick
@given(kind=st.sampled_from(["none", "classes", "vector"]), x=images(), data_=st.data())
def test_compress_with_hostile_images_and_conditions(kind, x, data_):
    model = tiny(kind)
    cond = data_.draw(conditions(batch_of(x)))

    def check(stream):
        assert isinstance(stream, bytes)
        assert torch.equal(pixelcnn.decompress(model, stream), torch.as_tensor(x).long())

    api_call("compress", lambda: pixelcnn.compress(model, x, cond=cond), check=check)


@functools.cache
def good_stream() -> bytes:
    x = torch.tensor([[[[0, 1, 2, 3]] * 4]] * 2)
    return pixelcnn.compress(tiny("classes"), x, cond=torch.tensor([0, 2]))


@quick
@given(data_=st.data())
def test_decompress_of_corrupted_streams(data_):
    stream = data_.draw(
        corrupted_bytes(good_stream()) | st.sampled_from([b"PXCZ", "text", None, 7, bytearray(good_stream())])
    )
    model = data_.draw(st.sampled_from(["classes", "none"]))

    def check(x):
        assert stream == good_stream() or bytes(stream) == good_stream(), "a corrupted stream decoded"
        assert torch.equal(x, torch.tensor([[[[0, 1, 2, 3]] * 4]] * 2))

    api_call("decompress", lambda: pixelcnn.decompress(tiny(model), stream), check=check)


def test_the_fuzz_rule_itself_fails_on_a_traceback_and_on_a_wrong_result():
    import pytest

    from fuzzing import UnclearOutcome

    with pytest.raises(UnclearOutcome, match="KeyError"):
        api_call("self-test", lambda: {}["missing"])
    with pytest.raises(AssertionError):
        api_call(
            "self-test",
            lambda: 1,
            check=lambda result: None if result == 2 else (_ for _ in ()).throw(AssertionError("wrong")),
        )
    assert api_call("self-test", lambda: int("x")) is None  # a one-line ValueError is allowed
    with pytest.raises(UnclearOutcome, match="valid input was refused"):
        api_call("self-test", lambda: int("x"), valid=True)  # ... unless the input was valid


# ----------------------------------------------------------------------------------- found by random fuzzing
def test_inputs_that_random_fuzzing_found(tmp_path):
    """Each once escaped as a torch or Pillow error: a class label past int64, and a PNG header claiming
    10^10 pixels."""
    from pixelcnn.data.folder import read_image

    model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 4, 4), levels=2, n_layers=1, hidden=4, num_classes=3)
    for label in (2**63, 2**70, -1, 3):
        with pytest.raises(ValueError, match=r"expected cond = a class label in 0\.\.2"):
            model.sample(1, label)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(100_000, 100_000, body=zlib.compress(b"")))
    with pytest.raises(ValueError, match="too large to decode"):
        read_image(bomb, (1, 4, 4), 2)
