"""Anomaly scores: perturbation, PNG complexity, likelihood ratio and AUROC."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

import pixelcnn
from pixelcnn.scores import anomaly_scores, auroc, perturb, png_bits


def test_perturb_replaces_about_rate_of_the_values():
    x = torch.zeros(64, 1, 16, 16, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    y = perturb(x, 0.3, 256, generator=generator)
    changed = (y != x).double().mean().item()
    # A replaced value equals the old one with probability 1/256.
    assert abs(changed - 0.3 * 255 / 256) < 0.01
    assert y.dtype == x.dtype and 0 <= int(y.min()) and int(y.max()) <= 255
    assert torch.equal(perturb(x, 0.0, 256), x)
    with pytest.raises(ValueError, match="rate"):
        perturb(x, 1.5, 256)


def test_png_bits_are_the_png_file_sizes():
    x = torch.randint(0, 2, (3, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    bits = png_bits(x, 2)
    buffer = io.BytesIO()
    Image.fromarray(x[1, 0].numpy().astype(bool)).save(buffer, "PNG", optimize=True)
    assert bits.shape == (3,) and bits[1] == 8 * len(buffer.getvalue())
    # Flat images compress better than noise.
    assert (
        png_bits(torch.zeros(1, 3, 16, 16, dtype=torch.long), 256)[0]
        < png_bits(torch.randint(0, 256, (1, 3, 16, 16)), 256)[0]
    )


def test_anomaly_scores():
    torch.manual_seed(0)
    model = pixelcnn.build("tiny-pixelcnn").eval()
    background = pixelcnn.build("tiny-gated").eval()
    x = torch.randint(0, 2, (5, 1, 8, 8), generator=torch.Generator().manual_seed(1))
    scores = anomaly_scores(model, x, background=background, batch_size=2)
    with torch.no_grad():
        nll = -model.log_prob(x).double()
        assert torch.allclose(scores["nll"], nll)
        assert torch.allclose(scores["likelihood_ratio"], nll + background.log_prob(x).double())
    assert torch.allclose(scores["bits_per_dim"], nll / (math.log(2) * 64))
    assert torch.allclose(scores["complexity"], nll / math.log(2) - png_bits(x, 2))
    with pytest.raises(ValueError, match="background"):
        anomaly_scores(model, x, background=pixelcnn.build("tiny-gated", image_shape=(1, 6, 6)))


def test_auroc():
    assert auroc([0, 1, 2], [3, 4]) == 1.0
    assert auroc([3, 4], [0, 1, 2]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5  # ties count one half
    rng = np.random.default_rng(0)
    inside, outside = rng.normal(size=300), rng.normal(1.0, size=200)
    pairs = (outside[:, None] > inside[None, :]).mean() + 0.5 * (outside[:, None] == inside[None, :]).mean()
    assert auroc(inside, outside) == pytest.approx(pairs)
    with pytest.raises(ValueError):
        auroc([], [1.0])


def test_marginal_nll_of_a_class_conditional_model():
    from pixelcnn.scores import nll

    torch.manual_seed(0)
    model = pixelcnn.build("tiny-pixelcnn", num_classes=3).eval()
    x = torch.randint(0, 2, (4, 1, 8, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        per_class = torch.stack([model.log_prob(x, torch.full((4,), k)) for k in range(3)], 1).double()
    expected = -(per_class.exp().mean(1)).log()
    assert torch.allclose(nll(model, x, "marginal", batch_size=3), expected)
    assert torch.allclose(nll(model, x, torch.tensor([0, 1, 2, 0])), -per_class[torch.arange(4), [0, 1, 2, 0]])
    with pytest.raises(ValueError, match="marginal"):
        nll(pixelcnn.build("tiny-pixelcnn"), x, "marginal")


def test_training_option_perturb(tmp_path):
    from pixelcnn.train import TrainConfig
    from pixelcnn.train.loop import Trainer

    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="perturb"):
            TrainConfig(perturb=bad)

    def first_batches(rate: float, run: str):
        config = TrainConfig(
            model="pixelcnn",
            model_options=dict(n_layers=1, hidden=4),
            data="digits",
            max_steps=1,
            batch_size=64,
            perturb=rate,
            out=str(tmp_path / run),
            progress=False,
            tensorboard=False,
            sample_images=0,
        )
        trainer = Trainer(config)
        trainer._setup()
        return [trainer._batch(step)[0] for step in range(2)]

    plain, perturbed, again = first_batches(0.0, "a"), first_batches(0.5, "b"), first_batches(0.5, "c")
    changed = torch.cat([(p != q).flatten() for p, q in zip(plain, perturbed)]).double().mean().item()
    assert abs(changed - 0.5 * 16 / 17) < 0.05  # 17 levels: a replacement keeps 1 in 17
    assert all(torch.equal(p, q) for p, q in zip(perturbed, again))  # seeded by (seed, step): resumable
    assert not torch.equal(perturbed[0] != plain[0], perturbed[1] != plain[1])
