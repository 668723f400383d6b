"""Look inside a model: receptive fields, predicted distributions, per-pixel NLL, sampling frames.

Every function here computes from the real model and returns tensors, so the
same numbers feed the pictures (``viz.py``, ``pixelcnn viz``) and the tests. Images come
from ``pixelcnn.data`` (``data.read_image`` for a file); probabilities from the model's output head::

    from pixelcnn import analysis
    field = analysis.receptive_field(model, pixel=(8, 8))           # int64 [C, H, W] of Context codes
    dists = analysis.pixel_distributions(model, image, pixels=[(14, 14)])
    bits = analysis.nll_bits(model, images)                         # float64 [B, C, H, W], sums to -log2 p(x)
    frames = analysis.sampling_frames(model, 16)                    # snapshots for an animation

The receptive field is *structural*: it is the gradient of one output with
respect to the input, taken through a float64 copy of the model whose weights
are small and positive and whose input is positive. Then no ReLU is dead, no
tanh saturates and no two paths cancel, so a gradient is non-zero exactly where
some path through open mask taps exists, whatever the trained weights are.
(With the model's own weights a dead ReLU or an unlucky cancellation could hide
a dependency and draw a blind spot that is not there.)
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from enum import IntEnum

import torch

from .metrics import bits_per_dim


class Context(IntEnum):
    """What one input pixel-channel is to the output being predicted (the codes of a receptive-field map)."""

    FUTURE = 0  # after the output in the drawing order and not read (as it must be)
    BLIND_SPOT = 1  # before the output, and no depth of this architecture reads it
    SEEN = 2  # before the output and read
    TARGET = 3  # the pixel-channel being predicted (not read, as it must be)
    LEAK = 4  # the output itself or after it, yet read: a causality bug
    OUT_OF_REACH = 5  # before the output, not read at this depth; the same model with more layers reads it


# ---------------------------------------------------------------------------------------- checks
def _check_pixel(pixel, image_shape) -> tuple[int, int]:
    _, height, width = image_shape
    if (
        not isinstance(pixel, (tuple, list))
        or len(pixel) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pixel)
    ):
        raise ValueError(f"a pixel is a pair of integers (row, col), got {pixel!r}")
    row, col = pixel
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(
            f"pixel ({row}, {col}) is outside the {height}x{width} image: "
            f"row must be in 0..{height - 1} and col in 0..{width - 1}"
        )
    return row, col


def _check_channel(channel, image_shape) -> int:
    channels = image_shape[0]
    if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < channels:
        raise ValueError(
            f"channel must be an integer in 0..{channels - 1} for {channels}-channel images, got {channel!r}"
        )
    return channel


def _one_image(model, image) -> torch.Tensor:
    """An image [C, H, W] or [1, C, H, W] -> a checked [1, C, H, W] on the model's device."""
    if isinstance(image, torch.Tensor) and image.dim() == 3:
        image = image.unsqueeze(0)  # [1, C, H, W]
    image = model.check_images(image)
    if image.shape[0] != 1:
        raise ValueError(f"expected one image [C, H, W] or [1, C, H, W], got a batch of {image.shape[0]}")
    return image


def default_cond(model, batch: int = 1):
    """A valid condition for ``model``: None, class 0, or the zero vector."""
    config = model.config
    if config.num_classes is not None:
        return torch.zeros(batch, dtype=torch.long)
    if config.cond_dim is not None:
        return torch.zeros(batch, config.cond_dim)
    return None


# ------------------------------------------------------------------------------- receptive field
def structural_copy(model, *, seed: int = 0, device: torch.device | str = "cpu"):
    """A float64 copy of ``model`` on ``device`` (the CPU by default) whose every parameter is small and positive.

    A weight tensor gets values in [0.25, 0.5] / fan_in, so every unit's
    pre-activation stays of the order of its inputs however deep the model or
    wide its layers (no tanh or sigmoid saturates to a gradient of exactly 0);
    a bias gets 0.01.
    """
    structural = copy.deepcopy(model).to(device=device, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same weights on every device
    with torch.no_grad():
        for param in structural.parameters():
            if param.dim() >= 2:
                fan_in = param[0].numel()
                param.copy_((0.25 + 0.25 * torch.rand(param.shape, generator=generator, dtype=torch.float64)) / fan_in)
            else:
                param.fill_(0.01)
    structural.requires_grad_(False)  # only the input's gradient is wanted: skip the weights'
    return structural.eval()


def receptive_field(
    model, pixel: tuple[int, int], channel: int = 0, *, cond=None, seed: int = 0, split_unseen: bool = True
) -> torch.Tensor:
    """Which input pixel-channels the prediction of (``channel``, ``pixel``) reads: int64 [C, H, W].

    Each entry is a ``Context`` code: SEEN; BLIND_SPOT (earlier, but no
    depth of this architecture reads it); OUT_OF_REACH (earlier, read once
    the model has more layers); FUTURE; TARGET (the predicted pixel-channel
    itself) or LEAK (a read of the future: never, for a correct model).
    Computed by gradient through a ``structural_copy`` of the model (see the
    module docstring); ``cond`` defaults to ``default_cond``. Telling the
    blind spot from what is out of reach takes a second pass through a
    deeper copy (``deeper_model``); with ``split_unseen=False`` every unread
    earlier input is BLIND_SPOT.
    """
    return receptive_fields(model, [pixel], channel, cond=cond, seed=seed, split_unseen=split_unseen)[0]


def deeper_model(model, extra_layers: int):
    """A fresh model of the same config with ``extra_layers`` more layers; None if it has no ``n_layers``."""
    if not hasattr(model.config, "n_layers"):
        return None
    config = dataclasses.replace(model.config, n_layers=model.config.n_layers + extra_layers)
    return type(model)(config)


def receptive_fields(
    model, pixels: list[tuple[int, int]], channel: int = 0, *, cond=None, seed: int = 0, split_unseen: bool = True
) -> torch.Tensor:
    """``receptive_field`` of several pixels in one pass: int64 [len(pixels), C, H, W]."""
    image_shape = tuple(model.image_shape)
    channels, height, width = image_shape
    pixels = [_check_pixel(pixel, image_shape) for pixel in pixels]
    channel = _check_channel(channel, image_shape)
    count = len(pixels)
    rows, cols = torch.tensor([p[0] for p in pixels]), torch.tensor([p[1] for p in pixels])
    seen = _reads(model, rows, cols, channel, cond, seed)  # [P, C, H, W]
    # Every layer widens the reach by at least one row up and one column to each side, so
    # max(H, W) more layers reach every earlier pixel that any depth reaches.
    deeper = deeper_model(model, max(height, width)) if split_unseen else None
    seen_deeper = _reads(deeper, rows, cols, channel, cond, seed) if deeper is not None else seen

    rank = generation_rank(model)
    order = rank.view(1, 1, height, width)  # when each pixel is drawn
    target = rank[rows, cols].view(count, 1, 1, 1)
    earlier_channel = torch.arange(channels).view(1, channels, 1, 1) < channel
    before = (order < target) | ((order == target) & earlier_channel)  # [P, C, H, W]
    field_maps = torch.full((count, *image_shape), int(Context.FUTURE), dtype=torch.long)
    field_maps[before & ~seen_deeper] = int(Context.BLIND_SPOT)
    field_maps[before & ~seen & seen_deeper] = int(Context.OUT_OF_REACH)
    field_maps[before & seen] = int(Context.SEEN)
    field_maps[torch.arange(count), channel, rows, cols] = int(Context.TARGET)
    field_maps[~before & seen] = int(Context.LEAK)
    return field_maps


def _reads(model, rows: torch.Tensor, cols: torch.Tensor, channel: int, cond, seed: int) -> torch.Tensor:
    """bool [P, C, H, W]: which inputs output (channel, rows[k], cols[k]) reads, by structural gradient."""
    return outputs_read(model, torch.full_like(rows, channel), rows, cols, cond=cond, seed=seed)


def outputs_read(
    model,
    channels: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    *,
    cond=None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """bool [P, C, H, W] on the CPU: which inputs output (channels[k], rows[k], cols[k]) reads.

    The structural gradient of the module docstring, computed on ``device``
    (a ``structural_copy`` there). Copy k of the input batch back-propagates
    only output k. Every weight and input is positive, so no two paths can
    cancel and one random positive input decides. ``cond`` defaults to
    ``default_cond``; the PixelCNN auto-encoder needs its code here.
    """
    count, image_shape = len(rows), tuple(model.image_shape)
    structural = structural_copy(model, seed=seed, device=device)
    cond = structural.check_cond(default_cond(model) if cond is None else cond, 1)
    h = structural.encode_condition(cond.expand(count, *cond.shape[1:]) if cond is not None else None)
    generator = torch.Generator().manual_seed(seed)
    x = 0.1 + 0.9 * torch.rand(1, *image_shape, generator=generator, dtype=torch.float64)  # positive inputs
    x = x.expand(count, *image_shape).to(device).clone().requires_grad_(True)  # [P, C, H, W]
    out = structural.network(x, h)
    # PixelCNN++'s mixture couples a pixel's channels after the network, reading x itself (head_params).
    params = structural.head_params(out, x) if hasattr(structural, "head_params") else structural.head.params(out)
    weights = (0.5 + torch.rand(params.shape[2], generator=generator, dtype=torch.float64)).to(device)
    copies = torch.arange(count, device=device)
    picked = params[copies, channels.to(device), :, rows.to(device), cols.to(device)]  # [P, params]
    (picked * weights).sum().backward()  # copy k: output k only
    return (x.grad != 0).cpu()


def dependency_map(model, *, cond=None, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Which inputs each output reads: bool [C, H, W (output), C, H, W (input)], computed on ``device``.

    ``outputs_read`` of every output pixel-channel at once (C*H*W copies of the
    input in one batch: for small images). ``causal_order`` says which reads
    are allowed.
    """
    channels, height, width = model.image_shape
    index = torch.arange(channels * height * width)
    seen = outputs_read(
        model, index // (height * width), index // width % height, index % width, cond=cond, seed=seed, device=device
    )
    return seen.view(channels, height, width, channels, height, width)


def causal_order(model) -> torch.Tensor:
    """bool [C, H, W (output), C, H, W (input)]: the input comes before the output in the model's order.

    Pixels in ``generation_order`` (raster order but for the Multi-Scale
    PixelRNN), and inside a pixel R before G before B.
    """
    channels, height, width = model.image_shape
    rank = generation_rank(model)
    pixel_out, pixel_in = rank.view(1, height, width, 1, 1, 1), rank.view(1, 1, 1, 1, height, width)
    channel_out = torch.arange(channels).view(channels, 1, 1, 1, 1, 1)
    channel_in = torch.arange(channels).view(1, 1, 1, channels, 1, 1)
    return (pixel_in < pixel_out) | ((pixel_in == pixel_out) & (channel_in < channel_out))


def earlier_count(counts: dict[str, int]) -> int:
    """How many inputs come before the output, from ``count_context``'s counts."""
    return counts["SEEN"] + counts["BLIND_SPOT"] + counts["OUT_OF_REACH"]


def generation_rank(model) -> torch.Tensor:
    """When each pixel is drawn: int64 [H, W], 0 for the first.

    The model's ``generation_order(start_row)``: raster order, except for the
    Multi-Scale PixelRNN, which draws its subsampled grid first.
    """
    _, height, width = model.image_shape
    rank = torch.empty(height, width, dtype=torch.long)
    for index, (row, col) in enumerate(model.generation_order(0)):
        rank[row, col] = index
    return rank


def count_context(field_map: torch.Tensor) -> dict[str, int]:
    """How many input pixel-channels of a receptive-field map fall in each ``Context``: {"SEEN": n, ...}."""
    return {context.name: int((field_map == int(context)).sum()) for context in Context}


def fresh_receptive_field(
    name: str,
    *,
    image_size: int = 16,
    n_layers: int = 4,
    hidden: int = 8,
    channels: int = 1,
    pixel: tuple[int, int] | None = None,
    channel: int = 0,
    **options,
) -> torch.Tensor:
    """``receptive_field`` of a freshly built ``name`` model of the given size (weights do not matter).

    ``pixel`` defaults to ``default_pixel``; ``options`` are further config
    fields (``kernel_size``, ...).
    """
    from .models.registry import build

    model = build(
        name,
        image_shape=(channels, image_size, image_size),
        levels=2 if channels == 1 else 4,
        n_layers=n_layers,
        hidden=hidden,
        **options,
    )
    return receptive_field(model, default_pixel(model.image_shape) if pixel is None else pixel, channel)


def default_pixel(image_shape) -> tuple[int, int]:
    """Low and a little right of centre, where the context above shows well: (3H/4, W/2)."""
    _, height, width = image_shape
    return (3 * height) // 4, width // 2


# --------------------------------------------------------------------------- predicted distributions
@dataclass
class PixelDistribution:
    """The model's predicted distribution of one pixel-channel of an image, and what the image holds."""

    row: int
    col: int
    channel: int
    probs: torch.Tensor  # float64 [levels], sums to 1
    observed: int  # the image's value there

    @property
    def observed_prob(self) -> float:
        return float(self.probs[self.observed])

    @property
    def entropy_bits(self) -> float:
        p = self.probs[self.probs > 0]
        return float(-(p * p.log2()).sum())


@torch.no_grad()
def pixel_distributions(
    model, image, pixels=None, *, channels=None, cond=None, count: int = 4
) -> list[PixelDistribution]:
    """The predicted distributions of chosen pixel-channels of one image (given all before them).

    Args:
        image: an integer image [C, H, W] or [1, C, H, W].
        pixels: (row, col) pairs; None: the ``count`` pixels the model is
            least sure of (``most_uncertain_pixels``).
        channels: which channels of each pixel (default: all).
        cond: the image's condition (class label [1] or vector [1, D]).
    """
    image = _one_image(model, image)
    image_shape = tuple(model.image_shape)
    channels = list(range(image_shape[0])) if channels is None else [_check_channel(c, image_shape) for c in channels]
    probs = model.head.probabilities(model(image, cond))[0].cpu()  # [C, L, H, W], float64
    if pixels is None:
        pixels = most_uncertain_pixels(probs, count)
    pixels = [_check_pixel(tuple(p) if isinstance(p, list) else p, image_shape) for p in pixels]
    values = image[0].cpu()
    return [
        PixelDistribution(row, col, c, probs[c, :, row, col].clone(), int(values[c, row, col]))
        for row, col in pixels
        for c in channels
    ]


def most_uncertain_pixels(probs: torch.Tensor, count: int) -> list[tuple[int, int]]:
    """The ``count`` pixels of highest predictive entropy (summed over channels), in raster order.

    probs [C, L, H, W] from the output head's ``probabilities``.
    """
    entropy = -(probs * probs.clamp_min(1e-300).log2()).sum(1).sum(0)  # [H, W]
    width = entropy.shape[1]
    top = entropy.flatten().topk(min(count, entropy.numel())).indices.sort().values
    return [(int(i) // width, int(i) % width) for i in top]


# ---------------------------------------------------------------------------------- per-pixel NLL
@torch.no_grad()
def nll_bits(model, images, cond=None) -> torch.Tensor:
    """-log2 p of every pixel-channel given those before it: float64 [B, C, H, W], in bits.

    ``nll_bits(...).sum((1, 2, 3)) * ln 2 == -model.log_prob(images, cond)``:
    the map spreads the image's exact NLL over its pixels.
    """
    images = model.check_images(images)
    params = model(images, cond)
    return -model.head.log_prob(params, images).double().cpu() / math.log(2)


def nll_totals(bits: torch.Tensor, image_shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image totals of an ``nll_bits`` map [B, C, H, W]: (NLL in nats [B], bits/dim [B])."""
    nats = bits.flatten(1).sum(1) * math.log(2)
    return nats, bits_per_dim(nats, image_shape)


# ----------------------------------------------------------------------------- sampling frames
@dataclass
class SamplingFrames:
    """Snapshots of a batch being sampled, for an animation."""

    frames: list = field(default_factory=list)  # uint8 [n, C, H, W] each; pixels not yet drawn are 0
    pixels_done: list = field(default_factory=list)  # how many pixels each frame has drawn
    rank: torch.Tensor | None = None  # when each pixel is drawn, int64 [H, W] (generation_rank)
    images: torch.Tensor | None = None  # the final samples, int64 [n, C, H, W]
    method: str = ""  # the sampler that drew them: "fast" or "naive"


def sampling_method(model, method: str = "auto") -> str:
    """The sampler ``model.sample(method=method)`` uses that can report each pixel (``callback``)."""
    methods = model.sampling_methods()
    with_callback = [name for name, fn in methods.items() if "callback" in inspect.signature(fn).parameters]
    if method == "auto":
        return "fast" if "fast" in with_callback else "naive"
    if method not in methods:
        raise ValueError(
            f"unknown sampling method {method!r} for {model.name}; available: {', '.join(['auto', *methods])}"
        )
    if method not in with_callback:
        raise ValueError(
            f"the {method!r} sampler of {model.name} cannot report pixels one by one; use "
            f"{' or '.join(repr(m) for m in with_callback)}"
        )
    return method


def sampling_frames(
    model,
    n: int,
    *,
    cond=None,
    every: int | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = "auto",
) -> SamplingFrames:
    """Sample ``n`` images and keep a snapshot every ``every`` pixels (default: one per row).

    The first frame is the empty canvas, the last the finished samples. The
    images are those ``model.sample`` draws with the same arguments.
    """
    _, height, width = model.image_shape
    every = width if every is None else every
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ValueError(f"every must be a positive number of pixels, got {every!r}")
    method = sampling_method(model, method)
    result = SamplingFrames(method=method, rank=generation_rank(model))
    result.frames.append(torch.zeros((n, *model.image_shape), dtype=torch.uint8))
    result.pixels_done.append(0)
    total = height * width
    drawn = 0

    def snapshot(row: int, col: int, x: torch.Tensor) -> None:
        nonlocal drawn
        drawn += 1  # one call per pixel, in the drawing order
        if drawn % every == 0 or drawn == total:
            result.frames.append(x.detach().cpu().to(torch.uint8))
            result.pixels_done.append(drawn)

    result.images = model.sample(
        n, cond, temperature=temperature, generator=generator, method=method, callback=snapshot
    )
    return result
