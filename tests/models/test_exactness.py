"""Exactness for every registry model: normalization by enumeration, log_prob = sequential
conditionals (in the model's generation order), sampler vs log_prob."""

import math

import pytest
import torch

from conftest import all_images, make_cond, proof_cases, proof_names, tiny

# The auto-encoder is always conditioned on a code: it takes part where a test has a "vector" condition.
UNCONDITIONAL = proof_names(["none"])
CLASS_CONDITIONAL = proof_names(["class"])


def _total_probability(model, images, cond):
    batch = images.shape[0]
    if cond is not None:
        cond = cond.expand(batch, *cond.shape[1:])
    return model.log_prob(images, cond).exp().sum().item()


@pytest.mark.parametrize("shape", [(1, 3, 3), (3, 2, 2)])
@pytest.mark.parametrize("name, condition", proof_cases())
def test_probabilities_of_all_binary_images_sum_to_one(name, condition, shape):
    model = tiny(name, condition, image_shape=shape, levels=2, hidden=6, n_layers=2)
    images = all_images(shape, 2)  # 512 or 4096 images
    with torch.no_grad():
        for cond in [make_cond(model, 1), make_cond(model, 1)]:
            assert _total_probability(model, images, cond) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", CLASS_CONDITIONAL)
def test_probabilities_sum_to_one_with_more_levels(name):
    model = tiny(name, image_shape=(3, 1, 2), levels=5, hidden=6, n_layers=2, num_classes=2)
    images = all_images((3, 1, 2), 5)  # 5^6 = 15,625 images
    with torch.no_grad():
        for label in (0, 1):
            assert _total_probability(model, images, torch.tensor([label])) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("name", UNCONDITIONAL)
def test_float32_models_normalize_too(name):
    model = tiny(name, image_shape=(1, 3, 3), levels=2, hidden=8, n_layers=2).float()
    with torch.no_grad():
        assert _total_probability(model, all_images((1, 3, 3), 2), None) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name, condition", proof_cases(["none", "vector"]))
def test_parallel_log_prob_equals_the_sum_of_sequential_conditionals(name, condition):
    """Teacher forcing gives what generating pixel-channel by pixel-channel would score."""
    model = tiny(name, condition, image_shape=(3, 3, 3), levels=7, hidden=6, n_layers=2)
    x = torch.randint(0, 7, (2, 3, 3, 3))
    cond = make_cond(model, 2)
    order = [i * 3 + j for i, j in model.generation_order(0)]  # flat pixel indices, the model's order
    total = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for rank, flat in enumerate(order):
            i, j = divmod(flat, 3)
            for c in range(3):
                # Everything from (c, i, j) on is replaced by noise: the conditional must not care.
                partial = x.clone().view(2, 3, 9)
                partial[:, c:, flat] = torch.randint(0, 7, (2, 3 - c))
                later = order[rank + 1 :]
                partial[:, :, later] = torch.randint(0, 7, (2, 3, len(later)))
                params = model(partial.view(2, 3, 3, 3), cond)[:, c : c + 1, :, i : i + 1, j : j + 1]  # [2, 1, P, 1, 1]
                total += model.head.log_prob(params, x[:, c : c + 1, i : i + 1, j : j + 1]).flatten()
        assert torch.allclose(model.log_prob(x, cond), total, atol=1e-10)


@pytest.mark.parametrize("name", UNCONDITIONAL)
def test_samples_follow_the_model_distribution(name):
    """Chi-square goodness of fit of 6,000 samples over all 16 images of shape 1x2x2."""
    model = tiny(name, image_shape=(1, 2, 2), levels=2, hidden=8, n_layers=2)
    with torch.no_grad():
        for param in model.parameters():  # a peaked, far-from-uniform distribution
            param.mul_(3)
        images = all_images((1, 2, 2), 2)
        expected_p = model.log_prob(images).exp()
        samples = model.sample(6000, generator=torch.Generator().manual_seed(1), method="naive")
    index = (samples.view(6000, 4) * torch.tensor([8, 4, 2, 1])).sum(1)
    observed = torch.bincount(index, minlength=16).double()
    expected = expected_p * 6000
    chi2 = ((observed - expected) ** 2 / expected).sum().item()
    assert expected_p.max() > 2 * expected_p.min()  # the test has something to detect
    assert chi2 < 37.7, f"chi-square {chi2:.1f} over 15 degrees of freedom (p < 0.001)"


@pytest.mark.parametrize("head", ["categorical", "logistic_mixture"])
def test_samples_follow_a_colour_model(head):
    model = tiny("gated_pixelcnn", image_shape=(3, 1, 1), levels=3, hidden=6, n_layers=2, head=head)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(3)
        images = all_images((3, 1, 1), 3)  # 27 images
        expected = model.log_prob(images).exp() * 8000
        samples = model.sample(8000, generator=torch.Generator().manual_seed(2))
    index = (samples.view(8000, 3) * torch.tensor([9, 3, 1])).sum(1)
    observed = torch.bincount(index, minlength=27).double()
    chi2 = ((observed - expected) ** 2 / expected).sum().item()
    assert chi2 < 54.1, f"chi-square {chi2:.1f} over 26 degrees of freedom (p < 0.001)"


@pytest.mark.parametrize("name", CLASS_CONDITIONAL)
def test_sample_shapes_ranges_and_reproducibility(name):
    model = tiny(name, image_shape=(3, 3, 4), levels=256, hidden=6, n_layers=2, num_classes=4)
    labels = torch.tensor([0, 3])
    first = model.sample(2, labels, generator=torch.Generator().manual_seed(5))
    again = model.sample(2, labels, generator=torch.Generator().manual_seed(5))
    other = model.sample(2, labels, generator=torch.Generator().manual_seed(6))
    assert first.shape == (2, 3, 3, 4) and first.dtype == torch.long
    assert 0 <= first.min() and first.max() <= 255
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert model.sample(3, cond=2).shape == (3, 3, 3, 4)  # one label for the batch


@pytest.mark.parametrize("name", UNCONDITIONAL)
def test_complete_keeps_the_known_rows(name):
    model = tiny(name, image_shape=(1, 5, 4), levels=256, hidden=6, n_layers=2)
    x = torch.randint(0, 256, (3, 1, 5, 4), dtype=torch.uint8)
    done = model.complete(x, known_rows=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(done[:, :, :2], x[:, :, :2].long())
    assert not torch.equal(done[:, :, 2:], x[:, :, 2:].long())
    assert torch.equal(model.complete(x, known_rows=5), x.long())  # nothing left to sample
    # The completion does not depend on what the hidden rows held.
    again = model.complete(
        torch.cat([x[:, :, :2], 255 - x[:, :, 2:]], 2), 2, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(done, again)


def test_temperature_sharpens():
    model = tiny("pixelcnn", image_shape=(1, 1, 1), levels=16, hidden=6, n_layers=1)
    with torch.no_grad():
        for param in model.parameters():  # biases too: the first pixel reads only biases
            param.normal_()
        mode = model(torch.zeros(1, 1, 1, 1, dtype=torch.long))[0, 0, :, 0, 0].argmax()
        cold = model.sample(200, temperature=1e-3, generator=torch.Generator().manual_seed(0))
    assert (cold.flatten() == mode).all()


def test_log_prob_units_are_nats():
    # An untrained binary model is close to uniform: about ln 2 nats per pixel.
    model = tiny("gated_pixelcnn", image_shape=(1, 4, 4), levels=2, hidden=6, n_layers=2)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    x = torch.randint(0, 2, (2, 1, 4, 4))
    assert torch.allclose(-model.log_prob(x), torch.full((2,), 16 * math.log(2), dtype=torch.float64))
