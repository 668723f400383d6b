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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import ConditionBias
from .conv import MaskedConv2d, PointConv, RowSplitConv, VerticalStackConv2d, shift_down
from .masks import group_slices


def gated_activation(x: torch.Tensor) -> torch.Tensor:
    """tanh of the first half of the channels times sigmoid of the second ([1] Equation 2):
    [B, 2p, ...] -> [B, p, ...]."""
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
            in_channels,
            2 * channels,
            (1, kernel_size // 2 + 1),
            center=(0, kernel_size // 2),
            mask_type="A" if first else "B",
            group_repeats=2,
            **groups,
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
        vertical_pre = self.vertical_conv(vertical)  # [B, 2p, H, W], rows <= i
        horizontal_pre = self.horizontal_conv(horizontal)  # [B, 2p, H, W], row i, cols <= j
        horizontal_pre = horizontal_pre + self.vertical_to_horizontal(shift_down(vertical_pre))
        if cond is not None and self.vertical_cond is not None:
            vertical_pre = vertical_pre + self.vertical_cond(cond)
            horizontal_pre = horizontal_pre + self.horizontal_cond(cond)
        vertical_out = gated_activation(vertical_pre)  # [B, p, H, W]
        gated = gated_activation(horizontal_pre)  # [B, p, H, W]
        skip = self.skip_out(gated)
        if self.first:
            return vertical_out, gated, skip
        return vertical_out, horizontal + self.horizontal_out(gated), skip


@dataclass(frozen=True, slots=True, eq=False)
class GatedResidualStep:
    """The residual output of a (non-first) layer's step, for one colour group g: views prepared once."""

    layer_input: torch.Tensor  # [B, n_g] this layer's horizontal input at the pixel, group g's units
    gated_one: torch.Tensor  # [B, p + 1] every gated unit of the pixel and a constant one (the bias)
    weight: torch.Tensor  # [p + 1, n_g] the 1x1 horizontal_out of group g, its bias as the last row
    out: torch.Tensor  # [B, n_g] the next layer's horizontal input at the pixel, group g's units


@dataclass(frozen=True, slots=True, eq=False)
class GatedStep:
    """Every argument of one ``GatedLayerCache.step`` at (column, group g): views prepared once.

    Named, not positional: a plan whose entries were swapped would still run, and sample wrong.
    """

    link: torch.Tensor  # [B, 2 n_g] vertical stack's part + biases + condition, this pixel
    window: torch.Tensor  # [B, (k//2 + 1) * in] the horizontal convolution's input window
    weight: torch.Tensor  # [(k//2 + 1) * in, 2 n_g] its masked weights for group g
    pre: torch.Tensor  # [B, 2 n_g] pre-activations: tanh half, then sigmoid half
    value: torch.Tensor  # [B, n_g] pre's tanh half (a view)
    gate: torch.Tensor  # [B, n_g] pre's sigmoid half (a view)
    gated_units: torch.Tensor  # [B, n_g] where group g's gated units go
    gated: torch.Tensor  # [B, p] every gated unit of the pixel (what the 1x1 convs read)
    skip: torch.Tensor  # [B, s_g] group g's slice of the skip sum
    skip_weight: torch.Tensor  # [p, s_g] the 1x1 skip_out of group g
    skip_bias: torch.Tensor | None  # [s_g] every layer's skip bias (first layer: it starts the sum), else None
    residual: GatedResidualStep | None  # None: the first layer, or the last (its output is not read)


class GatedLayerCache:
    """A ``GatedLayer`` for cached generation, each of its activations computed once.

    The horizontal stack runs one pixel and colour group at a time (``step``):
    group g's units at (i, j) read the inputs at (i, <= j) of groups <= g
    (< g in the first layer), all final once channel g of pixel (i, j) is
    drawn. The vertical stack reads its own row, so it runs a whole row at a
    time once the row is complete (``finish_row``); through the 1x1 link it
    feeds the horizontal stack of the next row, the one-row shift of Figure 2.

    Buffers: ``vertical_padded`` [B, in, H + k//2, W + 2 (k//2)], the vertical
    stack's input padded as its convolution pads it; ``row_input`` [B, W + k//2,
    in], the current row of the horizontal stack's input, channels last and
    left-padded, so that the window a step reads is a view. The caller writes
    the first layer's inputs (the image) into ``row_input``; every layer writes
    its outputs straight into the inputs of ``after``, the layer it feeds (None:
    the last layer, whose stacks' outputs are not read), and adds its skip
    output into ``skips`` [B, s] at the pixel's group.

    A step is five or six torch calls into views prepared once per (column,
    group): one matrix product for the horizontal convolution (its addend,
    ``link`` [B, W, 2p], holds the vertical stack's part, the bias and the
    condition for the whole row, computed by ``finish_row``), tanh, sigmoid,
    their product, the skip's matrix product and the residual's (its bias
    folded in as a constant-one input).
    """

    def __init__(
        self,
        layer: GatedLayer,
        h: torch.Tensor | None,
        *,
        batch: int,
        height: int,
        width: int,
        like: torch.Tensor,
        after: GatedLayerCache | None,
        skips: torch.Tensor,
    ):
        self.layer, self.after = layer, after
        self.half = half = layer.vertical_conv.half
        self.height, self.width = height, width
        in_channels, channels = layer.vertical_conv.in_channels, layer.skip_out.in_channels
        self.vertical_padded = like.new_zeros(batch, in_channels, height + half, width + 2 * half)
        self.row_input = like.new_zeros(batch, width + half, in_channels)
        horizontal = RowSplitConv(layer.horizontal_conv)  # per group: [(k//2+1) * in, 2 n_g]
        # The link's channels in group-major order (group g's tanh rows, then its sigmoid rows):
        # group g's addend is then one contiguous slice of a row of the link.
        self.gate_order = torch.cat(horizontal.index)
        offsets = [0]
        for rows in horizontal.index:
            offsets.append(offsets[-1] + len(rows))
        conditioned = h is not None and layer.horizontal_cond is not None
        cond = layer.horizontal_cond(h) if conditioned else None  # [B, 2p, H|1, W|1]
        bias = (layer.horizontal_conv.bias.detach() + layer.vertical_to_horizontal.bias.detach())[None, :, None, None]
        self.link_bias = bias if cond is None else bias + cond  # [B|1, 2p, H|1, W|1]
        self.vertical_cond = layer.vertical_cond(h) if conditioned else None  # [B, 2p, H|1, W|1]
        self.link = like.new_zeros(batch, width, len(self.gate_order))  # [B, W, 2p]
        self.set_link(None, 0)

        skip = PointConv(layer.skip_out)
        units = group_slices(channels, layer.skip_out.color_channels)  # each group's gated units
        residual = not (layer.first or after is None)
        if layer.first and after is not None:
            gated_rows = [after.row_input[:, col + after.half] for col in range(width)]  # [B, p] views
        else:
            # The gated units with a constant one appended: the residual's bias rides in its matrix product.
            self.gated = torch.cat([like.new_zeros(batch, channels), like.new_ones(batch, 1)], dim=1)
            gated_rows = [self.gated[:, :channels]] * width
        out_weight = PointConv(layer.horizontal_out).weight_bias_t if residual else None
        # The first layer writes the skips with the bias of every layer's skip at once, the others add to them.
        self.skip_bias = [bias if after is None else bias + after.skip_bias[g] for g, bias in enumerate(skip.bias)]
        pre = [like.new_zeros(batch, offsets[g + 1] - offsets[g]) for g in range(len(units))]  # [B, 2 n_g]
        self.plan: list[list[GatedStep]] = []  # [column][group]
        for col in range(width):
            per_group = []
            for g, unit in enumerate(units):
                n = unit.stop - unit.start
                per_group.append(
                    GatedStep(
                        link=self.link[:, col, offsets[g] : offsets[g + 1]],
                        window=self.row_input[:, col : col + half + 1].flatten(1),
                        weight=horizontal.weight_t[g],
                        pre=pre[g],
                        value=pre[g][:, :n],
                        gate=pre[g][:, n:],
                        gated_units=gated_rows[col][:, unit],
                        gated=gated_rows[col],
                        skip=skips[:, skip.slices[g]],
                        skip_weight=skip.weight_t[g],
                        skip_bias=self.skip_bias[g] if layer.first else None,
                        residual=GatedResidualStep(
                            layer_input=self.row_input[:, col + half, unit],
                            gated_one=self.gated,
                            weight=out_weight[g],
                            out=after.row_input[:, col + after.half, unit],
                        )
                        if residual
                        else None,
                    )
                )
            self.plan.append(per_group)

    def set_link(self, vertical_pre: torch.Tensor | None, row: int) -> None:
        """The horizontal stack's addend for row ``row``: the link from the vertical stack's
        output of the row above (``vertical_pre`` [B, 2p, W], None above the first row), the
        biases and the condition, channels last and group-major: [B, W, 2p]."""
        bias = self.link_bias
        bias = bias[:, :, 0] if bias.shape[-2] == 1 else bias[:, :, row]  # [B|1, 2p, W|1]
        link = (
            bias
            if vertical_pre is None
            else F.conv1d(vertical_pre, self.layer.vertical_to_horizontal.weight[:, :, 0]) + bias
        )  # [B, 2p, W]
        self.link.copy_(link[:, self.gate_order].transpose(1, 2))

    def finish_row(self, row: int) -> None:
        """Row ``row`` of the inputs is complete: the vertical stack on it, for the next row and layer."""
        if row + 1 == self.height:  # nothing reads the vertical stack of the last row
            return
        if self.layer.first:  # the image's row enters the vertical stack's input
            self.vertical_padded[:, :, row + self.half, self.half : self.half + self.width] = self.row_input[
                :, self.half :
            ].transpose(1, 2)
        window = self.vertical_padded[:, :, row : row + self.half + 1]  # [B, in, k//2 + 1, W + 2 half]
        conv = self.layer.vertical_conv
        vertical_pre = F.conv2d(window, conv.weight, conv.bias)[:, :, 0]  # [B, 2p, W]
        # This row of the vertical stack feeds the horizontal stack of the next row (the shift).
        self.set_link(vertical_pre, row + 1)
        after = self.after
        if after is None:
            return
        cond = self.vertical_cond
        if cond is not None:
            vertical_pre = vertical_pre + (cond[:, :, 0] if cond.shape[-2] == 1 else cond[:, :, row])
        after.vertical_padded[:, :, row + after.half, after.half : after.half + self.width] = gated_activation(
            vertical_pre
        )

    def step(self, col: int, group: int) -> None:
        """Group ``group``'s units at the current row's column ``col``: its outputs into the next
        layer's input row, its skip into the skips."""
        plan = self.plan[col][group]
        torch.addmm(plan.link, plan.window, plan.weight, out=plan.pre)  # [B, 2 n_g]
        plan.value.tanh_()
        plan.gate.sigmoid_()
        torch.mul(plan.value, plan.gate, out=plan.gated_units)  # [B, n_g], the gated units
        if plan.skip_bias is None:
            plan.skip.addmm_(plan.gated, plan.skip_weight)  # [B, s_g]
        else:
            torch.addmm(plan.skip_bias, plan.gated, plan.skip_weight, out=plan.skip)
        residual = plan.residual
        if residual is not None:  # input + 1x1(gated) + bias
            torch.addmm(residual.layer_input, residual.gated_one, residual.weight, out=residual.out)
