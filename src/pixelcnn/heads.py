"""Output distributions: what a network's last layer means.

A head knows how many channels the network must produce for it, how to turn
them into the distribution's parameters, and how to score and sample integer
images with them. Every conditional is an exact discrete distribution, so
``log_prob`` is an exact log-likelihood; no dequantization anywhere.

Parameter layout (the public ``forward`` contract):
- ``CategoricalHead``: logits [B, C, levels, H, W], a softmax over the levels
  of each channel.
- ``BernoulliHead``: logits [B, C, 1, H, W] of p(x = 1), for binary images.
- ``LogisticMixtureHead``: [B, C, 3K, H, W], per channel K mixture logits,
  K means and K log scales of a mixture of discretized logistics (PixelCNN++,
  Salimans et al., ICLR 2017 [1]); ``couple_channels`` builds these from the
  PixelCNN++ layout, where the K components are shared by a pixel's channels.

The network's output channels are laid out channel by channel (all of R's
outputs, then G's, then B's), which is the order of the colour groups of the
masks, so each channel's parameters come from units of its own group.

[1] T. Salimans, A. Karpathy, X. Chen, D. P. Kingma. PixelCNN++: Improving the
    PixelCNN with Discretized Logistic Mixture Likelihood and Other
    Modifications. ICLR 2017. arXiv:1701.05517.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HEADS = ("auto", "categorical", "bernoulli", "logistic_mixture")

# The mixture head's parameters are clamped to these ranges before use (log_prob, probabilities and
# sample alike, so the distribution scored is the one sampled). Log scales: a scale e^-7 ~ 0.0009 is
# a quarter of a bin of 256 levels on [-1, 1] (the bin then holds over 95% of the component), e^7 ~ 1100
# spreads a component almost evenly over the grid; the reference code clamps at -7 too. Means: a mean
# beyond +-1000 (the grid is [-1, 1]) puts every finite bin into a tail; the bound keeps
# (edge - mean) / scale finite for any finite input, where float32 would overflow to inf.
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 7.0
MEAN_LIMIT = 1000.0


def _uniform(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Draw on the CPU when the generator lives there, so that a CPU generator
    # gives the same images on any device.
    device = generator.device if generator is not None else like.device
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return u if u.device == like.device else u.to(like.device)


def _invert_cdf(cdf: torch.Tensor, levels: int, generator: torch.Generator | None) -> torch.Tensor:
    """cdf [..., L] (float64, non-decreasing, last entry about 1) -> int64 [...]: the value whose bin holds a uniform.

    One uniform per value (not Gumbel noise per level) keeps the draw stable:
    probabilities equal up to rounding give the same sample, so the cached and
    the naive sampler, whose floats differ in the last bits, draw the same images.
    """
    u = _uniform(cdf.shape[:-1], cdf, generator).unsqueeze(-1) * cdf[..., -1:]
    return (cdf < u).sum(-1).clamp_(max=levels - 1)


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

    def sample(
        self, logits: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """logits [..., L] -> int64 samples [...], by inverting the CDF with one uniform each."""
        return _invert_cdf(F.softmax(logits.double() / temperature, dim=-1).cumsum(-1), self.levels, generator)


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

    def sample(
        self, logits: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """logits [..., 1] -> int64 samples [...] in {0, 1}."""
        logits = logits.squeeze(-1).double()
        # At temperature 1 the division changes nothing; skipped, it is one call less per cached step.
        p_one = torch.sigmoid(logits if temperature == 1 else logits / temperature)
        u = _uniform(p_one.shape, p_one, generator)
        return (u < p_one).long()


# ------------------------------------------------------------------ discretized logistic mixture
def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(-d)) for d > 0, accurate for small and large d (Maechler 2012, "Accurately
    computing log(1 - exp(-|a|))").

    Each branch is evaluated on its own range only (the input clamped), so the
    branch ``where`` does not take has a finite gradient: a NaN there would
    leak into the gradient as 0 * NaN.
    """
    log2 = math.log(2.0)
    small = torch.log(-torch.expm1(-d.clamp(max=log2)))
    large = torch.log1p(-torch.exp(-d.clamp(min=log2)))
    return torch.where(d <= log2, small, large)


def _upper_edge(values: torch.Tensor, levels: int, dtype: torch.dtype) -> torch.Tensor:
    """The upper edge of each value's bin on the input scale [-1, 1]: (2v + 1) / (levels - 1) - 1.

    Value v sits at v * 2 / (levels - 1) - 1 (``AutoregressiveModel.scale_input``); its bin
    reaches halfway to the next one. The lower edge of v is the upper edge of v - 1, computed by
    this same expression, so neighbouring bins share their edge bit for bit.
    """
    return (2 * values + 1).to(dtype) / (levels - 1) - 1.0


def _clamped(means: torch.Tensor, log_scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(means, 1 / scales) of the components, in the ranges every use of them shares."""
    return means.clamp(-MEAN_LIMIT, MEAN_LIMIT), torch.exp(-log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))


def _log_weights(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """The mixture's log weights: log softmax over ``dim``, floored at the lowest float.

    Logits further apart than the float range (3.4e38 in float32) give a weight of exactly 0, whose
    log is -inf; the floor keeps every value a caller sees finite (the weight stays 0 to float precision).
    """
    return F.log_softmax(logits, dim=dim).clamp_min(torch.finfo(logits.dtype).min)


def discretized_logistic_log_mass(
    values: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, levels: int
) -> torch.Tensor:
    """log P(value) under one discretized logistic per entry (shapes broadcast): the logistic's mass of the bin.

    values: integers 0..levels-1; means and log scales on the input scale [-1, 1], clamped to
    [-MEAN_LIMIT, MEAN_LIMIT] and [LOG_SCALE_MIN, LOG_SCALE_MAX]. The bin of value v is
    [lower, upper] = edges halfway to its neighbours; the lowest bin takes the left tail and the
    highest the right tail, so the masses of all levels sum to 1, for any ``levels`` >= 2.

    With a = (upper - mean) / scale and b = (lower - mean) / scale, the mass is
    sigmoid(a) - sigmoid(b), whose log is computed as
    log1mexp(a - b) - softplus(-a) - softplus(b): finite for every finite input (no density
    fallback: the reference code's substitute for masses below 1e-5 is not a probability).
    The end bins drop the terms of their missing edge: log sigmoid(a) = -softplus(-a) for the
    lowest, log(1 - sigmoid(b)) = -softplus(b) for the highest.
    """
    dtype = means.dtype
    means, inv_scales = _clamped(means, log_scales)
    upper = (_upper_edge(values, levels, dtype) - means) * inv_scales  # a
    lower = (_upper_edge(values - 1, levels, dtype) - means) * inv_scales  # b, a's value for v - 1
    # a - b is the bin's width in units of the scale, 2 / (levels - 1) / scale. Far out in a tail
    # (|a| huge) a - b loses its digits in rounding, down to 0 and log1mexp(0) = -inf; there the
    # mass is below float precision anyway, and half the true width keeps the log finite.
    width = torch.maximum(upper - lower, inv_scales * (1.0 / (levels - 1)))
    first, last = values == 0, values == levels - 1
    zero = upper.new_zeros(())
    return (
        torch.where(first | last, zero, _log1mexp(width))
        - torch.where(last, zero, F.softplus(-upper))
        - torch.where(first, zero, F.softplus(lower))
    )


class LogisticMixtureHead:
    """A mixture of K discretized logistics per channel (PixelCNN++ [1], §2.1), exact for any ``levels``.

    Parameters [B, C, 3K, H, W], per channel: ``[0:K]`` mixture logits (unnormalized log weights),
    ``[K:2K]`` component means on the model's input scale [-1, 1] (value v at v * 2 / (levels - 1) - 1),
    ``[2K:3K]`` log scales. p(value) = sum_k softmax(logits)_k * (mass of the value's bin under
    logistic k): an exact distribution over 0..levels-1 (``discretized_logistic_log_mass``).
    Channels are independent given these parameters; the PixelCNN++ dependence of G on R and of
    B on R and G enters through ``couple_channels``, or, in a masked network, through the masks.

    Temperature T (``sample``): the mixture logits are divided by T and every component's scale is
    multiplied by T (its log scale clamped to the same range after); T = 1 samples the model exactly,
    T < 1 sharpens both the choice of component and the component itself.
    """

    name = "logistic_mixture"

    def __init__(self, channels: int, levels: int, n_mixtures: int = 10):
        self.channels, self.levels, self.n_mixtures = channels, levels, n_mixtures
        self.params_per_channel = 3 * n_mixtures
        self.out_channels = channels * self.params_per_channel

    def params(self, out: torch.Tensor) -> torch.Tensor:  # [B, C*3K, H, W] -> [B, C, 3K, H, W]
        return out.unflatten(1, (self.channels, self.params_per_channel))

    def _split(self, params: torch.Tensor, dim: int):
        """(logits, means, log scales), each K entries of ``dim``."""
        k = self.n_mixtures
        return params.narrow(dim, 0, k), params.narrow(dim, k, k), params.narrow(dim, 2 * k, k)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params [B, C, 3K, H, W], x [B, C, H, W] int -> log p per pixel-channel [B, C, H, W]."""
        logits, means, log_scales = self._split(_at_least_float32(params), 2)  # [B, C, K, H, W] each
        log_mass = discretized_logistic_log_mass(x.long().unsqueeze(2), means, log_scales, self.levels)
        return torch.logsumexp(_log_weights(logits, 2) + log_mass, dim=2)

    def _log_probabilities(self, params: torch.Tensor) -> torch.Tensor:
        """params [..., 3K] -> log p(value) [..., L] for every value."""
        logits, means, log_scales = self._split(params, -1)  # [..., K] each
        values = torch.arange(self.levels, device=params.device)  # [L]
        log_mass = discretized_logistic_log_mass(
            values, means.unsqueeze(-1), log_scales.unsqueeze(-1), self.levels
        )  # [..., K, L]
        return torch.logsumexp(_log_weights(logits, -1).unsqueeze(-1) + log_mass, dim=-2)

    def probabilities(self, params: torch.Tensor, dim: int = 2) -> torch.Tensor:
        """params with the 3K parameters along ``dim`` -> p(value) along ``dim`` (levels entries), float64."""
        probs = self._log_probabilities(params.double().movedim(dim, -1)).exp()
        return probs.movedim(-1, dim)

    def cdf(self, params: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """params [..., 3K] -> P(x <= value) [..., L] (the last entry 1), float64, at ``temperature``.

        The mixture's CDF at each bin's upper edge, sum_k w_k sigmoid((edge - mean_k) / scale_k):
        a few torch calls where the masses take a few dozen, which counts in sampling, one
        pixel-channel at a time. Its differences are ``probabilities`` (at temperature 1).
        """
        logits, means, log_scales = self._split(params.double(), -1)  # [..., K] each
        weights = F.softmax(logits / temperature, dim=-1).unsqueeze(-2)  # [..., 1, K]
        means, inv_scales = _clamped(means, log_scales + math.log(temperature))
        edges = _upper_edge(torch.arange(self.levels - 1, device=params.device), self.levels, means.dtype)
        below = torch.sigmoid((edges - means.unsqueeze(-1)) * inv_scales.unsqueeze(-1))  # [..., K, L-1]
        cdf = (weights @ below).squeeze(-2)  # [..., L-1]
        return torch.cat([cdf, cdf.new_ones(cdf.shape[:-1] + (1,))], dim=-1)

    def sample(
        self, params: torch.Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """params [..., 3K] -> int64 samples [...] on the grid 0..levels-1, by inverting the exact discrete CDF."""
        return _invert_cdf(self.cdf(params, temperature), self.levels, generator)


def couple_channels(raw: torch.Tensor, x_scaled: torch.Tensor, levels: int) -> torch.Tensor:
    """The PixelCNN++ joint mixture over a pixel's channels -> each channel's exact conditional mixture.

    PixelCNN++ [1] (§2.2) shares K components across the C channels of a pixel and makes a
    channel's mean depend linearly on the channels before it:
    p(x_0, ..., x_{C-1}) = sum_k pi_k prod_c L(x_c | mu_{c,k} + sum_{c'<c} coef_{c,c',k} x_c', s_{c,k}),
    L a discretized logistic. Channel c's conditional given the channels before it is again a
    K-mixture: weights pi_k prod_{c'<c} L(x_c' | k) (the posterior of k given the earlier channels),
    means mu_{c,k} + sum_{c'<c} coef_{c,c',k} x_c', scales s_{c,k}. Their chain is the joint.

    Args:
        raw: [B, K * (1 + 2C + C(C-1)/2), *spatial], in blocks of K: the mixture logits; the
            means of channels 0..C-1; their log scales; the coefficients, squashed here by tanh,
            of the pairs (c, c') = (1, 0), (2, 0), (2, 1), ... (c = 1..C-1, c' = 0..c-1).
            For C = 3 that is 10K (the paper's 100 maps for K = 10); for C = 1, 3K.
        x_scaled: the image on the input scale [B, C, *spatial] (value v at v * 2 / (levels - 1) - 1);
            only channels before c enter channel c's parameters. It must hold the grid values
            precisely enough to round back to integers (float32 does for up to 2^20 levels).
        levels: values per channel.

    Returns:
        per-channel parameters [B, C, 3K, *spatial] for ``LogisticMixtureHead`` (at least float32).
    """
    channels = x_scaled.shape[1]
    blocks = 1 + 2 * channels + channels * (channels - 1) // 2
    if raw.dim() != x_scaled.dim() or raw.shape[1] % blocks or raw.shape[1] == 0:
        raise ValueError(
            f"couple_channels expects raw [B, K * {blocks}, ...] for {channels} channels "
            f"(x_scaled [B, C, ...] with the same dimensions), got raw {list(raw.shape)} "
            f"and x_scaled {list(x_scaled.shape)}"
        )
    raw = _at_least_float32(raw).unflatten(1, (blocks, -1))  # [B, blocks, K, *S]
    logits, means = raw[:, 0], raw[:, 1 : 1 + channels]  # [B, K, *S], [B, C, K, *S]
    log_scales = raw[:, 1 + channels : 1 + 2 * channels]  # [B, C, K, *S]
    coefficients = torch.tanh(raw[:, 1 + 2 * channels :])  # [B, C(C-1)/2, K, *S]
    x = x_scaled.to(raw.dtype).unsqueeze(2)  # [B, C, 1, *S]
    values = ((x_scaled.double() + 1) * ((levels - 1) / 2)).round().long().unsqueeze(2)  # [B, C, 1, *S]
    log_weights = _log_weights(logits, 1)  # log pi_k
    channel_logits, channel_means, pair = [], [], 0
    for c in range(channels):
        mean = means[:, c]
        for earlier in range(c):
            mean = mean + coefficients[:, pair] * x[:, earlier]
            pair += 1
        channel_logits.append(log_weights)
        channel_means.append(mean)
        if c + 1 < channels:  # the posterior of k given channels 0..c, for channel c + 1
            log_weights = log_weights + discretized_logistic_log_mass(values[:, c], mean, log_scales[:, c], levels)
    return torch.cat([torch.stack(channel_logits, 1), torch.stack(channel_means, 1), log_scales], dim=2)


def make_head(channels: int, levels: int, kind: str = "auto", *, n_mixtures: int = 10):
    """The output distribution ``kind`` (one of ``HEADS``) for ``levels`` values per channel.

    ``auto``: Bernoulli for 2 levels, else categorical. ``logistic_mixture``: ``n_mixtures``
    discretized logistics per channel (``LogisticMixtureHead``). ValueError for an unknown kind,
    ``n_mixtures`` < 1 or a Bernoulli head on more than 2 levels.
    """
    check_head(kind, levels, n_mixtures)
    if kind == "auto":
        kind = "bernoulli" if levels == 2 else "categorical"
    if kind == "bernoulli":
        return BernoulliHead(channels)
    if kind == "logistic_mixture":
        return LogisticMixtureHead(channels, levels, n_mixtures)
    return CategoricalHead(channels, levels)


def check_head(kind, levels: int, n_mixtures) -> None:
    """ValueError naming what was expected unless ``make_head`` can build this head."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; expected one of {', '.join(map(repr, HEADS))}")
    if isinstance(n_mixtures, bool) or not isinstance(n_mixtures, int) or n_mixtures < 1:
        raise ValueError(f"n_mixtures must be a positive integer, got {n_mixtures!r}")
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    if kind == "bernoulli" and levels != 2:
        raise ValueError(f"a Bernoulli head models binary images (levels=2), got levels={levels}")
