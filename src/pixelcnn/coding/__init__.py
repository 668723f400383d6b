"""Lossless compression with an entropy coder: an image costs about -log2 p(x) bits.

    data = pixelcnn.compress(model, x, cond=y)                # x: int [B, C, H, W] -> bytes
    x_again = pixelcnn.decompress(model, data)                # int64 [B, C, H, W], equal to x
    y_again = pixelcnn.coding.read_condition(model, data)     # the labels stored in the file
    pixelcnn.coding.read_header(data).names                   # each image's name, when compress had names=

Two modules, one per question:

    codec.py        how an image becomes a stream: the integer probability tables (``quantize``), the range
                    coder driven by the generation loop, ``compress`` / ``decompress``, and the checks that
                    the model and platform decoding a file are the ones that made it
    fileformat.py   how a stream and what decodes it become bytes: the ``.pxcz`` record, field by field
                    (``FixedHeader``, ``Header``), its blocks (condition, names), its CRCs, and the checks
                    on every byte read from outside

The file format knows no model; the codec imports it, never the other way round.
"""

from .codec import (
    TOTAL,
    check_decodable,
    check_model,
    compress,
    decompress,
    model_hash,
    platform_string,
    quantize,
    read_condition,
)
from .fileformat import (
    COND_CLASS_U8,
    COND_CLASS_U16,
    COND_IMAGE_CODE,
    COND_NONE,
    COND_VECTOR,
    FORMAT_VERSION,
    MAGIC,
    PRECISION,
    STEPS,
    FixedHeader,
    Header,
    check_names,
    decode_names,
    encode_names,
    read_header,
    split_records,
)

__all__ = [
    "COND_CLASS_U8",
    "COND_CLASS_U16",
    "COND_IMAGE_CODE",
    "COND_NONE",
    "COND_VECTOR",
    "FORMAT_VERSION",
    "MAGIC",
    "PRECISION",
    "STEPS",
    "TOTAL",
    "FixedHeader",
    "Header",
    "check_decodable",
    "check_model",
    "check_names",
    "compress",
    "decode_names",
    "decompress",
    "encode_names",
    "model_hash",
    "platform_string",
    "quantize",
    "read_condition",
    "read_header",
    "split_records",
]
