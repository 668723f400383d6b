"""Shared helpers for the property tests: dependency maps, enumeration, tiny models."""
from __future__ import annotations

import copy
import itertools

import pytest
import torch

import pixelcnn

# The conditioning variants every model is tested under.
CONDITIONS = {
    "none": dict(),
    "class": dict(num_classes=3),
    "vector": dict(cond_dim=4),
    "spatial": dict(cond_dim=4, spatial_cond=True),
}


def make_cond(model, batch: int, generator: torch.Generator | None = None):
    """A valid random condition for ``model`` (None when it is unconditional)."""
    config = model.config
    if config.num_classes is not None:
        return torch.randint(0, config.num_classes, (batch,), generator=generator)
    if config.cond_dim is not None:
        return torch.randn(batch, config.cond_dim, generator=generator, dtype=torch.float64)
    return None


def dependency_map(model, cond=None, trials: int = 2, seed: int = 0) -> torch.Tensor:
    """Which inputs each output reads: bool [C, H, W (output), C, H, W (input)].

    The structural Jacobian: a copy of the model gets small positive weights
    and positive inputs, so no ReLU is dead and no two paths cancel; then a
    gradient is non-zero exactly where a path through open mask taps exists.
    (With random signed weights a ReLU can close every path of a colour group
    at an image corner and hide a real dependency.)

    One backward pass gives the whole Jacobian: the input is repeated once per
    output pixel-channel, and copy n back-propagates only output n's
    parameters, with random positive weights.
    """
    channels, height, width = model.image_shape
    n = channels * height * width
    model = copy.deepcopy(model)
    with torch.no_grad():
        for param in model.parameters():
            # Small enough that no tanh saturates to a gradient of exactly 0.
            param.abs_().mul_(0.1).add_(1e-3)
    dtype = next(model.parameters()).dtype
    generator = torch.Generator().manual_seed(seed)
    seen = torch.zeros(n, n, dtype=torch.bool)
    for _ in range(trials):
        x = (0.1 + 0.9 * torch.rand(1, channels, height, width, generator=generator, dtype=dtype)).repeat(n, 1, 1, 1)
        x.requires_grad_(True)
        h = model.encode_condition(None if cond is None else cond.expand(n, *cond.shape[1:]))
        out = model.network(x, h)
        # PixelCNN++'s mixture couples a pixel's channels after the network, reading x itself.
        params = model.head_params(out, x) if hasattr(model, "head_params") else model.head.params(out)  # [n, C, P, H, W]
        weights = torch.rand(params.shape, generator=generator, dtype=dtype) + 0.5
        select = torch.zeros(n, channels, 1, height, width, dtype=dtype)
        select.view(n, -1)[torch.arange(n), torch.arange(n)] = 1             # copy k reads output k
        (params * weights * select).sum().backward()
        seen |= x.grad.reshape(n, n) != 0
    return seen.view(channels, height, width, channels, height, width)


def causal_allowed(image_shape) -> torch.Tensor:
    """bool [C, H, W, C, H, W]: input (c', i', j') precedes output (c, i, j) in raster-then-R,G,B order."""
    channels, height, width = image_shape
    order = torch.arange(height * width).view(height, width)
    pixel_out = order[None, :, :, None, None, None]
    pixel_in = order[None, None, None, None, :, :]
    chan_out = torch.arange(channels)[:, None, None, None, None, None]
    chan_in = torch.arange(channels)[None, None, None, :, None, None]
    return (pixel_in < pixel_out) | ((pixel_in == pixel_out) & (chan_in < chan_out))


def all_images(image_shape, levels: int) -> torch.Tensor:
    """Every image of a tiny shape: int64 [levels ** (C*H*W), C, H, W]."""
    values = list(itertools.product(range(levels), repeat=int(torch.tensor(image_shape).prod())))
    return torch.tensor(values, dtype=torch.long).view(-1, *image_shape)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(name: str, **overrides):
    """A tiny float64 model of ``name`` for exactness tests."""
    return pixelcnn.build(name, **overrides).double()
