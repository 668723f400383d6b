"""PixelCNN auto-encoder (van den Oord et al., 2016 [1], §2.4 / SPEC §6).

A convolutional encoder maps the image x to a bottleneck vector h; the
decoder is a conditional Gated PixelCNN p(x | h) (vector or spatial
conditioning). Encoder and decoder are trained end to end on the exact NLL
-log p(x | encode(x)), so training it is ordinary ``pixelcnn train``.

Because the decoder models the low-level pixel statistics, h is free to carry
the abstract content: decodings are sharp, varied images that keep the
input's high-level content, where an MSE auto-encoder gives a blurry mean.

    model = pixelcnn.build("pixelcnn_ae", image_shape=(1, 28, 28), levels=2, bottleneck=10)
    h = model.encode(x)                      # [B, 10]
    nll = -model.log_prob(x)                 # -log p(x | encode(x)), nats per image
    imgs = model.sample(8, cond=h[:8])       # decode given codes
    recon = model.reconstruct(x[:4], n=5)    # [4, 5, C, H, W]: five decodings of each image

Encoder: three stride-2 3x3 convolutions (channels e, 2e, 2e) with ReLUs,
then a linear map to the bottleneck. NOTE: the paper does not describe its
encoder beyond "convolutional"; this one is ours.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..nn.conditioning import ConditionEncoder
from ..sampling import GatedPixelCNNCache
from .base import AutoregressiveModel, ModelConfig, _describe
from .gated import GatedPixelCNN, GatedPixelCNNConfig


@dataclass
class PixelCNNAutoEncoderConfig(ModelConfig):
    bottleneck: int = 10                    # size of the code h (the paper: 10 and 100)
    encoder_channels: int = 32              # e: the encoder's convolutions have e, 2e, 2e maps
    n_layers: int = 10                      # the decoder's gated layers
    hidden: int = 64                        # the decoder's p
    kernel_size: int = 3                    # the decoder's k
    input_kernel_size: int | None = None    # the decoder's first k; None: kernel_size
    # spatial_cond (inherited): the code enters the decoder as a map m(h) instead of a vector

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes is not None or self.cond_dim is not None:
            raise ValueError("pixelcnn_ae is conditioned on its own code; num_classes and cond_dim must be None")
        for name in ("bottleneck", "encoder_channels", "n_layers", "hidden", "kernel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")


class ConvEncoder(nn.Module):
    """Image (scaled to [-1, 1]) [B, C, H, W] -> code [B, bottleneck]."""

    def __init__(self, image_shape, channels: int, bottleneck: int):
        super().__init__()
        in_channels, height, width = image_shape
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1), nn.ReLU(),
        )
        # Each stride-2 convolution with padding 1 maps n to ceil(n / 2).
        size = [math.ceil(s / 8) for s in (height, width)]
        self.to_code = nn.Linear(2 * channels * size[0] * size[1], bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.convs(x).flatten(1))                      # [B, bottleneck]


class PixelCNNAutoEncoder(AutoregressiveModel):
    """Encoder + conditional Gated PixelCNN decoder, trained on the exact NLL."""

    name = "pixelcnn_ae"
    config_class = PixelCNNAutoEncoderConfig

    def __init__(self, config: PixelCNNAutoEncoderConfig):
        super().__init__(config)
        self.encoder = ConvEncoder(self.image_shape, config.encoder_channels, config.bottleneck)
        self.decoder = GatedPixelCNN(GatedPixelCNNConfig(
            image_shape=self.image_shape, levels=self.levels, cond_dim=config.bottleneck,
            spatial_cond=config.spatial_cond, spatial_channels=config.spatial_channels,
            n_layers=config.n_layers, hidden=config.hidden, kernel_size=config.kernel_size,
            input_kernel_size=config.input_kernel_size,
        ))

    def build_condition_encoder(self, config):
        # The model itself takes no user condition: the code comes from the encoder and enters
        # the decoder through the decoder's own condition encoder (spatial_cond applies there).
        return ConditionEncoder()

    # The decoder defines the distribution; its condition encoder maps codes (m(h) if spatial).
    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        return self.decoder.network(x, h)

    @property
    def cond_channels(self) -> int:
        return self.decoder.cond_channels

    def encode_condition(self, cond: torch.Tensor | None) -> torch.Tensor | None:
        return self.decoder.encode_condition(cond)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code h of each image: [B, bottleneck]."""
        x = self.check_images(x)
        return self.encoder(self.scale_input(x))

    def condition_for(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor | None:
        """Score x given its own code encode(x), unless a code is passed explicitly."""
        code = self.encoder(self.scale_input(x)) if cond is None else cond
        return self.encode_condition(code)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | h) in nats per image [B], with h = encode(x) unless codes [B, bottleneck] are given.

        With h = encode(x) this is the auto-encoder's reconstruction likelihood,
        not a marginal likelihood log p(x): h is computed from x itself.
        """
        return super().log_prob(x, cond)

    def check_cond(self, cond, batch: int) -> torch.Tensor | None:
        """Codes: None (encode the images) or a float tensor [batch, bottleneck]."""
        if cond is None:
            return None
        expected = f"codes: a float tensor [{batch}, {self.config.bottleneck}] (e.g. model.encode(x))"
        if not isinstance(cond, torch.Tensor) or not cond.dtype.is_floating_point \
                or tuple(cond.shape) != (batch, self.config.bottleneck):
            raise ValueError(f"expected cond = {expected}, got {_describe(cond)}")
        if not torch.isfinite(cond).all():
            raise ValueError("cond contains NaN or infinite values")
        return cond.to(self._device())

    def _broadcast_cond(self, cond, n: int):
        if isinstance(cond, torch.Tensor) and cond.dim() == 1:
            return cond.unsqueeze(0).expand(n, -1)
        return cond

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Decode codes ``cond`` [n, bottleneck] (one code [bottleneck] is repeated): int64 [n, C, H, W]."""
        if cond is None:
            raise ValueError(f"pixelcnn_ae decodes given codes: pass cond = a float tensor "
                             f"[{n}, {self.config.bottleneck}], e.g. model.encode(x)")
        return super().sample(n, cond, **kwargs)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, known_rows: int, cond: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Keep the top ``known_rows`` of x, sample the rest given codes (default: encode(x) of the whole x)."""
        if cond is None:
            cond = self.encode(x)
        return super().complete(x, known_rows, cond, **kwargs)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, n: int = 1, **kwargs) -> torch.Tensor:
        """n decodings of each image's code: int64 [B, n, C, H, W] (the paper's Figure 6)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {_describe(n)}")
        codes = self.encode(x)                                              # [B, bottleneck]
        samples = self.sample(codes.shape[0] * n, codes.repeat_interleave(n, dim=0), **kwargs)
        return samples.view(codes.shape[0], n, *self.image_shape)

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> GatedPixelCNNCache:
        return GatedPixelCNNCache(self.decoder, x, h, start_row)
