"""Lossless compression: bit-exact round trips for every model family, sizes at the NLL, clear refusals."""

from __future__ import annotations

import contextlib
import math
import random
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pixelcnn
from conftest import proof_cases, tiny_model_config
from pixelcnn import coding
from pixelcnn.coding import MAGIC, TOTAL, compress, decompress, quantize, read_condition, read_header

# (C, H, W), levels: binary images (a Bernoulli head) and 8-bit colour images (a 256-way softmax).
IMAGES = {"binary": ((1, 6, 6), 2), "colour": ((3, 4, 4), 256)}
# Every registry model from its tiny-* preset (conftest.TINY_MODELS), under each of these conditions it
# takes (the auto-encoder: "vector", its own code, which the file stores).
FAMILY_CONDITIONS = proof_cases(["none", "class", "vector"])


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: on a shared 2-core machine a second thread only adds synchronisation.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # log_prob and model building are faster so
    yield
    torch.set_num_threads(threads)


def build(preset: str, *, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return pixelcnn.build(preset, **overrides).eval()


def random_images(model, batch: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.levels, (batch, *model.image_shape), generator=generator)


def random_cond(model, batch: int, seed: int = 2):
    generator = torch.Generator().manual_seed(seed)
    if model.config.num_classes is not None:
        return torch.randint(0, model.config.num_classes, (batch,), generator=generator)
    if model.config.cond_dim is not None:
        return torch.randn(batch, model.config.cond_dim, generator=generator)
    return None


def nll_bits(model, x, cond=None) -> float:
    with torch.no_grad():
        return float(-model.log_prob(x, cond).sum()) / math.log(2)


def assert_round_trip(model, x, cond=None, *, method: str = "auto") -> bytes:
    """Decoding gives x bit for bit, and the stream costs at most -log2 p(x) + 64 bits."""
    data = compress(model, x, cond, method=method)
    decoded = decompress(model, data)
    assert decoded.dtype == torch.int64 and torch.equal(decoded, x.long())
    header = read_header(data)
    stream_bits = 8 * (len(data) - header.size)
    # The range coder ends on whole 32-bit words (at most 64 bits of slack in all); the integer
    # tables lose about L / 2^24 of the probability per symbol.
    assert stream_bits <= nll_bits(model, x, cond) + 64 + 1e-3 * x.numel()
    assert header.size - len(header.cond_bytes) <= 100  # the header is small
    return data


@pytest.mark.parametrize("images", IMAGES)
@pytest.mark.parametrize("family, condition", FAMILY_CONDITIONS)
def test_round_trip_every_family(family, condition, images):
    shape, levels = IMAGES[images]
    if family == "multiscale_pixelrnn":  # smaller images, to keep the test quick
        shape = (shape[0], 4, 4) if images == "binary" else (shape[0], 2, 4)
    tiny_of = tiny_model_config(family)
    model = build(tiny_of.preset, image_shape=shape, levels=levels, **tiny_of.conditions[condition])
    assert model.name == family
    batch = 1 if condition == "none" else 3
    x = random_images(model, batch)
    data = assert_round_trip(model, x, random_cond(model, batch))
    assert read_header(data).step == "fast"  # every family codes with its cached step


@pytest.mark.parametrize("batch", [1, 5])
def test_round_trip_autoencoder_stores_the_code(batch):
    model = build("tiny-ae")
    x = random_images(model, batch)
    data = compress(model, x)
    assert torch.equal(decompress(model, data), x)
    # The file carries each image's code (float32), and costs its stream plus those bits.
    code = read_condition(model, data)
    assert torch.equal(code, model.encode(x).detach())
    header = read_header(data)
    assert len(header.cond_bytes) == batch * model.config.bottleneck * 4
    assert 8 * (len(data) - header.size) <= nll_bits(model, x) + 64 + 1e-3 * x.numel()


def test_spatial_condition_and_many_classes():
    model = build("tiny-gated", cond_dim=3, spatial_cond=True)
    x = random_images(model, 4)
    assert_round_trip(model, x, random_cond(model, 4))
    model = build("tiny-pixelcnn", num_classes=300)  # labels above 255 are stored as uint16
    cond = torch.tensor([0, 299, 255, 256])
    data = assert_round_trip(model, random_images(model, 4), cond)
    assert torch.equal(read_condition(model, data), cond)


def test_naive_step_round_trip_and_decodes_with_the_step_it_was_made_with():
    model = build("tiny-gated", num_classes=3)
    x, cond = random_images(model, 2), random_cond(model, 2)
    data = assert_round_trip(model, x, cond, method="naive")
    assert read_header(data).step == "naive"
    # Every family has a cached step; a model without one is refused for method="fast".
    from pixelcnn.models import AutoregressiveModel, PixelCNN

    class UncachedPixelCNN(PixelCNN):
        fast_cache = AutoregressiveModel.fast_cache

    uncached = UncachedPixelCNN(build("tiny-pixelcnn").config)
    with pytest.raises(ValueError, match="no cached step"):
        compress(uncached, x[:, :, :8, :8], method="fast")
    assert read_header(compress(uncached, x)).step == "naive"
    with pytest.raises(ValueError, match="unknown method"):
        compress(model, x, cond, method="parallel")


def test_progress_bars_name_the_coding_and_count_the_pixels(capsys):
    """A long decode (a file may claim many images: a range coder's stream has no lower bound on its
    length) shows a bar with its total and an ETA; the bars change nothing in the file or the images."""
    model = build("tiny-gated", num_classes=3)
    x, cond = random_images(model, 2), random_cond(model, 2)
    data = compress(model, x, cond, progress=True)
    assert data == compress(model, x, cond)
    assert torch.equal(decompress(model, data, progress=True), x)
    bars = capsys.readouterr().err
    pixels = model.image_shape[1] * model.image_shape[2]
    assert "encoding 2 images" in bars and "decoding 2 images" in bars and f"{pixels}/{pixels}" in bars, bars


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_float_dtypes(dtype):
    model = build("tiny-pixelcnn", cond_dim=2).to(dtype)
    x = random_images(model, 3)
    data = assert_round_trip(model, x, torch.randn(3, 2))
    header = read_header(data)
    assert header.platform.endswith(str(dtype).replace("torch.", ""))
    assert len(header.cond_bytes) == 3 * 2 * dtype.itemsize  # the condition in the model's precision


def test_thread_count_does_not_matter():
    # Coding runs on one thread whatever the caller set (this very case failed when a file encoded
    # with 2 threads was decoded with 1), and gives the caller's setting back.
    model = build("tiny-gated", image_shape=(3, 4, 4), levels=256)
    x = random_images(model, 4)
    torch.set_num_threads(2)
    data = compress(model, x)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    assert torch.equal(decompress(model, data), x)


def test_wrong_model_is_refused():
    model = build("tiny-gated", seed=0)
    x = random_images(model, 2)
    data = compress(model, x)
    with pytest.raises(ValueError, match="different model"):
        decompress(build("tiny-gated", seed=1), data)  # same config, other weights
    with pytest.raises(ValueError, match="different model"):
        decompress(build("tiny-gated", seed=0, n_layers=2), data)
    with pytest.raises(ValueError, match="shape"):
        decompress(build("tiny-gated", image_shape=(1, 7, 7)), data)
    with pytest.raises(ValueError, match="levels"):
        decompress(build("tiny-gated", levels=3), data)


@pytest.fixture(scope="module")
def small_file():
    torch.set_num_threads(1)
    model = build("tiny-pixelcnn", num_classes=3, image_shape=(1, 4, 4))
    x = random_images(model, 2)
    return model, x, compress(model, x, torch.tensor([0, 2]))


def test_every_truncation_is_refused(small_file):
    model, _, data = small_file
    for length in range(len(data)):
        with pytest.raises(ValueError, match="truncated|not a pixelcnn"):
            decompress(model, data[:length])
    with pytest.raises(ValueError, match="after its end"):
        decompress(model, data + b"\0")


def test_every_flipped_byte_is_refused(small_file):
    model, _, data = small_file
    for position in range(len(data)):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x5A
        with pytest.raises(ValueError, match="corrupted|truncated|not a pixelcnn|version"):
            decompress(model, bytes(corrupted))


NOISE_MODEL = build("tiny-pixelcnn", image_shape=(1, 4, 4))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_are_refused(noise, with_magic):
    with pytest.raises(ValueError):
        decompress(NOISE_MODEL, (MAGIC + noise) if with_magic else noise)


def test_not_bytes_is_refused():
    with pytest.raises(ValueError, match="bytes"):
        decompress(build("tiny-pixelcnn"), "PXCZ")


def test_other_platform_is_refused_unless_asked(small_file, monkeypatch):
    model, x, data = small_file
    monkeypatch.setattr(coding.codec, "platform_string", lambda model: "torch=9.9.9;cuda=Some GPU;float32")
    with pytest.raises(ValueError, match=r"another platform: torch=.* \(file\) vs torch=9\.9\.9 \(here\)"):
        decompress(model, data)
    assert torch.equal(decompress(model, data, check_platform=False), x)


def test_decoded_images_are_checked(small_file, monkeypatch):
    # A decoder whose floats differ from the encoder's (simulated: other weights under the same hash)
    # must raise, never return other images.
    model, _, data = small_file
    other = build("tiny-pixelcnn", num_classes=3, image_shape=(1, 4, 4), seed=5)
    monkeypatch.setattr(coding.codec, "model_hash", lambda m: read_header(data).model_hash)
    with pytest.raises(ValueError, match="differ"):
        decompress(other, data)


def test_bad_inputs_are_value_errors():
    model = build("tiny-pixelcnn", num_classes=3)
    x = random_images(model, 2)
    with pytest.raises(ValueError, match="integer"):
        compress(model, x.float())
    with pytest.raises(ValueError, match="num_classes"):
        compress(model, x)
    with pytest.raises(ValueError, match="class"):
        compress(model, x, torch.tensor([0, 3]))


def test_header_records_what_it_says():
    model = build("tiny-rowlstm", cond_dim=4)
    x, cond = random_images(model, 3), random_cond(model, 3)
    data = compress(model, x, cond)
    header = read_header(data)
    assert header.batch == 3 and header.image_shape == model.image_shape and header.levels == model.levels
    assert header.model_hash == coding.model_hash(model) and len(header.model_hash) == 8
    assert header.platform == coding.platform_string(model)
    assert header.image_crc == zlib.crc32(x.numpy().astype(np.int64).tobytes())
    assert torch.equal(read_condition(model, data), cond)  # float32 cond stored exactly
    assert pixelcnn.compress is compress and pixelcnn.decompress is decompress


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 300), st.integers(0, 2**32 - 1), st.floats(0.01, 100))
def test_quantize_keeps_every_symbol_and_the_total(levels, seed, concentration):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(levels, concentration), size=3)  # [3, L], some masses ~ 0
    mass = quantize(probs)
    assert mass.dtype == np.int64 and (mass >= 1).all() and (mass.sum(axis=1) == TOTAL).all()
    assert np.array_equal(mass, quantize(probs.copy()))  # deterministic
    # Where p is not tiny, the integer table costs at most a hair more than -log2 p.
    big = probs > 1e-3
    assert (-np.log2(mass / TOTAL)[big] <= -np.log2(probs[big]) + 1e-3).all()


# --------------------------------------------------------------------------- version 2: names
def test_names_are_stored_in_version_2_and_version_1_is_still_read(small_file):
    model, x, v1 = small_file
    assert v1[4] == 1 and read_header(v1).names is None  # no names: version 1, as before
    v2 = compress(model, x, torch.tensor([0, 2]), names=["a.png", "sub/b.png"])
    header = read_header(v2)
    assert v2[4] == coding.FORMAT_VERSION == 2 and header.version == 2 and header.names == ["a.png", "sub/b.png"]
    assert torch.equal(decompress(model, v2), x) and torch.equal(decompress(model, v1), x)
    assert len(v2) == len(v1) + 4 + len("a.png\0sub/b.png")
    for length in range(len(v2)):
        with pytest.raises(ValueError, match="truncated|not a pixelcnn"):
            decompress(model, v2[:length])
    for position in range(len(v2)):
        corrupted = bytearray(v2)
        corrupted[position] ^= 0x5A
        with pytest.raises(ValueError, match="corrupted|truncated|not a pixelcnn|version"):
            decompress(model, bytes(corrupted))


@pytest.mark.parametrize(
    "names",
    [["a.png"], ["a.png", "a.png"], ["../a.png", "b"], ["/a", "b"], ["a//b", "c"], ["a\0b", "c"], "ab", ["a", 3]],
)
def test_bad_names_are_refused(small_file, names):
    model, x, _ = small_file
    with pytest.raises(ValueError, match="names|name"):
        compress(model, x, torch.tensor([0, 2]), names=names)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b7", "img-0009", "img-0010", "x/9", "x/10", "x/11", "12", "0013", "é"]),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 2000),
    st.integers(1, 40),
)
def test_names_block_round_trips(words, start, run_length):
    names = [f"{w}.png" for w in words] + [f"set-{k:05d}.png" for k in range(start, start + run_length)]
    assert coding.decode_names(coding.encode_names(names), len(names)) == names
    if run_length >= 3:
        assert len(coding.encode_names([f"set-{k:05d}.png" for k in range(run_length)])) < 30


def test_concatenated_files_split_into_their_records(small_file):
    model, x, v1 = small_file
    v2 = compress(model, x[:1], torch.tensor([1]), names=["one.png"])
    assert coding.split_records(v1 + v2 + v1) == [v1, v2, v1]
    with pytest.raises(ValueError, match="truncated"):
        coding.split_records(v1 + v2[:-1])
    with pytest.raises(ValueError, match="not a pixelcnn"):
        coding.split_records(v1 + b"junk")


# --------------------------------------------------------------------------- the byte layout
# The fixed header as docs/compression.md ("The .pxcz file format") documents it: offset, size, type, field.
FIXED_LAYOUT = [
    (0, 4, "bytes", "magic"),
    (4, 1, "uint8", "version"),
    (5, 1, "uint8", "step"),
    (6, 1, "uint8", "cond_kind"),
    (7, 1, "uint8", "cond_dtype"),
    (8, 8, "bytes", "model_hash"),
    (16, 4, "uint32", "batch"),
    (20, 2, "uint16", "channels"),
    (22, 2, "uint16", "height"),
    (24, 2, "uint16", "width"),
    (26, 2, "uint16", "levels"),
    (28, 1, "uint8", "precision"),
    (29, 2, "uint16", "cond_dim"),
    (31, 1, "uint8", "platform_length"),
]
STRUCT_CODES = {"uint8": "B", "uint16": "H", "uint32": "I"}


@pytest.mark.parametrize("names", [None, ["a.png", "b.png"]])
def test_a_tiny_file_has_the_documented_byte_layout(names):
    """Each field of the fixed header at its documented offset, then the blocks in their documented order.

    Neighbouring fields hold different values (version 2, naive step 1, vector kind 3, float64 code 4; H 3,
    W 5), so swapping two of them in the code fails here.
    """
    model = build("tiny-pixelcnn", image_shape=(1, 3, 5), levels=7, cond_dim=2).to(torch.float64)
    x, cond = random_images(model, 2), torch.randn(2, 2, dtype=torch.float64)
    data = compress(model, x, cond, method="naive", names=names)
    platform = coding.platform_string(model).encode("ascii")
    expected = {
        "magic": b"PXCZ",
        "version": 1 if names is None else 2,
        "step": 1,
        "cond_kind": 3,
        "cond_dtype": 4,
        "model_hash": coding.model_hash(model),
        "batch": 2,
        "channels": 1,
        "height": 3,
        "width": 5,
        "levels": 7,
        "precision": 24,
        "cond_dim": 2,
        "platform_length": len(platform),
    }
    for offset, size, kind, field in FIXED_LAYOUT:
        code = f"{size}s" if kind == "bytes" else STRUCT_CODES[kind]
        assert struct.calcsize("<" + code) == size
        (value,) = struct.unpack_from("<" + code, data, offset)
        assert value == expected[field], field
    stream = read_header(data).stream.astype("<u4").tobytes()
    blocks = [("platform string", platform), ("condition", cond.numpy().astype("<f8").tobytes())]  # B x D float64
    if names is not None:
        blocks += [("names length", struct.pack("<I", len(b"a.png\0b.png"))), ("names", b"a.png\0b.png")]
    blocks += [
        ("image CRC-32", struct.pack("<I", zlib.crc32(x.numpy().astype(np.int64).tobytes()))),
        ("stream word count", struct.pack("<I", len(stream) // 4)),
        ("stream words", stream),
    ]
    at = 32
    for block, content in blocks:
        assert data[at : at + len(content)] == content, block
        at += len(content)
    assert data[at:] == struct.pack("<I", zlib.crc32(data[:at]))  # file CRC-32, the last 4 bytes
    assert torch.equal(decompress(model, data), x)


def test_the_documented_fixed_header_is_the_one_read_and_written():
    """docs/compression.md's table, FIXED_LAYOUT above and coding.FixedHeader name the same fields in one order."""
    import dataclasses
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "compression.md").read_text()
    table = text.split("### The fixed header", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (\w+) \| `(\w+)` \|", table, re.M)
    assert [(int(offset), int(size), kind, field) for offset, size, kind, field in rows] == FIXED_LAYOUT
    assert [field.name for field in dataclasses.fields(coding.FixedHeader)] == [row[3] for row in FIXED_LAYOUT]


def test_docs_snippet_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "compression.md").read_text()
    section = text.split("## From Python", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    model = build("tiny-gated", num_classes=3)
    namespace = {
        "pixelcnn": pixelcnn,
        "model": model,
        "x": random_images(model, 3),
        "y": torch.tensor([0, 1, 2]),
        "background": build("tiny-pixelcnn"),
    }
    exec(compile(snippet, "docs/compression.md", "exec"), namespace)
    assert torch.equal(namespace["x_again"], namespace["x"])
    assert set(namespace["s"]) >= {"nll", "likelihood_ratio", "complexity"}


PEAKED_MODEL = None


def peaked_model():
    """A 28x28 binary model whose untrained probabilities are far from uniform (seed 0)."""
    global PEAKED_MODEL
    if PEAKED_MODEL is None:
        torch.manual_seed(0)
        PEAKED_MODEL = build("gated_pixelcnn", image_shape=(1, 28, 28), levels=2, n_layers=2, hidden=32)
    return PEAKED_MODEL


def with_stream(data: bytes, stream: bytes) -> bytes:
    """``data`` (a valid file) with its coded stream replaced by ``stream`` and the CRC-32 made valid again."""
    words = len(read_header(data).stream)
    image_crc = data[-4 - 4 * words - 8 : -4 - 4 * words - 4]
    body = data[: -4 - 4 * words - 8] + image_crc + struct.pack("<I", len(stream) // 4) + stream
    return body + struct.pack("<I", zlib.crc32(body))


def test_a_stream_the_range_decoder_asserts_on_is_a_clear_error():
    # CI met this: constriction raises AssertionError ("compressed data that is invalid for the
    # employed entropy model") for some garbage; it must reach the user as our ValueError.
    model = peaked_model()
    data = compress(model, torch.zeros(1, 1, 28, 28, dtype=torch.long))
    assert decompress(model, with_stream(data, read_header(data).stream.tobytes())).sum() == 0  # the splice is exact
    with pytest.raises(ValueError, match="corrupted pixelcnn compressed file: .*no encoder writes"):
        decompress(model, with_stream(data, random.Random(1).randbytes(64)))


@pytest.mark.slow  # a property test: 25 decodes of a 28x28 image
@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=4, max_size=64).map(lambda b: b[: len(b) // 4 * 4]))
def test_any_stream_is_decoded_or_refused_with_a_value_error(stream):
    model = peaked_model()
    data = compress(model, torch.zeros(1, 1, 28, 28, dtype=torch.long))
    with contextlib.suppress(ValueError):
        decompress(model, with_stream(data, stream))
