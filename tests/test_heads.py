"""The discretized logistic mixture head alone: exact masses, normalization, numerics, sampling, coupling."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelcnn.heads import (
    LOG_SCALE_MAX,
    LOG_SCALE_MIN,
    MEAN_LIMIT,
    CategoricalHead,
    LogisticMixtureHead,
    couple_channels,
    make_head,
)


def random_params(head, batch=2, spatial=(3, 4), dtype=torch.float64, seed=0):
    """Parameters [B, C, 3K, *spatial] with means spread over [-1.5, 1.5] and scales from a tenth of a bin to 4."""
    generator = torch.Generator().manual_seed(seed)
    k = head.n_mixtures
    shape = (batch, head.channels, k, *spatial)
    logits = 2 * torch.randn(shape, generator=generator, dtype=dtype)
    means = 3 * torch.rand(shape, generator=generator, dtype=dtype) - 1.5
    log_scales = math.log(0.1 / (head.levels - 1)) + (math.log(4 * (head.levels - 1)) + 2.3) * torch.rand(
        shape, generator=generator, dtype=dtype
    )
    return torch.cat([logits, means, log_scales], dim=2)


def every_value_log_prob(head, params):
    """log p of each value 0..L-1 at every pixel-channel through ``log_prob``: [L, B, C, *spatial]."""
    values = torch.arange(head.levels).view(-1, 1, 1, *[1] * (params.dim() - 3))
    x = values.expand(head.levels, params.shape[0], head.channels, *params.shape[3:])
    return torch.stack([head.log_prob(params, x[v]) for v in range(head.levels)])


def logistic_mass(upper, lower):
    """sigmoid(upper) - sigmoid(lower), from the side of 0 where the two are not both near 1 (no cancellation)."""
    right = (upper + lower) > 0
    return torch.where(
        right, torch.sigmoid(-lower) - torch.sigmoid(-upper), torch.sigmoid(upper) - torch.sigmoid(lower)
    )


def reference_probabilities(head, params):
    """p(value) [B, C, L, *spatial] from the definition, in float64: sum_k w_k (sigmoid(a) - sigmoid(b))."""
    k, levels = head.n_mixtures, head.levels
    params = params.double()
    weights = torch.softmax(params[:, :, :k], dim=2).unsqueeze(3)  # [B, C, K, 1, ...]
    means = params[:, :, k : 2 * k].clamp(-MEAN_LIMIT, MEAN_LIMIT).unsqueeze(3)
    scales = params[:, :, 2 * k :].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp().unsqueeze(3)
    edges = torch.tensor(
        [-math.inf] + [(2 * v + 1) / (levels - 1) - 1 for v in range(levels - 1)] + [math.inf], dtype=torch.float64
    ).view(-1, *[1] * (params.dim() - 3))  # [L + 1, 1, ...]
    standard = (edges - means) / scales  # [B, C, K, L + 1, ...]
    return (weights * logistic_mass(standard[:, :, :, 1:], standard[:, :, :, :-1])).sum(2)


# ------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("levels", [2, 3, 17, 256])
def test_probabilities_of_all_levels_sum_to_one(levels, channels, dtype, tolerance):
    head = make_head(channels, levels, "logistic_mixture", n_mixtures=5)
    params = random_params(head, dtype=dtype, seed=levels)
    total = every_value_log_prob(head, params).exp().sum(0)  # [B, C, H, W]
    assert (total - 1).abs().max() <= tolerance
    probs = head.probabilities(params)  # [B, C, L, H, W]
    assert probs.dtype == torch.float64 and probs.shape == (2, channels, levels, 3, 4)
    assert (probs.sum(2) - 1).abs().max() <= 1e-12


@pytest.mark.parametrize("levels", [2, 5, 256])
def test_masses_are_the_logistic_mass_of_each_bin(levels):
    """log_prob and probabilities agree with sigmoid(upper edge) - sigmoid(lower edge), tails in the end bins."""
    head = LogisticMixtureHead(3, levels, 4)
    params = random_params(head, seed=1)
    expected = reference_probabilities(head, params)  # [B, C, L, H, W]
    assert torch.allclose(head.probabilities(params), expected, rtol=1e-9, atol=1e-15)
    log_prob = every_value_log_prob(head, params).movedim(0, 2)  # [B, C, L, H, W]
    assert torch.allclose(log_prob.exp(), expected, rtol=1e-9, atol=1e-15)
    # The CDF that sampling inverts has these masses as its differences.
    cdf = head.cdf(params.movedim(2, -1))  # [B, C, H, W, L]
    masses = torch.diff(cdf, dim=-1, prepend=torch.zeros_like(cdf[..., :1])).movedim(-1, 2)
    assert torch.allclose(masses, expected, rtol=0, atol=1e-14)
    # The end bins hold their tails: a component far below the grid puts its mass on value 0.
    far = params.clone()
    far[:, :, 4:8], far[:, :, 8:12] = -30.0, -3.0  # means -30, scales 0.05
    assert torch.allclose(head.probabilities(far)[:, :, 0], torch.ones(()).double())


def test_probabilities_read_parameters_along_any_dim():
    # analysis.py passes [B, C, 3K, H, W] with dim=2; coding/codec.py passes rows [B, 3K] with dim=-1.
    head = LogisticMixtureHead(3, 9, 4)
    params = random_params(head, seed=2)
    grid = head.probabilities(params)  # [B, C, L, H, W]
    rows = head.probabilities(params[:, 1, :, 2, 3], dim=-1)  # [B, L]
    assert torch.equal(rows, grid[:, 1, :, 2, 3])


def test_ten_mixtures_score_like_a_256_way_categorical_of_their_bin_masses():
    head = LogisticMixtureHead(3, 256, 10)
    params = random_params(head, batch=4, spatial=(5, 6), seed=3)
    x = torch.randint(0, 256, (4, 3, 5, 6), generator=torch.Generator().manual_seed(3))
    categorical = CategoricalHead(3, 256)
    logits = head.probabilities(params).log()  # [B, C, 256, H, W]
    nll_categorical = -categorical.log_prob(logits, x).sum((1, 2, 3))
    assert torch.allclose(-head.log_prob(params, x).sum((1, 2, 3)), nll_categorical, rtol=0, atol=1e-6)
    # float32 parameters: the same per-image NLL to float32 precision.
    nll_float32 = -head.log_prob(params.float(), x).sum((1, 2, 3))
    assert nll_float32.dtype == torch.float32
    assert torch.allclose(nll_float32.double(), nll_categorical, rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------ numerics
FLOAT32_MAX = torch.finfo(torch.float32).max
EXTREMES = [0.0, 1e-30, -1e-30, 1.0, -1.0, 7.5, -7.5, 100.0, -100.0, 1e4, -1e4, 1e30, -1e30, FLOAT32_MAX, -FLOAT32_MAX]


def assert_finite_values_and_gradients(head, params, x):
    params = params.clone().requires_grad_(True)
    log_prob = head.log_prob(params, x)
    assert torch.isfinite(log_prob).all()
    assert (log_prob <= 1e-5).all()  # a probability is at most 1
    log_prob.sum().backward()
    assert torch.isfinite(params.grad).all()
    probs = head.probabilities(params.detach())
    assert torch.isfinite(probs).all() and (probs.sum(2) - 1).abs().max() < 1e-9


@pytest.mark.parametrize("levels", [2, 3, 256])
def test_no_nan_or_inf_for_extreme_parameters(levels):
    """Every combination of extreme logits, means and log scales, at every value (end bins included)."""
    head = LogisticMixtureHead(1, levels, 2)
    combos = torch.tensor(list(itertools.product(EXTREMES, repeat=3)), dtype=torch.float32)  # [N, 3]
    n = len(combos)
    # component 0 takes the extreme (logit, mean, log scale); component 1 a plain one.
    params = torch.stack(
        [combos[:, 0], torch.zeros(n), combos[:, 1], torch.zeros(n), combos[:, 2], torch.zeros(n)], dim=1
    )  # [N, 3K]
    for value in sorted({0, 1, levels // 2, levels - 1}):
        x = torch.full((n, 1, 1, 1), value)
        assert_finite_values_and_gradients(head, params.view(n, 1, 6, 1, 1), x)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.sampled_from(EXTREMES), st.floats(width=32, allow_nan=False, allow_infinity=False)),
        min_size=2 * 30,
        max_size=2 * 30,
    ),
    levels=st.sampled_from([2, 3, 256]),
    seed=st.integers(0, 2**16),
)
def test_no_nan_or_inf_on_a_fuzzed_batch(values, levels, seed):
    head = LogisticMixtureHead(3, levels, 3)
    params = torch.tensor(values[: 2 * 3 * 9], dtype=torch.float32).view(2, 3, 9, 1, 1)
    x = torch.randint(0, levels, (2, 3, 1, 1), generator=torch.Generator().manual_seed(seed))
    assert_finite_values_and_gradients(head, params, x)
    raw = torch.tensor(values, dtype=torch.float32).view(2, 30).requires_grad_(True)  # C = 3, K = 3
    coupled = couple_channels(raw, x[:, :, 0, 0] * (2 / (levels - 1)) - 1.0, levels)  # [2, 3, 9]
    assert torch.isfinite(coupled).all()
    log_prob = head.log_prob(coupled.view(2, 3, 9, 1, 1), x)
    assert torch.isfinite(log_prob).all()
    log_prob.sum().backward()
    assert torch.isfinite(raw.grad).all()


# ------------------------------------------------------------------------------------ sampling
def test_samples_are_on_the_grid_and_follow_the_probabilities():
    head = LogisticMixtureHead(1, 8, 3)
    row = torch.tensor([0.5, -0.3, 0.0, -0.6, 0.1, 0.7, -1.2, -0.8, -1.6], dtype=torch.float64)  # [3K]
    n = 20000
    samples = head.sample(row.expand(n, -1), generator=torch.Generator().manual_seed(0))
    assert samples.dtype == torch.int64 and samples.shape == (n,)
    assert 0 <= samples.min() and samples.max() <= 7
    expected = head.probabilities(row, dim=-1) * n
    assert expected.min() > 5  # chi-square applies to every bin
    observed = torch.bincount(samples, minlength=8).double()
    chi2 = ((observed - expected) ** 2 / expected).sum().item()
    assert chi2 < 24.3, f"chi-square {chi2:.1f} over 7 degrees of freedom (p < 0.001)"


def test_samples_are_reproducible_and_float32_rows_work():
    head = LogisticMixtureHead(3, 256, 10)
    params = random_params(head, batch=5, spatial=(), dtype=torch.float32).view(5, 3, 30)
    first = head.sample(params, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, head.sample(params, generator=torch.Generator().manual_seed(4)))
    assert first.shape == (5, 3) and 0 <= first.min() and first.max() <= 255


def test_temperature_divides_the_logits_and_multiplies_the_scales():
    head = LogisticMixtureHead(1, 8, 2)
    # Component 0 (logit 2) centred on value 2, component 1 (logit 0) on value 5; both scales 1.
    row = torch.tensor([2.0, 0.0, 2 * 2 / 7 - 1, 5 * 2 / 7 - 1, 0.0, 0.0], dtype=torch.float64)
    cold = head.sample(row.expand(500, -1), temperature=0.01, generator=torch.Generator().manual_seed(0))
    assert (cold == 2).all()  # the top component, and within it the mean's bin
    warm = head.sample(row.expand(500, -1), temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert len(warm.unique()) > 4


# ------------------------------------------------------------------------------------ coupling
def joint_log_prob(raw, colours, levels):
    """log p(x_0..x_{C-1}) of the PixelCNN++ joint mixture, straight from its definition, in float64.

    raw [K * (1 + 2C + C(C-1)/2)] in couple_channels' layout; colours [N, C] integers -> [N].
    """
    channels = colours.shape[1]
    blocks = raw.view(1 + 2 * channels + channels * (channels - 1) // 2, -1)  # [blocks, K]
    log_weights = torch.log_softmax(blocks[0], 0)
    means, log_scales = blocks[1 : 1 + channels], blocks[1 + channels : 1 + 2 * channels]
    coefficients = dict(
        zip([(c, e) for c in range(1, channels) for e in range(c)], torch.tanh(blocks[1 + 2 * channels :]))
    )
    x = colours.double() * 2 / (levels - 1) - 1  # [N, C]
    log_joint = log_weights.expand(len(colours), -1).clone()  # [N, K]
    for c in range(channels):
        mean = means[c] + sum((coefficients[c, e] * x[:, e : e + 1] for e in range(c)), torch.zeros(1))
        scale = log_scales[c].exp()
        upper = torch.where(
            colours[:, c : c + 1] == levels - 1, torch.tensor(math.inf), x[:, c : c + 1] + 1 / (levels - 1)
        )
        lower = torch.where(colours[:, c : c + 1] == 0, torch.tensor(-math.inf), x[:, c : c + 1] - 1 / (levels - 1))
        log_joint += torch.log(logistic_mass((upper - mean) / scale, (lower - mean) / scale))
    return torch.logsumexp(log_joint, 1)


@pytest.mark.parametrize("channels, levels", [(1, 6), (2, 5), (3, 5), (3, 2)])
def test_coupled_channels_chain_to_the_joint_mixture(channels, levels):
    k = 4
    blocks = 1 + 2 * channels + channels * (channels - 1) // 2
    generator = torch.Generator().manual_seed(channels * 10 + levels)
    raw = torch.randn(k * blocks, generator=generator, dtype=torch.float64)
    raw[k * (1 + channels) : k * (1 + 2 * channels)] = raw[k * (1 + channels) : k * (1 + 2 * channels)] * 0.5 - 1.5
    colours = torch.tensor(list(itertools.product(range(levels), repeat=channels)))  # [L^C, C]
    n = len(colours)
    x_scaled = colours.double() * 2 / (levels - 1) - 1
    params = couple_channels(raw.expand(n, -1), x_scaled, levels)  # [N, C, 3K]
    assert params.shape == (n, channels, 3 * k)
    head = LogisticMixtureHead(channels, levels, k)
    chain = head.log_prob(params.view(n, channels, 3 * k, 1, 1), colours.view(n, channels, 1, 1)).sum(1).view(n)
    assert torch.allclose(chain, joint_log_prob(raw, colours, levels), rtol=0, atol=1e-12)
    assert chain.exp().sum().item() == pytest.approx(1.0, abs=1e-12)


def test_coupling_keeps_spatial_dimensions_and_reads_only_earlier_channels():
    raw = torch.randn(2, 40, 3, 4, dtype=torch.float64)  # K = 4, C = 3
    x = torch.randint(0, 16, (2, 3, 3, 4)).double() * 2 / 15 - 1
    params = couple_channels(raw, x, 16)
    assert params.shape == (2, 3, 12, 3, 4)
    changed = x.clone()
    changed[:, 2] = -changed[:, 2]  # the last channel enters no channel's parameters
    assert torch.equal(couple_channels(raw, changed, 16), params)
    changed[:, 1] = -changed[:, 1]  # the middle one enters the last channel's only
    assert torch.equal(couple_channels(raw, changed, 16)[:, :2], params[:, :2])
    assert not torch.equal(couple_channels(raw, changed, 16)[:, 2], params[:, 2])


def test_coupling_refuses_a_raw_layout_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"raw \[B, K \* 10, \.\.\.\] for 3 channels"):
        couple_channels(torch.zeros(2, 31), torch.zeros(2, 3), 256)


# ------------------------------------------------------------------------------------ bad values
@pytest.mark.parametrize(
    "kind, levels, n_mixtures, message",
    [
        (
            "softmax",
            256,
            10,
            "unknown head 'softmax'; expected one of 'auto', 'categorical', 'bernoulli', 'logistic_mixture'",
        ),
        ("logistic_mixture", 256, 0, "n_mixtures must be a positive integer, got 0"),
        ("logistic_mixture", 256, 2.5, "n_mixtures must be a positive integer, got 2.5"),
        ("bernoulli", 3, 10, "a Bernoulli head models binary images (levels=2), got levels=3"),
        ("logistic_mixture", 1, 10, "levels must be >= 2, got 1"),
    ],
)
def test_bad_head_values_are_value_errors(kind, levels, n_mixtures, message):
    with pytest.raises(ValueError) as error:
        make_head(3, levels, kind, n_mixtures=n_mixtures)
    assert str(error.value) == message


def test_auto_picks_bernoulli_for_two_levels_and_categorical_otherwise():
    assert make_head(1, 2).name == "bernoulli" and make_head(1, 3).name == "categorical"
    head = make_head(3, 256, "logistic_mixture")
    assert (head.n_mixtures, head.out_channels, head.params_per_channel) == (10, 90, 30)
    assert head.params(torch.zeros(2, 90, 4, 5)).shape == (2, 3, 30, 4, 5)
