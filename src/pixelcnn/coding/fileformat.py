"""The ``.pxcz`` file format: the bytes of a compressed file, block by block, and every check on reading them.

A file is one or more records written one after the other (``split_records``). A record is, in this order
(all integers little-endian; docs/compression.md, "The .pxcz file format", has the table of every field):

    fixed header      32 bytes: ``FixedHeader``, one field per struct item, in file order
    platform string   ``platform_length`` ASCII bytes: "torch=2.13.0;cpu=AVX2;float32"
    condition         B labels (uint8 / uint16), or B x D floats in the model's dtype (``condition_block``)
    names block       version 2 only: uint32 n, then n bytes of names (``encode_names``)
    image CRC-32      uint32, of the original images as int64 bytes (``crc32_of_images``)
    stream length     uint32 w, the range coder's stream in 32-bit words
    stream            4 * w bytes
    file CRC-32       uint32, of every byte of the record before it

Version 2 only adds the names block: ``pack_record`` writes version 1 when it is given no names (those
files are byte for byte what earlier releases wrote, and any release reads them) and version 2 when it
is. Names are a block in the file rather than a file beside it, so that a file cannot lose them or get
another's.

Every byte of a file is untrusted: ``read_header`` checks the framing (magic, version, lengths that fit in
the bytes given, the CRC-32) and refuses a header that claims more images than this machine could decode,
before anything the header sizes is allocated. This module knows bytes and tensors, not models: the
codec (``codec.py``) decides what goes into a record and checks it against the model that decodes it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..hardware import available_memory

MAGIC = b"PXCZ"
FORMAT_VERSION = 2  # the newest version written; every version from 1 up is read
PRECISION = 24  # bits of the integer probability tables: the only precision written and read

STEPS = {"fast": 0, "naive": 1}  # the generation step that coded the stream -> its code in the file
COND_NONE, COND_CLASS_U8, COND_CLASS_U16, COND_VECTOR, COND_IMAGE_CODE = range(5)
_VECTOR_DTYPES = {1: torch.float16, 2: torch.bfloat16, 3: torch.float32, 4: torch.float64}
_LABEL_DTYPES = {COND_CLASS_U8: np.uint8, COND_CLASS_U16: np.dtype("<u2")}

_FIXED = struct.Struct("<4sBBBB8sIHHHHBHB")  # FixedHeader's fields in file order: 32 bytes
_NAMES = struct.Struct("<I")  # version 2: bytes of the names that follow
_WORDS = struct.Struct("<II")  # image CRC-32, stream length in 32-bit words
_CRC = struct.Struct("<I")  # the record's CRC-32, its last 4 bytes
NAME_SEPARATOR = "\0"
RUN_MARK = "\x01"  # starts a numbered run of names (``encode_names``)
_NUMBERED = re.compile(r"^(.*?)(\d+)([^\d]*)$", re.S)
NAME_COST = 100  # bytes of memory per image name once decoded (a Python str in a list), at least


# --------------------------------------------------------------------------- the fixed header
@dataclass(frozen=True)
class FixedHeader:
    """The first 32 bytes of a record, one field per struct item of ``_FIXED``, in file order.

    Values are what the file holds, unchecked: ``read_header`` checks them, ``pack`` writes any.
    """

    magic: bytes  # offset 0, 4s: b"PXCZ"
    version: int  # 4, uint8: 1, or 2 when the record stores the images' names
    step: int  # 5, uint8: STEPS, 0 cached ("fast"), 1 naive
    cond_kind: int  # 6, uint8: COND_* (none, labels uint8 / uint16, vector, the image's own code)
    cond_dtype: int  # 7, uint8: key of _VECTOR_DTYPES for a stored vector, else 0
    model_hash: bytes  # 8, 8s: the first 8 bytes of the model's sha256 (``codec.model_hash``)
    batch: int  # 16, uint32: B, the number of images
    channels: int  # 20, uint16: C
    height: int  # 22, uint16: H
    width: int  # 24, uint16: W
    levels: int  # 26, uint16: intensity values per pixel-channel
    precision: int  # 28, uint8: bits of the probability tables (PRECISION)
    cond_dim: int  # 29, uint16: D, floats per stored vector; 1 for class labels, 0 for none
    platform_length: int  # 31, uint8: bytes of the platform string that follows

    @classmethod
    def unpack(cls, data: bytes) -> FixedHeader:
        """The fixed header at the start of ``data`` (at least 32 bytes)."""
        return cls(*_FIXED.unpack_from(data))  # the struct's items are the fields, in order

    def pack(self) -> bytes:
        return _FIXED.pack(*dataclasses.astuple(self))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width


@dataclass(frozen=True)
class Header:
    """A parsed and checked record: what ``read_header`` returns."""

    step: str  # "fast" or "naive"
    cond_kind: int  # COND_* above
    cond_dtype: int  # key of _VECTOR_DTYPES for vector conditions, else 0
    model_hash: bytes  # 8 bytes
    batch: int
    image_shape: tuple
    levels: int
    precision: int
    cond_dim: int
    platform: str
    cond_bytes: bytes
    image_crc: int
    stream: np.ndarray  # uint32 words of the range coder
    size: int  # bytes of everything but the stream: header + condition + names + checksums
    version: int = 1  # format version
    names: list | None = None  # version 2: each image's name (a relative path); None in version 1


@dataclass(frozen=True)
class _Blocks:
    """Where the blocks of one record lie, in bytes from its start: what its fixed header and counts say."""

    fixed: FixedHeader
    cond_at: int  # the condition (just after the platform string)
    cond_size: int
    names_at: int  # version 2: the names block (its uint32 length, then the names); else the CRCs
    names_size: int  # bytes of the names block with its length; 0 in version 1
    image_crc: int
    words: int  # 32-bit words of the stream
    stream_at: int
    end: int  # the record's length: its CRC-32 is the 4 bytes before


def _as_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected the bytes of a compressed file, got {type(data).__name__}")
    return bytes(data)


def _cond_size(kind: int, dtype_code: int, batch: int, dim: int) -> int:
    if kind == COND_NONE:
        return 0
    if kind in _LABEL_DTYPES:
        return batch * np.dtype(_LABEL_DTYPES[kind]).itemsize
    if kind in (COND_VECTOR, COND_IMAGE_CODE) and dtype_code in _VECTOR_DTYPES:
        return batch * dim * _VECTOR_DTYPES[dtype_code].itemsize
    raise ValueError(f"corrupted pixelcnn compressed file: unknown condition kind {kind} / dtype {dtype_code}")


def _locate_blocks(data: bytes) -> _Blocks:
    """The blocks of the record at the start of ``data``; a ValueError when ``data`` is too short to hold them."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise ValueError("not a pixelcnn compressed file (it does not start with b'PXCZ')")
    if len(data) < _FIXED.size:
        raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, shorter than the header")
    fixed = FixedHeader.unpack(data)
    if not 1 <= fixed.version <= FORMAT_VERSION:
        raise ValueError(
            f"pixelcnn compressed file format version {fixed.version}; this pixelcnn reads versions "
            f"1 to {FORMAT_VERSION}"
        )
    cond_at = _FIXED.size + fixed.platform_length
    cond_size = _cond_size(fixed.cond_kind, fixed.cond_dtype, fixed.batch, fixed.cond_dim)
    names_at = cond_at + cond_size
    names_size = 0
    if fixed.version >= 2:
        if len(data) < names_at + _NAMES.size + _WORDS.size + _CRC.size:
            raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, shorter than its header")
        (names_size,) = _NAMES.unpack_from(data, names_at)
        names_size += _NAMES.size
    stream_at = names_at + names_size + _WORDS.size
    if len(data) < stream_at + _CRC.size:
        raise ValueError(
            f"truncated pixelcnn compressed file: {len(data)} bytes, expected at least {stream_at + _CRC.size}"
        )
    image_crc, words = _WORDS.unpack_from(data, names_at + names_size)
    end = stream_at + 4 * words + _CRC.size
    if len(data) < end:
        raise ValueError(f"truncated pixelcnn compressed file: {len(data)} bytes, expected {end}")
    return _Blocks(
        fixed=fixed,
        cond_at=cond_at,
        cond_size=cond_size,
        names_at=names_at,
        names_size=names_size,
        image_crc=image_crc,
        words=words,
        stream_at=stream_at,
        end=end,
    )


# --------------------------------------------------------------------------- reading
def read_header(data: bytes) -> Header:
    """Parse and check a compressed file's framing; raises ValueError when it is not one, truncated or corrupted."""
    data = _as_bytes(data)
    blocks = _locate_blocks(data)
    fixed = blocks.fixed
    if len(data) > blocks.end:
        raise ValueError(f"corrupted pixelcnn compressed file: {len(data) - blocks.end} bytes after its end")
    (crc,) = _CRC.unpack_from(data, blocks.end - _CRC.size)
    if zlib.crc32(data[: blocks.end - _CRC.size]) != crc:
        raise ValueError("corrupted pixelcnn compressed file: its checksum (CRC-32) does not match its contents")
    if fixed.step not in STEPS.values() or fixed.precision != PRECISION:
        raise ValueError(f"corrupted pixelcnn compressed file: step {fixed.step}, precision {fixed.precision}")
    # (after the checksum: a flipped byte is "corrupted"; a crafted file with a valid checksum that claims
    # more than can be decoded here is "too large", before its names or anything else is expanded)
    _check_claimed_size(fixed.batch, fixed.image_shape, names=fixed.version >= 2)
    stream = np.frombuffer(data, dtype="<u4", count=blocks.words, offset=blocks.stream_at).astype(np.uint32)
    names = None
    if fixed.version >= 2:
        block = data[blocks.names_at + _NAMES.size : blocks.names_at + blocks.names_size]
        try:
            names = check_names(decode_names(block, fixed.batch), fixed.batch)
        except ValueError as err:
            raise ValueError(f"corrupted pixelcnn compressed file: its names block is invalid ({err})") from None
    return Header(
        step={code: step for step, code in STEPS.items()}[fixed.step],
        cond_kind=fixed.cond_kind,
        cond_dtype=fixed.cond_dtype,
        model_hash=fixed.model_hash,
        batch=fixed.batch,
        image_shape=fixed.image_shape,
        levels=fixed.levels,
        precision=fixed.precision,
        cond_dim=fixed.cond_dim,
        platform=data[_FIXED.size : blocks.cond_at].decode("ascii", "replace"),
        cond_bytes=data[blocks.cond_at : blocks.cond_at + blocks.cond_size],
        image_crc=blocks.image_crc,
        stream=stream,
        size=len(data) - 4 * blocks.words,
        version=fixed.version,
        names=names,
    )


def split_records(data: bytes) -> list[bytes]:
    """A concatenation of compressed files (what ``pixelcnn compress`` writes, one per batch) -> each file's bytes.

    Raises ValueError when a part is not a compressed file or is truncated; each part is then checked by
    ``read_header`` / ``decompress``.
    """
    data = _as_bytes(data)
    records, start = [], 0
    while start < len(data) or not records:
        end = start + _locate_blocks(data[start:]).end
        records.append(data[start:end])
        start = end
    return records


def _check_claimed_size(batch: int, image_shape, *, names: bool) -> None:
    """Refuse a header whose image count and shape could not be decoded here, before anything is allocated:
    the int64 images alone (and their names) must fit in the memory this process may still use. A header
    can claim 2^32 - 1 images in a few hundred bytes (a run of names costs 30 bytes)."""
    if batch == 0 or 0 in image_shape:
        raise ValueError(f"corrupted pixelcnn compressed file: it claims {batch} images of shape {tuple(image_shape)}")
    needed = batch * (8 * math.prod(image_shape) + (NAME_COST if names else 0))
    available = available_memory()
    if needed > available:
        raise ValueError(
            f"pixelcnn compressed file too large: it claims {batch:,} images of shape "
            f"{tuple(image_shape)} (needs {needed / 2**30:,.2f} GB to decode, {available / 2**30:,.2f} "
            f"available)"
        )


# --------------------------------------------------------------------------- writing
def check_fits_format(batch: int, image_shape, levels: int) -> None:
    """Refuse sizes the fixed header cannot hold (uint16 C, H, W and levels; uint32 B)."""
    if max(*image_shape, levels) > 0xFFFF or batch > 0xFFFFFFFF:
        raise ValueError(
            f"the file format holds sizes and levels up to 65535 and up to 2^32 - 1 images; got "
            f"{batch} images of shape {tuple(image_shape)} with {levels} levels"
        )


def pack_record(
    *,
    step: str,
    cond_kind: int,
    cond_dtype: int,
    model_hash: bytes,
    batch: int,
    image_shape,
    levels: int,
    cond_dim: int,
    platform: str,
    cond_bytes: bytes,
    names: list[str] | None,
    image_crc: int,
    stream: np.ndarray,
) -> bytes:
    """One record's bytes, its blocks in file order: version 1 without names, version 2 with them."""
    platform_bytes = platform.encode("ascii")
    channels, height, width = image_shape
    fixed = FixedHeader(
        magic=MAGIC,
        version=1 if names is None else 2,
        step=STEPS[step],
        cond_kind=cond_kind,
        cond_dtype=cond_dtype,
        model_hash=model_hash,
        batch=batch,
        channels=channels,
        height=height,
        width=width,
        levels=levels,
        precision=PRECISION,
        cond_dim=cond_dim,
        platform_length=len(platform_bytes),
    )
    names_block = b""
    if names is not None:
        encoded = encode_names(names)
        names_block = _NAMES.pack(len(encoded)) + encoded
    words = stream.astype("<u4")
    body = (
        fixed.pack() + platform_bytes + cond_bytes + names_block + _WORDS.pack(image_crc, len(words)) + words.tobytes()
    )
    return body + _CRC.pack(zlib.crc32(body))


def crc32_of_images(x: torch.Tensor) -> int:
    """The image CRC-32 a record stores: of the images [B, C, H, W] as int64 bytes."""
    return zlib.crc32(x.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())


# --------------------------------------------------------------------------- the condition block
def condition_block(cond_kind: int, condition: torch.Tensor) -> tuple[int, int, bytes]:
    """(vector dtype code, D, bytes) a record stores for a condition: class labels int [B] as uint8 or uint16
    (by ``cond_kind``), vectors [B, D] in their own float dtype (the model's precision, so the decoder rebuilds
    exactly the encoder's condition)."""
    if cond_kind in _LABEL_DTYPES:
        labels = condition.to("cpu").numpy()  # [B]
        return 0, 1, labels.astype(_LABEL_DTYPES[cond_kind]).tobytes()
    dtype_code = {dtype: code for code, dtype in _VECTOR_DTYPES.items()}.get(condition.dtype)
    if dtype_code is None:
        raise ValueError(f"cannot store a condition for a model in {condition.dtype}")
    vector = condition.detach().to("cpu").contiguous()  # [B, D]
    return dtype_code, vector.shape[1], vector.reshape(-1).view(torch.uint8).numpy().tobytes()


def condition_from_block(
    cond_kind: int, cond_dtype: int, batch: int, cond_dim: int, stored: bytes
) -> torch.Tensor | None:
    """The condition rebuilt from its stored bytes, on the CPU: labels int64 [B], vectors [B, D], or None."""
    if cond_kind == COND_NONE:
        return None
    if cond_kind in _LABEL_DTYPES:
        return torch.from_numpy(np.frombuffer(stored, dtype=_LABEL_DTYPES[cond_kind]).astype(np.int64))  # [B]
    raw = torch.frombuffer(bytearray(stored), dtype=torch.uint8)
    return raw.view(_VECTOR_DTYPES[cond_dtype]).reshape(batch, cond_dim)  # [B, D]


# --------------------------------------------------------------------------- the names block
def check_names(names, batch: int) -> list[str]:
    """Image names as a file stores them: ``batch`` distinct relative paths ("a.png", "3s/b.png"), none that
    climbs out of its folder; a ValueError says which one is not."""
    if isinstance(names, (str, bytes)) or len(names) != batch:
        raise ValueError(
            f"expected {batch} names, one per image, got "
            f"{'a string' if isinstance(names, (str, bytes)) else len(names)}"
        )
    seen = set()
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"a name must be a string, got {type(name).__name__}")
        parts = name.split("/")
        if any(c in name for c in "\0\x01\\") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                f"{name!r} is not a relative path of the form folder/name (no '..', '.', '\\', "
                f"empty parts, NUL or \\x01)"
            )
        if name in seen:
            raise ValueError(f"two images are named {name!r}")
        seen.add(name)
    return list(names)


def encode_names(names: list[str]) -> bytes:
    """The names block: UTF-8 entries separated by NUL bytes, each a name, or a numbered run
    "\\x01PREFIX\\x01SUFFIX\\x01WIDTH\\x01START\\x01COUNT" for three or more consecutive names that differ
    only by a counter ("img-00000.png" .. "img-00999.png" cost 30 bytes, not 14,000)."""
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
        parts = entry[1:].split(RUN_MARK)
        if len(parts) != 5 or not all(part.isdigit() for part in parts[2:]):
            raise ValueError(f"a malformed run of names {entry!r}")
        prefix, suffix, *numbers = parts
        width, start, count = map(int, numbers)
        if len(names) + count > batch or width > 20:
            raise ValueError(f"more names than the {batch} images")
        names += [f"{prefix}{number:0{width}d}{suffix}" for number in range(start, start + count)]
    return names
