"""PixelCNN: a stack of masked convolutions (van den Oord et al., 2016 [1]).

Architecture (SPEC §2; [1] Table 1 and Figure 5)::

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
- a condition (SPEC §5) enters as a bias on the input layer and on every
  block's k x k convolution, the PixelCNN analogue of the gated layer's V^T h;
- the two output layers have ``output_hidden`` maps (default 2h), a width the
  papers do not state for this model.

The stacked masked convolutions have a *blind spot* above and to the right of
each pixel that no depth removes; ``tests/models/test_causality.py`` checks it
is exactly where the theory puts it. The Gated PixelCNN (``gated.py``) fixes it.

[1] A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural
    Networks. ICML 2016. arXiv:1601.06759.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..nn.conditioning import ConditionBias
from ..nn.conv import MaskedConv2d, OutputLayers
from ..sampling import PixelCNNCache
from .base import AutoregressiveModel, ModelConfig


@dataclass
class PixelCNNConfig(ModelConfig):
    n_layers: int = 15                  # residual blocks (paper, CIFAR-10: 15)
    hidden: int = 128                   # h: the blocks carry 2h maps, their inner convolutions h
    kernel_size: int = 3                # the blocks' masked convolution (paper: 3x3)
    input_kernel_size: int = 7          # the first, mask-A convolution (paper: 7x7)
    output_hidden: int | None = None    # maps of the two 1x1 output layers; None: 2 * hidden

    def __post_init__(self):
        super().__post_init__()
        for name in ("n_layers", "hidden", "kernel_size", "input_kernel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.kernel_size % 2 == 0 or self.input_kernel_size % 2 == 0:
            raise ValueError(f"kernel sizes must be odd, got {self.kernel_size} and {self.input_kernel_size}")


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
        out = self.masked(torch.relu(self.reduce(torch.relu(x))))          # [B, h, H, W]
        if self.cond is not None:
            out = out + self.cond(h)
        return x + self.expand(torch.relu(out))                             # the one residual add


class PixelCNN(AutoregressiveModel):
    """PixelCNN of [1]: masked convolutions, residual blocks, exact likelihood."""

    name = "pixelcnn"
    config_class = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig):
        super().__init__(config)
        channels = self.image_shape[0]
        width = 2 * config.hidden
        spatial = config.spatial_cond
        self.input_conv = MaskedConv2d(channels, width, config.input_kernel_size,
                                       mask_type="A", color_channels=channels)
        self.input_cond = ConditionBias(self.cond_channels, width, spatial=spatial) if self.cond_channels else None
        self.blocks = nn.ModuleList(
            ResidualBlock(config.hidden, config.kernel_size, channels, self.cond_channels, spatial)
            for _ in range(config.n_layers)
        )
        self.output = OutputLayers(width, config.output_hidden or width, self.head.out_channels,
                                   color_channels=channels)

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        out = self.input_conv(x)                                            # [B, 2h, H, W]
        if self.input_cond is not None:
            out = out + self.input_cond(h)
        for block in self.blocks:
            out = block(out, h)                                             # [B, 2h, H, W]
        return self.output(out)                                             # [B, C * P, H, W]

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> PixelCNNCache:
        """Cached generation: each activation computed once (``sampling.py``)."""
        return PixelCNNCache(self, x, h, start_row)


# ------------------------------------------------------------------------------------------- presets
from .base import Preset  # noqa: E402  (presets close the file; the import stays beside them)

PRESETS = {
    "pixelcnn-cifar10": Preset(PixelCNN.name, dict(image_shape=(3, 32, 32), levels=256, n_layers=15, hidden=128),
                               "PixelRNN paper, CIFAR-10: 15-layer PixelCNN, h = 128 (3.14 bits/dim)"),
    "pixelcnn-mnist": Preset(PixelCNN.name, dict(image_shape=(1, 28, 28), levels=2, n_layers=7, hidden=32),
                             "binarized MNIST, Bernoulli output; size ours (the paper does not give it)"),
    "pixelcnn-6x32-k5": Preset(PixelCNN.name, dict(image_shape=(1, 28, 28), levels=2, n_layers=6, hidden=32,
                                                   kernel_size=5),
                               "ours: the best of the 10-minute CPU training runs on binarized mnist5k "
                               "(benchmarks/train_curves.py); trains in minutes on any bundled data set",
                               any_data=True),
    "tiny-pixelcnn": Preset(PixelCNN.name, dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=8,
                                                input_kernel_size=3),
                            "a few thousand parameters, for tests and smoke runs"),
}
