"""PixelCNN auto-encoder: the decoder is causal given the code, normalized, and trained through the encoder."""
import pytest
import torch

import pixelcnn
from conftest import all_images, causal_allowed, dependency_map, tiny


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
def test_decoder_is_causal_given_a_fixed_code(channels, spatial):
    model = tiny("pixelcnn_ae", image_shape=(channels, 4, 4), levels=4, bottleneck=3, hidden=6, n_layers=5,
                 spatial_cond=spatial)
    code = torch.randn(1, 3, dtype=torch.float64)
    seen = dependency_map(model, code)
    allowed = causal_allowed(model.image_shape)
    assert not (seen & ~allowed).any()
    assert not (allowed & ~seen).any()                       # the Gated decoder has no blind spot


def test_without_a_code_the_image_is_encoded_and_every_output_sees_it():
    model = tiny("pixelcnn_ae", image_shape=(1, 3, 3), levels=2, bottleneck=3, hidden=4, n_layers=2)
    x = torch.randint(0, 2, (4, 1, 3, 3))
    code = model.encode(x)
    assert code.shape == (4, 3)
    assert torch.equal(model.log_prob(x), model.log_prob(x, code))
    # Through the code, the first pixel's distribution depends on the last pixel: a reconstruction
    # likelihood, not an autoregressive one (which is why sample() needs codes).
    flipped = x.clone()
    flipped[:, 0, 2, 2] = 1 - flipped[:, 0, 2, 2]
    assert not torch.allclose(model(x)[:, :, :, 0, 0], model(flipped)[:, :, :, 0, 0])


def test_given_a_code_probabilities_sum_to_one():
    model = tiny("pixelcnn_ae", image_shape=(1, 3, 3), levels=2, bottleneck=3, hidden=4, n_layers=2,
                 spatial_cond=True)
    images = all_images((1, 3, 3), 2)
    code = torch.randn(1, 3, dtype=torch.float64).expand(len(images), 3)
    with torch.no_grad():
        assert model.log_prob(images, code).exp().sum().item() == pytest.approx(1.0, abs=1e-9)


def test_the_encoder_is_trained_by_the_nll():
    model = pixelcnn.build("tiny-ae")
    x = torch.randint(0, 2, (8, 1, 8, 8))
    (-model.log_prob(x).mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_sampling_reconstruction_and_errors():
    model = tiny("pixelcnn_ae", image_shape=(1, 4, 4), levels=2, bottleneck=3, hidden=4, n_layers=2)
    x = torch.randint(0, 2, (2, 1, 4, 4))
    codes = model.encode(x)
    draw = lambda method: model.sample(2, codes, generator=torch.Generator().manual_seed(0), method=method)
    assert torch.equal(draw("fast"), draw("naive"))
    assert model.reconstruct(x, n=3).shape == (2, 3, 1, 4, 4)
    assert model.complete(x, 2)[:, :, :2].equal(x[:, :, :2])
    with pytest.raises(ValueError, match="decodes given codes"):
        model.sample(2)
    with pytest.raises(ValueError, match=r"float tensor \[2, 3\]"):
        model.log_prob(x, torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="conditioned on its own code"):
        pixelcnn.build("pixelcnn_ae", num_classes=10)


def test_save_load_round_trip(tmp_path):
    model = pixelcnn.build("tiny-ae", spatial_cond=True).eval()
    x = torch.randint(0, 2, (3, 1, 8, 8))
    pixelcnn.save(model, tmp_path / "ae")
    loaded = pixelcnn.load(tmp_path / "ae")
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))
