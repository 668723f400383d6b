"""PixelCNN++'s building blocks: shifted convolutions and the gated ResNet block ([1] §2.3-2.4, Figure 2).

Instead of masking a k x k kernel, PixelCNN++ pads its input so that the
kernel simply has no taps on the future. Two streams::

    down-shifted (u):          output (i, j) reads rows i - kh + 1 .. i, columns j - kw//2 .. j + kw//2
    down-right-shifted (ul):   output (i, j) reads rows i - kh + 1 .. i, columns j - kw + 1 .. j

Each reads its own position (i, j). The network makes that causal once, at
its input, with ``down_shift`` / ``right_shift`` (u at (i, j) then holds only
what rows < i produced, ul only what pixels before (i, j) in raster order
produced); every later layer keeps that property, because each reads only
positions at or before its own in the stream's order.

With ``stride=2`` a shifted convolution halves the map (rounding up): coarse
output (i', j') reads fine positions 2i' - kh + 1 .. 2i' (and columns around or
left of 2j'), so it holds only what came before fine pixel (2i', 2j'), the
first of the four fine pixels it stands for. The transposed twins double the
map back: fine (r, c) reads only coarse (r // 2, c // 2) (the down-right one)
or coarse row r // 2, columns (c - 1) // 2 .. (c + 1) // 2 (the down one):
nothing a later fine pixel produced.

``concat_elu(x) = elu([x, -x])`` keeps both signs' information ([1] §2.4);
``GatedResNet`` is the block of the reference code: conv(concat_elu(x)) (+ a
1x1 of concat_elu of the auxiliary input: the u stream or a short-cut),
concat_elu, dropout, conv to 2F maps (+ the condition), a * sigmoid(b), added
to x.

Weight normalization ([2]) is an option of every layer here
(``torch.nn.utils.parametrizations.weight_norm``, one scale per output map).

[1] T. Salimans, A. Karpathy, X. Chen, D. P. Kingma. PixelCNN++: Improving
    the PixelCNN with Discretized Logistic Mixture Likelihood and Other
    Modifications. ICLR 2017. arXiv:1701.05517.
[2] T. Salimans, D. P. Kingma. Weight Normalization. NIPS 2016. arXiv:1602.07868.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import ConditionBias


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """elu([x, -x]) along the channels: [B, F, H, W] -> [B, 2F, H, W]."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Row i of the result is row i - 1 of x, row 0 zeros: [B, F, H, W] -> [B, F, H, W]."""
    return F.pad(x, (0, 0, 1, 0))[:, :, : x.shape[2]]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """Column j of the result is column j - 1 of x, column 0 zeros: [B, F, H, W] -> [B, F, H, W]."""
    return F.pad(x, (1, 0))[:, :, :, : x.shape[3]]


def _normalized(layer: nn.Module, weight_norm: bool, dim: int = 0) -> nn.Module:
    # dim: the weight's output-map dimension (0 for Conv2d, 1 for ConvTranspose2d [in, out, kh, kw]).
    return nn.utils.parametrizations.weight_norm(layer, dim=dim) if weight_norm else layer


class DownShiftedConv2d(nn.Module):
    """kh x kw kernel reading rows i - kh + 1 .. i and columns j - kw//2 .. j + kw//2 (kw odd).

    [B, in, H, W] -> [B, out, H, W] (stride 1) or [B, out, ceil(H/2), ceil(W/2)] (stride 2).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size=(2, 3), *, stride: int = 1, weight_norm: bool = False
    ):
        super().__init__()
        self.kernel_size, self.stride = tuple(kernel_size), stride
        k_h, k_w = self.kernel_size
        if k_w % 2 == 0:
            raise ValueError(f"a down-shifted kernel needs an odd width, got {k_w}")
        self.padding = (k_w // 2, k_w // 2, k_h - 1, 0)  # left, right, top, bottom
        self.conv = _normalized(nn.Conv2d(in_channels, out_channels, self.kernel_size, stride=stride), weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class DownRightShiftedConv2d(nn.Module):
    """kh x kw kernel reading rows i - kh + 1 .. i and columns j - kw + 1 .. j.

    [B, in, H, W] -> [B, out, H, W] (stride 1) or [B, out, ceil(H/2), ceil(W/2)] (stride 2).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size=(2, 2), *, stride: int = 1, weight_norm: bool = False
    ):
        super().__init__()
        self.kernel_size, self.stride = tuple(kernel_size), stride
        k_h, k_w = self.kernel_size
        self.padding = (k_w - 1, 0, k_h - 1, 0)  # left, right, top, bottom
        self.conv = _normalized(nn.Conv2d(in_channels, out_channels, self.kernel_size, stride=stride), weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class DownShiftedConvTranspose2d(nn.Module):
    """Stride-2 transposed 2 x 3 kernel: coarse [B, in, h, w] -> fine [B, out, H, W], H <= 2h, W <= 2w.

    Fine (r, c) = coarse rows r // 2 and columns (c - 1) // 2 .. (c + 1) // 2: the
    transposed convolution writes coarse (i', j') with tap (a, b) to (2i' + a, 2j' + b)
    and the map is cropped by one column on the left (so the kernel is centred).
    """

    def __init__(self, in_channels: int, out_channels: int, *, weight_norm: bool = False):
        super().__init__()
        self.conv = _normalized(nn.ConvTranspose2d(in_channels, out_channels, (2, 3), stride=2), weight_norm, dim=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        return self.conv(x)[:, :, :height, 1 : 1 + width]  # [B, out, 2h, 2w + 1] -> [B, out, H, W]


class DownRightShiftedConvTranspose2d(nn.Module):
    """Stride-2 transposed 2 x 2 kernel: coarse [B, in, h, w] -> fine [B, out, H, W];
    fine (r, c) = coarse (r//2, c//2)."""

    def __init__(self, in_channels: int, out_channels: int, *, weight_norm: bool = False):
        super().__init__()
        self.conv = _normalized(nn.ConvTranspose2d(in_channels, out_channels, (2, 2), stride=2), weight_norm, dim=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        return self.conv(x)[:, :, :height, :width]  # [B, out, 2h, 2w] -> [B, out, H, W]


class GatedResNet(nn.Module):
    """The gated ResNet block of PixelCNN++ ([1] §2.4; the reference code's ``gated_resnet``).

    Args:
        channels: F, the maps of the stream (in and out).
        conv: ``DownShiftedConv2d`` (u stream, kernel 2 x 3) or ``DownRightShiftedConv2d`` (ul, 2 x 2).
        aux_channels: maps of the auxiliary input (0: none); enters through a 1x1 convolution.
        dropout: dropout rate on the block's inner maps.
        cond_channels / spatial_cond: the encoded condition, added before the gate.
        weight_norm: weight-normalize the convolutions.
    """

    def __init__(
        self,
        channels: int,
        conv: type,
        *,
        aux_channels: int = 0,
        dropout: float = 0.0,
        cond_channels: int = 0,
        spatial_cond: bool = False,
        weight_norm: bool = False,
    ):
        super().__init__()
        self.conv_in = conv(2 * channels, channels, weight_norm=weight_norm)
        self.aux = _normalized(nn.Conv2d(2 * aux_channels, channels, 1), weight_norm) if aux_channels else None
        self.dropout = nn.Dropout(dropout)
        self.conv_out = conv(2 * channels, 2 * channels, weight_norm=weight_norm)
        self.cond = ConditionBias(cond_channels, 2 * channels, spatial=spatial_cond) if cond_channels else None

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None = None, h: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, F, H, W], aux [B, A, H, W] or None, h [B, D] / [B, S, H, W] or None -> [B, F, H, W]."""
        inner = self.conv_in(concat_elu(x))  # [B, F, H, W]
        if self.aux is not None:
            inner = inner + self.aux(concat_elu(aux))
        inner = self.conv_out(self.dropout(concat_elu(inner)))  # [B, 2F, H, W]
        if h is not None and self.cond is not None:
            inner = inner + self.cond(h)
        value, gate = inner.chunk(2, dim=1)
        return x + value * torch.sigmoid(gate)


# ------------------------------------------------------------------ cached twins, for generation
# Ramachandran et al. [3]: each layer keeps its output map, and a generation step computes only
# the positions that the newly finished pixel makes computable. The u stream (rows above) is
# computed a whole row at a time, the ul stream one position at a time; a layer at a stride-2
# resolution runs on every 2nd (4th) row / position, and a transposed convolution writes its
# fine outputs when its coarse input is computed.
#
# [3] P. Ramachandran, T. L. Paine, P. Khorrami et al. Fast Generation for Convolutional
#     Autoregressive Models. ICLR 2017 workshop. arXiv:1704.06001.


class PaddedMap:
    """A feature map [B, F, H, W] kept inside zeros: one row above, one column each side.

    ``padded`` [B, F, H + 1, W + 2] is what the shifted convolutions read (none pads more);
    ``view`` [B, F, H, W] is the map itself, for writing.
    """

    def __init__(self, batch: int, channels: int, height: int, width: int, *, like: torch.Tensor):
        self.height, self.width = height, width
        self.padded = like.new_zeros(batch, channels, height + 1, width + 2)
        self.view = self.padded[:, :, 1:, 1 : width + 1]

    def at(self, row: int, start: int, stop: int) -> torch.Tensor:
        """The map at (row, start .. stop - 1): [B, F, 1, stop - start]."""
        return self.view[:, :, row : row + 1, start:stop]


class ShiftedConvWindow:
    """A ``DownShiftedConv2d`` / ``DownRightShiftedConv2d`` at positions of one output row.

    ``self(source, row, start, stop)`` -> the outputs at (row, start .. stop - 1) on the layer's own
    grid (stride 2: the coarse one) [B, out, 1, stop - start], read from the window of
    ``source.padded`` that the convolution reads there. The weights are copied when it is built
    (weight norm resolved), for one sampling run.
    """

    def __init__(self, layer: DownShiftedConv2d | DownRightShiftedConv2d):
        self.weight, self.bias = layer.conv.weight.detach(), layer.conv.bias.detach()
        (self.k_h, self.k_w), self.stride, self.left = layer.kernel_size, layer.stride, layer.padding[0]

    def __call__(self, source: PaddedMap, row: int, start: int, stop: int, pre=None) -> torch.Tensor:
        s = self.stride
        # Input rows s*row - k_h + 1 .. s*row and columns s*c - left .. s*c - left + k_w - 1; +1 in padded.
        window = source.padded[
            :,
            :,
            s * row + 2 - self.k_h : s * row + 2,
            s * start + 1 - self.left : s * (stop - 1) + 1 - self.left + self.k_w,
        ]
        if pre is not None:
            window = pre(window)  # concat_elu: zeros stay zeros, as the padding of the full map
        return F.conv2d(window, self.weight, self.bias, stride=s)

    def run(self, source: PaddedMap, aux: tuple, target: PaddedMap, row: int, start: int, stop: int) -> None:
        target.view[:, :, row : row + 1, start:stop] = self(source, row, start, stop)


class ConvTransposeWindow:
    """A ``DownShiftedConvTranspose2d`` / ``DownRightShiftedConvTranspose2d`` run on coarse positions.

    ``run(source, (), target, row, start, stop)``: coarse (row, start .. stop - 1) are computed; write
    what they give the fine map, rows 2 row .. 2 row + 1 (cropped as the layer crops). Run on whole
    coarse rows for the 2 x 3 kernel (neighbouring coarse columns add up on the fine grid), on single
    positions for the 2 x 2 one (each fine position has one coarse source).
    """

    def __init__(self, layer: DownShiftedConvTranspose2d | DownRightShiftedConvTranspose2d):
        self.weight, self.bias = layer.conv.weight.detach(), layer.conv.bias.detach()
        self.crop = 1 if isinstance(layer, DownShiftedConvTranspose2d) else 0  # columns cropped on the left

    def run(self, source: PaddedMap, aux: tuple, target: PaddedMap, row: int, start: int, stop: int) -> None:
        out = F.conv_transpose2d(source.at(row, start, stop), self.weight, self.bias, stride=2)  # [B, F, 2, 2n+kw-2]
        rows = min(2, target.height - 2 * row)
        first = 2 * start - self.crop  # fine column of out[..., 0]
        low, high = max(0, -first), min(out.shape[-1], target.width - first)
        target.view[:, :, 2 * row : 2 * row + rows, first + low : first + high] = out[:, :, :rows, low:high]


class GatedResNetCache:
    """A ``GatedResNet`` (in eval mode: no dropout) at positions of one row, for cached generation.

    ``run(source, aux, target, row, start, stop)`` computes the block's output at (row, start ..
    stop - 1) from its input map ``source`` and the auxiliary maps ``aux`` (concatenated), writing it
    into ``target``. The block's inner map (concat_elu of the first convolution), which its second
    convolution reads around each position, is kept here.
    """

    def __init__(
        self, block: GatedResNet, h: torch.Tensor | None, *, batch: int, height: int, width: int, like: torch.Tensor
    ):
        self.conv_in, self.conv_out = ShiftedConvWindow(block.conv_in), ShiftedConvWindow(block.conv_out)
        # The 1x1 convolution of the auxiliary maps (None: the block has none): [F, 2A, 1, 1], [F].
        self.aux_weight = None if block.aux is None else block.aux.weight.detach()
        self.aux_bias = None if block.aux is None else block.aux.bias.detach()
        self.inner = PaddedMap(batch, 2 * block.conv_in.conv.out_channels, height, width, like=like)
        self.cond = None if h is None or block.cond is None else block.cond(h)  # [B, 2F, 1, 1] or [B, 2F, H, W]
        self.vector_cond = h is not None and h.dim() == 2

    def run(self, source: PaddedMap, aux: tuple, target: PaddedMap, row: int, start: int, stop: int) -> None:
        inner = self.conv_in(source, row, start, stop, pre=concat_elu)  # [B, F, 1, n]
        if self.aux_weight is not None:
            aux_in = (
                torch.cat([m.at(row, start, stop) for m in aux], dim=1) if len(aux) > 1 else aux[0].at(row, start, stop)
            )  # [B, A, 1, n]
            inner = inner + F.conv2d(concat_elu(aux_in), self.aux_weight, self.aux_bias)
        self.inner.view[:, :, row : row + 1, start:stop] = concat_elu(inner)
        out = self.conv_out(self.inner, row, start, stop)  # [B, 2F, 1, n]
        if self.cond is not None:
            out = out + (self.cond if self.vector_cond else self.cond[:, :, row : row + 1, start:stop])
        value, gate = out.chunk(2, dim=1)
        target.view[:, :, row : row + 1, start:stop] = source.at(row, start, stop) + value * torch.sigmoid(gate)
