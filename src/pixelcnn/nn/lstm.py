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
    padded = F.pad(x, (0, 0, 0, height)).flatten(-3, -2)               # [..., H*(W+H), F]
    return padded[..., : height * (width + height - 1), :].unflatten(-2, (height, width + height - 1))


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of ``skew``: [..., H, W+H-1, F] -> [..., H, W, F], pixel (r, j) read from column r + j."""
    height, skewed = x.shape[-3:-1]
    flat = F.pad(x.flatten(-3, -2), (0, 0, 0, height))                 # [..., H*(W+H-1) + H, F]
    return flat.unflatten(-2, (height, skewed + 1))[..., :width, :]     # [..., H, W, F]


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
        x = F.pad(x, (0, 0, k_w - 1, 0)).unfold(2, k_w, 1).flatten(3)   # [B, H, W, in * k_w], like the kernel
    return F.linear(x, (conv.weight * conv.mask).flatten(1), conv.bias)


class _PixelRNNLayer(nn.Module):
    """What both LSTM layers share: conditioning of the input-to-state map, residual and skip."""

    def __init__(self, channels: int, hidden: int, skip_channels: int, *, gates: int, color_channels: int,
                 residual: bool, cond_channels: int, spatial_cond: bool, context_channels: int):
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
        out = _row_conv(self.to_residual, hidden).permute(0, 3, 1, 2)     # channels-last memory, NCHW view
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

    def __init__(self, channels: int, hidden: int, skip_channels: int, *, kernel_size: int = 3,
                 color_channels: int = 1, residual: bool = True, cond_channels: int = 0,
                 spatial_cond: bool = False, context_channels: int = 0):
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        super().__init__(channels, hidden, skip_channels, gates=4 * hidden, color_channels=color_channels,
                         residual=residual, cond_channels=cond_channels, spatial_cond=spatial_cond,
                         context_channels=context_channels)
        self.half = kernel_size // 2
        self.reads_image = False
        self.input_to_state = MaskedConv2d(
            channels, 4 * hidden, (1, self.half + 1), center=(0, self.half), mask_type="B",
            color_channels=color_channels, group_repeats=4,
        )
        # Reads the previous row only: every channel there comes earlier, so no mask.
        # No bias: input_to_state has one.
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden, hidden, kernel_size))
        bound = 1.0 / math.sqrt(hidden * kernel_size)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pre_input = self.input_to_state_map(x, cond, context)              # [B, H, W, 4h], the whole map at once
        batch, height, width, _ = pre_input.shape
        # Channels last, one row per step: the state-to-state convolution is then one
        # matrix product of the k shifted copies of the row above. (Slicing the map
        # per row instead of unbinding it would cost a full-size gradient map per row.)
        taps = _taps(self.state_to_state, tap_major=False)                  # [h*k, 4h]
        h = pre_input.new_zeros(batch, width, self.hidden)                  # [B, W, h]: the row above
        c = torch.zeros_like(h)
        rows = []
        for i, pre in enumerate(pre_input.unbind(1)):                       # [B, W, 4h]
            if i > 0:
                above = F.pad(h, (0, 0, self.half, self.half)).unfold(1, 2 * self.half + 1, 1)  # [B, W, h, k]
                pre = pre + above.flatten(2) @ taps                         # [B, W, 4h]
            h, c = lstm_cell(pre, c, dim=2)
            rows.append(h)
        return self.finish(x, torch.stack(rows, dim=1))                     # hidden [B, H, W, h]

    def cache(self, cond, context, *, batch: int, height: int, width: int, like: torch.Tensor) -> RowLSTMCache:
        """This layer for cached generation, one pixel and colour group at a time."""
        return RowLSTMCache(self, cond, context, batch=batch, height=height, width=width, like=like)


class DiagonalBiLSTMLayer(_PixelRNNLayer):
    """Diagonal BiLSTM layer: [B, 2h, H, W] -> ([B, 2h, H, W], skip [B, s, H, W]).

    Args as ``RowLSTMLayer`` (no kernel size: input-to-state is 1x1 and
    state-to-state 2x1, as in the paper).
    """

    def __init__(self, channels: int, hidden: int, skip_channels: int, *, color_channels: int = 1,
                 residual: bool = True, cond_channels: int = 0, spatial_cond: bool = False,
                 context_channels: int = 0, image_channels: int = 0):
        super().__init__(channels, hidden, skip_channels, gates=8 * hidden, color_channels=color_channels,
                         residual=residual, cond_channels=cond_channels, spatial_cond=spatial_cond,
                         context_channels=context_channels)
        # Both directions' gates in one 1x1 convolution: [o, f, i, g] left-to-right, then right-to-left.
        self.input_to_state = MaskedConv2d(channels, 8 * hidden, 1, mask_type="B",
                                           color_channels=color_channels, group_repeats=8)
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

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None,
                image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``image``: the scaled image [B, C, H, W], for a layer built with ``image_channels``."""
        pre_input = self.input_to_state_map(x, cond, context)              # [B, H, W, 8h]
        batch, height, width, _ = pre_input.shape
        forward_pre, backward_pre = pre_input.chunk(2, dim=3)               # [B, H, W, 4h] each
        if self.reads_image:
            backward_pre = backward_pre + self.image_to_backward(image).permute(0, 2, 3, 1)
        # The right-to-left LSTM is the left-to-right one on the mirrored map.
        pre = skew(torch.stack([forward_pre, backward_pre.flip(2)]))       # [dir, B, H, W+H-1, 4h]
        taps = torch.stack([_taps(w) for w in self.state_to_state.chunk(2)])  # [dir, 2h, 4h]: above, left
        h = pre.new_zeros(2, batch, height, self.hidden)                    # [dir, B, H, h]: the previous column
        c = torch.zeros_like(h)
        columns = []
        for t, pre_t in enumerate(pre.unbind(3)):                           # [dir, B, H, 4h]: one diagonal
            # Only rows first..last of column t lie in the image; the others are
            # never read by a cell that does (rows below: not started, zero; rows
            # above: finished), so they are carried along, not computed.
            first, last = max(0, t - width + 1), min(t, height - 1)
            pre_t = pre_t[:, :, first: last + 1]                            # [dir, B, n, 4h]
            if t > 0:
                above = h[:, :, first - 1: last] if first > 0 else F.pad(h[:, :, :last], (0, 0, 1, 0))
                state = torch.cat([above, h[:, :, first: last + 1]], dim=3).flatten(1, 2)  # [dir, B*n, 2h]
                pre_t = pre_t + torch.bmm(state, taps).view_as(pre_t)       # [dir, B, n, 4h]
            h_new, c_new = lstm_cell(pre_t, c[:, :, first: last + 1], dim=3)
            h = torch.cat([h[:, :, :first], h_new, h[:, :, last + 1:]], dim=2)
            c = torch.cat([c[:, :, :first], c_new, c[:, :, last + 1:]], dim=2)
            columns.append(h)
        hidden = unskew(torch.stack(columns, dim=3), width)                 # [dir, B, H, W, h]
        left_to_right, right_to_left = hidden.unbind(0)                     # [B, H, W, h] each
        # Row i of the right-to-left map saw row i to its right: move it to row i + 1.
        right_to_left = shift_down(right_to_left.flip(2).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.finish(x, left_to_right + right_to_left)

    def cache(self, cond, context, *, batch: int, height: int, width: int, like: torch.Tensor) -> DiagonalBiLSTMCache:
        """This layer for cached generation, one pixel and colour group at a time."""
        return DiagonalBiLSTMCache(self, cond, context, batch=batch, height=height, width=width, like=like)


# --------------------------------------------------------------------------- cached generation
def _gate_index(hidden: int, color_channels: int) -> list[torch.Tensor | slice]:
    """Per colour group, its rows of a [o, f, i, g] stack of 4 * hidden pre-activations."""
    if color_channels == 1:
        return [slice(0, 4 * hidden)]                                       # all of them: a view, not a copy
    return [torch.cat([block * hidden + torch.arange(hidden)[units] for block in range(4)])
            for units in group_slices(hidden, color_channels)]


class _LSTMLayerCache:
    """What both layers' caches share: per-group input-to-state bias, residual and skip, the layer output."""

    def __init__(self, layer: _PixelRNNLayer, cond: torch.Tensor | None, context: torch.Tensor | None, *,
                 batch: int, height: int, width: int, like: torch.Tensor):
        self.layer, self.hidden = layer, layer.hidden
        color_channels = layer.to_residual.color_channels
        self.units = group_slices(layer.hidden, color_channels)             # the h units of each group
        self.gates = _gate_index(layer.hidden, color_channels)              # their rows of [o, f, i, g]
        bias = layer.input_bias(cond, context)                              # [B, gates, H|1, W|1] or None
        self.bias = None if bias is None else bias.expand(batch, -1, height, width)
        self.to_residual = PointConv(layer.to_residual)
        self.to_skip = PointConv(layer.to_skip)
        self.lstm_out = like.new_zeros(batch, layer.hidden)                 # this pixel's LSTM output, by group
        self.out = like.new_zeros(batch, layer.to_residual.out_channels)    # this pixel's layer output, by group
        new = lambda: like.new_zeros(batch, layer.hidden, width)
        self.h_row, self.c_row, self.h_above = new(), new(), new()          # states of this row and the row above

    def bias_at(self, i: int, j: int, rows: torch.Tensor):
        return 0.0 if self.bias is None else self.bias[:, rows, i, j]

    def finish(self, x: torch.Tensor, group: int, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Group ``group``'s LSTM output [B, n_g] -> (layer output [B, 2h], final for groups <= g; skip [B, s_g])."""
        self.lstm_out[:, self.units[group]] = hidden
        rows = self.to_residual.slices[group]
        out = self.to_residual(self.lstm_out, group)
        self.out[:, rows] = x[:, rows] + out if self.layer.residual else out
        return self.out, self.to_skip(self.lstm_out, group)


class RowLSTMCache(_LSTMLayerCache):
    """A Row LSTM layer, one pixel and colour group at a time: the row above's states are all it keeps."""

    def __init__(self, layer: RowLSTMLayer, cond, context, *, batch, height, width, like):
        super().__init__(layer, cond, context, batch=batch, height=height, width=width, like=like)
        self.half = layer.half
        self.input_to_state = PointConv(layer.input_to_state)
        self.inputs = like.new_zeros(batch, layer.input_to_state.in_channels, width + self.half)  # left-padded
        self.c_above = torch.zeros_like(self.h_above)
        self.from_above = like.new_zeros(batch, 4 * layer.hidden, width)    # state-to-state of this row

    def step(self, i: int, j: int, group: int, x: torch.Tensor):
        self.inputs[:, :, j + self.half] = x                                # groups > g not read yet (mask B)
        window = self.inputs[:, :, j: j + self.half + 1].flatten(1)         # [B, 2h * (k//2 + 1)]
        rows, units = self.gates[group], self.units[group]
        pre = self.input_to_state(window, group) + self.from_above[:, rows, j] + self.bias_at(i, j, rows)
        h, c = lstm_cell(pre, self.c_above[:, units, j])
        self.h_row[:, units, j], self.c_row[:, units, j] = h, c
        return self.finish(x, group, h)

    def end_row(self, i: int, image_row: torch.Tensor) -> None:
        self.h_above, self.h_row = self.h_row, self.h_above
        self.c_above, self.c_row = self.c_row, self.c_above
        # The next row's state-to-state part, for all its pixels at once.
        self.from_above = F.conv1d(self.h_above, self.layer.state_to_state, padding=self.half)  # [B, 4h, W]


class DiagonalBiLSTMCache(_LSTMLayerCache):
    """A Diagonal BiLSTM layer: left to right one pixel and group at a time (from the pixel above and
    the left neighbour); right to left over each finished row, whose states the next row reads."""

    def __init__(self, layer: DiagonalBiLSTMLayer, cond, context, *, batch, height, width, like):
        super().__init__(layer, cond, context, batch=batch, height=height, width=width, like=like)
        gates = 4 * layer.hidden
        weight = (layer.input_to_state.weight * layer.input_to_state.mask).flatten(1)    # [8h, 2h]
        bias = layer.input_to_state.bias
        self.input_to_state = [(weight[rows], bias[rows]) for rows in self.gates]        # left to right
        self.from_above = [layer.state_to_state[rows, :, 0] for rows in self.gates]      # [4 n_g, h]
        self.from_left = [layer.state_to_state[rows, :, 1] for rows in self.gates]
        self.backward_input = (weight[gates:], bias[gates:])                             # [4h, 2h], [4h]
        self.backward_from_above = layer.state_to_state[gates:, :, 0]                    # [4h, h]
        self.backward_from_right = layer.state_to_state[gates:, :, 1]  # mirrored, "left" is the right
        self.inputs = like.new_zeros(batch, layer.input_to_state.in_channels, width)     # this row's inputs
        self.backward_above = like.new_zeros(batch, layer.hidden, width)    # right to left, the row above
        self.backward_row = torch.zeros_like(self.backward_above)

    def step(self, i: int, j: int, group: int, x: torch.Tensor):
        self.inputs[:, :, j] = x
        rows, units = self.gates[group], self.units[group]
        pre = (F.linear(x, *self.input_to_state[group]) + self.bias_at(i, j, rows)
               + F.linear(self.h_above[:, :, j], self.from_above[group]))
        c_left = 0.0
        if j > 0:
            pre = pre + F.linear(self.h_row[:, :, j - 1], self.from_left[group])
            c_left = self.c_row[:, units, j - 1]
        h, c = lstm_cell(pre, c_left)
        self.h_row[:, units, j], self.c_row[:, units, j] = h, c
        # Plus the right-to-left state of the row above: the shift down by one row.
        return self.finish(x, group, h + self.backward_above[:, units, j])

    def end_row(self, i: int, image_row: torch.Tensor) -> None:
        """Row i is complete (its scaled pixels ``image_row`` [B, C, W]): the right-to-left LSTM over it."""
        gates = 4 * self.hidden
        pre_row = torch.einsum("bcw,oc->bow", self.inputs, self.backward_input[0])        # [B, 4h, W]
        pre_row = pre_row + self.backward_input[1][:, None]
        if self.bias is not None:
            pre_row = pre_row + self.bias[:, gates:, i]
        if self.layer.reads_image:
            pre_row = pre_row + torch.einsum("bcw,oc->bow", image_row, self.layer.image_to_backward.weight.flatten(1))
        h = c = torch.zeros_like(self.lstm_out)                             # [B, h]: right of the row
        for j in reversed(range(pre_row.shape[2])):
            pre = (pre_row[:, :, j] + F.linear(self.backward_above[:, :, j], self.backward_from_above)
                   + F.linear(h, self.backward_from_right))
            h, c = lstm_cell(pre, c)
            self.backward_row[:, :, j] = h
        self.backward_above, self.backward_row = self.backward_row, self.backward_above
        self.h_above, self.h_row = self.h_row, self.h_above
