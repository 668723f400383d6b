"""The gated activation and the Gated PixelCNN's two-stack layer (SPEC §4, §5).

One layer, with p = ``channels``::

      vertical in [B, p, H, W]                 horizontal in [B, p, H, W]
            |                                          |
      VerticalStackConv  (rows <= i)             1 x (k//2+1) masked conv (A or B)
            |  [B, 2p]                                 |  [B, 2p]
            |---- shift_down -> 1x1 -------------->  (+) <- condition
      (+) <- condition                                 |
      gate: tanh(.) * sigmoid(.)                 gate: tanh(.) * sigmoid(.)
            |  [B, p]                                  |  [B, p]
      vertical out                        1x1 mask B -> skip     1x1 mask B -> (+ input) -> horizontal out

Information flows from the vertical stack to the horizontal one only after a
one-row down shift, never back: the vertical stack at row i reads row i
itself, which the horizontal stack at row i must not see from the right.
"""
from __future__ import annotations

import torch
from torch import nn

from .conditioning import ConditionBias
from .conv import MaskedConv2d, VerticalStackConv2d, shift_down


def gated_activation(x: torch.Tensor) -> torch.Tensor:
    """tanh of the first half of the channels times sigmoid of the second: [B, 2p, ...] -> [B, p, ...]."""
    value, gate = x.chunk(2, dim=1)
    return torch.tanh(value) * torch.sigmoid(gate)


class GatedLayer(nn.Module):
    """One Gated PixelCNN layer: vertical and horizontal stack, gated, conditioned.

    Args:
        in_channels: channels of both stacks' input (C for the first layer, p after).
        channels: p, the gated output channels of each stack.
        skip_channels: channels of the skip connection to the output head.
        kernel_size: k, odd.
        color_channels: C, for the colour-group masks of the horizontal stack.
        first: mask A and no residual (the layer that reads the image).
        cond_channels: channels of the encoded condition (0: unconditional).
        spatial_cond: whether the encoded condition is a map [B, S, H, W].
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        skip_channels: int,
        *,
        kernel_size: int,
        color_channels: int,
        first: bool,
        cond_channels: int = 0,
        spatial_cond: bool = False,
    ):
        super().__init__()
        self.first = first
        groups = dict(color_channels=color_channels)
        self.vertical_conv = VerticalStackConv2d(in_channels, 2 * channels, kernel_size)
        self.horizontal_conv = MaskedConv2d(
            in_channels, 2 * channels, (1, kernel_size // 2 + 1), center=(0, kernel_size // 2),
            mask_type="A" if first else "B", group_repeats=2, **groups,
        )
        # The vertical stack's rows above may inform every colour group: no mask.
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.skip_out = MaskedConv2d(channels, skip_channels, 1, mask_type="B", **groups)
        self.horizontal_out = None if first else MaskedConv2d(channels, channels, 1, mask_type="B", **groups)
        if cond_channels:
            self.vertical_cond = ConditionBias(cond_channels, 2 * channels, spatial=spatial_cond)
            self.horizontal_cond = ConditionBias(cond_channels, 2 * channels, spatial=spatial_cond)
        else:
            self.vertical_cond = self.horizontal_cond = None

    def forward(
        self, vertical: torch.Tensor, horizontal: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (vertical out [B, p, H, W], horizontal out [B, p, H, W], skip [B, s, H, W])."""
        vertical_pre = self.vertical_conv(vertical)                         # [B, 2p, H, W], rows <= i
        horizontal_pre = self.horizontal_conv(horizontal)                   # [B, 2p, H, W], row i, cols <= j
        horizontal_pre = horizontal_pre + self.vertical_to_horizontal(shift_down(vertical_pre))
        if cond is not None and self.vertical_cond is not None:
            vertical_pre = vertical_pre + self.vertical_cond(cond)
            horizontal_pre = horizontal_pre + self.horizontal_cond(cond)
        vertical_out = gated_activation(vertical_pre)                       # [B, p, H, W]
        gated = gated_activation(horizontal_pre)                            # [B, p, H, W]
        skip = self.skip_out(gated)
        if self.first:
            return vertical_out, gated, skip
        return vertical_out, horizontal + self.horizontal_out(gated), skip
