"""Gated PixelCNN and Conditional PixelCNN (van den Oord et al., 2016 [1]).

Two stacks per layer ([1] §2.2, Figure 2): a *vertical* stack that sees
every pixel of the rows above, and a *horizontal* stack that sees the pixels
to the left in the current row plus what the vertical stack passes it, one
row shifted down. Together they cover the whole causal context, so the
PixelCNN's blind spot is gone. Each stack uses the gated activation
tanh(W_f * x + V_f^T h) * sigmoid(W_g * x + V_g^T h) ([1] Equation 4); the
condition h is a class, any vector, or a map m(h) ([1] §2.3, Equation 5). See
``nn/gated.py`` for one layer.

Architecture::

    x [B, C, H, W] -> vertical = horizontal = x
      -> layer 1 (k0 = input_kernel_size, horizontal mask A, no residual)
      -> layers 2..n_layers (k = kernel_size, mask B, residual on the horizontal stack)
      -> sum of every layer's skip output [B, skip, H, W]
      -> ReLU - 1x1 mask B - ReLU - 1x1 mask B -> head (softmax / Bernoulli)

NOTE: unlike the paper, every layer sends a skip connection to the output
head (common in later implementations), and the output layers have
``output_hidden`` maps (default 2p), a width the paper does not state.

Sampling: ``method="fast"`` (``GatedPixelCNNCache``) computes each activation
once, a pixel and colour group at a time, the vertical stacks a row at a time.

[1] A. van den Oord, N. Kalchbrenner, O. Vinyals, L. Espeholt, A. Graves,
    K. Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..fields import odd_positive, option, positive_int, raise_problems
from ..nn.conv import OutputLayers, PointOutputLayers
from ..nn.gated import GatedLayer, GatedLayerCache
from .base import DEMO_SCHEDULE, AutoregressiveModel, ModelConfig, Preset


@dataclass
class GatedPixelCNNConfig(ModelConfig):
    n_layers: int = option(15, "gated layers, the first one included")
    hidden: int = option(128, "p: gated maps per stack and layer")
    kernel_size: int = option(3, "k of every layer after the first ([1], ImageNet: 5)")
    input_kernel_size: int | None = option(None, "k of the first layer; None: kernel_size")
    skip_channels: int | None = option(None, "maps of each skip connection; None: hidden")
    output_hidden: int | None = option(None, "maps of the two 1x1 output layers; None: 2 * hidden")

    def __post_init__(self):
        super().__post_init__()
        raise_problems(
            [
                positive_int("n_layers", self.n_layers),
                positive_int("hidden", self.hidden),
                odd_positive("kernel_size", self.kernel_size),
                odd_positive("input_kernel_size", self.input_kernel_size, optional=True),
            ]
        )


class GatedPixelCNNCache:
    """Cached generation state of a ``GatedPixelCNN`` (the protocol of ``sampling.cached_generate``).

    One ``GatedLayerCache`` per layer, each writing into the next one's
    inputs and into the summed skips. Step (row, col, group g) runs group g's
    units at one pixel through every layer's horizontal stack and the output
    layers; ``finish_row`` runs every vertical stack on the completed row. The
    known rows above ``start_row`` go through ``finish_row`` only: no later
    step reads their horizontal stacks. x is the scaled image [B, C, H, W].
    """

    def __init__(self, model: GatedPixelCNN, x: torch.Tensor, h: torch.Tensor | None, start_row: int):
        batch, channels, height, width = x.shape
        self.skips = x.new_zeros(batch, model.output.hidden.in_channels)  # this pixel's summed skips, by group
        after = None
        self.layers = []
        for layer in reversed(model.layers):  # each layer needs the one it feeds
            after = GatedLayerCache(
                layer, h, batch=batch, height=height, width=width, like=x, after=after, skips=self.skips
            )
            self.layers.insert(0, after)
        self.output = PointOutputLayers(model.output, batch=batch, like=x)
        image = self.layers[0]
        # The image's current row [B, W + k//2, C]: one view per (column, channel) for the drawn values.
        self.values = [
            [image.row_input[:, col + image.half, channel] for channel in range(channels)] for col in range(width)
        ]
        for row in range(start_row):
            image.row_input[:, image.half :] = x[:, :, row].transpose(1, 2)
            self.finish_row(row)

    def finish_row(self, row: int) -> None:
        """Row ``row`` of the image is complete: every layer's vertical stack on it, feeding the next layer's."""
        for layer in self.layers:
            layer.finish_row(row)

    def step(self, row: int, col: int, group: int) -> torch.Tensor:
        """Group ``group``'s units at (row, col) through every layer -> its head parameters [B, P]."""
        for layer in self.layers:
            layer.step(col, group)
        return self.output(self.skips, group)

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        """The drawn (scaled) value [B] of ``channel`` at (row, col) enters the first layer's input row."""
        self.values[col][channel].copy_(value)


class GatedPixelCNN(AutoregressiveModel):
    """Gated PixelCNN of [1], conditional when built with num_classes or cond_dim."""

    name = "gated_pixelcnn"
    config_class = GatedPixelCNNConfig

    def __init__(self, config: GatedPixelCNNConfig):
        super().__init__(config)
        channels = self.image_shape[0]
        skip = config.skip_channels or config.hidden
        common = dict(color_channels=channels, cond_channels=self.cond_channels, spatial_cond=config.spatial_cond)
        self.layers = nn.ModuleList(
            [
                GatedLayer(
                    channels,
                    config.hidden,
                    skip,
                    kernel_size=config.input_kernel_size or config.kernel_size,
                    first=True,
                    **common,
                )
            ]
            + [
                GatedLayer(config.hidden, config.hidden, skip, kernel_size=config.kernel_size, first=False, **common)
                for _ in range(config.n_layers - 1)
            ]
        )
        self.output = OutputLayers(
            skip, config.output_hidden or 2 * config.hidden, self.head.out_channels, color_channels=channels
        )

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        vertical, horizontal, skips = x, x, 0.0
        for layer in self.layers:
            vertical, horizontal, skip = layer(vertical, horizontal, h)  # [B, p, H, W] x2, [B, s, H, W]
            skips = skips + skip
        return self.output(skips)  # [B, C * P, H, W]

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> GatedPixelCNNCache:
        """Cached generation: each activation computed once (``sampling.py``)."""
        return GatedPixelCNNCache(self, x, h, start_row)


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "gated-mnist": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(1, 28, 28), levels=2, n_layers=10, hidden=128, kernel_size=3),
        "binarized MNIST, Bernoulli output; size ours: 10 gated layers of 128 maps, 3x3",
    ),
    "gated-cifar10": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=15, hidden=128, kernel_size=5),
        "Gated PixelCNN, CIFAR-10 (3.03 bits/dim in the paper); the paper does not "
        "state this model's size: depth and width of the PixelRNN paper's CIFAR-10 "
        "PixelCNN, 5x5 filters of its ImageNet model",
    ),
    "gated-imagenet32": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=20, hidden=384, kernel_size=5),
        "Gated PixelCNN paper, ImageNet 32x32: 20 layers, 384 units, 5x5 (3.83 bits/dim)",
    ),
    "gated-imagenet64": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(3, 64, 64), levels=256, n_layers=20, hidden=384, kernel_size=5),
        "Gated PixelCNN paper, ImageNet 64x64: 20 layers, 384 units, 5x5 (3.57 bits/dim)",
    ),
    "conditional-imagenet32": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=20, hidden=384, kernel_size=5, num_classes=1000),
        "Conditional PixelCNN paper, ImageNet 32x32 class-conditional",
    ),
    "gated-demo": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(1, 28, 28), levels=2, num_classes=10, n_layers=4, hidden=32, kernel_size=5),
        "ours: the class-conditional model of pixelcnn demo (binarized mnist5k, "
        "trained with pixelcnn.train.config.DEMO_SCHEDULE)",
        schedule=dict(DEMO_SCHEDULE, class_conditional=True),
    ),
    "tiny-gated": Preset(
        GatedPixelCNN.name,
        dict(image_shape=(1, 8, 8), levels=2, n_layers=3, hidden=8),
        "a few thousand parameters, for tests and smoke runs",
    ),
}
