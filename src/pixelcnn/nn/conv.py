"""Causal convolutions: the masked convolution and the Gated PixelCNN's stacks.

Every convolution here keeps the spatial size (H x W in, H x W out) and aligns
output pixel (i, j) with the tap called the kernel's centre, so "which inputs
does output (i, j) read" is exactly the mask drawn in ``masks.py``.

Beside a layer stands its cached twin for generation (``PointConv``,
``PointOutputLayers``): the same weights evaluated at one pixel for one colour
group at a time, so that sampling computes each activation once (Ramachandran
et al. [3]: cache what later steps read, compute only what the new value
changes).

[1] A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural
    Networks. ICML 2016. arXiv:1601.06759.
[2] A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves,
    K. Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
[3] P. Ramachandran, T. L. Paine, P. Khorrami et al. Fast Generation for
    Convolutional Autoregressive Models. ICLR 2017 workshop. arXiv:1704.06001.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .masks import causal_mask, group_slices


class MaskedConv2d(nn.Module):
    """A 2-D convolution whose kernel is multiplied by a causal mask ([1] §3.4, Figure 2 right).

    The mask is applied functionally on every call (``weight * mask``), so the
    masked taps get zero gradient and the optimizer state never sees them.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int] | int,
        *,
        mask_type: str,
        color_channels: int = 1,
        center: tuple[int, int] | None = None,
        group_repeats: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        c_row, c_col = (k_h // 2, k_w // 2) if center is None else center
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (k_h, k_w)
        self.mask_type = mask_type
        self.center, self.color_channels, self.group_repeats = (c_row, c_col), color_channels, group_repeats
        mask = causal_mask(
            (k_h, k_w),
            in_channels,
            out_channels,
            mask_type=mask_type,
            color_channels=color_channels,
            center=(c_row, c_col),
            group_repeats=group_repeats,
        )
        self.register_buffer("mask", mask, persistent=False)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, k_h, k_w))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Taps below / right of the centre are never read: pad only what is read.
        self.padding = (c_col, k_w - 1 - c_col, c_row, k_h - 1 - c_row)  # left, right, top, bottom
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming-uniform on the taps that are open, not on the whole kernel:
        # a 7x7 mask-A kernel reads 24 of 49 taps, and a fan-in counted over all
        # 49 would shrink the first layer's output by sqrt(2).
        if self.weight.is_meta:  # built for its shapes only (models.registry.check_fits_in_memory)
            return
        fan_in = max(1.0, float(self.mask.sum(dim=(1, 2, 3)).mean()))
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -math.sqrt(3) * bound, math.sqrt(3) * bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in, H, W] -> [B, out, H, W]
        weight = self.weight * self.mask
        left, right, top, bottom = self.padding
        if left == right and top == bottom:
            return F.conv2d(x, weight, self.bias, padding=(top, left))
        return F.conv2d(F.pad(x, self.padding), weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, mask_type={self.mask_type}"


def _group_rows(conv: MaskedConv2d) -> tuple[list[slice], list[torch.Tensor]]:
    """Each colour group's units within one block of outputs, and its output rows in every block.

    A convolution with ``group_repeats`` r has r blocks of outputs (e.g. a gated layer's tanh and
    sigmoid halves), each split into the colour groups; group g's rows of all blocks, in block
    order, feed one matrix product per step."""
    block = conv.out_channels // conv.group_repeats
    slices = group_slices(block, conv.color_channels)
    index = [
        torch.cat([torch.arange(r * block, (r + 1) * block)[units] for r in range(conv.group_repeats)])
        for units in slices
    ]
    return slices, index


class PointConv:
    """A ``MaskedConv2d`` at one position, for the output units of one colour group per call.

    ``point(window, g)``: the flattened input window the kernel reads at a
    pixel [B, in * rows * k_w] -> the outputs of colour group g there [B, n_g].
    The kernel's rows below its centre are all masked, so only ``rows`` = the
    centre row and those above are kept; the window covers them and all k_w
    columns, padded as ``forward`` pads. The masked weights are copied when it
    is built (for one sampling run, with the weights fixed).
    """

    def __init__(self, conv: MaskedConv2d):
        self.rows = conv.center[0] + 1
        weight = (conv.weight * conv.mask).detach()[:, :, : self.rows]  # [out, in, rows, k_w]
        self.slices, self.index = _group_rows(conv)
        flat = weight.flatten(1)  # [out, in * rows * k_w]
        self.weight = [flat[rows].contiguous() for rows in self.index]
        self.weight_t = [weight.t() for weight in self.weight]  # [in * rows * k_w, n_g], for addmm
        self.bias = [
            flat.new_zeros(len(rows)) if conv.bias is None else conv.bias.detach()[rows].contiguous()
            for rows in self.index
        ]
        # The bias as one more input row, for an input with a constant one appended: then the
        # product alone (mm) or with a residual as its addend (addmm) gives the output, bias included.
        self.weight_bias_t = [
            torch.cat([weight, bias[:, None]], dim=1).t()  # [in * rows * k_w + 1, n_g]
            for weight, bias in zip(self.weight, self.bias)
        ]

    def __call__(self, window: torch.Tensor, group: int) -> torch.Tensor:
        return torch.addmm(self.bias[group], window, self.weight_t[group])


class RowSplitConv:
    """A ``MaskedConv2d`` for cached generation, split at its centre row.

    Output (i, j) reads the rows above i (all final once row i - 1 is) and
    the taps of row i left of j and at j (final once the pixel's earlier
    colour groups are). ``above(padded, i)``: the first part, bias included,
    for a whole row at once [B, W, out] (channels last), from the input
    padded as ``forward`` pads it [B, in, H + top, W + left + right];
    ``weight_t[g]`` [(left + 1) * in, n_g]: the second part for colour group
    g's outputs (its rows ``index[g]``, in every block when the convolution
    has ``group_repeats`` blocks), to multiply with the window of row i's
    taps j - left .. j, channels last ([B, left + 1, in] flattened). The
    masked weights are copied when it is built (for one sampling run, with
    the weights fixed).
    """

    def __init__(self, conv: MaskedConv2d):
        self.top, self.left = conv.center
        weight = (conv.weight * conv.mask).detach()  # [out, in, k_h, k_w]
        self.above_weight = weight[:, :, : self.top].contiguous()  # [out, in, top, k_w]
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.out_channels = weight.shape[0]
        # The centre row's taps up to the centre (those right of it are masked), tap-major like the window.
        centre = weight[:, :, self.top, : self.left + 1].permute(0, 2, 1).flatten(1)  # [out, (left + 1) * in]
        self.slices, self.index = _group_rows(conv)
        self.weight_t = [centre[rows].t() for rows in self.index]

    def above(self, padded: torch.Tensor, row: int) -> torch.Tensor:
        """The rows above ``row``'s part of the outputs of image row ``row``: [B, W, out]."""
        batch, width = padded.shape[0], padded.shape[3] - self.above_weight.shape[3] + 1
        if self.top == 0:  # a one-row kernel: the bias
            out = padded.new_zeros(batch, width, self.out_channels)
            return out if self.bias is None else out + self.bias
        window = padded[:, :, row : row + self.top]  # [B, in, top, W + k_w - 1]
        return F.conv2d(window, self.above_weight, self.bias)[:, :, 0].transpose(1, 2)  # [B, W, out]


@dataclass(frozen=True, slots=True, eq=False)
class RowSplitStep:
    """A ``RowSplitConv``'s output at one pixel for colour group g, ``out = above + window @ weight``:
    views prepared once per (column, group), named so that no two can be swapped unnoticed."""

    above: torch.Tensor  # [B, n_g] the part from the rows above (bias, condition included)
    window: torch.Tensor  # [B, (left + 1) * in] the current row's taps j - left .. j, channels last
    weight: torch.Tensor  # [(left + 1) * in, n_g] ``weight_t[g]``
    out: torch.Tensor  # [B, n_g] where group g's outputs go

    def run(self) -> torch.Tensor:
        return torch.addmm(self.above, self.window, self.weight, out=self.out)


class VerticalStackConv2d(nn.Conv2d):
    """The Gated PixelCNN's vertical-stack convolution ([2] §2.2, Figure 2).

    A (k//2 + 1) x k kernel padded so that output row i reads input rows
    i - k//2 .. i, every column within k//2: the top half of a k x k kernel,
    centre row included. No mask is needed: the kernel simply has no taps
    below. The current row is read, so the result may feed the horizontal
    stack only after ``shift_down`` (row i then holds what rows < i produced).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.half = kernel_size // 2
        super().__init__(in_channels, out_channels, (self.half + 1, kernel_size), padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in, H, W] -> [B, out, H, W]
        # left, right, top, bottom: rows above come in through the top padding.
        return super().forward(F.pad(x, (self.half, self.half, self.half, 0)))


def shift_down(x: torch.Tensor, rows: int = 1) -> torch.Tensor:
    """Move a feature map down by ``rows``, filling the top with zeros.

    [B, C, H, W] -> [B, C, H, W]; row i of the result is row i - rows of x.
    """
    return F.pad(x, (0, 0, rows, 0))[:, :, : x.shape[2], :]


class OutputLayers(nn.Module):
    """ReLU - 1x1 conv mask B - ReLU - 1x1 conv mask B: the papers' output stack.

    [B, in, H, W] -> [B, out, H, W]; mask B keeps each colour group's
    parameters computed from units of its own and earlier groups only.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, *, color_channels: int):
        super().__init__()
        self.hidden = MaskedConv2d(in_channels, hidden, 1, mask_type="B", color_channels=color_channels)
        self.out = MaskedConv2d(hidden, out_channels, 1, mask_type="B", color_channels=color_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(torch.relu(x))))


class PointOutputLayers:
    """``OutputLayers`` at one pixel, one colour group per call (cached generation).

    ``point(features, g)``: the pixel's input features [B, in], final for the
    groups <= g -> group g's head parameters [B, P_g]. The hidden units of the
    groups before g, computed by earlier calls at this pixel, are kept. Each
    call is four torch calls into preallocated buffers (ReLU, one matrix
    product, ReLU, one matrix product; the biases ride in the products as
    constant-one inputs): at sampling time the cost of a step is the number
    of calls, not their arithmetic.
    """

    def __init__(self, output: OutputLayers, *, batch: int, like: torch.Tensor):
        self.hidden, self.out = PointConv(output.hidden), PointConv(output.out)
        # The ReLU of the input features and the hidden units, each with a constant one appended.
        self.features = torch.cat([like.new_zeros(batch, output.hidden.in_channels), like.new_ones(batch, 1)], 1)
        self.features_relu = self.features[:, :-1]  # [B, in]
        self.hidden_units = torch.cat([like.new_zeros(batch, output.hidden.out_channels), like.new_ones(batch, 1)], 1)
        self.hidden_views = [self.hidden_units[:, units] for units in self.hidden.slices]  # filled by group

    def __call__(self, features: torch.Tensor, group: int) -> torch.Tensor:
        torch.clamp(features, min=0, out=self.features_relu)
        torch.mm(self.features, self.hidden.weight_bias_t[group], out=self.hidden_views[group]).relu_()
        return torch.mm(self.hidden_units, self.out.weight_bias_t[group])
