"""The MSE auto-encoder: the baseline of the PixelCNN auto-encoder (van den Oord et al., 2016 [1], §2.4, §3.4).

Not an autoregressive model and not a likelihood model, so it is not in the
registry of those (``registry.MODELS``) but in ``registry.BASELINES``:
``pixelcnn.build("mse_ae")``, ``pixelcnn.load`` and ``pixelcnn train --model
mse_ae`` work as for any model. What training minimizes and evaluation reports
is its ``loss(x)`` (``loss_name = "mse"``), the mean squared error per image.

    mse = pixelcnn.build("mse_ae", image_shape=(1, 28, 28), levels=2, bottleneck=10)
    error = mse.loss(x)                      # [B]: squared error per pixel-channel, intensities in [0, 1]
    means = mse.reconstruct(x)               # [B, C, H, W] floats in [0, 1]: one (blurry) decoding per image

The same encoder as ``pixelcnn_ae`` (``autoencoder.ConvEncoder``); the decoder
is the deconvolutional network m(h) of the spatial conditioning ([1] §2.3;
``nn/conditioning.py``: a linear map to an H/4 x W/4 map, two stride-2
transposed convolutions, a crop to H x W), then ReLU and a 3x3 convolution to
the image channels. NOTE: [1] compares with "a convolutional auto-encoder
trained with MSE" without describing it; this one is ours.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..fields import option, positive_int, raise_problems
from ..nn.conditioning import ConditionEncoder
from .autoencoder import ConvEncoder, code_line
from .base import AutoregressiveModel, ModelConfig, Preset, _describe


@dataclass
class MSEAutoEncoderConfig(ModelConfig):
    bottleneck: int = option(10, "size of the code h")
    encoder_channels: int = option(32, "e: the same encoder as pixelcnn_ae (e, 2e, 2e maps)")
    decoder_channels: int = option(64, "maps of the deconvolutional decoder")

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes is not None or self.cond_dim is not None or self.spatial_cond:
            raise ValueError("mse_ae takes no condition; num_classes and cond_dim must be None, spatial_cond False")
        if (self.head, self.n_mixtures) != (ModelConfig.head, ModelConfig.n_mixtures):
            raise ValueError("mse_ae has no output distribution; head and n_mixtures must keep their defaults")
        raise_problems(
            [positive_int(name, getattr(self, name)) for name in ("bottleneck", "encoder_channels", "decoder_channels")]
        )


class MSEAutoEncoder(nn.Module):
    """Encoder, deconvolutional decoder, trained on the mean squared error ([1] Figure 6's baseline).

    It has no ``log_prob`` and no ``sample``. Training minimizes ``loss(x)``,
    the squared error per pixel-channel between x and its decoding,
    intensities scaled to [0, 1]; the decoding is one image, the (blurry) mean
    of what the code allows. The decoder's output is linear (``forward``, what
    the loss compares) and clamped to [0, 1] only as an image (``decode``,
    ``reconstruct``). NOTE: with a sigmoid output the first MNIST run
    saturated: the sparse digits pushed every pre-activation below -800, the
    gradient vanished and training stopped at the all-black image.
    """

    name = "mse_ae"
    config_class = MSEAutoEncoderConfig
    loss_name = "mse"  # what ``loss`` returns; training and evaluation report it by this name

    # The same input checks and scaling as every model: they read only image_shape, levels and the parameters.
    check_images = AutoregressiveModel.check_images
    scale_input = AutoregressiveModel.scale_input
    _device = AutoregressiveModel._device

    def __init__(self, config: MSEAutoEncoderConfig):
        super().__init__()
        self.config = config
        self.image_shape = tuple(config.image_shape)
        self.levels = int(config.levels)
        channels, height, width = self.image_shape
        self.encoder = ConvEncoder(self.image_shape, config.encoder_channels, config.bottleneck)
        self.decoder = nn.ModuleDict(
            {
                "upsample": ConditionEncoder(
                    cond_dim=config.bottleneck,
                    spatial=True,
                    image_size=(height, width),
                    spatial_channels=config.decoder_channels,
                ),
                "to_image": nn.Sequential(nn.ReLU(), nn.Conv2d(config.decoder_channels, channels, 3, padding=1)),
            }
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code h of each image: [B, bottleneck]."""
        return self.encoder(self.scale_input(self.check_images(x)))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, bottleneck] -> decoded images, intensities in [0, 1] (x / (levels - 1)): float [B, C, H, W]."""
        return self._decoder_output(codes).clamp(0, 1)

    def _decoder_output(self, codes: torch.Tensor) -> torch.Tensor:
        if (
            not isinstance(codes, torch.Tensor)
            or not codes.dtype.is_floating_point
            or codes.dim() != 2
            or codes.shape[1] != self.config.bottleneck
        ):
            raise ValueError(
                f"expected codes: a float tensor [B, {self.config.bottleneck}] (e.g. model.encode(x)), "
                f"got {_describe(codes)}"
            )
        dtype = next(self.parameters()).dtype
        feature_map = self.decoder["upsample"](codes.to(self._device()), dtype=dtype)  # [B, S, H, W]
        return self.decoder["to_image"](feature_map)  # [B, C, H, W]

    def forward(self, x: torch.Tensor, cond: None = None) -> torch.Tensor:
        """The decoder's output for encode(x), not clamped (what the loss compares with x / (levels - 1))."""
        if cond is not None:
            raise ValueError(f"mse_ae takes no condition; got cond={_describe(cond)}, expected None")
        return self._decoder_output(self.encode(x))

    def loss(self, x: torch.Tensor, cond: None = None) -> torch.Tensor:
        """Mean squared error per image [B]: mean over pixel-channels, intensities scaled to [0, 1]."""
        x = self.check_images(x)
        target = x.to(next(self.parameters()).dtype) / (self.levels - 1)
        return (self(x, cond) - target).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoding of each image, intensities in [0, 1]: float [B, C, H, W]."""
        return self(x).clamp(0, 1)

    @torch.no_grad()
    def interpolate(self, x_from: torch.Tensor, x_to: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decodings of ``steps`` codes from encode(x_from) to encode(x_to), in [0, 1]: float [steps, C, H, W]."""
        return self.decode(code_line(self.encode(x_from), self.encode(x_to), steps))

    @torch.no_grad()
    def preview_rows(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """What training draws at each evaluation: each image, then its decoding rounded to a level: [B, 2, C, H, W]."""
        x = self.check_images(x)
        rounded = (self.reconstruct(x) * (self.levels - 1)).round().long()
        return torch.stack([x.long(), rounded], dim=1)

    def log_prob(self, x, cond=None):
        raise ValueError(
            "mse_ae has no likelihood: it is trained and evaluated on model.loss(x), the mean squared "
            "error (compare pixelcnn_ae's NLL with an NLL, and its pictures with this model's)"
        )

    def sample(self, n, cond=None, **kwargs):
        raise ValueError("mse_ae does not sample: it decodes codes deterministically, model.decode(codes)")

    def complete(self, x, known_rows, cond=None, **kwargs):
        raise ValueError(
            "mse_ae does not complete images: it is not autoregressive (model.reconstruct(x) decodes "
            "the whole image from its code)"
        )

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, levels={self.levels}"


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "mse-mnist": Preset(
        MSEAutoEncoder.name,
        dict(image_shape=(1, 28, 28), levels=2, bottleneck=10),
        "the paper's baseline: ae-mnist's encoder, a deconvolutional decoder, trained on the MSE",
    ),
    "mse-photo-patches": Preset(
        MSEAutoEncoder.name,
        dict(image_shape=(3, 32, 32), levels=256, bottleneck=100, encoder_channels=64, decoder_channels=96),
        "the paper's baseline: ae-photo-patches' encoder, a deconvolutional decoder, trained on the MSE",
    ),
    "tiny-mse": Preset(
        MSEAutoEncoder.name,
        dict(image_shape=(1, 8, 8), levels=2, bottleneck=4, encoder_channels=4, decoder_channels=8),
        "a few thousand parameters, for tests and smoke runs",
    ),
}
