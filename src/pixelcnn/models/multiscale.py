"""Multi-Scale PixelRNN (van den Oord, Kalchbrenner, Kavukcuoglu, 2016 [1], §3.6).

Two PixelRNNs. A *small* one models the s x s image x_s; a
*large* one models the n x n image given x_s, which a small up-convolutional
network maps to c maps of size n x n that enter every large-model layer
through an unmasked 1x1 convolution, added to its input-to-state map. Both
read the condition h, if any. The small image is a deterministic subsample
of x: every ``factor``-th pixel of every ``factor``-th row, starting at the
first (28 x 28 -> 14 x 14 for factor 2)::

    x [B, C, n, n] ----------------------------------------> large PixelRNN --> params off the grid
      |                                                        ^ every layer
      +-> x_s = x[:, :, ::f, ::f] --> up-conv net [B, c, n, n] + (1x1, unmasked)
                |
                +-> small PixelRNN -----------------------------------------> params on the grid

The likelihood. Because the pixels of x_s *are* pixels of x, the model is an
autoregressive model of x in one fixed order: first the grid pixels (those
of x_s) in raster order, then the other pixels in raster order::

    log p(x) = log p_small(x_s) + sum over pixel-channels (c, i, j) off the grid of
               log p_large(x_cij | x before (c, i, j) in raster order, x_s)

It is exact and sums to one over all images (``tests/models/test_multiscale.py``
enumerates them). The large model's outputs at grid pixels are not used:
those values are already given by x_s. (Adding log p_small(x_s) to the large
model's log-likelihood of *every* pixel would score the grid pixels twice and
would not be a normalized distribution of x.) ``forward`` returns, at the
grid pixels, the small model's parameters and elsewhere the large model's,
so ``log_prob`` is the base class's, unchanged; entry (c, i, j) depends
only on what comes before it in the order above, not on raster order.

Sampling follows the same order (``generation_order``, which the generic
loops of ``sampling.py`` walk; ``MultiScaleCache`` for ``method="fast"``): the
small image first, then the rest. ``complete`` keeps the given top rows and
draws the unknown grid pixels from the small model given the known ones, then
the remaining pixels. NOTE: that is exact
given the known grid pixels; it ignores what the known *off-grid* pixels of
the top rows say about the unknown grid pixels (an exact completion would
need the posterior over all small images, a sum over exponentially many).

NOTE: unlike the paper, which does not say how the likelihood of the pair is
combined nor give the up-convolutional network's shape: the likelihood is the
one above; the up-convolutional network is 3x3 conv - ReLU - transposed conv
(kernel and stride ``factor``) - ReLU - 3x3 conv.

[1] A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural
    Networks. ICML 2016. arXiv:1601.06759.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..fields import at_least, odd_positive, one_of, option, positive_int, raise_problems
from .base import AutoregressiveModel, Preset
from .pixelrnn import LAYERS, PixelRNNCache, PixelRNNConfig, PixelRNNNetwork


@dataclass
class MultiScaleConfig(PixelRNNConfig):
    layer: str = option("diagonal_bilstm", 'LSTM layer of both models: "diagonal_bilstm" or "row_lstm"')
    factor: int = option(2, "n / s: x_s is every factor-th pixel of every factor-th row (28 -> 14)")
    n_layers: int = option(7, "LSTM layers of the large model (ours: the paper's MNIST depth)")
    hidden: int = option(16, "its h (ours: the paper's MNIST width)")
    small_n_layers: int | None = option(None, "LSTM layers of the small model; None: n_layers")
    small_hidden: int | None = option(None, "its h; None: hidden")
    context_channels: int = option(16, "c: maps of the up-convolved small image read by every large layer")
    kernel_size: int | None = option(None, "Row LSTM only: width of its convolutions; None: 3")

    def __post_init__(self):
        super().__post_init__()
        raise_problems([one_of("layer", self.layer, LAYERS)])
        if self.kernel_size is not None and self.layer != "row_lstm":
            raise ValueError(
                f"kernel_size applies to layer='row_lstm' only, got kernel_size={self.kernel_size} "
                f"with layer={self.layer!r}"
            )
        raise_problems(
            [
                odd_positive("kernel_size", self.kernel_size, optional=True),
                at_least("factor", self.factor, 2),
                positive_int("small_n_layers", self.small_n_layers, optional=True),
                positive_int("small_hidden", self.small_hidden, optional=True),
                positive_int("context_channels", self.context_channels),
            ]
        )
        if (self.small_hidden or self.hidden) < self.image_shape[0]:
            raise ValueError(
                f"small_hidden must be at least the {self.image_shape[0]} colour channels, got {self.small_hidden}"
            )


class MultiScaleCache:
    """Cached generation state of a ``MultiScalePixelRNN``, driven in its ``generation_order``.

    The grid pixels (those of x_s) come first: the small model's
    ``PixelRNNCache`` draws them, in small-image coordinates. At the first
    pixel off the grid the small image is complete: the large model's cache
    is built with the context it gives, and walks the image in raster order,
    drawing the pixels off the grid and reading the grid pixels it passes
    (``read_pixel``) -- each activation of both models computed once. x is
    the scaled image [B, C, H, W]; it keeps every drawn value.
    """

    def __init__(self, model: MultiScalePixelRNN, x: torch.Tensor, h: torch.Tensor | None, start_row: int):
        self.model, self.x, self.h, self.start_row = model, x, h, start_row
        self.factor = model.factor
        self.small = PixelRNNCache(
            model.small, model.small_image(x), model.small_condition(h), math.ceil(start_row / self.factor)
        )  # its rows >= start_row are unknown
        self.large: PixelRNNCache | None = None  # built once x_s is complete
        self.large_next = (start_row, 0)  # its next pixel in raster order

    def on_grid(self, row: int, col: int) -> bool:
        return row % self.factor == 0 and col % self.factor == 0

    def step(self, row: int, col: int, channel: int) -> torch.Tensor:
        if self.on_grid(row, col):
            return self.small.step(row // self.factor, col // self.factor, channel)
        self._read_grid_until(row, col)
        return self.large.step(row, col, channel)

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        self.x[:, channel, row, col] = value
        if self.on_grid(row, col):
            self.small.write_value(row // self.factor, col // self.factor, channel, value)
        else:
            self.large.write_value(row, col, channel, value)

    def finish_row(self, row: int) -> None:
        """The order leaves row ``row``: a row of x_s is complete, or the large model's row."""
        if self.large is None:
            self.small.finish_row(row // self.factor)
        else:
            self._read_grid_until(row + 1, 0)

    def _read_grid_until(self, row: int, col: int) -> None:
        """Advance the large model to (row, col) in raster order, reading the grid pixels on the way."""
        if self.large is None:
            context = self.model.context(self.model.small_image(self.x))  # [B, c, H, W]
            self.large = PixelRNNCache(self.model.large, self.x, self.h, self.start_row, context=context)
        width = self.model.image_shape[2]
        i, j = self.large_next
        while (i, j) < (row, col):
            if self.on_grid(i, j):
                self.large.read_pixel(i, j, self.x[:, :, i, j])
            j += 1
            if j == width:
                self.large.finish_row(i)
                i, j = i + 1, 0
        self.large_next = (i, j)


class MultiScalePixelRNN(AutoregressiveModel):
    """Multi-Scale PixelRNN of [1]: a small-image PixelRNN and a large one conditioned on it."""

    name = "multiscale_pixelrnn"
    config_class = MultiScaleConfig

    def __init__(self, config: MultiScaleConfig):
        super().__init__(config)
        channels, height, width = self.image_shape
        self.factor = f = config.factor
        kernel_size = (config.kernel_size or 3) if config.layer == "row_lstm" else None
        common = dict(
            color_channels=channels,
            out_channels=self.head.out_channels,
            input_kernel_size=config.input_kernel_size,
            residual=config.residual,
            kernel_size=kernel_size,
            skip_channels=config.skip_channels,
            output_hidden=config.output_hidden,
            cond_channels=self.cond_channels,
            spatial_cond=config.spatial_cond,
        )
        self.small = PixelRNNNetwork(
            config.layer,
            n_layers=config.small_n_layers or config.n_layers,
            hidden=config.small_hidden or config.hidden,
            **common,
        )
        c = config.context_channels
        self.upsample = nn.Sequential(  # [B, C, s, s] -> [B, c, f*s, f*s]
            nn.Conv2d(channels, c, 3, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c, c, f, stride=f),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
        )
        self.large = PixelRNNNetwork(
            config.layer, n_layers=config.n_layers, hidden=config.hidden, context_channels=c, **common
        )

    # ---------------------------------------------------------------- the two scales
    def small_image(self, x: torch.Tensor) -> torch.Tensor:
        """x_s: [B, C, H, W] -> [B, C, ceil(H/f), ceil(W/f)], every f-th pixel of every f-th row."""
        return x[:, :, :: self.factor, :: self.factor]

    def small_condition(self, h: torch.Tensor | None) -> torch.Tensor | None:
        """The condition at the small scale: a spatial map m(h) is subsampled like the image."""
        return self.small_image(h) if h is not None and h.dim() == 4 else h

    def context(self, small_x: torch.Tensor) -> torch.Tensor:
        """Scaled x_s [B, C, s, s] -> the large model's context [B, c, H, W]."""
        height, width = self.image_shape[1:]
        return self.upsample(small_x)[:, :, :height, :width]

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        small_x = self.small_image(x)  # [B, C, s, s]
        out = self.large(x, h, self.context(small_x))  # [B, C * P, H, W]
        out[:, :, :: self.factor, :: self.factor] = self.small(small_x, self.small_condition(h))
        return out

    # ---------------------------------------------------------------- sampling
    def generation_order(self, start_row: int) -> list[tuple[int, int]]:
        """The pixels (row, col) to draw, in the model's order: the grid first, then the rest."""
        height, width, f = *self.image_shape[1:], self.factor
        grid = [(i, j) for i in range(start_row, height) for j in range(width) if i % f == 0 and j % f == 0]
        rest = [(i, j) for i in range(start_row, height) for j in range(width) if i % f or j % f]
        return grid + rest

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> MultiScaleCache:
        """Cached generation in ``generation_order``: the small model's cache, then the large one's."""
        return MultiScaleCache(self, x, h, start_row)


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "multiscale-mnist": Preset(
        MultiScalePixelRNN.name,
        dict(
            image_shape=(1, 28, 28),
            levels=2,
            layer="diagonal_bilstm",
            factor=2,
            n_layers=7,
            hidden=16,
            context_channels=16,
        ),
        "Multi-Scale PixelRNN on binarized MNIST: a 14x14 model, then the 28x28 one "
        "given it; both 7-layer Diagonal BiLSTMs, h = 16 (our choice: the paper gives "
        "no multi-scale MNIST model)",
    ),
    "tiny-multiscale": Preset(
        MultiScalePixelRNN.name,
        dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4, input_kernel_size=3, context_channels=4),
        "a few thousand parameters, for tests and smoke runs",
    ),
}
