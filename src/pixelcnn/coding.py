"""Lossless compression with an entropy coder: an image costs about -log2 p(x) bits.

    data = pixelcnn.compress(model, x, cond=y)                # x: int [B, C, H, W] -> bytes
    x_again = pixelcnn.decompress(model, data)                # int64 [B, C, H, W], equal to x
    y_again = pixelcnn.coding.read_condition(model, data)     # the labels stored in the file
    data = pixelcnn.compress(model, x, names=["a.png", "b.png"])    # with each image's name (version 2)
    pixelcnn.coding.read_header(data).names                   # ["a.png", "b.png"]

A fully observed autoregressive model gives every pixel-channel an explicit
conditional distribution, so an entropy coder turns the model's likelihood
into a code length directly (no bits-back coding): the range coder of
``constriction`` (a maintained PyPI package; we write no coder of our own)
codes each pixel-channel with its conditional, in the model's generation
order. Decoding runs the same steps as sampling, reading each value from the
stream instead of drawing it, so it costs what sampling costs; the cached
(``fast``) step makes it practical.

Bit-exactness. Encoder and decoder must build the *same* integer probability
table for every pixel-channel, or the decoder reads garbage. So both run the
same code (``_visit_in_order`` below), on the same inputs: a working image
that starts at zero and receives each value as it is coded, through the
model's cached one-pixel-at-a-time step (or, with ``method="naive"``, one
full forward pass per pixel-channel; a single parallel pass would not do: its
floats differ from the sequential ones in the last bits). The condition is
read back from the stored bytes on both sides. Each conditional is turned
into integers by ``quantize``: the head's float64 ``probabilities`` (softmax,
sigmoid, or the mixture's bin masses) of its parameters, then
``1 + floor(p * (2^24 - L))`` for each of the L symbols (every symbol keeps
mass >= 1, so any image can be coded) and the
remainder to the most probable symbol, so the table sums to exactly 2^24.
The table divided by 2^24 (exact in float64) is what ``constriction``'s
``Categorical(perfect=False)`` receives; its own fixed-point quantization of
those floats is a deterministic function of them.

What decodes where (NOTE: float arithmetic is not bit-reproducible across
CPUs, devices, libraries or dtypes). The header records the platform facts
the floats depend on: the torch version, the device type and its kind (the
CPU's vector instruction set as torch reports it, e.g. AVX2 / AVX512; the GPU's
name), and the model's float dtype. ``decompress`` refuses (``ValueError``
naming the difference) a file made where any of these differ, unless
``check_platform=False``. Whatever it decodes is then verified against a
CRC-32 of the original image stored in the file, so even on a platform that
computes different floats (say, a different CPU with the same instruction
set) the result is either the exact image or a ``ValueError``, never a
silently wrong image. Coding runs on one CPU thread whatever
``torch.get_num_threads()`` says (restored after): CPU kernels split their
sums by thread, and a file encoded with 2 threads did not decode with 1.
On CUDA, coding also turns off cuDNN's autotuner and asks for its
deterministic algorithms (restored after). Tested here: round trips on one
x86 CPU (AVX2), whatever the caller's thread count (``tests/test_coding.py``);
not yet on a GPU, and not across two machines.

File format (versions 1 and 2; all integers little-endian)::

    offset  size  field
    0       4     magic b"PXCZ"
    4       1     format version: 1, or 2 when the file stores the images' names
    5       1     step: 0 = cached ("fast"), 1 = naive
    6       1     condition kind: 0 none, 1 class labels (uint8), 2 class labels (uint16),
                  3 vector condition, 4 code of the image itself (the PixelCNN auto-encoder)
    7       1     dtype of a stored vector: 0 none, 1 float16, 2 bfloat16, 3 float32, 4 float64
    8       8     model hash: sha256 of the config JSON and every state-dict tensor, first 8 bytes
    16      4     batch size B (uint32)
    20      6     C, H, W (uint16 each)
    26      2     levels (uint16)
    28      1     probability precision in bits (24)
    29      2     vector size D (uint16; 1 for class labels, 0 for none)
    31      1     n = length of the platform string
    32      n     platform string, ASCII: "torch=2.13.0;cpu=AVX2;float32"
    ...           condition: B labels, or B x D floats in the model's dtype (the model's own
                  precision, so the decoder rebuilds exactly the encoder's condition)
    ...     4     version 2 only: n = bytes of the names
    ...     n     version 2 only: B names (relative paths such as "3s/img01.png", for ``pixelcnn
                  decompress`` to write the images back under), UTF-8 entries separated by NUL
                  bytes: a name, or a numbered run "\x01PREFIX\x01SUFFIX\x01WIDTH\x01START\x01COUNT"
                  standing for PREFIX + the zero-padded numbers START .. START+COUNT-1 + SUFFIX
                  ("img-00000.png" .. "img-00999.png" cost 30 bytes, not 14,000)
    ...     4     CRC-32 of the original images (int64 bytes) -- checked after decoding
    ...     4     number of 32-bit words of the range coder's stream
    ...     4*w   the stream
    end-4   4     CRC-32 of every byte before it (a truncated or corrupted file is refused)

Version 2 only adds the names block; ``compress`` writes version 1 when it is
given no names (those files are byte for byte what earlier releases wrote, and
any release reads them) and version 2 when it is. Names are a block in the file
rather than a file beside it, so that a file cannot lose them or get another's.

A vector condition costs B x D x 4 bytes (float32), stored losslessly because
the decoder must rebuild exactly the encoder's conditionals; the auto-encoder's
code of each image is stored the same way (its bits are part of the file size).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .hardware import available_memory
from .models.base import check_batch_fits
from .sampling import cached_generate, naive_generate

MAGIC = b"PXCZ"
FORMAT_VERSION = 2                  # the newest version written; every version from 1 up is read
PRECISION = 24                      # bits of the integer probability tables: each sums to 2^24
TOTAL = 1 << PRECISION

_FIXED = struct.Struct("<4sBBBB8sIHHHHBHB")   # magic .. platform length (32 bytes, see the table above)
_WORDS = struct.Struct("<II")                  # image CRC-32, stream length in 32-bit words
_CRC = struct.Struct("<I")
_NAMES = struct.Struct("<I")                   # version 2: bytes of the names block
NAME_SEPARATOR = "\0"
RUN_MARK = "\x01"                               # starts a numbered run of names (see the table above)
_NUMBERED = re.compile(r"^(.*?)(\d+)([^\d]*)$", re.S)

STEPS = {"fast": 0, "naive": 1}
COND_NONE, COND_CLASS_U8, COND_CLASS_U16, COND_VECTOR, COND_IMAGE_CODE = range(5)
_VECTOR_DTYPES = {1: torch.float16, 2: torch.bfloat16, 3: torch.float32, 4: torch.float64}
_LABEL_DTYPES = {COND_CLASS_U8: np.uint8, COND_CLASS_U16: np.dtype("<u2")}


# --------------------------------------------------------------------------- quantization
def quantize(probs: np.ndarray) -> np.ndarray:
    """Probabilities [B, L] float64 -> integer masses [B, L] int64, each >= 1, each row summing to 2^24.

    Deterministic given the same floats: floor, then the remainder to the first most probable symbol.
    """
    if not np.isfinite(probs).all():
        raise ValueError("the model gives non-finite probabilities (NaN or infinite parameters)")
    batch, levels = probs.shape
    mass = 1 + np.floor(probs * (TOTAL - levels)).astype(np.int64)       # [B, L], sum <= TOTAL
    mass[np.arange(batch), probs.argmax(axis=1)] += TOTAL - mass.sum(axis=1)
    return mass


# --------------------------------------------------------------------------- the per-pixel loop
def _visit_in_order(model, h, batch: int, step: str, code_value) -> torch.Tensor:
    """The model's generation loop (``sampling.py``) on a working image that starts at zero, each value
    chosen by the coder instead of drawn: returns the image [B, C, H, W]."""
    x = torch.zeros((batch, *model.image_shape), dtype=torch.long, device=model._device())
    generate = cached_generate if step == "fast" else naive_generate
    return generate(model, x, 0, h, choose=code_value)


def _has_fast_step(model) -> bool:
    """Whether the model has a cached step (``model.fast_cache``) for the loop to drive."""
    return "fast" in model.sampling_methods()


def _resolve_step(model, method: str) -> str:
    if method not in ("auto", "fast", "naive"):
        raise ValueError(f"unknown method {method!r}; expected 'auto', 'fast' or 'naive'")
    if method == "naive":
        return "naive"
    if _has_fast_step(model):
        return "fast"
    if method == "fast":
        raise ValueError(f"{model.name} has no cached step (model.fast_cache) to code with; use method='naive'")
    return "naive"


# --------------------------------------------------------------------------- hashes and platform
def model_hash(model) -> bytes:
    """8 bytes identifying the model: sha256 of its name and config (JSON) and every state-dict tensor."""
    digest = hashlib.sha256()
    config = model.config.to_dict()
    # Fields added with the mixture head are left out at their defaults: the models of version 0.1
    # keep their hash, so the files compressed with them still decode.
    for field in dataclasses.fields(model.config):
        if field.name in ("head", "n_mixtures") and config[field.name] == field.default:
            del config[field.name]
    digest.update(json.dumps({"model": model.name, "config": config}, sort_keys=True, default=list).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()[:8]


def platform_string(model) -> str:
    """What the model's floats depend on here: torch version, device (and its kind), dtype."""
    device = model._device()
    if device.type == "cuda":
        kind = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        kind = torch.backends.cpu.get_cpu_capability()
    else:
        kind = "?"
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    text = f"torch={torch.__version__};{device.type}={kind};{dtype}"
    return text.encode("ascii", "replace")[:255].decode("ascii")


def _image_crc(x: torch.Tensor) -> int:
    return zlib.crc32(x.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())


# --------------------------------------------------------------------------- the header
@dataclass
class Header:
    """The parsed header of a compressed file (see the module docstring for the layout)."""

    step: str                 # "fast" or "naive"
    cond_kind: int            # COND_* above
    cond_dtype: int           # key of _VECTOR_DTYPES for vector conditions, else 0
    model_hash: bytes         # 8 bytes
    batch: int
    image_shape: tuple
    levels: int
    precision: int
    cond_dim: int
    platform: str
    cond_bytes: bytes
    image_crc: int
    stream: np.ndarray        # uint32 words of the range coder
    size: int                 # bytes of everything but the stream: header + condition + names + checksums
    version: int = 1          # format version
    names: list | None = None  # version 2: each image's name (a relative path); None in version 1


def _condition_bytes(model, x: torch.Tensor, cond) -> tuple[int, int, int, bytes]:
    """What the file stores for the condition: (kind, vector dtype code, D, bytes)."""
    batch = x.shape[0]
    config = model.config
    if getattr(config, "num_classes", None) is not None:
        labels = model.check_cond(cond, batch).to("cpu").numpy()
        kind = COND_CLASS_U8 if config.num_classes <= 256 else COND_CLASS_U16
        return kind, 0, 1, labels.astype(_LABEL_DTYPES[kind]).tobytes()
    checked = model.check_cond(cond, batch)
    kind = COND_VECTOR
    if checked is None:
        if model.condition_for(x, None) is None:
            return COND_NONE, 0, 0, b""
        # The model conditions on a code of the image itself (the PixelCNN auto-encoder): store the code.
        checked, kind = model.encode(x), COND_IMAGE_CODE                   # [B, D]
    dtype = next(model.parameters()).dtype
    dtype_code = {v: k for k, v in _VECTOR_DTYPES.items()}.get(dtype)
    if dtype_code is None:
        raise ValueError(f"cannot store a condition for a model in {dtype}")
    vector = checked.detach().to("cpu", dtype).contiguous()                # [B, D], the model's precision
    return kind, dtype_code, vector.shape[1], vector.reshape(-1).view(torch.uint8).numpy().tobytes()


def _condition_from_bytes(model, kind: int, dtype_code: int, batch: int, dim: int,
                          stored: bytes) -> torch.Tensor | None:
    """The condition tensor, rebuilt from its stored bytes (on both sides: the encoder uses it too)."""
    if kind == COND_NONE:
        return None
    if kind in _LABEL_DTYPES:
        labels = np.frombuffer(stored, dtype=_LABEL_DTYPES[kind]).astype(np.int64)      # [B]
        return torch.from_numpy(labels).to(model._device())
    raw = torch.frombuffer(bytearray(stored), dtype=torch.uint8)
    return raw.view(_VECTOR_DTYPES[dtype_code]).reshape(batch, dim).to(model._device())   # [B, D]


def _cond_size(kind: int, dtype_code: int, batch: int, dim: int) -> int:
    if kind == COND_NONE:
        return 0
    if kind in _LABEL_DTYPES:
        return batch * np.dtype(_LABEL_DTYPES[kind]).itemsize
    if kind in (COND_VECTOR, COND_IMAGE_CODE) and dtype_code in _VECTOR_DTYPES:
        return batch * dim * _VECTOR_DTYPES[dtype_code].itemsize
    raise ValueError(f"corrupted pixelcnn compressed file: unknown condition kind {kind} / dtype {dtype_code}")


def split_records(data: bytes) -> list[bytes]:
    """A concatenation of compressed files (what ``pixelcnn compress`` writes, one per batch) -> each file's bytes.

    Raises ValueError when a part is not a compressed file or is truncated; each part is then checked by
    ``read_header`` / ``decompress``.
    """
    data = _as_bytes(data)
    records, start = [], 0
    while start < len(data) or not records:
        end = start + _frame_length(data[start:])[-1]
        records.append(data[start:end])
        start = end
    return records


def _as_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected the bytes of a compressed file, got {type(data).__name__}")
    return bytes(data)


def _frame_length(data: bytes) -> tuple:
    """The fixed fields, the offsets of the condition and the names, and the file's length in bytes."""
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise ValueError("not a pixelcnn compressed file (it does not start with b'PXCZ')")
    if len(data) < _FIXED.size:
        raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, shorter than the header")
    fields = _FIXED.unpack_from(data)
    version, cond_kind, cond_dtype, batch, cond_dim, platform_len = (fields[i] for i in (1, 3, 4, 6, 12, 13))
    if not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"pixelcnn compressed file format version {version}; this pixelcnn reads versions 1 to "
                         f"{FORMAT_VERSION}")
    offset = _FIXED.size + platform_len
    cond_size = _cond_size(cond_kind, cond_dtype, batch, cond_dim)
    names_at = offset + cond_size
    names_size = 0
    if version >= 2:
        if len(data) < names_at + _NAMES.size + _WORDS.size + _CRC.size:
            raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, shorter than its header")
        (names_size,) = _NAMES.unpack_from(data, names_at)
        names_size += _NAMES.size
    fixed_end = names_at + names_size + _WORDS.size
    if len(data) < fixed_end + _CRC.size:
        raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, expected at least "
                         f"{fixed_end + _CRC.size}")
    image_crc, words = _WORDS.unpack_from(data, names_at + names_size)
    expected = fixed_end + 4 * words + _CRC.size
    if len(data) < expected:
        raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, expected {expected}")
    return fields, offset, cond_size, names_at, names_size, fixed_end, image_crc, words, expected


NAME_COST = 100        # bytes of memory per image name once decoded (a Python str in a list), at least


def _check_claimed_size(batch: int, image_shape, *, names: bool) -> None:
    """Refuse a header whose image count and shape could not be decoded here, before anything is allocated:
    the int64 images alone (and their names) must fit in the memory this process may still use. A header
    can claim 2^32 - 1 images in a few hundred bytes (a run of names costs 30 bytes)."""
    if batch == 0 or 0 in image_shape:
        raise ValueError(f"corrupted pixelcnn compressed file: it claims {batch} images of shape {tuple(image_shape)}")
    needed = batch * (8 * math.prod(image_shape) + (NAME_COST if names else 0))
    available = available_memory()
    if needed > available:
        raise ValueError(f"pixelcnn compressed file too large: it claims {batch:,} images of shape "
                         f"{tuple(image_shape)} (needs {needed / 2 ** 30:,.2f} GB to decode, {available / 2 ** 30:,.2f} "
                         f"available)")


def check_decodable(model, header: Header) -> None:
    """Refuse (ValueError "too large (needs N GB, M available)") a file whose batch the model could not decode
    in the memory this process may still use: decoding runs the batch through the coding step at once."""
    check_batch_fits(model, header.batch, what=f"decoding this file's {header.batch:,} images together",
                     cached=header.step == "fast")


def read_header(data: bytes) -> Header:
    """Parse and check a compressed file's framing; raises ValueError when it is not one, truncated or corrupted."""
    data = _as_bytes(data)
    fields, offset, cond_size, names_at, names_size, fixed_end, image_crc, words, expected = _frame_length(data)
    (_, version, step, cond_kind, cond_dtype, hash_bytes, batch, channels, height, width, levels, precision,
     cond_dim, platform_len) = fields
    if len(data) > expected:
        raise ValueError(f"corrupted pixelcnn compressed file: {len(data) - expected} bytes after its end")
    (crc,) = _CRC.unpack_from(data, expected - _CRC.size)
    if zlib.crc32(data[:expected - _CRC.size]) != crc:
        raise ValueError("corrupted pixelcnn compressed file: its checksum (CRC-32) does not match its contents")
    if step not in STEPS.values() or precision != PRECISION:
        raise ValueError(f"corrupted pixelcnn compressed file: step {step}, precision {precision}")
    # (after the checksum: a flipped byte is "corrupted"; a crafted file with a valid checksum that claims
    # more than can be decoded here is "too large", before its names or anything else is expanded)
    _check_claimed_size(batch, (channels, height, width), names=version >= 2)
    stream = np.frombuffer(data, dtype="<u4", count=words, offset=fixed_end).astype(np.uint32)
    names = None
    if version >= 2:
        try:
            names = check_names(decode_names(data[names_at + _NAMES.size:names_at + names_size], batch), batch)
        except ValueError as err:
            raise ValueError(f"corrupted pixelcnn compressed file: its names block is invalid ({err})") from None
    return Header(
        step={v: k for k, v in STEPS.items()}[step], cond_kind=cond_kind, cond_dtype=cond_dtype,
        model_hash=hash_bytes, batch=batch, image_shape=(channels, height, width), levels=levels,
        precision=precision, cond_dim=cond_dim,
        platform=data[_FIXED.size:_FIXED.size + platform_len].decode("ascii", "replace"),
        cond_bytes=data[offset:offset + cond_size], image_crc=image_crc, stream=stream,
        size=len(data) - 4 * words, version=version, names=names)


def check_names(names, batch: int) -> list[str]:
    """Image names as a file stores them: ``batch`` distinct relative paths ("a.png", "3s/b.png"), none that
    climbs out of its folder; a ValueError says which one is not."""
    if isinstance(names, (str, bytes)) or len(names) != batch:
        raise ValueError(f"expected {batch} names, one per image, got "
                         f"{'a string' if isinstance(names, (str, bytes)) else len(names)}")
    seen = set()
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"a name must be a string, got {type(name).__name__}")
        parts = name.split("/")
        if any(c in name for c in "\0\x01\\") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"{name!r} is not a relative path of the form folder/name (no '..', '.', '\\', "
                             f"empty parts, NUL or \\x01)")
        if name in seen:
            raise ValueError(f"two images are named {name!r}")
        seen.add(name)
    return list(names)


def encode_names(names: list[str]) -> bytes:
    """The names block: each name, or a numbered run for consecutive names that differ only by a counter."""
    entries, k = [], 0
    while k < len(names):
        match = _NUMBERED.match(names[k])
        end = k + 1
        if match:
            prefix, digits, suffix = match.groups()
            width, start = len(digits), int(digits)
            while end < len(names) and names[end] == f"{prefix}{start + end - k:0{width}d}{suffix}":
                end += 1
        if end - k >= 3:
            entries.append(RUN_MARK + RUN_MARK.join([prefix, suffix, str(width), str(start), str(end - k)]))
        else:
            entries += names[k:end]
        k = end
    return NAME_SEPARATOR.join(entries).encode("utf-8")


def decode_names(block: bytes, batch: int) -> list[str]:
    """The names of a names block (``encode_names``); a ValueError when it is malformed."""
    names = []
    for entry in block.decode("utf-8").split(NAME_SEPARATOR):
        if not entry.startswith(RUN_MARK):
            names.append(entry)
            continue
        fields = entry[1:].split(RUN_MARK)
        if len(fields) != 5 or not all(f.isdigit() for f in fields[2:]):
            raise ValueError(f"a malformed run of names {entry!r}")
        prefix, suffix, width, start, count = fields[0], fields[1], *map(int, fields[2:])
        if len(names) + count > batch or width > 20:
            raise ValueError(f"more names than the {batch} images")
        names += [f"{prefix}{number:0{width}d}{suffix}" for number in range(start, start + count)]
    return names


def check_model(model, header: Header, check_platform: bool = True) -> None:
    """Refuse, naming the difference, a file made with another model or on another platform."""
    if tuple(header.image_shape) != tuple(model.image_shape) or header.levels != model.levels:
        raise ValueError(f"this file holds images of shape {tuple(header.image_shape)} with {header.levels} "
                         f"levels; the model given models {tuple(model.image_shape)} with {model.levels} levels")
    if header.model_hash != model_hash(model):
        raise ValueError(f"this file was compressed with a different model (weights and config hash "
                         f"{header.model_hash.hex()}; the model given has {model_hash(model).hex()}): "
                         f"decompress with the model that compressed it")
    here = platform_string(model)
    if check_platform and header.platform != here:
        differences = [f"{a} (file) vs {b} (here)" for a, b in zip(header.platform.split(";"), here.split(";"))
                       if a != b] or [f"{header.platform!r} vs {here!r}"]
        raise ValueError(f"this file was compressed on another platform: {', '.join(differences)}. The decoder "
                         f"must compute the encoder's floats bit for bit, which differs across torch versions, "
                         f"devices and dtypes; decode where it was encoded (same torch, device kind and dtype), "
                         f"or pass check_platform=False to try (a wrong result is still detected)")


# --------------------------------------------------------------------------- compress / decompress
class _Coder:
    """Codes one pixel-channel per call, given its parameters: the one part that differs from sampling.

    Encoding (``image`` given) writes the known values to the range encoder and returns them;
    decoding reads them from the range decoder.
    """

    def __init__(self, head, *, image: torch.Tensor | None = None, stream: np.ndarray | None = None):
        import constriction

        self.head = head
        self.family = constriction.stream.model.Categorical(perfect=False)
        self.image = None if image is None else image.to("cpu", torch.int64).numpy().astype(np.int32)
        self.encoder = constriction.stream.queue.RangeEncoder() if image is not None else None
        self.decoder = constriction.stream.queue.RangeDecoder(stream) if stream is not None else None

    def __call__(self, params: torch.Tensor, row: int, col: int, channel: int) -> torch.Tensor:
        """params [B, P] of pixel-channel (row, col, channel) -> its value [B] int64 (on params' device)."""
        probs = self.head.probabilities(params.detach().to("cpu", torch.float64), dim=-1)   # [B, L]
        table = quantize(probs.numpy()) / TOTAL                              # [B, L], exact in float64
        if self.encoder is not None:
            values = self.image[:, channel, row, col]                          # [B] int32
            self.encoder.encode(values, self.family, table)
        else:
            try:
                values = self.decoder.decode(self.family, table)               # [B] int32
            except AssertionError as err:
                # constriction checks its decoder state with an assertion: bytes that no encoder
                # could have written for these probabilities (a damaged or forged stream).
                raise ValueError(f"the range decoder met data no encoder writes ({err})") from None
        return torch.from_numpy(np.asarray(values, dtype=np.int64)).to(params.device)


def _coding_mode(model, fn):
    """fn() with the model in eval mode, torch on one CPU thread and cuDNN deterministic; all restored after.

    One thread: CPU kernels split their sums by thread, so a file encoded with 2 threads did not
    decode with 1 (``tests/test_coding.py::test_thread_count_does_not_matter``); the per-step
    matrix products are small, so a second thread gains little anyway. cuDNN: its autotuner may
    pick another convolution algorithm (other floats) for the decoder than for the encoder.
    """
    cudnn = torch.backends.cudnn
    saved = model.training, torch.get_num_threads(), cudnn.deterministic, cudnn.benchmark
    model.eval()
    torch.set_num_threads(1)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        return fn()
    finally:
        model.train(saved[0])
        torch.set_num_threads(saved[1])
        cudnn.deterministic, cudnn.benchmark = saved[2], saved[3]


@torch.no_grad()
def compress(model, x, cond=None, *, method: str = "auto", names=None) -> bytes:
    """Code the images x [B, C, H, W] (integers 0..levels-1) losslessly with ``model``: the file's bytes.

    Args:
        model: a likelihood model (any head: categorical, Bernoulli, logistic mixture); the same
            model (same weights, config, dtype and platform) decodes the file.
        x: the images; the file costs about -log2 p(x | cond) bits plus a small
            header (see the module docstring).
        cond: class labels [B] or vectors [B, cond_dim], as the model was built;
            they are stored in the file. The PixelCNN auto-encoder takes None:
            each image's code is computed and stored.
        method: "fast" (the cached step), "naive" (one full forward pass per
            pixel-channel) or "auto" (fast where the model has it). Decoding uses
            the same one.
        names: None, or one name per image (relative paths such as "a.png" or
            "3s/b.png", distinct), stored in the file (format version 2) and
            returned by ``read_header(data).names``.
    """
    x = model.check_images(x).long()
    batch = x.shape[0]
    names_block = b""
    if names is not None:
        names_block = encode_names(check_names(names, batch))
        names_block = _NAMES.pack(len(names_block)) + names_block
    if max(*model.image_shape, model.levels) > 0xFFFF or batch > 0xFFFFFFFF:
        raise ValueError(f"the file format holds sizes and levels up to 65535 and up to 2^32 - 1 images; got "
                         f"{batch} images of shape {model.image_shape} with {model.levels} levels")
    step = _resolve_step(model, method)
    kind, dtype_code, cond_dim, cond_bytes = _coding_mode(model, lambda: _condition_bytes(model, x, cond))
    platform = platform_string(model).encode("ascii")
    header = _FIXED.pack(MAGIC, 1 if names is None else 2, STEPS[step], kind, dtype_code, model_hash(model), batch,
                         *model.image_shape, model.levels, PRECISION, cond_dim, len(platform)) + platform
    coder = _Coder(model.head, image=x)
    # The encoder conditions on the condition as the decoder will rebuild it from the stored bytes.
    _run(model, _condition_from_bytes(model, kind, dtype_code, batch, cond_dim, cond_bytes), batch, step, coder)
    words = coder.encoder.get_compressed().astype("<u4")
    body = header + cond_bytes + names_block + _WORDS.pack(_image_crc(x), len(words)) + words.tobytes()
    return body + _CRC.pack(zlib.crc32(body))


@torch.no_grad()
def decompress(model, data: bytes, *, check_platform: bool = True) -> torch.Tensor:
    """The images of a file written by ``compress`` with the same model: int64 [B, C, H, W].

    Raises ValueError when ``data`` is not such a file, is truncated or corrupted,
    was made with another model, or on another platform (see the module
    docstring; ``check_platform=False`` tries anyway, and a decoded image that
    differs from the original is still refused). The condition stored in the
    file is available through ``read_condition``.
    """
    header = read_header(data)
    check_model(model, header, check_platform)
    check_decodable(model, header)
    coder = _Coder(model.head, stream=header.stream)
    try:
        x = _run(model, read_condition(model, header), header.batch, header.step, coder)
    except MemoryError:
        raise ValueError(f"decoding this file's {header.batch:,} images together is too large for the memory "
                         f"available") from None
    except (RuntimeError, ValueError) as err:           # the range decoder ran off its stream
        raise ValueError(f"corrupted pixelcnn compressed file: the stream does not decode with this model "
                         f"({' '.join(str(err).split())[:200]})") from None
    if _image_crc(x) != header.image_crc:
        here = platform_string(model)
        why = ("the file is corrupt (a file made here decodes exactly here)" if header.platform == here
               else f"this platform ({here}) computes the model's floats differently from the encoder's "
                    f"({header.platform}), or the file is corrupt")
        raise ValueError(f"the decoded images differ from the ones compressed (their CRC-32 does not match): {why}")
    return x


def read_condition(model, data: bytes | Header) -> torch.Tensor | None:
    """The condition stored in a compressed file (or its parsed header), on the model's device.

    Class labels int64 [B], vectors [B, D] in the model's dtype (for the PixelCNN
    auto-encoder: each image's code), or None for an unconditional model.
    """
    header = data if isinstance(data, Header) else read_header(data)
    return _condition_from_bytes(model, header.cond_kind, header.cond_dtype, header.batch, header.cond_dim,
                                 header.cond_bytes)


def _run(model, cond: torch.Tensor | None, batch: int, step: str, coder: _Coder) -> torch.Tensor:
    def run():
        h = model.encode_condition(model.check_cond(cond, batch)) if cond is not None else None
        return _visit_in_order(model, h, batch, step, coder)
    return _coding_mode(model, run)
