"""PixelCNN++ (Salimans, Karpathy, Chen, Kingma, ICLR 2017 [1]).

What differs from the PixelCNN ([1] §2):
- shifted convolutions instead of masks (``nn/shifted.py``): a *down-shifted*
  stream u (the rows above) and a *down-right-shifted* stream ul (the rows
  above and the pixels to the left), combined like the Gated PixelCNN's two
  stacks, so there is no blind spot;
- gated ResNet blocks with concatenated ELU and dropout;
- three resolutions: two stride-2 downsamplings and two transposed-convolution
  upsamplings, with a short-cut from every block of the down pass to its mirror
  in the up pass (a U-net, [1] Figure 2);
- the discretized logistic mixture likelihood (``heads.py``).

Architecture, F = ``hidden``, n = ``n_layers`` (the reference code's ``nr_resnet``)::

    x [B, C, H, W], with a channel of ones (tells zero padding from black) -> [B, C+1, H, W]
    u  = down_shift(2x3 down-shifted conv)                           [B, F, H, W]
    ul = down_shift(1x3 down-shifted conv) + right_shift(2x1 down-right-shifted conv)
    down pass, stages H, H/2, H/4: (stride-2 convs between stages) n gated ResNet blocks each,
        u = block(u); ul = block(ul, aux=u); every u and ul kept for the up pass (3n + 3 of each)
    up pass, stages H/4, H/2, H: (stride-2 transposed convs between) n, n + 1, n + 1 blocks,
        u = block(u, aux=kept u); ul = block(ul, aux=[u, kept ul])
    -> ELU -> 1x1 conv -> head parameters                            [B, P, H, W]

Causality: u at (i, j) depends on rows < i only, ul on pixels before (i, j)
in raster order only, at every layer and resolution (see ``nn/shifted.py``).
There are no colour masks: the output at (i, j) sees no channel of pixel
(i, j). The logistic mixture head couples a pixel's channels itself (G's mean
linear in R, B's in R and G, [1] §2.2), which ``_params`` applies; with a
categorical or Bernoulli head the channels of a pixel are independent given
the earlier pixels.

Any H and W work: a stride-2 stage has ceil(H/2) x ceil(W/2) positions, and
each transposed convolution crops its output to the size of the stage it
returns to.

NOTE: unlike the paper, weight normalization ([2], ``weight_norm=True``) is
initialized from the default initialization, not data-dependently, and the
per-step learning-rate decay and Polyak averaging are the training schedule's
(``Preset.schedule``), not the model's.

[1] T. Salimans, A. Karpathy, X. Chen, D. P. Kingma. PixelCNN++: Improving
    the PixelCNN with Discretized Logistic Mixture Likelihood and Other
    Modifications. ICLR 2017. arXiv:1701.05517.
[2] T. Salimans, D. P. Kingma. Weight Normalization. NIPS 2016. arXiv:1602.07868.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.shifted import (DownRightShiftedConv2d, DownRightShiftedConvTranspose2d, DownShiftedConv2d,
                          DownShiftedConvTranspose2d, GatedResNet, down_shift, right_shift)
from .base import AutoregressiveModel, ModelConfig, Preset

STAGES = 3                                  # resolutions: H, H/2, H/4 ([1] Figure 2)


@dataclass
class PixelCNNPPConfig(ModelConfig):
    n_layers: int = 5                       # gated ResNet blocks per stage of the down pass (nr_resnet; up: n, n+1, n+1)
    hidden: int = 160                       # F: maps of both streams at every resolution (nr_filters)
    dropout: float = 0.0                    # in every block; the paper's CIFAR-10 model: 0.5 (its preset)
    weight_norm: bool = False               # weight-normalize every convolution ([2]); the paper does

    def __post_init__(self):
        super().__post_init__()
        for name in ("n_layers", "hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0 <= float(self.dropout) < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class PixelCNNPP(AutoregressiveModel):
    """PixelCNN++ of [1], conditional when built with num_classes or cond_dim (a bias in every block)."""

    name = "pixelcnn_pp"
    config_class = PixelCNNPPConfig

    def __init__(self, config: PixelCNNPPConfig):
        super().__init__(config)
        channels, features, blocks = self.image_shape[0], config.hidden, config.n_layers
        norm = dict(weight_norm=config.weight_norm)
        block = functools.partial(GatedResNet, features, dropout=config.dropout, cond_channels=self.cond_channels,
                                  spatial_cond=config.spatial_cond, **norm)

        def stage(conv, aux_channels, count):
            return nn.ModuleList([block(conv, aux_channels=aux_channels) for _ in range(count)])

        self.u_input = DownShiftedConv2d(channels + 1, features, (2, 3), **norm)
        self.ul_input_above = DownShiftedConv2d(channels + 1, features, (1, 3), **norm)
        self.ul_input_left = DownRightShiftedConv2d(channels + 1, features, (2, 1), **norm)
        # Down pass: ul reads u at the same position (rows above); up pass: u reads its kept twin,
        # ul reads [u, its kept twin].
        self.down_u = nn.ModuleList([stage(DownShiftedConv2d, 0, blocks) for _ in range(STAGES)])
        self.down_ul = nn.ModuleList([stage(DownRightShiftedConv2d, features, blocks) for _ in range(STAGES)])
        self.downsample_u = nn.ModuleList([DownShiftedConv2d(features, features, stride=2, **norm)
                                           for _ in range(STAGES - 1)])
        self.downsample_ul = nn.ModuleList([DownRightShiftedConv2d(features, features, stride=2, **norm)
                                            for _ in range(STAGES - 1)])
        up_blocks = [blocks] + [blocks + 1] * (STAGES - 1)                   # coarsest first
        self.up_u = nn.ModuleList([stage(DownShiftedConv2d, features, n) for n in up_blocks])
        self.up_ul = nn.ModuleList([stage(DownRightShiftedConv2d, 2 * features, n) for n in up_blocks])
        self.upsample_u = nn.ModuleList([DownShiftedConvTranspose2d(features, features, **norm)
                                         for _ in range(STAGES - 1)])
        self.upsample_ul = nn.ModuleList([DownRightShiftedConvTranspose2d(features, features, **norm)
                                          for _ in range(STAGES - 1)])
        self.output = nn.Conv2d(features, self.network_channels, 1)
        if config.weight_norm:
            self.output = nn.utils.parametrizations.weight_norm(self.output)

    @property
    def network_channels(self) -> int:
        """Maps of the network's output: the head's parameters."""
        return self.head.out_channels

    def stage_conditions(self, h: torch.Tensor | None) -> list:
        """The condition each resolution reads: a vector as is, a map [B, S, H, W] subsampled to the stage's size."""
        if h is None or h.dim() == 2:
            return [h] * STAGES
        return [h[:, :, :: 2 ** s, :: 2 ** s] for s in range(STAGES)]       # [B, S, ceil(H / 2^s), ceil(W / 2^s)]

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        conds = self.stage_conditions(h)
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)                 # [B, C+1, H, W]
        u = down_shift(self.u_input(x))                                      # [B, F, H, W]: rows < i
        ul = down_shift(self.ul_input_above(x)) + right_shift(self.ul_input_left(x))  # pixels before (i, j)
        kept_u, kept_ul = [u], [ul]
        for s in range(STAGES):
            if s > 0:
                u, ul = self.downsample_u[s - 1](u), self.downsample_ul[s - 1](ul)   # [B, F, ceil(./2), ceil(./2)]
                kept_u.append(u)
                kept_ul.append(ul)
            for u_block, ul_block in zip(self.down_u[s], self.down_ul[s]):
                u = u_block(u, h=conds[s])
                ul = ul_block(ul, u, h=conds[s])
                kept_u.append(u)
                kept_ul.append(ul)
        u, ul = kept_u.pop(), kept_ul.pop()
        for up, s in enumerate(reversed(range(STAGES))):                     # s: 2, 1, 0 (coarsest first)
            if up > 0:
                size = kept_u[-1].shape[-2:]                                 # the finer stage's H, W
                u, ul = self.upsample_u[up - 1](u, size), self.upsample_ul[up - 1](ul, size)
            for u_block, ul_block in zip(self.up_u[up], self.up_ul[up]):
                u = u_block(u, kept_u.pop(), h=conds[s])
                ul = ul_block(ul, torch.cat([u, kept_ul.pop()], dim=1), h=conds[s])
        return self.output(F.elu(ul))                                        # [B, P, H, W]


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "pixelcnnpp-cifar10": Preset(PixelCNNPP.name, dict(image_shape=(3, 32, 32), levels=256, n_layers=5, hidden=160,
                                                       dropout=0.5, weight_norm=True),
                                 "PixelCNN++ paper, CIFAR-10: 5 blocks per stage, 160 maps, dropout 0.5 "
                                 "(2.92 bits/dim); its Adam / decay / Polyak recipe as the training defaults"),
    "tiny-pixelcnnpp": Preset(PixelCNNPP.name, dict(image_shape=(1, 8, 8), levels=2, n_layers=1, hidden=8),
                              "36 thousand parameters, for tests and smoke runs"),
}
