"""PixelCNN auto-encoder (van den Oord et al., 2016 [1], §2.4 and §3.4).

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
    row = model.interpolate(x[:1], x[1:2], 8)    # [8, C, H, W]: [1] Figure 5, one seed for the row

Encoder: three stride-2 3x3 convolutions (channels e, 2e, 2e) with ReLUs,
then a linear map to the bottleneck. NOTE: the paper does not describe its
encoder beyond "convolutional"; this one is ours.

Options beyond the paper's auto-encoder: ``normalize_code`` puts codes on the
unit sphere and ``freeze_encoder`` keeps the encoder out of training; with
both, the encoder is a fixed embedding network and the model is the paper's
PixelCNN conditioned on an embedding of the image (``pixelcnn.identity``:
the triplet-trained identity space of its portrait experiment).

The baseline of [1] Figure 6, an auto-encoder trained on the mean squared
error, is not a likelihood model: it lives in ``baseline.py`` (``mse_ae``).

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..fields import option, positive_int, raise_problems
from ..nn.conditioning import ConditionEncoder
from .base import AutoregressiveModel, ModelConfig, Preset, _describe
from .gated import GatedPixelCNN, GatedPixelCNNConfig


@dataclass
class PixelCNNAutoEncoderConfig(ModelConfig):
    bottleneck: int = option(10, "size of the code h (the paper: 10 and 100)")
    encoder_channels: int = option(32, "e: the encoder's convolutions have e, 2e, 2e maps")
    n_layers: int = option(10, "gated layers of the decoder (a Gated PixelCNN), its first included")
    hidden: int = option(64, "p: the decoder's gated maps per stack and layer")
    kernel_size: int = option(3, "k: the decoder's filter size in every layer after the first")
    input_kernel_size: int | None = option(None, "the decoder's first-layer k; None: kernel_size")
    normalize_code: bool = option(False, "put codes on the unit sphere (an embedding, e.g. a triplet network)")
    freeze_encoder: bool = option(False, "do not train the encoder (a pre-trained embedding copied into it)")
    # spatial_cond (inherited): the code enters the decoder as a map m(h) instead of a vector

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes is not None or self.cond_dim is not None:
            raise ValueError("pixelcnn_ae is conditioned on its own code; num_classes and cond_dim must be None")
        raise_problems(
            [
                positive_int(name, getattr(self, name))
                for name in ("bottleneck", "encoder_channels", "n_layers", "hidden", "kernel_size")
            ]
        )


class ConvEncoder(nn.Module):
    """Image (scaled to [-1, 1]) [B, C, H, W] -> code [B, bottleneck], of unit length with ``normalize``."""

    def __init__(self, image_shape, channels: int, bottleneck: int, *, normalize: bool = False):
        super().__init__()
        self.normalize = normalize
        in_channels, height, width = image_shape
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        # Each stride-2 convolution with padding 1 maps n to ceil(n / 2).
        size = [math.ceil(s / 8) for s in (height, width)]
        self.to_code = nn.Linear(2 * channels * size[0] * size[1], bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.to_code(self.convs(x).flatten(1))  # [B, bottleneck]
        return F.normalize(code, dim=1) if self.normalize else code


class PixelCNNAutoEncoder(AutoregressiveModel):
    """Encoder + conditional Gated PixelCNN decoder, trained end to end on the exact NLL ([1] §2.4).

    The decoder defines the distribution p(x | h); this class only adds where h
    comes from. ``log_prob(x)`` is log p(x | encode(x)), the auto-encoder's
    reconstruction likelihood (not a marginal log p(x): h is computed from x
    itself); ``log_prob(x, codes)`` scores x given codes [B, bottleneck].
    """

    name = "pixelcnn_ae"
    config_class = PixelCNNAutoEncoderConfig

    def __init__(self, config: PixelCNNAutoEncoderConfig):
        super().__init__(config)
        self.encoder = ConvEncoder(
            self.image_shape, config.encoder_channels, config.bottleneck, normalize=config.normalize_code
        )
        self.encoder.requires_grad_(not config.freeze_encoder)
        self.decoder = GatedPixelCNN(
            GatedPixelCNNConfig(
                image_shape=self.image_shape,
                levels=self.levels,
                cond_dim=config.bottleneck,
                spatial_cond=config.spatial_cond,
                spatial_channels=config.spatial_channels,
                n_layers=config.n_layers,
                hidden=config.hidden,
                kernel_size=config.kernel_size,
                input_kernel_size=config.input_kernel_size,
                head=config.head,
                n_mixtures=config.n_mixtures,
            )
        )

    def build_condition_encoder(self, config):
        # No condition of its own: codes enter through the decoder's condition encoder (m(h) if spatial).
        return ConditionEncoder()

    # -------------------------------------------------- the decoder is the model, given codes
    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        return self.decoder.network(x, h)

    def encode_condition(self, codes: torch.Tensor | None) -> torch.Tensor | None:
        return self.decoder.encode_condition(codes)

    def check_cond(self, codes, batch: int) -> torch.Tensor | None:
        """Codes: None (encode the images) or a float tensor [batch, bottleneck], checked by the decoder."""
        return None if codes is None else self.decoder.check_cond(codes, batch)

    def _broadcast_cond(self, codes, n: int):
        return self.decoder._broadcast_cond(codes, n)

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int):
        return self.decoder.fast_cache(x, h, start_row)

    # -------------------------------------------------- where the codes come from
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code h of each image: [B, bottleneck]."""
        return self.encoder(self.scale_input(self.check_images(x)))

    def condition_for(self, x: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor | None:
        """Score x given its own code encode(x), unless codes are passed explicitly."""
        return self.encode_condition(self.encoder(self.scale_input(x)) if codes is None else codes)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Decode codes ``cond`` [n, bottleneck] (one code [bottleneck] is repeated): int64 [n, C, H, W]."""
        if cond is None:
            raise ValueError(
                f"pixelcnn_ae decodes given codes: pass cond = a float tensor "
                f"[{n}, {self.config.bottleneck}], e.g. model.encode(x)"
            )
        return super().sample(n, cond, **kwargs)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, known_rows: int, cond: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Keep the top ``known_rows`` of x, sample the rest given codes (default: encode(x) of the whole x)."""
        return super().complete(x, known_rows, self.encode(x) if cond is None else cond, **kwargs)

    # -------------------------------------------------- the paper's figures
    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, n: int = 1, **kwargs) -> torch.Tensor:
        """n decodings of each image's code: int64 [B, n, C, H, W] ([1] Figure 6)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {_describe(n)}")
        codes = self.encode(x)  # [B, bottleneck]
        samples = self.sample(codes.shape[0] * n, codes.repeat_interleave(n, dim=0), **kwargs)
        return samples.view(codes.shape[0], n, *self.image_shape)

    @torch.no_grad()
    def interpolate(
        self, x_from: torch.Tensor, x_to: torch.Tensor, steps: int = 8, *, seed: int = 0, **kwargs
    ) -> torch.Tensor:
        """One decoding per code on the line from encode(x_from) to encode(x_to): int64 [steps, C, H, W].

        [1] Figure 5. x_from and x_to are one image each, [1, C, H, W].
        Every step is drawn with a generator seeded with ``seed``: the same
        uniforms drive each step, so the row varies only through the code.
        ``kwargs`` go to ``sample`` (temperature, method).
        """
        return self.decode_line(self.encode(x_from), self.encode(x_to), steps, seed=seed, **kwargs)

    @torch.no_grad()
    def decode_line(
        self, code_from: torch.Tensor, code_to: torch.Tensor, steps: int = 8, *, seed: int = 0, **kwargs
    ) -> torch.Tensor:
        """One decoding per code on the line from code_from [1, D] to code_to [1, D]: int64 [steps, C, H, W].

        Each step is drawn with a generator seeded with ``seed`` (see ``interpolate``).
        """
        codes = code_line(code_from, code_to, steps, normalize=self.config.normalize_code)
        return torch.cat(
            [self.sample(1, code[None], generator=torch.Generator().manual_seed(seed), **kwargs) for code in codes]
        )  # [steps, C, H, W]

    @torch.no_grad()
    def preview_rows(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """What training draws at each evaluation: each image, then 3 decodings of its code: [B, 4, C, H, W]."""
        x = self.check_images(x)
        return torch.cat([x[:, None].long(), self.reconstruct(x, 3, generator=generator)], dim=1)


def code_line(code_from: torch.Tensor, code_to: torch.Tensor, steps: int, *, normalize: bool = False) -> torch.Tensor:
    """``steps`` codes evenly spaced from code_from [1, D] to code_to [1, D], ends included: [steps, D].

    With ``normalize`` (codes on the unit sphere) each point is projected back
    onto the sphere: the decoder was only trained on unit-length codes.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (both ends are included), got {_describe(steps)}")
    if code_from.shape[0] != 1 or code_to.shape[0] != 1:
        raise ValueError(
            f"interpolate between one image and one image: expected x_from and x_to of shape "
            f"[1, C, H, W], got batches of {code_from.shape[0]} and {code_to.shape[0]}"
        )
    t = torch.linspace(0, 1, steps, dtype=code_from.dtype, device=code_from.device)[:, None]  # [steps, 1]
    codes = (1 - t) * code_from + t * code_to  # [steps, D]
    return F.normalize(codes, dim=1) if normalize else codes


# ------------------------------------------------------------------------------------------- presets
PRESETS = {
    "ae-mnist": Preset(
        PixelCNNAutoEncoder.name,
        dict(image_shape=(1, 28, 28), levels=2, bottleneck=10, n_layers=8, hidden=64),
        "PixelCNN auto-encoder, binarized MNIST, 10-dimensional code; size ours",
    ),
    "ae-photo-patches": Preset(
        PixelCNNAutoEncoder.name,
        dict(image_shape=(3, 32, 32), levels=256, bottleneck=100, n_layers=10, hidden=96, encoder_channels=64),
        "PixelCNN auto-encoder on 32x32 colour patches, 100-dimensional code "
        "(the paper: m = 10 or 100 on 32x32 ImageNet patches); size ours",
    ),
    "tiny-ae": Preset(
        PixelCNNAutoEncoder.name,
        dict(image_shape=(1, 8, 8), levels=2, bottleneck=4, n_layers=2, hidden=8, encoder_channels=4),
        "a few thousand parameters, for tests and smoke runs",
    ),
}
