"""PixelRNN: Row LSTM and Diagonal BiLSTM (van den Oord, Kalchbrenner, Kavukcuoglu, 2016 [1]).

Architecture ([1] §3, Table 1 and Figure 5)::

    x [B, C, H, W] -> 7x7 conv mask A -> [B, 2h, H, W]
      -> n_layers LSTM layers (Row LSTM or Diagonal BiLSTM, see nn/lstm.py),
         each with a residual connection (2h -> h per gate -> 1x1 back to 2h, add)
         and a learnable skip connection (1x1 mask B) to the output
      -> sum of the skips -> ReLU - 1x1 mask B - ReLU - 1x1 mask B -> head

The input-to-state convolutions run over the whole map in one call; only the
recurrence is sequential: H steps for the Row LSTM (a row each), W+H-1 for the
Diagonal BiLSTM (a diagonal each, both directions together).

- The Row LSTM's receptive field is a triangle above the pixel (it grows one
  column to each side per row up) and misses part of the context above-right.
- The Diagonal BiLSTM sees the whole causal context: no blind spot.

NOTE: unlike the paper,
- the first Diagonal BiLSTM layer's right-to-left LSTM also reads the image
  (an unmasked 1x1 convolution; its output is shifted down a row): without
  it the layer as the paper writes it cannot see the last pixel of the row
  above from pixels more than k0//2 + 1 columns to its left (nn/lstm.py);
- the residual and skip 1x1 convolutions are mask B (colour-grouped): with
  C = 3 an unmasked 1x1 would let G's units read B's at the same pixel;
- a condition ([2] §2.3) enters every LSTM layer's input-to-state map, as
  V^T h (class / vector) or an unmasked 1x1 convolution of m(h) (spatial);
- the skips carry ``skip_channels`` maps (default 2h) and the output layers
  ``output_hidden`` (default 2h): widths the paper does not state.

Sampling: ``method="fast"`` (``PixelRNNCache``) runs the layers one pixel at
a time from cached states (the previous row's states for the Row LSTM; the pixel above and the
left neighbour, plus the right-to-left pass over each finished row, for the
Diagonal BiLSTM), so generating an image costs about one forward pass instead
of C*H*W of them. It draws the same images as ``"naive"`` under the same
generator.

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
from ..nn.conv import MaskedConv2d, OutputLayers, PointOutputLayers, RowSplitConv, RowSplitStep
from ..nn.lstm import DiagonalBiLSTMLayer, RowLSTMLayer
from ..nn.masks import group_slices
from .base import AutoregressiveModel, ModelConfig, Preset

LAYERS = {"row_lstm": RowLSTMLayer, "diagonal_bilstm": DiagonalBiLSTMLayer}


@dataclass
class PixelRNNConfig(ModelConfig):
    n_layers: int = option(12, "LSTM layers (paper, CIFAR-10: 12)")
    hidden: int = option(128, "h: LSTM units per gate; the layers carry 2h maps (CIFAR-10: 128)")
    input_kernel_size: int = option(7, "the first, mask-A convolution (paper: 7x7)")
    residual: bool = option(True, "residual connections (paper: all models but ImageNet 64x64)")
    skip_channels: int | None = option(None, "maps of each layer's skip connection; None: 2 * hidden")
    output_hidden: int | None = option(None, "maps of the two 1x1 output layers; None: 2 * hidden")

    def __post_init__(self):
        super().__post_init__()
        raise_problems(
            [
                positive_int("n_layers", self.n_layers),
                positive_int("hidden", self.hidden),
                odd_positive("input_kernel_size", self.input_kernel_size),
                positive_int("skip_channels", self.skip_channels, optional=True),
                positive_int("output_hidden", self.output_hidden, optional=True),
            ]
        )
        if self.hidden < self.image_shape[0]:
            raise ValueError(
                f"hidden must be at least the {self.image_shape[0]} colour channels "
                f"(one unit per colour group), got {self.hidden}"
            )


@dataclass
class RowLSTMConfig(PixelRNNConfig):
    kernel_size: int = option(3, "k: width of the input-to-state (mask B) and state-to-state convolutions")

    def __post_init__(self):
        super().__post_init__()
        raise_problems([odd_positive("kernel_size", self.kernel_size)])


@dataclass
class DiagonalBiLSTMConfig(PixelRNNConfig):
    """No kernel size: the paper fixes input-to-state at 1x1 and state-to-state at 2x1."""


class PixelRNNNetwork(nn.Module):
    """Input layer, LSTM layers with residual and skip connections, output layers.

    [B, C, H, W] scaled image -> [B, out_channels, H, W]. ``context`` is an
    extra map [B, context_channels, H, W] added, through an unmasked 1x1
    convolution, to every layer's input-to-state (the multi-scale model's
    up-convolved small image).
    """

    def __init__(
        self,
        layer: str,
        *,
        color_channels: int,
        out_channels: int,
        n_layers: int,
        hidden: int,
        input_kernel_size: int,
        residual: bool,
        kernel_size: int | None = None,
        skip_channels: int | None = None,
        output_hidden: int | None = None,
        cond_channels: int = 0,
        spatial_cond: bool = False,
        context_channels: int = 0,
    ):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
        width, skip = 2 * hidden, skip_channels or 2 * hidden
        self.input_conv = MaskedConv2d(
            color_channels, width, input_kernel_size, mask_type="A", color_channels=color_channels
        )
        options = dict(
            color_channels=color_channels,
            residual=residual,
            cond_channels=cond_channels,
            spatial_cond=spatial_cond,
            context_channels=context_channels,
        )
        if layer == "row_lstm":
            options["kernel_size"] = kernel_size
            first = {}
        else:  # the first right-to-left LSTM reads the image too: no blind spot (nn/lstm.py)
            first = dict(image_channels=color_channels)
        self.layers = nn.ModuleList(
            LAYERS[layer](width, hidden, skip, **options, **(first if index == 0 else {})) for index in range(n_layers)
        )
        self.output = OutputLayers(skip, output_hidden or width, out_channels, color_channels=color_channels)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        out, skips = self.input_conv(x), 0.0  # [B, 2h, H, W]
        for layer in self.layers:
            if layer.reads_image:
                out, skip = layer(out, cond, context, image=x)
            else:
                out, skip = layer(out, cond, context)  # [B, 2h, H, W], [B, s, H, W]
            skips = skips + skip
        return self.output(skips)  # [B, out, H, W]


class PixelRNNCache:
    """Cached generation state of a ``PixelRNNNetwork`` (the protocol of ``sampling.cached_generate``).

    Step (row, col, group g) runs the units of colour group g at one pixel
    through the input layer, every LSTM layer and the output layers: a unit
    of group g reads only channels < g of its pixel, final by then, so the C
    steps of a pixel compute each unit once. The LSTM layers keep their
    states (``nn.lstm.RowLSTMCache``, ``DiagonalBiLSTMCache``), so each step
    costs what one pixel costs in a full forward pass. Known rows above
    ``start_row`` are run through the same steps, without the output layers.

    The input convolution is split at its centre row (``RowSplitConv``): the
    rows above once per row, the current row's taps per step. Each layer
    writes its output straight into the next layer's input row, and its skip
    into the running sum, so a step is one call per product and activation.
    """

    def __init__(
        self,
        network: PixelRNNNetwork,
        x_scaled: torch.Tensor,
        cond,
        start_row: int,
        *,
        context: torch.Tensor | None = None,
    ):
        batch, channels, height, width = x_scaled.shape
        self.network, self.channels, self.height, self.width = network, channels, height, width
        conv = network.input_conv
        left, right, self.top, _ = conv.padding
        self.left = left
        self.input_conv = RowSplitConv(conv)
        self.image = x_scaled.new_zeros(batch, channels, self.top + height, left + width + right)  # rows above
        self.image_row = x_scaled.new_zeros(batch, left + width, channels)  # this row, channels last
        self.values = [
            [self.image_row[:, left + col, channel] for channel in range(channels)] for col in range(width)
        ]  # [B] views, for write_value
        self.input_above = x_scaled.new_zeros(batch, width, conv.out_channels)
        self.layers = [
            layer.cache(cond, context, batch=batch, height=height, width=width, like=x_scaled)
            for layer in network.layers
        ]
        self.output = PointOutputLayers(network.output, batch=batch, like=x_scaled)
        self.skips = x_scaled.new_zeros(batch, network.output.hidden.in_channels)
        skips = [self.skips[:, units] for units in group_slices(self.skips.shape[1], channels)]
        for index, layer in enumerate(self.layers):
            after = self.layers[index + 1] if index + 1 < len(self.layers) else None
            layer.set_output(
                [[None if after is None else after.input_slot(j, g) for g in range(channels)] for j in range(width)],
                [(skips[g], index == 0) for g in range(channels)],
            )
        first, slices = self.layers[0], group_slices(conv.out_channels, channels)
        # Per (column, group): the input layer's step, written straight into the first layer's input.
        self.plan = [
            [
                RowSplitStep(
                    above=self.input_above[:, j, slices[g]],
                    window=self.image_row[:, j : j + left + 1].flatten(1),
                    weight=self.input_conv.weight_t[g],
                    out=first.input_slot(j, g),
                )
                for g in range(channels)
            ]
            for j in range(width)
        ]
        self.input_above.copy_(self.input_conv.above(self.image, 0))
        for row in range(start_row):
            for col in range(width):
                self.read_pixel(row, col, x_scaled[:, :, row, col])
            self.finish_row(row)

    def _column(self, col: int, group: int) -> None:
        self.plan[col][group].run()  # the input layer, into layer 1
        for layer in self.layers:
            layer.step(col, group)  # into the next layer and the skips

    def step(self, row: int, col: int, channel: int) -> torch.Tensor:
        """Channel ``channel``'s head parameters at (row, col): [B, P]."""
        self._column(col, channel)
        return self.output(self.skips, channel)

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        self.values[col][channel].copy_(value)

    def read_pixel(self, row: int, col: int, values: torch.Tensor) -> None:
        """A pixel whose scaled values [B, C] are given, not drawn: update the states, skip the output layers."""
        self.image_row[:, self.left + col] = values
        for group in range(self.channels):
            self._column(col, group)

    def finish_row(self, row: int) -> None:
        image_row = self.image_row[:, self.left :].transpose(1, 2)  # [B, C, W]
        self.image[:, :, self.top + row, self.left : self.left + self.width] = image_row
        for layer in self.layers:
            layer.end_row(row, image_row)
        if row + 1 < self.height:
            self.input_above.copy_(self.input_conv.above(self.image, row + 1))


class _PixelRNN(AutoregressiveModel):
    """A PixelRNN of one layer type: the network above behind the shared model API."""

    layer: str = ""

    def __init__(self, config: PixelRNNConfig):
        super().__init__(config)
        self.rnn = PixelRNNNetwork(
            self.layer,
            color_channels=self.image_shape[0],
            out_channels=self.head.out_channels,
            n_layers=config.n_layers,
            hidden=config.hidden,
            input_kernel_size=config.input_kernel_size,
            residual=config.residual,
            kernel_size=getattr(config, "kernel_size", None),
            skip_channels=config.skip_channels,
            output_hidden=config.output_hidden,
            cond_channels=self.cond_channels,
            spatial_cond=config.spatial_cond,
        )

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        return self.rnn(x, h)  # [B, C * P, H, W]

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> PixelRNNCache:
        """The state of cached generation (``method="fast"``); x is the scaled image."""
        return PixelRNNCache(self.rnn, x, h, start_row)


class RowLSTM(_PixelRNN):
    """PixelRNN with Row LSTM layers [1]: a row per step, a triangular receptive field."""

    name = "row_lstm"
    config_class = RowLSTMConfig
    layer = "row_lstm"


class DiagonalBiLSTM(_PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers [1]: a diagonal per step, the whole causal context."""

    name = "diagonal_bilstm"
    config_class = DiagonalBiLSTMConfig
    layer = "diagonal_bilstm"


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "diagbilstm-mnist": Preset(
        DiagonalBiLSTM.name,
        dict(image_shape=(1, 28, 28), levels=2, n_layers=7, hidden=16),
        "PixelRNN paper, binarized MNIST: 7-layer Diagonal BiLSTM, h = 16 (79.20 nats)",
    ),
    "rowlstm-mnist": Preset(
        RowLSTM.name,
        dict(image_shape=(1, 28, 28), levels=2, n_layers=7, hidden=16),
        "binarized MNIST Row LSTM (80.54 nats in the paper); the paper does not give its "
        "size: that of its MNIST Diagonal BiLSTM",
    ),
    "rowlstm-cifar10": Preset(
        RowLSTM.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=12, hidden=128),
        "PixelRNN paper, CIFAR-10: 12-layer Row LSTM, h = 128 (3.07 bits/dim)",
    ),
    "diagbilstm-cifar10": Preset(
        DiagonalBiLSTM.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=12, hidden=128),
        "PixelRNN paper, CIFAR-10: 12-layer Diagonal BiLSTM, h = 128 (3.00 bits/dim)",
    ),
    "rowlstm-imagenet32": Preset(
        RowLSTM.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=12, hidden=384),
        "PixelRNN paper, ImageNet 32x32: 12-layer Row LSTM, h = 384 (3.86 bits/dim)",
    ),
    "rowlstm-imagenet64": Preset(
        RowLSTM.name,
        dict(image_shape=(3, 64, 64), levels=256, n_layers=4, hidden=512, residual=False),
        "PixelRNN paper, ImageNet 64x64: 4-layer Row LSTM, h = 512, no residual connections (3.63 bits/dim)",
    ),
    "tiny-rowlstm": Preset(
        RowLSTM.name,
        dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4, input_kernel_size=3),
        "a few thousand parameters, for tests and smoke runs",
    ),
    "tiny-diagbilstm": Preset(
        DiagonalBiLSTM.name,
        dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4, input_kernel_size=3),
        "a few thousand parameters, for tests and smoke runs",
    ),
}
