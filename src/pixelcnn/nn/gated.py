"""The gated activation and the Gated PixelCNN's two-stack layer ([1] §2.1-2.3, Figure 2).

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

``GatedLayerCache`` is the same layer for cached generation: the horizontal
stack one pixel and colour group at a time, the vertical stack a row at a time.

[1] A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves,
    K. Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import ConditionBias, bias_at, bias_per_group
from .conv import MaskedConv2d, PointConv, VerticalStackConv2d, shift_down
from .masks import group_slices


def gated_activation(x: torch.Tensor) -> torch.Tensor:
    """tanh of the first half of the channels times sigmoid of the second ([1] Equation 2): [B, 2p, ...] -> [B, p, ...]."""
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


class GatedLayerCache:
    """A ``GatedLayer`` for cached generation, each of its activations computed once.

    The horizontal stack runs one pixel and colour group at a time (``step``):
    group g's units at (i, j) read the inputs at (i, <= j) of groups <= g
    (< g in the first layer), all final once channel g of pixel (i, j) is
    drawn. The vertical stack reads its own row, so it runs a whole row at a
    time once the row is complete (``finish_row``); through the 1x1 link it
    feeds the horizontal stack of the next row, the one-row shift of Figure 2.

    The caller writes the layer's inputs in image coordinates into
    ``vertical_input`` and ``horizontal_input`` [B, in, H, W], views of buffers
    padded (with zeros) as the layer's convolutions pad:
    [B, in, H + k//2, W + 2 (k//2)] and [B, in, H, W + k//2]. ``last``: the
    stacks' outputs are not read (the last layer): only the skip is computed.
    """

    def __init__(self, layer: GatedLayer, h: torch.Tensor | None, *, batch: int, height: int, width: int,
                 like: torch.Tensor, last: bool):
        self.layer, self.last = layer, last
        self.half = half = layer.vertical_conv.half
        in_channels = layer.vertical_conv.in_channels
        self.vertical_padded = like.new_zeros(batch, in_channels, height + half, width + 2 * half)
        self.horizontal_padded = like.new_zeros(batch, in_channels, height, width + half)
        self.vertical_input = self.vertical_padded[:, :, half:, half: half + width]      # [B, in, H, W] views
        self.horizontal_input = self.horizontal_padded[:, :, :, half:]
        self.horizontal_conv = PointConv(layer.horizontal_conv)     # per group: [B, in * (k//2+1)] -> [B, 2 n_g]
        self.skip_out = PointConv(layer.skip_out)
        self.horizontal_out = None if layer.first or last else PointConv(layer.horizontal_out)
        self.gate_rows = self.horizontal_conv.index                 # per group: its tanh and sigmoid rows
        self.units = group_slices(layer.skip_out.in_channels, layer.skip_out.color_channels)  # its gated units
        conditioned = h is not None and layer.horizontal_cond is not None
        self.horizontal_cond = bias_per_group(layer.horizontal_cond(h) if conditioned else None, self.gate_rows)
        self.vertical_cond = layer.vertical_cond(h) if conditioned else None             # [B, 2p, H|1, W|1]
        self.gated = like.new_zeros(batch, layer.skip_out.in_channels)                   # this pixel's, by group
        # Above the first row the shifted vertical stack is zeros: only the link's bias reaches row 0.
        bias = layer.vertical_to_horizontal.bias.detach()[None, :, None].expand(batch, -1, width)  # [B, 2p, W]
        self.link = [bias[:, rows].contiguous() for rows in self.gate_rows]

    def finish_row(self, row: int) -> torch.Tensor | None:
        """Row ``row`` of the vertical input is complete: the vertical stack's output row [B, p, W] (None if last)."""
        window = self.vertical_padded[:, :, row: row + self.half + 1]           # [B, in, k//2 + 1, W + 2 half]
        conv = self.layer.vertical_conv
        vertical_pre = F.conv2d(window, conv.weight, conv.bias)                 # [B, 2p, 1, W]
        # This row of the vertical stack feeds the horizontal stack of the next row (the shift).
        link = self.layer.vertical_to_horizontal(vertical_pre)[:, :, 0]         # [B, 2p, W]
        self.link = [link[:, rows].contiguous() for rows in self.gate_rows]
        if self.last:
            return None
        cond = self.vertical_cond
        if cond is not None:
            vertical_pre = vertical_pre + (cond if cond.shape[-2] == 1 else cond[:, :, row: row + 1])
        return gated_activation(vertical_pre)[:, :, 0]

    def step(self, row: int, col: int, group: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Group ``group``'s units at (row, col): (horizontal output [B, n_g], None if last; skip [B, s_g])."""
        window = self.horizontal_padded[:, :, row, col: col + self.half + 1].flatten(1)   # [B, in * (k//2 + 1)]
        pre = (self.horizontal_conv(window, group) + self.link[group][:, :, col]
               + bias_at(self.horizontal_cond[group], row, col))                       # [B, 2 n_g]
        gated = gated_activation(pre)                                                  # [B, n_g]
        units = self.units[group]
        self.gated[:, units] = gated
        skip = self.skip_out(self.gated, group)
        if self.last or self.layer.first:
            return (None if self.last else gated), skip
        return self.horizontal_input[:, units, row, col] + self.horizontal_out(self.gated, group), skip
