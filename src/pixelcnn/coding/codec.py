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

The bytes of a file, field by field: ``fileformat.py`` (and docs/compression.md).
This module decides what they hold: a vector condition costs B x D x 4 bytes
(float32), stored losslessly because the decoder must rebuild exactly the
encoder's conditionals; the auto-encoder's code of each image is stored the
same way (its bits are part of the file size).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import torch

from ..models.base import check_batch_fits
from ..sampling import cached_generate, naive_generate
from .fileformat import (
    COND_CLASS_U8,
    COND_CLASS_U16,
    COND_IMAGE_CODE,
    COND_NONE,
    COND_VECTOR,
    PRECISION,
    Header,
    check_fits_format,
    check_names,
    condition_block,
    condition_from_block,
    crc32_of_images,
    pack_record,
    read_header,
)

TOTAL = 1 << PRECISION  # the integer probability tables each sum to 2^24


# --------------------------------------------------------------------------- quantization
def quantize(probs: np.ndarray) -> np.ndarray:
    """Probabilities [B, L] float64 -> integer masses [B, L] int64, each >= 1, each row summing to 2^24.

    Deterministic given the same floats: floor, then the remainder to the first most probable symbol.
    """
    if not np.isfinite(probs).all():
        raise ValueError("the model gives non-finite probabilities (NaN or infinite parameters)")
    batch, levels = probs.shape
    mass = 1 + np.floor(probs * (TOTAL - levels)).astype(np.int64)  # [B, L], sum <= TOTAL
    mass[np.arange(batch), probs.argmax(axis=1)] += TOTAL - mass.sum(axis=1)
    return mass


# --------------------------------------------------------------------------- the per-pixel loop
def _visit_in_order(model, h, batch: int, step: str, code_value, progress: bool | str = False) -> torch.Tensor:
    """The model's generation loop (``sampling.py``) on a working image that starts at zero, each value
    chosen by the coder instead of drawn: returns the image [B, C, H, W]. ``progress``: a bar over the
    pixels (with an ETA), for the CLI."""
    x = torch.zeros((batch, *model.image_shape), dtype=torch.long, device=model._device())
    generate = cached_generate if step == "fast" else naive_generate
    return generate(model, x, 0, h, choose=code_value, progress=progress)


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


# --------------------------------------------------------------------------- the condition and the model
def _condition_bytes(model, x: torch.Tensor, cond) -> tuple[int, int, int, bytes]:
    """What the file stores for the condition: (kind, vector dtype code, D, bytes)."""
    batch = x.shape[0]
    config = model.config
    if getattr(config, "num_classes", None) is not None:
        kind = COND_CLASS_U8 if config.num_classes <= 256 else COND_CLASS_U16
        return kind, *condition_block(kind, model.check_cond(cond, batch))  # labels [B]
    checked = model.check_cond(cond, batch)
    kind = COND_VECTOR
    if checked is None:
        if model.condition_for(x, None) is None:
            return COND_NONE, 0, 0, b""
        # The model conditions on a code of the image itself (the PixelCNN auto-encoder): store the code.
        checked, kind = model.encode(x), COND_IMAGE_CODE  # [B, D]
    dtype = next(model.parameters()).dtype
    return kind, *condition_block(kind, checked.detach().to("cpu", dtype))  # [B, D], the model's precision


def _stored_condition(
    model, *, cond_kind: int, cond_dtype: int, batch: int, cond_dim: int, cond_bytes: bytes
) -> torch.Tensor | None:
    """The condition rebuilt from its stored bytes, on the model's device (on both sides: the encoder uses it too)."""
    condition = condition_from_block(cond_kind, cond_dtype, batch, cond_dim, cond_bytes)
    return None if condition is None else condition.to(model._device())


def check_model(model, header: Header, check_platform: bool = True) -> None:
    """Refuse, naming the difference, a file made with another model or on another platform."""
    if tuple(header.image_shape) != tuple(model.image_shape) or header.levels != model.levels:
        raise ValueError(
            f"this file holds images of shape {tuple(header.image_shape)} with {header.levels} "
            f"levels; the model given models {tuple(model.image_shape)} with {model.levels} levels"
        )
    if header.model_hash != model_hash(model):
        raise ValueError(
            f"this file was compressed with a different model (weights and config hash "
            f"{header.model_hash.hex()}; the model given has {model_hash(model).hex()}): "
            f"decompress with the model that compressed it"
        )
    here = platform_string(model)
    if check_platform and header.platform != here:
        differences = [
            f"{a} (file) vs {b} (here)" for a, b in zip(header.platform.split(";"), here.split(";")) if a != b
        ] or [f"{header.platform!r} vs {here!r}"]
        raise ValueError(
            f"this file was compressed on another platform: {', '.join(differences)}. The decoder "
            f"must compute the encoder's floats bit for bit, which differs across torch versions, "
            f"devices and dtypes; decode where it was encoded (same torch, device kind and dtype), "
            f"or pass check_platform=False to try (a wrong result is still detected)"
        )


def check_decodable(model, header: Header) -> None:
    """Refuse (ValueError "too large (needs N GB, M available)") a file whose batch the model could not decode
    in the memory this process may still use: decoding runs the batch through the coding step at once."""
    check_batch_fits(
        model, header.batch, what=f"decoding this file's {header.batch:,} images together", cached=header.step == "fast"
    )


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
        probs = self.head.probabilities(params.detach().to("cpu", torch.float64), dim=-1)  # [B, L]
        table = quantize(probs.numpy()) / TOTAL  # [B, L], exact in float64
        if self.encoder is not None:
            values = self.image[:, channel, row, col]  # [B] int32
            self.encoder.encode(values, self.family, table)
        else:
            try:
                values = self.decoder.decode(self.family, table)  # [B] int32
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
def compress(model, x, cond=None, *, method: str = "auto", names=None, progress: bool = False) -> bytes:
    """Code the images x [B, C, H, W] (integers 0..levels-1) losslessly with ``model``: the file's bytes.

    Args:
        model: a likelihood model (any head: categorical, Bernoulli, logistic mixture); the same
            model (same weights, config, dtype and platform) decodes the file.
        x: the images; the file costs about -log2 p(x | cond) bits plus a small
            header (its bytes: ``fileformat.py``).
        cond: class labels [B] or vectors [B, cond_dim], as the model was built;
            they are stored in the file. The PixelCNN auto-encoder takes None:
            each image's code is computed and stored.
        method: "fast" (the cached step), "naive" (one full forward pass per
            pixel-channel) or "auto" (fast where the model has it). Decoding uses
            the same one.
        names: None, or one name per image (relative paths such as "a.png" or
            "3s/b.png", distinct), stored in the file (format version 2) and
            returned by ``read_header(data).names``.
        progress: show a progress bar over the pixels (tqdm, with an ETA).
    """
    x = model.check_images(x).long()
    batch = x.shape[0]
    if names is not None:
        names = check_names(names, batch)
    check_fits_format(batch, model.image_shape, model.levels)
    step = _resolve_step(model, method)
    kind, dtype_code, cond_dim, cond_bytes = _coding_mode(model, lambda: _condition_bytes(model, x, cond))
    coder = _Coder(model.head, image=x)
    # The encoder conditions on the condition as the decoder will rebuild it from the stored bytes.
    stored = _stored_condition(
        model, cond_kind=kind, cond_dtype=dtype_code, batch=batch, cond_dim=cond_dim, cond_bytes=cond_bytes
    )
    _run(model, stored, batch, step, coder, progress and f"encoding {batch:,} images")
    return pack_record(
        step=step,
        cond_kind=kind,
        cond_dtype=dtype_code,
        model_hash=model_hash(model),
        batch=batch,
        image_shape=model.image_shape,
        levels=model.levels,
        cond_dim=cond_dim,
        platform=platform_string(model),
        cond_bytes=cond_bytes,
        names=names,
        image_crc=crc32_of_images(x),
        stream=coder.encoder.get_compressed(),
    )


@torch.no_grad()
def decompress(model, data: bytes, *, check_platform: bool = True, progress: bool = False) -> torch.Tensor:
    """The images of a file written by ``compress`` with the same model: int64 [B, C, H, W].

    Raises ValueError when ``data`` is not such a file, is truncated or corrupted,
    was made with another model, or on another platform (see the module
    docstring; ``check_platform=False`` tries anyway, and a decoded image that
    differs from the original is still refused). The condition stored in the
    file is available through ``read_condition``. ``progress``: a bar over the pixels, with an ETA.

    Decoding costs what decoding the images the header claims costs: a range coder's stream has
    no lower bound on its length (a model sure of every pixel codes any number of images in a few
    words), so a short file that claims many images is decoded, then refused by its CRC-32.
    """
    header = read_header(data)
    check_model(model, header, check_platform)
    check_decodable(model, header)
    coder = _Coder(model.head, stream=header.stream)
    bar = progress and f"decoding {header.batch:,} images"
    try:
        x = _run(model, read_condition(model, header), header.batch, header.step, coder, bar)
    except MemoryError:
        raise ValueError(
            f"decoding this file's {header.batch:,} images together is too large for the memory available"
        ) from None
    except (RuntimeError, ValueError) as err:  # the range decoder ran off its stream
        raise ValueError(
            f"corrupted pixelcnn compressed file: the stream does not decode with this model "
            f"({' '.join(str(err).split())[:200]})"
        ) from None
    if crc32_of_images(x) != header.image_crc:
        here = platform_string(model)
        why = (
            "the file is corrupt (a file made here decodes exactly here)"
            if header.platform == here
            else f"this platform ({here}) computes the model's floats differently from the encoder's "
            f"({header.platform}), or the file is corrupt"
        )
        raise ValueError(f"the decoded images differ from the ones compressed (their CRC-32 does not match): {why}")
    return x


def read_condition(model, data: bytes | Header) -> torch.Tensor | None:
    """The condition stored in a compressed file (or its parsed header), on the model's device.

    Class labels int64 [B], vectors [B, D] in the model's dtype (for the PixelCNN
    auto-encoder: each image's code), or None for an unconditional model.
    """
    header = data if isinstance(data, Header) else read_header(data)
    return _stored_condition(
        model,
        cond_kind=header.cond_kind,
        cond_dtype=header.cond_dtype,
        batch=header.batch,
        cond_dim=header.cond_dim,
        cond_bytes=header.cond_bytes,
    )


def _run(model, cond: torch.Tensor | None, batch: int, step: str, coder: _Coder, progress: bool | str) -> torch.Tensor:
    def run():
        h = model.encode_condition(model.check_cond(cond, batch)) if cond is not None else None
        return _visit_in_order(model, h, batch, step, coder, progress)

    return _coding_mode(model, run)
