"""Output distributions: what a network's last layer means.

A head knows how many channels the network must produce for it, how to turn
them into the distribution's parameters, and how to score and sample integer
images with them. Every conditional is an exact discrete distribution, so
``log_prob`` is an exact log-likelihood; no dequantization anywhere.

Parameter layout (the public ``forward`` contract):
- ``CategoricalHead``: logits [B, C, levels, H, W], a softmax over the levels
  of each channel.
- ``BernoulliHead``: logits [B, C, 1, H, W] of p(x = 1), for binary images.

The network's output channels are laid out channel by channel (all of R's
outputs, then G's, then B's), which is the order of the colour groups of the
masks, so each channel's parameters come from units of its own group.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Draw on the CPU when the generator lives there, so that a CPU generator
    # gives the same images on any device.
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return u.to(like.device)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    # Under mixed precision the logits may be half precision; score in float32
    # (or in float64 when the model runs in float64, as the exactness tests do).
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class CategoricalHead:
    """A ``levels``-way softmax per channel (256 for 8-bit images; any n >= 2)."""

    name = "categorical"

    def __init__(self, channels: int, levels: int):
        self.channels, self.levels = channels, levels
        self.out_channels = channels * levels
        self.params_per_channel = levels

    def params(self, out: torch.Tensor) -> torch.Tensor:  # [B, C*L, H, W] -> [B, C, L, H, W]
        b, _, h, w = out.shape
        return out.view(b, self.channels, self.levels, h, w)

    def log_prob(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """logits [B, C, L, H, W], x [B, C, H, W] int -> log p per pixel-channel [B, C, H, W]."""
        log_probs = F.log_softmax(_at_least_float32(logits), dim=2)
        return log_probs.gather(2, x.long().unsqueeze(2)).squeeze(2)

    def probabilities(self, logits: torch.Tensor, dim: int = 2) -> torch.Tensor:
        """logits [B, C, L, H, W] (levels along ``dim``) -> p(value), float64, summing to 1 over the levels."""
        return F.softmax(logits.double(), dim=dim)

    def sample(self, logits: torch.Tensor, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """logits [..., L] -> int64 samples [...], by inverting the CDF with one uniform each.

        One uniform per value (not Gumbel noise per level) keeps the draw
        stable: logits equal up to rounding give the same sample.
        """
        probs = F.softmax(logits.double() / temperature, dim=-1)
        cdf = probs.cumsum(-1)
        u = _uniform(cdf.shape[:-1], cdf, generator).unsqueeze(-1) * cdf[..., -1:]
        return (cdf < u).sum(-1).clamp_(max=self.levels - 1)


class BernoulliHead:
    """One logit per channel for binary images: p(x = 1) = sigmoid(logit)."""

    name = "bernoulli"

    def __init__(self, channels: int):
        self.channels, self.levels = channels, 2
        self.out_channels = channels
        self.params_per_channel = 1

    def params(self, out: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C, 1, H, W]
        return out.unsqueeze(2)

    def log_prob(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """logits [B, C, 1, H, W], x [B, C, H, W] in {0, 1} -> [B, C, H, W]."""
        logits = _at_least_float32(logits.squeeze(2))
        return -F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")

    def probabilities(self, logits: torch.Tensor, dim: int = 2) -> torch.Tensor:
        """logits [B, C, 1, H, W] (the logit along ``dim``) -> p(0), p(1) [B, C, 2, H, W], float64."""
        p_one = torch.sigmoid(logits.double())
        return torch.cat([1 - p_one, p_one], dim=dim)

    def sample(self, logits: torch.Tensor, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """logits [..., 1] -> int64 samples [...] in {0, 1}."""
        p_one = torch.sigmoid(logits.squeeze(-1).double() / temperature)
        u = _uniform(p_one.shape, p_one, generator)
        return (u < p_one).long()


def make_head(channels: int, levels: int, kind: str = "auto"):
    """The head for ``levels`` values per channel: Bernoulli for 2 (``auto``), else categorical."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    if kind == "auto":
        kind = "bernoulli" if levels == 2 else "categorical"
    if kind == "bernoulli":
        if levels != 2:
            raise ValueError(f"a Bernoulli head models binary images (levels=2), got levels={levels}")
        return BernoulliHead(channels)
    if kind == "categorical":
        return CategoricalHead(channels, levels)
    raise ValueError(f"unknown head {kind!r}; expected 'auto', 'categorical' or 'bernoulli'")
