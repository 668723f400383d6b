"""PixelRNN's two LSTM layers ([1] §3.1, §3.2): Row LSTM and Diagonal BiLSTM, and the skew.

Both are the usual LSTM cell::

    [o, f, i] = sigmoid(.),  g = tanh(.),  c = f * c_prev + i * g,  h = o * tanh(c)

on pre-activations that add an *input-to-state* convolution (masked, computed
for the whole map in one call) and a *state-to-state* convolution (the only
sequential part, vectorised over the batch and a whole row or diagonal).

One layer; input and output carry 2h maps, the LSTM h units per gate::

    x [B, 2h, H, W] --> input-to-state, mask B [B, 4h per direction]
      |                   (+ condition V*h, + multi-scale context: unmasked)
      |               --> recurrence --> hidden [B, h, H, W]
      |                                   |--> 1x1 mask B (h -> skip) --> skip to the output
      +--> (+) <--- 1x1 mask B (h -> 2h) <-+
            |
           out [B, 2h, H, W]      (no add when residual=False)

- **Row LSTM**: input-to-state is a 1 x k convolution along the row, mask B
  (taps left of the pixel and its centre); state-to-state a width-k
  convolution over the previous row's hidden state. H steps, a row each.
- **Diagonal BiLSTM**: ``skew`` shifts row r right by r, so that every
  diagonal becomes a column ([.., H, W, F] -> [.., H, W+H-1, F]); a 1x1
  mask-B input-to-state, then an LSTM over the columns whose 2x1
  state-to-state convolution reads, in image space, the pixel above and the
  pixel to the left. A second LSTM does the same on the mirrored map (right
  to left); its output is un-mirrored and **shifted down one row** (so it
  sees rows above only) and added to the first. Both directions run in one
  loop of W+H-1 steps, each step one batched matrix product.
- NOTE: unlike the paper, the first layer's right-to-left LSTM also reads
  the image itself (an unmasked 1x1 convolution: its output moves down a
  row, where all it read is past). As the paper writes it, nothing carries
  the last pixel of a row to the row below: the mask-A input layer hides
  pixel (i, W-1) from every feature of row i, and the right-to-left LSTM
  reads only row i. Pixel (i+1, j) would miss (i, W-1) for j < W-1-k0//2.

The recurrences run channels last ([B, H, W, F]), so that each step's
state-to-state convolution is one matrix product of shifted copies of the
state; the input-to-state, residual and skip convolutions are matrix
products over the whole map, with the masked kernels of their
``MaskedConv2d`` modules.

Colour groups (C = 3): the input-to-state, residual and skip convolutions use
the causal mask with the colour groups (``group_repeats=4`` so that unit k of
o, f, i and g is in one group, and the cell, element-wise, keeps it). The
state-to-state convolutions are unmasked on purpose: they read states of
pixels that come strictly earlier (the row above; the left neighbour and the
pixel above; after the down shift, rows above only), and every channel of an
earlier pixel precedes every channel of the current one. So a unit of group g
depends on the current pixel's channels < g (mask A, first layer) and on
earlier pixels freely; ``tests/models/test_pixelrnn.py`` checks it with the
exact structural Jacobian.

``RowLSTMCache`` and ``DiagonalBiLSTMCache`` run the same layers one pixel
and colour group at a time for cached sampling, from the states of the row
above / the pixel to the left (each layer's ``cache`` builds its own).

[1] A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural
    Networks. ICML 2016. arXiv:1601.06759.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import ConditionBias
from .conv import MaskedConv2d, PointConv, shift_down
from .masks import group_slices


def lstm_cell(pre: torch.Tensor, c_prev: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations [o, f, i, g] stacked along ``dim`` (4h) and c_prev (h) -> (h, c)."""
    units = pre.shape[dim] // 4
    o, f, i = torch.sigmoid(pre.narrow(dim, 0, 3 * units)).chunk(3, dim)
    c = f * c_prev + i * torch.tanh(pre.narrow(dim, 3 * units, units))
    return o * torch.tanh(c), c


def skew(x: torch.Tensor) -> torch.Tensor:
    """Shift row r right by r, channels last: [..., H, W, F] -> [..., H, W+H-1, F], zeros elsewhere.

    Pixel (r, j) lands in column r + j, so column t of the result holds the
    diagonal r + j = t. Done with one pad and one reshape: rows padded to
    width W+H, read back with a row length one shorter.
    """
    height, width = x.shape[-3:-1]
    padded = F.pad(x, (0, 0, 0, height)).flatten(-3, -2)  # [..., H*(W+H), F]
    return padded[..., : height * (width + height - 1), :].unflatten(-2, (height, width + height - 1))


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of ``skew``: [..., H, W+H-1, F] -> [..., H, W, F], pixel (r, j) read from column r + j."""
    height, skewed = x.shape[-3:-1]
    flat = F.pad(x.flatten(-3, -2), (0, 0, 0, height))  # [..., H*(W+H-1) + H, F]
    return flat.unflatten(-2, (height, skewed + 1))[..., :width, :]  # [..., H, W, F]


def _taps(state_to_state: torch.Tensor, *, tap_major: bool = True) -> torch.Tensor:
    """A state-to-state kernel [4h, h, k] as one matrix [k*h, 4h], for states laid out
    [..., k taps * h units] (``tap_major``) or [..., h units * k taps]."""
    order = (2, 1, 0) if tap_major else (1, 2, 0)
    return state_to_state.permute(*order).flatten(0, 1)


def _row_conv(conv: MaskedConv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1 x k masked convolution along the rows of a channels-last map: [B, H, W, in] -> [B, H, W, out].

    One matrix product of the map's k shifted copies (the taps left of the
    pixel, then the pixel), with the same masked kernel as ``conv.forward``.
    """
    k_w = conv.kernel_size[1]
    if k_w > 1:
        x = F.pad(x, (0, 0, k_w - 1, 0)).unfold(2, k_w, 1).flatten(3)  # [B, H, W, in * k_w], like the kernel
    return F.linear(x, (conv.weight * conv.mask).flatten(1), conv.bias)


class _PixelRNNLayer(nn.Module):
    """What both LSTM layers share: conditioning of the input-to-state map, residual and skip."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        skip_channels: int,
        *,
        gates: int,
        color_channels: int,
        residual: bool,
        cond_channels: int,
        spatial_cond: bool,
        context_channels: int,
    ):
        super().__init__()
        self.hidden, self.residual = hidden, residual
        groups = dict(mask_type="B", color_channels=color_channels)
        self.to_residual = MaskedConv2d(hidden, channels, 1, **groups)
        self.to_skip = MaskedConv2d(hidden, skip_channels, 1, **groups)
        # Neither the condition nor the small image of the multi-scale model
        # depends on the pixels generated here: unmasked, added to input-to-state.
        self.cond = ConditionBias(cond_channels, gates, spatial=spatial_cond) if cond_channels else None
        self.context = ConditionBias(context_channels, gates, spatial=True) if context_channels else None

    def input_bias(self, cond: torch.Tensor | None, context: torch.Tensor | None) -> torch.Tensor | None:
        """The condition's and the context's terms of the input-to-state map: [B, gates, H|1, W|1] or None."""
        bias = None
        if self.cond is not None and cond is not None:
            bias = self.cond(cond)
        if self.context is not None:
            if context is None:
                raise ValueError("this layer was built with context_channels: pass the context map")
            bias = self.context(context) if bias is None else bias + self.context(context)
        return bias

    def input_to_state_map(self, x: torch.Tensor, cond, context) -> torch.Tensor:
        """The masked input-to-state convolution of the whole map at once, plus the condition's
        and context's terms, channels last: [B, 2h, H, W] -> [B, H, W, gates]."""
        pre = _row_conv(self.input_to_state, x.permute(0, 2, 3, 1))
        bias = self.input_bias(cond, context)
        return pre if bias is None else pre + bias.permute(0, 2, 3, 1)

    def finish(self, x: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(layer input [B, 2h, H, W], LSTM output [B, H, W, h]) -> (out [B, 2h, H, W], skip [B, s, H, W])."""
        out = _row_conv(self.to_residual, hidden).permute(0, 3, 1, 2)  # channels-last memory, NCHW view
        return (out + x if self.residual else out), _row_conv(self.to_skip, hidden).permute(0, 3, 1, 2)


class RowLSTMLayer(_PixelRNNLayer):
    """Row LSTM layer: [B, 2h, H, W] -> ([B, 2h, H, W], skip [B, s, H, W]).

    Args:
        channels: maps of the layer's input and output (2h).
        hidden: h, LSTM units per gate.
        skip_channels: maps of the skip connection to the output.
        kernel_size: k (odd), width of both convolutions along the row. The
            input-to-state kernel is stored as its k//2 + 1 open taps: the
            k//2 taps right of the centre are always masked.
        color_channels: C, for the colour-group masks.
        residual: add the input to the output (the paper's ImageNet 64x64 model has none).
        cond_channels, spatial_cond: the encoded condition (0: unconditional).
        context_channels: maps of the multi-scale model's context (0: none).
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        skip_channels: int,
        *,
        kernel_size: int = 3,
        color_channels: int = 1,
        residual: bool = True,
        cond_channels: int = 0,
        spatial_cond: bool = False,
        context_channels: int = 0,
    ):
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        super().__init__(
            channels,
            hidden,
            skip_channels,
            gates=4 * hidden,
            color_channels=color_channels,
            residual=residual,
            cond_channels=cond_channels,
            spatial_cond=spatial_cond,
            context_channels=context_channels,
        )
        self.half = kernel_size // 2
        self.reads_image = False
        self.input_to_state = MaskedConv2d(
            channels,
            4 * hidden,
            (1, self.half + 1),
            center=(0, self.half),
            mask_type="B",
            color_channels=color_channels,
            group_repeats=4,
        )
        # Reads the previous row only: every channel there comes earlier, so no mask.
        # No bias: input_to_state has one.
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden, hidden, kernel_size))
        bound = 1.0 / math.sqrt(hidden * kernel_size)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pre_input = self.input_to_state_map(x, cond, context)  # [B, H, W, 4h], the whole map at once
        batch, height, width, _ = pre_input.shape
        # Channels last, one row per step: the state-to-state convolution is then one
        # matrix product of the k shifted copies of the row above. (Slicing the map
        # per row instead of unbinding it would cost a full-size gradient map per row.)
        taps = _taps(self.state_to_state, tap_major=False)  # [h*k, 4h]
        h = pre_input.new_zeros(batch, width, self.hidden)  # [B, W, h]: the row above
        c = torch.zeros_like(h)
        rows = []
        for i, pre in enumerate(pre_input.unbind(1)):  # [B, W, 4h]
            if i > 0:
                above = F.pad(h, (0, 0, self.half, self.half)).unfold(1, 2 * self.half + 1, 1)  # [B, W, h, k]
                pre = pre + above.flatten(2) @ taps  # [B, W, 4h]
            h, c = lstm_cell(pre, c, dim=2)
            rows.append(h)
        return self.finish(x, torch.stack(rows, dim=1))  # hidden [B, H, W, h]

    def cache(self, cond, context, *, batch: int, height: int, width: int, like: torch.Tensor) -> RowLSTMCache:
        """This layer for cached generation, one pixel and colour group at a time."""
        return RowLSTMCache(self, cond, context, batch=batch, height=height, width=width, like=like)


class DiagonalBiLSTMLayer(_PixelRNNLayer):
    """Diagonal BiLSTM layer: [B, 2h, H, W] -> ([B, 2h, H, W], skip [B, s, H, W]).

    Args as ``RowLSTMLayer`` (no kernel size: input-to-state is 1x1 and
    state-to-state 2x1, as in the paper).
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        skip_channels: int,
        *,
        color_channels: int = 1,
        residual: bool = True,
        cond_channels: int = 0,
        spatial_cond: bool = False,
        context_channels: int = 0,
        image_channels: int = 0,
    ):
        super().__init__(
            channels,
            hidden,
            skip_channels,
            gates=8 * hidden,
            color_channels=color_channels,
            residual=residual,
            cond_channels=cond_channels,
            spatial_cond=spatial_cond,
            context_channels=context_channels,
        )
        # Both directions' gates in one 1x1 convolution: [o, f, i, g] left-to-right, then right-to-left.
        self.input_to_state = MaskedConv2d(
            channels, 8 * hidden, 1, mask_type="B", color_channels=color_channels, group_repeats=8
        )
        # The first layer's right-to-left LSTM also reads the image itself, unmasked:
        # its output moves down a row, where the whole row it read is past. Without
        # it nothing reaches the last pixel of the row above (see the module docstring).
        self.reads_image = image_channels > 0
        self.image_to_backward = nn.Conv2d(image_channels, 4 * hidden, 1, bias=False) if image_channels else None
        # [direction * 4h, h, 2]: tap 0 reads the state of the pixel above, tap 1
        # of the pixel to the left (in the skewed map: the previous column, one
        # row up and the same row). Unmasked, no bias (see the module docstring).
        self.state_to_state = nn.Parameter(torch.empty(8 * hidden, hidden, 2))
        bound = 1.0 / math.sqrt(hidden * 2)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``image``: the scaled image [B, C, H, W], for a layer built with ``image_channels``."""
        pre_input = self.input_to_state_map(x, cond, context)  # [B, H, W, 8h]
        batch, height, width, _ = pre_input.shape
        forward_pre, backward_pre = pre_input.chunk(2, dim=3)  # [B, H, W, 4h] each
        if self.reads_image:
            backward_pre = backward_pre + self.image_to_backward(image).permute(0, 2, 3, 1)
        # The right-to-left LSTM is the left-to-right one on the mirrored map.
        pre = skew(torch.stack([forward_pre, backward_pre.flip(2)]))  # [dir, B, H, W+H-1, 4h]
        taps = torch.stack([_taps(w) for w in self.state_to_state.chunk(2)])  # [dir, 2h, 4h]: above, left
        h = pre.new_zeros(2, batch, height, self.hidden)  # [dir, B, H, h]: the previous column
        c = torch.zeros_like(h)
        columns = []
        for t, pre_t in enumerate(pre.unbind(3)):  # [dir, B, H, 4h]: one diagonal
            # Only rows first..last of column t lie in the image; the others are
            # never read by a cell that does (rows below: not started, zero; rows
            # above: finished), so they are carried along, not computed.
            first, last = max(0, t - width + 1), min(t, height - 1)
            pre_t = pre_t[:, :, first : last + 1]  # [dir, B, n, 4h]
            if t > 0:
                above = h[:, :, first - 1 : last] if first > 0 else F.pad(h[:, :, :last], (0, 0, 1, 0))
                state = torch.cat([above, h[:, :, first : last + 1]], dim=3).flatten(1, 2)  # [dir, B*n, 2h]
                pre_t = pre_t + torch.bmm(state, taps).view_as(pre_t)  # [dir, B, n, 4h]
            h_new, c_new = lstm_cell(pre_t, c[:, :, first : last + 1], dim=3)
            h = torch.cat([h[:, :, :first], h_new, h[:, :, last + 1 :]], dim=2)
            c = torch.cat([c[:, :, :first], c_new, c[:, :, last + 1 :]], dim=2)
            columns.append(h)
        hidden = unskew(torch.stack(columns, dim=3), width)  # [dir, B, H, W, h]
        left_to_right, right_to_left = hidden.unbind(0)  # [B, H, W, h] each
        # Row i of the right-to-left map saw row i to its right: move it to row i + 1.
        right_to_left = shift_down(right_to_left.flip(2).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.finish(x, left_to_right + right_to_left)

    def cache(self, cond, context, *, batch: int, height: int, width: int, like: torch.Tensor) -> DiagonalBiLSTMCache:
        """This layer for cached generation, one pixel and colour group at a time."""
        return DiagonalBiLSTMCache(self, cond, context, batch=batch, height=height, width=width, like=like)


# --------------------------------------------------------------------------- cached generation
# A step of cached sampling is a few dozen tiny torch calls, so its cost is their number: each
# layer below does a pixel and colour group in about ten calls, every one writing into a view of a
# preallocated buffer prepared once per (column, group). States are kept channels last ([B, W, h]),
# so that a pixel's units are one contiguous slice. Gate pre-activations are stored group-major:
# group g's [o, f, i, g] rows together, one slice. A constant-one column after the LSTM output
# carries the 1x1 convolutions' biases through their matrix products.
def _gate_index(hidden: int, color_channels: int) -> list[torch.Tensor]:
    """Per colour group, its rows of a [o, f, i, g] stack of 4 * hidden pre-activations."""
    return [
        torch.cat([block * hidden + torch.arange(hidden)[units] for block in range(4)])
        for units in group_slices(hidden, color_channels)
    ]


def _cell_into(
    pre: torch.Tensor, c_prev: torch.Tensor, c_out: torch.Tensor, h_out: torch.Tensor, scratch: torch.Tensor
) -> None:
    """``lstm_cell`` written into c_out and h_out [B, n] from pre [B, 4n] ([o, f, i, g]); pre is overwritten."""
    n = c_out.shape[1]
    pre[:, : 3 * n].sigmoid_()
    pre[:, 3 * n :].tanh_()
    torch.mul(pre[:, n : 2 * n], c_prev, out=c_out)  # f * c_prev
    c_out.addcmul_(pre[:, 2 * n : 3 * n], pre[:, 3 * n :])  # + i * g
    torch.tanh(c_out, out=scratch)
    torch.mul(pre[:, :n], scratch, out=h_out)  # o * tanh(c)


@dataclass(frozen=True, slots=True, eq=False)
class LSTMOutputStep:
    """A step's residual output and skip, for one pixel and colour group g: views prepared once."""

    hidden: torch.Tensor  # [B, h + 1] the pixel's LSTM output (every group so far) and a constant one
    residual: torch.Tensor  # [B, n_out_g] the layer's input at the pixel (residual) or to_residual's bias
    residual_weight: torch.Tensor  # [h (+ 1: the bias row, residual only), n_out_g] to_residual of group g
    output: torch.Tensor | None  # [B, n_out_g] the next layer's input at the pixel; None: the last layer
    skip: torch.Tensor  # [B, s_g] group g's slice of the skip sum
    skip_weight: torch.Tensor  # [h + 1, s_g] to_skip of group g, its bias as the last row
    first_skip: bool  # this layer starts the skip sum (written, not added)


@dataclass(frozen=True, slots=True, eq=False)
class RowLSTMStep:
    """Every argument of one ``RowLSTMCache.step`` at (column j, group g). Named, not positional: a
    plan whose entries were swapped would still run, and sample wrong."""

    above: torch.Tensor  # [B, 4 n_g] pre-activations from the row above (state-to-state + biases)
    window: torch.Tensor  # [B, (k//2 + 1) * 2h] the input-to-state window (taps left and centre)
    weight: torch.Tensor  # [(k//2 + 1) * 2h, 4 n_g] its masked weights for group g
    pre: torch.Tensor  # [B, 4 n_g] the gates' pre-activations, [o, f, i, g]
    c_prev: torch.Tensor  # [B, n_g] the cell state above the pixel
    c_out: torch.Tensor  # [B, n_g] the pixel's cell state
    h_out: torch.Tensor  # [B, n_g] the pixel's hidden state
    scratch: torch.Tensor  # [B, n_g] tanh(c)
    out: LSTMOutputStep  # the residual and skip products


@dataclass(frozen=True, slots=True, eq=False)
class DiagonalBiLSTMStep:
    """Every argument of one ``DiagonalBiLSTMCache.step`` at (column j, group g), named like ``RowLSTMStep``."""

    above: torch.Tensor  # [B, 4 n_g] pre-activations from the pixel above (state-to-state + biases)
    x: torch.Tensor  # [B, 2h] the layer's input at the pixel (1x1 input-to-state)
    weight: torch.Tensor  # [2h, 4 n_g] input-to-state weights (mask B) for group g
    pre: torch.Tensor  # [B, 4 n_g] the gates' pre-activations, [o, f, i, g]
    h_left: torch.Tensor  # [B, h] the left neighbour's hidden state
    left_weight: torch.Tensor  # [h, 4 n_g] state-to-state weights from the left
    c_prev: torch.Tensor  # [B, n_g] the left neighbour's cell state
    c_out: torch.Tensor  # [B, n_g] the pixel's cell state
    h_out: torch.Tensor  # [B, n_g] the pixel's left-to-right hidden state
    scratch: torch.Tensor  # [B, n_g] tanh(c)
    backward: torch.Tensor  # [B, n_g] the right-to-left state of the pixel above (the shift down)
    out_units: torch.Tensor  # [B, n_g] the layer's LSTM output, group g's units
    out: LSTMOutputStep  # the residual and skip products


class _LSTMLayerCache:
    """What both layers' caches share: the input row, the per-group weights, residual and skip.

    The caller writes the layer's input at pixel j, group g, into ``input_slot(j, g)`` (the
    previous layer's output, or the input convolution's) before ``step``.
    """

    def _residual_and_skip(self, out: LSTMOutputStep) -> None:
        """A step's last two products: the residual output (into the next layer's input) and the skip sum.

        out.hidden [B, n_g (+1: a constant one that carries the bias)]; out.output [B, n_out] or None for
        the last layer; out.skip [B, s] is the running sum of every layer's skip output."""
        hidden, residual_weight = out.hidden, out.residual_weight
        if out.output is not None:
            torch.addmm(
                out.residual,
                hidden if residual_weight.shape[0] > self.hidden else hidden[:, :-1],
                residual_weight,
                out=out.output,
            )
        if out.first_skip:
            torch.mm(hidden, out.skip_weight, out=out.skip)
        else:
            out.skip.addmm_(hidden, out.skip_weight)

    def __init__(
        self,
        layer: _PixelRNNLayer,
        cond: torch.Tensor | None,
        context: torch.Tensor | None,
        *,
        batch: int,
        height: int,
        width: int,
        like: torch.Tensor,
        pad: int,
    ):
        self.layer, self.hidden, self.height, self.width, self.pad = layer, layer.hidden, height, width, pad
        color_channels = layer.to_residual.color_channels
        self.color_channels = color_channels
        self.units = group_slices(layer.hidden, color_channels)  # the h units of each group
        self.gates = _gate_index(layer.hidden, color_channels)  # their rows of [o, f, i, g]
        self.gate_slices, start = [], 0
        for rows in self.gates:
            self.gate_slices.append(slice(start, start + len(rows)))
            start += len(rows)
        self.gate_order = torch.cat(self.gates)  # group-major order of 4h rows
        bias = layer.input_bias(cond, context)  # [B, gates, H|1, W|1] or None
        self.bias = None if bias is None else bias.detach()
        channels = layer.to_residual.out_channels
        self.input_slices = group_slices(channels, color_channels)
        self.inputs = like.new_zeros(batch, width + pad, channels)  # this row's inputs, left-padded
        # Per group [h + 1, n_g]: for the hidden units with a constant one appended, the bias included.
        self.residual_weight = PointConv(layer.to_residual).weight_bias_t
        self.skip_slices = group_slices(layer.to_skip.out_channels, color_channels)
        self.skip_weight = PointConv(layer.to_skip).weight_bias_t
        self.pre = [like.new_zeros(batch, len(rows)) for rows in self.gates]  # per group [B, 4 n_g]
        self.scratch = [like.new_zeros(batch, units.stop - units.start) for units in self.units]

    def input_slot(self, j: int, group: int) -> torch.Tensor:
        """Where the layer's input at pixel j, group g, is written: [B, n_g] view."""
        return self.inputs[:, j + self.pad, self.input_slices[group]]

    def bias_row(self, i: int) -> torch.Tensor | float:
        """The condition's and context's input-to-state terms at row i, channels last: [B, W|1, 4 dir h]."""
        if self.bias is None:
            return 0.0
        return (self.bias[:, :, 0] if self.bias.shape[-2] == 1 else self.bias[:, :, i]).transpose(1, 2)

    def set_output(self, outputs: list, skips: list) -> None:
        """Prepare every step's views: ``outputs[j][g]`` where the layer output of pixel j, group g
        goes (None: not read, the last layer), ``skips[g]`` the skip sum [B, s_g] (None: this layer
        starts it)."""
        self.plan = [
            [self._plan(j, g, outputs[j][g], skips[g][0], skips[g][1]) for g in range(self.color_channels)]
            for j in range(self.width)
        ]  # [column][group]

    def _output_plan(self, j: int, g: int, hidden: torch.Tensor, output, skip, first_skip) -> LSTMOutputStep:
        """The residual and skip part of the step at (j, g), reading the LSTM output ``hidden`` [B, h + 1]."""
        residual = self.layer.residual
        bias = self.layer.to_residual.bias.detach()[self.input_slices[g]]  # [n_out_g]: no residual
        return LSTMOutputStep(
            hidden=hidden,
            residual=self.input_slot(j, g) if residual else bias,
            residual_weight=self.residual_weight[g] if residual else self.residual_weight[g][:-1],
            output=output,
            skip=skip,
            skip_weight=self.skip_weight[g],
            first_skip=first_skip,
        )


class RowLSTMCache(_LSTMLayerCache):
    """A Row LSTM layer, one pixel and colour group at a time: the row above's states are all it keeps.

    The state-to-state part and the input-to-state bias of a whole row are one convolution when
    the row above is finished (``end_row``); a step adds the input-to-state product of its window.
    """

    def __init__(self, layer: RowLSTMLayer, cond, context, *, batch, height, width, like):
        super().__init__(layer, cond, context, batch=batch, height=height, width=width, like=like, pad=layer.half)
        self.half = layer.half
        conv = layer.input_to_state
        weight = (conv.weight * conv.mask).detach()[:, :, 0].permute(0, 2, 1).flatten(1)  # [4h, (k//2+1) * 2h]
        self.input_weight = [weight[rows].t() for rows in self.gates]
        self.input_bias = conv.bias.detach()[self.gate_order]
        self.state_weight = layer.state_to_state.detach()[self.gate_order]  # [4h group-major, h, k]
        self.h_row = torch.cat([like.new_zeros(batch, width, layer.hidden), like.new_ones(batch, width, 1)], 2)
        self.h_above = like.new_zeros(batch, width, layer.hidden)
        self.c_row, self.c_above = (
            like.new_zeros(batch, width, layer.hidden),
            like.new_zeros(batch, width, layer.hidden),
        )
        self.from_above = like.new_zeros(batch, width, 4 * layer.hidden)  # row i's pre-activations from above
        self._row_above(0)

    def _row_above(self, i: int) -> None:
        above = F.conv1d(self.h_above.transpose(1, 2), self.state_weight, padding=self.half)  # [B, 4h, W]
        bias = self.bias_row(i)
        if not isinstance(bias, float):
            bias = bias[..., self.gate_order]
        self.from_above.copy_(above.transpose(1, 2) + self.input_bias + bias)

    def _plan(self, j, g, output, skip, first_skip) -> RowLSTMStep:
        units = self.units[g]
        return RowLSTMStep(
            above=self.from_above[:, j, self.gate_slices[g]],
            window=self.inputs[:, j : j + self.half + 1].flatten(1),
            weight=self.input_weight[g],
            pre=self.pre[g],
            c_prev=self.c_above[:, j, units],
            c_out=self.c_row[:, j, units],
            h_out=self.h_row[:, j, units],
            scratch=self.scratch[g],
            out=self._output_plan(j, g, self.h_row[:, j], output, skip, first_skip),
        )

    def step(self, j: int, group: int) -> None:
        plan = self.plan[j][group]
        torch.addmm(plan.above, plan.window, plan.weight, out=plan.pre)
        _cell_into(plan.pre, plan.c_prev, plan.c_out, plan.h_out, plan.scratch)
        self._residual_and_skip(plan.out)

    def end_row(self, i: int, image_row: torch.Tensor) -> None:
        self.h_above.copy_(self.h_row[:, :, :-1])
        self.c_above.copy_(self.c_row)
        if i + 1 < self.height:
            self._row_above(i + 1)


class DiagonalBiLSTMCache(_LSTMLayerCache):
    """A Diagonal BiLSTM layer: left to right one pixel and group at a time (from the pixel above and
    the left neighbour); right to left over each finished row, whose states the next row reads.

    What the row above gives every pixel of a row (the state-to-state product of the pixel above,
    the input-to-state bias and the condition) is one matrix product when that row is finished.
    """

    def __init__(self, layer: DiagonalBiLSTMLayer, cond, context, *, batch, height, width, like):
        super().__init__(layer, cond, context, batch=batch, height=height, width=width, like=like, pad=0)
        hidden, gates = layer.hidden, 4 * layer.hidden
        weight = (layer.input_to_state.weight * layer.input_to_state.mask).detach().flatten(1)  # [8h, 2h]
        bias = layer.input_to_state.bias.detach()
        state = layer.state_to_state.detach()
        self.input_weight = [weight[rows].t() for rows in self.gates]  # left to right
        self.input_bias = bias[self.gate_order]
        self.above_weight = state[self.gate_order, :, 0].t()  # [h, 4h group-major]
        self.left_weight = [state[rows, :, 1].t() for rows in self.gates]  # [h, 4 n_g]
        self.backward_input_weight, self.backward_input_bias = weight[gates:], bias[gates:]  # [4h, 2h], [4h]
        self.backward_above_weight = state[gates:, :, 0].t()  # [h, 4h]
        self.backward_right_weight = state[gates:, :, 1].t()  # mirrored, "left" is the right
        self.image_weight = (
            layer.image_to_backward.weight.detach().flatten(1).t()  # [C, 4h]
            if layer.reads_image
            else None
        )
        # Left to right: the states of this row, column 0 the zero state left of the image.
        self.h_row = like.new_zeros(batch, width + 1, hidden)
        self.c_row = like.new_zeros(batch, width + 1, hidden)
        self.h_above = like.new_zeros(batch, width, hidden)
        self.backward_above = like.new_zeros(batch, width, hidden)  # right to left, the row above
        self.lstm_out = torch.cat([like.new_zeros(batch, hidden), like.new_ones(batch, 1)], 1)  # this pixel's
        self.above = like.new_zeros(batch, width, gates)
        self.backward_pre = like.new_zeros(batch, gates)
        self.backward_c = like.new_zeros(batch, hidden)
        self.backward_scratch = like.new_zeros(batch, hidden)
        self._row_above(0)

    def _row_above(self, i: int) -> None:
        bias = self.bias_row(i)
        if not isinstance(bias, float):
            bias = bias[..., self.gate_order]
        self.above.copy_(self.h_above @ self.above_weight + self.input_bias + bias)

    def _plan(self, j, g, output, skip, first_skip) -> DiagonalBiLSTMStep:
        units = self.units[g]
        return DiagonalBiLSTMStep(
            above=self.above[:, j, self.gate_slices[g]],
            x=self.inputs[:, j],
            weight=self.input_weight[g],
            pre=self.pre[g],
            h_left=self.h_row[:, j],
            left_weight=self.left_weight[g],
            c_prev=self.c_row[:, j, units],
            c_out=self.c_row[:, j + 1, units],
            h_out=self.h_row[:, j + 1, units],
            scratch=self.scratch[g],
            backward=self.backward_above[:, j, units],
            out_units=self.lstm_out[:, units],
            out=self._output_plan(j, g, self.lstm_out, output, skip, first_skip),
        )

    def step(self, j: int, group: int) -> None:
        plan = self.plan[j][group]
        torch.addmm(plan.above, plan.x, plan.weight, out=plan.pre).addmm_(plan.h_left, plan.left_weight)
        _cell_into(plan.pre, plan.c_prev, plan.c_out, plan.h_out, plan.scratch)
        # Plus the right-to-left state of the row above: the shift down by one row.
        torch.add(plan.h_out, plan.backward, out=plan.out_units)
        self._residual_and_skip(plan.out)

    def end_row(self, i: int, image_row: torch.Tensor) -> None:
        """Row i is complete (its scaled pixels ``image_row`` [B, C, W]): the right-to-left LSTM over it."""
        gates = 4 * self.hidden
        pre_row = torch.addmm(self.backward_input_bias, self.inputs.flatten(0, 1), self.backward_input_weight.t()).view(
            *self.inputs.shape[:2], gates
        )
        pre_row = pre_row + self.backward_above @ self.backward_above_weight  # [B, W, 4h]
        row_bias = self.bias_row(i)
        if not isinstance(row_bias, float):
            pre_row = pre_row + row_bias[..., gates:]
        if self.image_weight is not None:
            pre_row = pre_row + image_row.transpose(1, 2) @ self.image_weight
        h = torch.zeros_like(self.backward_above)  # [B, W, h], this row's
        c, scratch, pre = self.backward_c.zero_(), self.backward_scratch, self.backward_pre
        state = self.lstm_out.new_zeros(self.lstm_out.shape[0], self.hidden)  # [B, h]: right of the row
        for j in reversed(range(self.width)):
            torch.addmm(pre_row[:, j], state, self.backward_right_weight, out=pre)
            _cell_into(pre, c, c, h[:, j], scratch)
            state = h[:, j]
        self.backward_above.copy_(h)
        self.h_above.copy_(self.h_row[:, 1:])
        if i + 1 < self.height:
            self._row_above(i + 1)
