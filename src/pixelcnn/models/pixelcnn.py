"""PixelCNN: a stack of masked convolutions (van den Oord et al., 2016 [1]).

Architecture ([1] §3.5, Table 1 and Figure 5)::

    x [B, C, H, W] -> 7x7 conv mask A -> [B, 2h, H, W]
      -> n_layers residual blocks:
             ReLU - 1x1 mask B (2h -> h) - ReLU - k x k mask B (h -> h)
             - ReLU - 1x1 mask B (h -> 2h), added to the block input
      -> ReLU - 1x1 mask B - ReLU - 1x1 mask B -> head (softmax / Bernoulli)

``n_layers`` counts the residual blocks (each holds one k x k masked
convolution), the way the paper counts "15-layer PixelCNN" and "12-layer Row
LSTM": the input and output layers are not counted.

NOTE: unlike the paper,
- the 1x1 convolutions of the residual blocks are mask B, i.e. colour-grouped
  (the paper's table lists them without a mask type; with C = 3 an unmasked
  1x1 would let G's units read B's at the same pixel);
- a condition ([2] §2.3) enters as a bias on the input layer and on every
  block's k x k convolution, the PixelCNN analogue of the gated layer's V^T h;
- the two output layers have ``output_hidden`` maps (default 2h), a width the
  papers do not state for this model.

The stacked masked convolutions have a *blind spot* above and to the right of
each pixel that no depth removes; ``tests/models/test_causality.py`` checks it
is exactly where the theory puts it. The Gated PixelCNN (``gated.py``) fixes it.

Sampling: ``method="fast"`` (``PixelCNNCache``) computes each activation once,
a pixel and colour group at a time.

[1] A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural
    Networks. ICML 2016. arXiv:1601.06759.
[2] A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves,
    K. Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..fields import odd_positive, option, positive_int, raise_problems
from ..nn.conditioning import ConditionBias
from ..nn.conv import MaskedConv2d, OutputLayers, PointConv, PointOutputLayers, RowSplitConv, RowSplitStep
from ..nn.masks import group_slices
from .base import DEMO_SCHEDULE, AutoregressiveModel, ModelConfig, Preset


@dataclass
class PixelCNNConfig(ModelConfig):
    n_layers: int = option(15, "residual blocks (paper, CIFAR-10: 15)")
    hidden: int = option(128, "h: the blocks carry 2h maps, their inner convolutions h")
    kernel_size: int = option(3, "the blocks' masked convolution (paper: 3x3)")
    input_kernel_size: int = option(7, "the first, mask-A convolution (paper: 7x7)")
    output_hidden: int | None = option(None, "maps of the two 1x1 output layers; None: 2 * hidden")

    def __post_init__(self):
        super().__post_init__()
        raise_problems(
            [
                positive_int("n_layers", self.n_layers),
                positive_int("hidden", self.hidden),
                odd_positive("kernel_size", self.kernel_size),
                odd_positive("input_kernel_size", self.input_kernel_size),
            ]
        )


class ResidualBlock(nn.Module):
    """ReLU - 1x1 (2h -> h) - ReLU - k x k mask B (h -> h) - ReLU - 1x1 (h -> 2h), plus the input."""

    def __init__(self, hidden: int, kernel_size: int, color_channels: int, cond_channels: int, spatial_cond: bool):
        super().__init__()
        groups = dict(mask_type="B", color_channels=color_channels)
        self.reduce = MaskedConv2d(2 * hidden, hidden, 1, **groups)
        self.masked = MaskedConv2d(hidden, hidden, kernel_size, **groups)
        self.expand = MaskedConv2d(hidden, 2 * hidden, 1, **groups)
        self.cond = ConditionBias(cond_channels, hidden, spatial=spatial_cond) if cond_channels else None

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:  # [B, 2h, H, W]
        out = self.masked(torch.relu(self.reduce(torch.relu(x))))  # [B, h, H, W]
        if self.cond is not None:
            out = out + self.cond(h)
        return x + self.expand(torch.relu(out))  # the one residual add


@dataclass(frozen=True, slots=True, eq=False)
class PixelCNNBlockStep:
    """One residual block's part of a ``PixelCNNCache.step`` at (column, group g): views prepared once.

    Named, not positional: a plan whose entries were swapped would still run, and sample wrong.
    """

    stream: torch.Tensor  # [B, 2h] the residual stream entering the block, every group
    relu_stream: torch.Tensor  # [B, 2h] where its ReLU goes (relu_stream_one without the one)
    relu_stream_one: torch.Tensor  # [B, 2h + 1] ReLU(stream) and a constant one (the 1x1's bias)
    reduce_weight: torch.Tensor  # [2h + 1, n_g] the 1x1 reduction 2h -> h of group g, bias as the last row
    reduced: torch.Tensor  # [B, n_g] the reduced units at the pixel: the k x k conv's current-row input
    above: torch.Tensor  # [B, n_g] the k x k conv's part from the rows above (+ bias, condition)
    window: torch.Tensor  # [B, (k//2 + 1) * h] its current-row window (taps left and centre)
    masked_weight: torch.Tensor  # [(k//2 + 1) * h, n_g] its masked weights for group g
    inner_units: torch.Tensor  # [B, n_g] ReLU of the k x k conv, group g's units
    stream_units: torch.Tensor  # [B, 2 n_g] the stream entering the block, group g's maps
    inner_one: torch.Tensor  # [B, h + 1] every inner unit and a constant one
    expand_weight: torch.Tensor  # [h + 1, 2 n_g] the 1x1 expansion h -> 2h of group g, bias as the last row
    stream_next_units: torch.Tensor  # [B, 2 n_g] the stream leaving the block (the residual add), group g


@dataclass(frozen=True, slots=True, eq=False)
class PixelCNNStep:
    """Every argument of one ``PixelCNNCache.step`` at (column, group g): the input layer, then the blocks."""

    input: RowSplitStep  # the mask-A input conv, into the stream entering block 0 [B, 2 n_g]
    blocks: list[PixelCNNBlockStep]  # one per residual block, in order


class PixelCNNCache:
    """Cached generation state of a ``PixelCNN`` (the protocol of ``sampling.cached_generate``).

    Step (row, col, group g) computes group g's units at one pixel through the
    input layer, every residual block and the output layers: a unit of group
    g reads its pixel's channels < g only (the masks' colour groups), final by
    then, so the C steps of a pixel compute each unit once.

    Each masked convolution is split at its centre row (``RowSplitConv``):
    what output (i, j) reads from the rows above is computed for the whole of
    row i in one convolution when row i - 1 is finished (``finish_row``);
    a step adds the current row's taps, one matrix product. So a block costs
    a step six torch calls (ReLU, 1x1, ReLU, the row taps, ReLU, 1x1 plus the
    residual; the 1x1s' biases folded in as constant-one inputs), every one
    writing into a buffer view prepared once per (column, group).

    Buffers: the image and each block's k x k convolution input as maps
    padded as the convolutions pad them, with only the rows they read (those
    above and the current one): [B, ch, H + k//2, W + 2 (k//2)]; the current
    row of each, channels last and left-padded [B, W + k//2, ch]; per pixel,
    the residual stream before and after every block and the blocks' inner
    units, filled group by group. x is the scaled image [B, C, H, W].
    """

    def __init__(self, model: PixelCNN, x: torch.Tensor, h: torch.Tensor | None, start_row: int):
        batch, channels, self.height, self.width = x.shape
        width, self.channels = self.width, channels
        self.blocks = model.blocks
        self.input_half = model.input_conv.center[0]
        self.input_conv = RowSplitConv(model.input_conv)
        self.image = x.new_zeros(batch, channels, self.height + self.input_half, width + 2 * self.input_half)
        self.image[:, :, self.input_half : self.input_half + start_row, self.input_half : self.input_half + width] = x[
            :, :, :start_row
        ]
        self.block_half = [block.masked.center[0] for block in self.blocks]
        self.block_in = [
            x.new_zeros(batch, block.masked.in_channels, self.height + half, width + 2 * half)
            for block, half in zip(self.blocks, self.block_half)
        ]
        self.masked = [RowSplitConv(block.masked) for block in self.blocks]
        reduce = [PointConv(block.reduce) for block in self.blocks]
        expand = [PointConv(block.expand) for block in self.blocks]
        conditioned = h is not None and model.input_cond is not None
        self.input_cond = model.input_cond(h).detach() if conditioned else None  # [B, 2h, H|1, W|1]
        self.block_cond = [block.cond(h).detach() if conditioned else None for block in self.blocks]  # [B, h, H|1, W|1]
        self.output = PointOutputLayers(model.output, batch=batch, like=x)
        stream_width = model.input_conv.out_channels
        inner_width = self.blocks[0].masked.out_channels if self.blocks else 0
        stream_slices = group_slices(stream_width, channels)
        inner_slices = group_slices(inner_width, channels) if self.blocks else []

        # The current row of every convolution's input, channels last, left-padded: [B, W + k//2, ch].
        self.image_row = x.new_zeros(batch, width + self.input_half, channels)
        self.values = [
            [self.image_row[:, col + self.input_half, channel] for channel in range(channels)] for col in range(width)
        ]  # [B] views, for write_value
        self.block_row = [x.new_zeros(batch, width + half, inner_width) for half in self.block_half]
        # What the rows above give each output of the current row, bias and condition included: [B, W, out].
        self.input_above = x.new_zeros(batch, width, stream_width)
        self.block_above = [x.new_zeros(batch, width, inner_width) for _ in self.blocks]
        stream = [x.new_zeros(batch, stream_width) for _ in range(len(self.blocks) + 1)]
        self.stream_out = stream[-1]
        # The ReLU of the stream and the inner units, each with a constant one appended: the reduction's
        # and the expansion's biases ride in their matrix products (``PointConv.weight_bias_t``).
        relu_stream = [torch.cat([x.new_zeros(batch, stream_width), x.new_ones(batch, 1)], dim=1) for _ in self.blocks]
        inner = [torch.cat([x.new_zeros(batch, inner_width), x.new_ones(batch, 1)], dim=1) for _ in self.blocks]

        # Per (column, group): every argument of every call of a step, views prepared once.
        self.plan: list[list[PixelCNNStep]] = []  # [column][group]
        for col in range(width):
            per_group = []
            for g in range(channels):
                s_g, i_g = stream_slices[g], (inner_slices[g] if self.blocks else None)
                blocks = []
                for k, half in enumerate(self.block_half):
                    blocks.append(
                        PixelCNNBlockStep(
                            stream=stream[k],
                            relu_stream=relu_stream[k][:, :-1],
                            relu_stream_one=relu_stream[k],
                            reduce_weight=reduce[k].weight_bias_t[g],
                            reduced=self.block_row[k][:, col + half, i_g],
                            above=self.block_above[k][:, col, i_g],
                            window=self.block_row[k][:, col : col + half + 1].flatten(1),
                            masked_weight=self.masked[k].weight_t[g],
                            inner_units=inner[k][:, i_g],
                            stream_units=stream[k][:, s_g],
                            inner_one=inner[k],
                            expand_weight=expand[k].weight_bias_t[g],
                            stream_next_units=stream[k + 1][:, s_g],
                        )
                    )
                per_group.append(
                    PixelCNNStep(
                        input=RowSplitStep(
                            above=self.input_above[:, col, s_g],
                            window=self.image_row[:, col : col + self.input_half + 1].flatten(1),
                            weight=self.input_conv.weight_t[g],
                            out=stream[0][:, s_g],
                        ),
                        blocks=blocks,
                    )
                )
            self.plan.append(per_group)
        if start_row > 0 and self.blocks:
            self._prefill(model, x, h, start_row)
        if start_row < self.height:
            self._rows_above(start_row)

    def _prefill(self, model: PixelCNN, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> None:
        """Known rows: one full forward pass records every block's k x k input."""
        captured = []
        hooks = [
            block.masked.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
            for block in self.blocks
        ]
        try:
            model.network(x, h)
        finally:
            for hook in hooks:
                hook.remove()
        for buffer, half, value in zip(self.block_in, self.block_half, captured):
            buffer[:, :, half : half + start_row, half : half + value.shape[-1]] = value[:, :, :start_row]

    @staticmethod
    def _cond_row(cond: torch.Tensor | None, row: int):
        """A condition bias [B, out, H|1, W|1] at image row ``row``, channels last: [B, W|1, out], or 0."""
        if cond is None:
            return 0.0
        return (cond[:, :, 0] if cond.shape[-2] == 1 else cond[:, :, row]).transpose(1, 2)

    def _rows_above(self, row: int) -> None:
        """Every convolution's part from the rows above ``row``, for all of row ``row``'s pixels."""
        self.input_above.copy_(self.input_conv.above(self.image, row) + self._cond_row(self.input_cond, row))
        for above, conv, block_in, cond in zip(self.block_above, self.masked, self.block_in, self.block_cond):
            above.copy_(conv.above(block_in, row) + self._cond_row(cond, row))

    def finish_row(self, row: int) -> None:
        """Row ``row`` is complete: its inputs enter the maps, and the next row's parts from above are computed."""
        width = self.width
        self.image[:, :, row + self.input_half, self.input_half : self.input_half + width] = self.image_row[
            :, self.input_half :
        ].transpose(1, 2)
        for block_in, block_row, half in zip(self.block_in, self.block_row, self.block_half):
            block_in[:, :, row + half, half : half + width] = block_row[:, half:].transpose(1, 2)
        if row + 1 < self.height:
            self._rows_above(row + 1)

    def step(self, row: int, col: int, group: int) -> torch.Tensor:
        """Group ``group``'s units at (row, col) through every layer -> its head parameters [B, P]."""
        plan = self.plan[col][group]
        plan.input.run()  # [B, 2 n_g]
        for block in plan.blocks:
            torch.clamp(block.stream, min=0, out=block.relu_stream)
            torch.mm(block.relu_stream_one, block.reduce_weight, out=block.reduced).relu_()  # [B, n_g], k x k input
            torch.addmm(block.above, block.window, block.masked_weight, out=block.inner_units).relu_()  # [B, n_g]
            torch.addmm(
                block.stream_units, block.inner_one, block.expand_weight, out=block.stream_next_units
            )  # the residual add
        return self.output(self.stream_out, group)

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        """The drawn (scaled) value [B] of ``channel`` at (row, col) enters the input layer's current row."""
        self.values[col][channel].copy_(value)


class PixelCNN(AutoregressiveModel):
    """PixelCNN of [1]: masked convolutions, residual blocks, exact likelihood."""

    name = "pixelcnn"
    config_class = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig):
        super().__init__(config)
        channels = self.image_shape[0]
        width = 2 * config.hidden
        spatial = config.spatial_cond
        self.input_conv = MaskedConv2d(
            channels, width, config.input_kernel_size, mask_type="A", color_channels=channels
        )
        self.input_cond = ConditionBias(self.cond_channels, width, spatial=spatial) if self.cond_channels else None
        self.blocks = nn.ModuleList(
            ResidualBlock(config.hidden, config.kernel_size, channels, self.cond_channels, spatial)
            for _ in range(config.n_layers)
        )
        self.output = OutputLayers(
            width, config.output_hidden or width, self.head.out_channels, color_channels=channels
        )

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        out = self.input_conv(x)  # [B, 2h, H, W]
        if self.input_cond is not None:
            out = out + self.input_cond(h)
        for block in self.blocks:
            out = block(out, h)  # [B, 2h, H, W]
        return self.output(out)  # [B, C * P, H, W]

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> PixelCNNCache:
        """Cached generation: each activation computed once (``sampling.py``)."""
        return PixelCNNCache(self, x, h, start_row)


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "pixelcnn-cifar10": Preset(
        PixelCNN.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=15, hidden=128),
        "PixelRNN paper, CIFAR-10: 15-layer PixelCNN, h = 128 (3.14 bits/dim)",
    ),
    "pixelcnn-mnist": Preset(
        PixelCNN.name,
        dict(image_shape=(1, 28, 28), levels=2, n_layers=7, hidden=32),
        "binarized MNIST, Bernoulli output; size ours (the paper does not give it)",
    ),
    "pixelcnn-6x32-k5": Preset(
        PixelCNN.name,
        dict(image_shape=(1, 28, 28), levels=2, n_layers=6, hidden=32, kernel_size=5),
        "ours: the best of the 10-minute float32 CPU training runs on binarized mnist5k "
        "(benchmarks/train_curves.py); trains in minutes on any bundled data set",
        any_data=True,
    ),
    "pixelcnn-12x32-k5": Preset(
        PixelCNN.name,
        dict(image_shape=(1, 28, 28), levels=2, n_layers=12, hidden=32, kernel_size=5),
        "ours: the best of the 10-minute runs under --precision auto on a CPU with bf16 "
        "units (bf16 and compiled: about three times float32's steps), binarized mnist5k; "
        "trains with DEMO_SCHEDULE, as measured",
        any_data=True,
        schedule=DEMO_SCHEDULE,
    ),
    "tiny-pixelcnn": Preset(
        PixelCNN.name,
        dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=8, input_kernel_size=3),
        "a few thousand parameters, for tests and smoke runs",
    ),
}
