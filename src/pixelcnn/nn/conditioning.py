"""Conditioning: what h is, and how it enters a layer ([1] §2.3, Equations 4 and 5).

``ConditionEncoder`` turns the user's ``cond`` into the tensor every layer
reads: a vector [B, D] (a one-hot class, or any embedding), or, with
``spatial=True``, the map s = m(h) [B, S, H, W] of a small deconvolutional
network. ``ConditionBias`` is the per-layer term V^T h (a linear map, the same
at every position: the condition says *what*, not *where*) or V * s (an
unmasked 1x1 convolution of the spatial map). Neither depends on the image, so
neither can break causality.

[1] A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves,
    K. Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConditionEncoder(nn.Module):
    """Map ``cond`` (class labels [B] or vectors [B, cond_dim]) to what layers read.

    Returns [B, D] with D = ``num_classes`` or ``cond_dim``, or with
    ``spatial=True`` the map m(h) of shape [B, spatial_channels, H, W].
    """

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        spatial: bool = False,
        image_size: tuple[int, int] = (1, 1),
        spatial_channels: int = 32,
    ):
        super().__init__()
        if num_classes is not None and cond_dim is not None:
            raise ValueError("give num_classes (class labels) or cond_dim (vectors), not both")
        if spatial and num_classes is None and cond_dim is None:
            raise ValueError("spatial_cond=True needs num_classes or cond_dim")
        self.num_classes, self.cond_dim, self.spatial = num_classes, cond_dim, spatial
        self.vector_dim = num_classes if num_classes is not None else cond_dim
        self.out_channels = spatial_channels if spatial else self.vector_dim
        if spatial:
            height, width = image_size
            # m(h): linear to a map a quarter of the image size, two stride-2
            # transposed convolutions, then a crop to exactly H x W.
            self.seed_size = (math.ceil(height / 4), math.ceil(width / 4))
            self.image_size = (height, width)
            self.to_seed = nn.Linear(self.vector_dim, spatial_channels * self.seed_size[0] * self.seed_size[1])
            self.upsample = nn.Sequential(
                nn.ReLU(),
                nn.ConvTranspose2d(spatial_channels, spatial_channels, 4, stride=2, padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(spatial_channels, spatial_channels, 4, stride=2, padding=1),
            )

    @property
    def is_conditional(self) -> bool:
        return self.vector_dim is not None

    def forward(self, cond: torch.Tensor | None, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        if cond is None:
            return None
        if self.num_classes is not None:
            h = F.one_hot(cond.long(), self.num_classes).to(dtype)  # [B, num_classes]
        else:
            h = cond.to(dtype)  # [B, cond_dim]
        if not self.spatial:
            return h
        seed = self.to_seed(h).view(h.shape[0], -1, *self.seed_size)  # [B, S, H/4, W/4]
        s = self.upsample(seed)  # [B, S, 4*ceil(H/4), ...]
        return s[:, :, : self.image_size[0], : self.image_size[1]]  # [B, S, H, W]


class ConditionBias(nn.Module):
    """One layer's V^T h (vector condition) or V * s (spatial condition).

    One linear map / 1x1 convolution with ``out_channels`` outputs; for a gated
    layer out_channels = 2p, so the tanh half and the sigmoid half have
    separate weights, as in the paper's equation.
    """

    def __init__(self, cond_channels: int, out_channels: int, *, spatial: bool):
        super().__init__()
        self.spatial = spatial
        if spatial:
            self.proj = nn.Conv2d(cond_channels, out_channels, 1)
        else:
            self.proj = nn.Linear(cond_channels, out_channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.spatial:
            return self.proj(h)  # [B, out, H, W]
        return self.proj(h)[:, :, None, None]  # [B, out, 1, 1]
