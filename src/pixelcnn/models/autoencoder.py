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
    row = model.interpolate(x[:1], x[1:2], 8)    # [8, C, H, W]: the paper's Figure 5, one seed for the row

    mse = pixelcnn.build("mse_ae", image_shape=(1, 28, 28), levels=2, bottleneck=10)
    error = mse.loss(x)                      # [B]: squared error per pixel-channel, intensities in [0, 1]
    means = mse.reconstruct(x)               # [B, C, H, W] floats in [0, 1]

Encoder: three stride-2 3x3 convolutions (channels e, 2e, 2e) with ReLUs,
then a linear map to the bottleneck. NOTE: the paper does not describe its
encoder beyond "convolutional"; this one is ours.

Options beyond the paper's auto-encoder: ``normalize_code`` puts codes on the
unit sphere and ``freeze_encoder`` keeps the encoder out of training; with
both, the encoder is a fixed embedding network and the model is the paper's
PixelCNN conditioned on an embedding of the image (``pixelcnn.embedding``:
the triplet-trained identity space of its portrait experiment).

The baseline of the paper's Figure 6, ``mse_ae`` (``MSEAutoEncoder``, at the
end of this file): the same encoder, a deconvolutional decoder, trained on the
mean squared error. It is not a likelihood model: it has ``loss(x)`` and
``loss_name = "mse"``, which ``pixelcnn train`` and ``evaluate`` use in place
of ``-log_prob``, and it decodes one (blurry) mean image per code.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.conditioning import ConditionEncoder
from .gated import GatedPixelCNNCache
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
    normalize_code: bool = False            # put codes on the unit sphere (an embedding, e.g. a triplet network)
    freeze_encoder: bool = False            # do not train the encoder (a pre-trained embedding copied into it)
    # spatial_cond (inherited): the code enters the decoder as a map m(h) instead of a vector

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes is not None or self.cond_dim is not None:
            raise ValueError("pixelcnn_ae is conditioned on its own code; num_classes and cond_dim must be None")
        for name in ("bottleneck", "encoder_channels", "n_layers", "hidden", "kernel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")


class ConvEncoder(nn.Module):
    """Image (scaled to [-1, 1]) [B, C, H, W] -> code [B, bottleneck], of unit length with ``normalize``."""

    def __init__(self, image_shape, channels: int, bottleneck: int, *, normalize: bool = False):
        super().__init__()
        self.normalize = normalize
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
        code = self.to_code(self.convs(x).flatten(1))                       # [B, bottleneck]
        return F.normalize(code, dim=1) if self.normalize else code


class PixelCNNAutoEncoder(AutoregressiveModel):
    """Encoder + conditional Gated PixelCNN decoder, trained on the exact NLL."""

    name = "pixelcnn_ae"
    config_class = PixelCNNAutoEncoderConfig

    def __init__(self, config: PixelCNNAutoEncoderConfig):
        super().__init__(config)
        self.encoder = ConvEncoder(self.image_shape, config.encoder_channels, config.bottleneck,
                                   normalize=config.normalize_code)
        self.encoder.requires_grad_(not config.freeze_encoder)
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

    @torch.no_grad()
    def interpolate(self, x_from: torch.Tensor, x_to: torch.Tensor, steps: int = 8, *, seed: int = 0,
                    **kwargs) -> torch.Tensor:
        """One decoding per code on the line from encode(x_from) to encode(x_to): int64 [steps, C, H, W].

        The paper's Figure 5. x_from and x_to are one image each, [1, C, H, W].
        Every step is drawn with a generator seeded with ``seed``: the same
        uniforms drive each step, so the row varies only through the code.
        ``kwargs`` go to ``sample`` (temperature, method).
        """
        codes = code_line(self.encode(x_from), self.encode(x_to), steps, normalize=self.config.normalize_code)
        return torch.cat([self.sample(1, code[None], generator=torch.Generator().manual_seed(seed), **kwargs)
                          for code in codes])                               # [steps, C, H, W]

    @torch.no_grad()
    def preview_rows(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """What training draws at each evaluation: each image, then 3 decodings of its code: [B, 4, C, H, W]."""
        x = self.check_images(x)
        return torch.cat([x[:, None].long(), self.reconstruct(x, 3, generator=generator)], dim=1)

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> GatedPixelCNNCache:
        return GatedPixelCNNCache(self.decoder, x, h, start_row)


def code_line(code_from: torch.Tensor, code_to: torch.Tensor, steps: int, *, normalize: bool = False) -> torch.Tensor:
    """``steps`` codes evenly spaced from code_from [1, D] to code_to [1, D], ends included: [steps, D].

    With ``normalize`` (codes on the unit sphere) each point is projected back
    onto the sphere: the decoder was only trained on unit-length codes.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (both ends are included), got {_describe(steps)}")
    if code_from.shape[0] != 1 or code_to.shape[0] != 1:
        raise ValueError(f"interpolate between one image and one image: expected x_from and x_to of shape "
                         f"[1, C, H, W], got batches of {code_from.shape[0]} and {code_to.shape[0]}")
    t = torch.linspace(0, 1, steps, dtype=code_from.dtype, device=code_from.device)[:, None]    # [steps, 1]
    codes = (1 - t) * code_from + t * code_to                                                   # [steps, D]
    return F.normalize(codes, dim=1) if normalize else codes


# ------------------------------------------------------------------------------ the MSE baseline
@dataclass
class MSEAutoEncoderConfig(ModelConfig):
    bottleneck: int = 10                    # size of the code h
    encoder_channels: int = 32              # e: the same encoder as pixelcnn_ae (e, 2e, 2e maps)
    decoder_channels: int = 64              # maps of the deconvolutional decoder

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes is not None or self.cond_dim is not None or self.spatial_cond:
            raise ValueError("mse_ae takes no condition; num_classes and cond_dim must be None, spatial_cond False")
        for name in ("bottleneck", "encoder_channels", "decoder_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")


class MSEAutoEncoder(nn.Module):
    """The paper's baseline: the same encoder, a deconvolutional decoder, trained on the mean squared error.

    Not an autoregressive model and not a likelihood: it has no ``log_prob``
    and no ``sample``. Training minimizes ``loss(x)``, the squared error per
    pixel-channel between x and its decoding, intensities scaled to [0, 1];
    the decoding is one image, the (blurry) mean of what the code allows.

    Decoder: the deconvolutional network m(h) of the spatial conditioning
    (``nn/conditioning.py``: a linear map to an H/4 x W/4 map, two stride-2
    transposed convolutions, a crop to H x W), then ReLU and a 3x3 convolution
    to the image channels. Its output is linear (``forward``, what the loss
    compares) and clamped to [0, 1] only as an image (``decode``,
    ``reconstruct``). NOTE: with a sigmoid output the first MNIST run
    saturated: the sparse digits pushed every pre-activation below -800, the
    gradient vanished and training stopped at the all-black image.
    """

    name = "mse_ae"
    config_class = MSEAutoEncoderConfig
    loss_name = "mse"                       # what ``loss`` returns: the training loop logs it under this name

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
        self.decoder = nn.ModuleDict({
            "upsample": ConditionEncoder(cond_dim=config.bottleneck, spatial=True, image_size=(height, width),
                                         spatial_channels=config.decoder_channels),
            "to_image": nn.Sequential(nn.ReLU(), nn.Conv2d(config.decoder_channels, channels, 3, padding=1)),
        })

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code h of each image: [B, bottleneck]."""
        return self.encoder(self.scale_input(self.check_images(x)))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, bottleneck] -> decoded images, intensities in [0, 1] (x / (levels - 1)): float [B, C, H, W]."""
        return self._decoder_output(codes).clamp(0, 1)

    def _decoder_output(self, codes: torch.Tensor) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor) or not codes.dtype.is_floating_point \
                or codes.dim() != 2 or codes.shape[1] != self.config.bottleneck:
            raise ValueError(f"expected codes: a float tensor [B, {self.config.bottleneck}] (e.g. model.encode(x)), "
                             f"got {_describe(codes)}")
        dtype = next(self.parameters()).dtype
        feature_map = self.decoder["upsample"](codes.to(self._device()), dtype=dtype)   # [B, S, H, W]
        return self.decoder["to_image"](feature_map)                                    # [B, C, H, W]

    def forward(self, x: torch.Tensor, cond: None = None) -> torch.Tensor:
        """The decoder's output for encode(x), not clamped (what the loss compares with x / (levels - 1))."""
        self._no_condition(cond)
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
        raise ValueError("mse_ae has no likelihood: it is trained and evaluated on model.loss(x), the mean squared "
                         "error (compare pixelcnn_ae's NLL with an NLL, and its pictures with this model's)")

    def sample(self, n, cond=None, **kwargs):
        raise ValueError("mse_ae does not sample: it decodes codes deterministically, model.decode(codes)")

    def complete(self, x, known_rows, cond=None, **kwargs):
        raise ValueError("mse_ae does not complete images: it is not autoregressive (model.reconstruct(x) decodes "
                         "the whole image from its code)")

    def _no_condition(self, cond) -> None:
        if cond is not None:
            raise ValueError(f"mse_ae takes no condition; got cond={_describe(cond)}, expected None")

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, levels={self.levels}"
