"""PixelCNN auto-encoder: the decoder is causal given the code, normalized, and trained through the encoder."""

import pytest
import torch

import pixelcnn
from conftest import all_images, causal_allowed, dependency_map, tiny


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
def test_decoder_is_causal_given_a_fixed_code(channels, spatial):
    model = tiny(
        "pixelcnn_ae", image_shape=(channels, 4, 4), levels=4, bottleneck=3, hidden=6, n_layers=5, spatial_cond=spatial
    )
    code = torch.randn(1, 3, dtype=torch.float64)
    seen = dependency_map(model, code)
    allowed = causal_allowed(model.image_shape)
    assert not (seen & ~allowed).any()
    assert not (allowed & ~seen).any()  # the Gated decoder has no blind spot


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
    model = tiny("pixelcnn_ae", image_shape=(1, 3, 3), levels=2, bottleneck=3, hidden=4, n_layers=2, spatial_cond=True)
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


# ------------------------------------------------------------------ codes on the sphere, a frozen encoder
def test_normalized_codes_are_unit_vectors_and_a_frozen_encoder_gets_no_gradient():
    model = pixelcnn.build("tiny-ae", normalize_code=True, freeze_encoder=True)
    x = torch.randint(0, 2, (5, 1, 8, 8))
    assert torch.allclose(model.encode(x).norm(dim=1), torch.ones(5))
    (-model.log_prob(x).mean()).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.layers[0].parameters())


def test_a_frozen_encoder_stays_frozen_after_save_and_load(tmp_path):
    model = pixelcnn.build("tiny-ae", normalize_code=True, freeze_encoder=True)
    loaded = pixelcnn.load(pixelcnn.save(model, tmp_path / "ae"))
    assert not any(p.requires_grad for p in loaded.encoder.parameters())
    x = torch.randint(0, 2, (2, 1, 8, 8))
    assert torch.equal(loaded.encode(x), model.encode(x))


# ------------------------------------------------------------------ interpolation (the paper's Figure 5)
def test_interpolation_varies_only_through_the_code():
    model = pixelcnn.build("tiny-ae").eval()
    a, b = torch.randint(0, 2, (2, 1, 1, 8, 8))
    row = model.interpolate(a, b, 5, seed=3)
    assert row.shape == (5, 1, 8, 8) and row.dtype == torch.long
    # The ends are the decodings of each image's own code, drawn with the row's seed.
    assert torch.equal(row[0], model.sample(1, model.encode(a), generator=torch.Generator().manual_seed(3))[0])
    assert torch.equal(row[-1], model.sample(1, model.encode(b), generator=torch.Generator().manual_seed(3))[0])
    # Same image at both ends: the code never changes, and neither does the sample.
    same = model.interpolate(a, a, 4, seed=3)
    assert all(torch.equal(same[0], image) for image in same)
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        model.interpolate(a, b, 1)
    with pytest.raises(ValueError, match=r"one image and one image"):
        model.interpolate(torch.cat([a, b]), b)


def test_code_line_ends_and_sphere():
    from pixelcnn.models.autoencoder import code_line

    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    line = code_line(a, b, 3)
    assert torch.allclose(line, torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    assert torch.allclose(code_line(a, b, 3, normalize=True).norm(dim=1), torch.ones(3))


def test_preview_rows_start_with_the_images():
    model = pixelcnn.build("tiny-ae").eval()
    x = torch.randint(0, 2, (3, 1, 8, 8))
    rows = model.preview_rows(x, generator=torch.Generator().manual_seed(0))
    assert rows.shape == (3, 4, 1, 8, 8) and torch.equal(rows[:, 0], x)


# ------------------------------------------------------------------ the MSE baseline
def test_mse_autoencoder_loss_reconstruction_and_shapes():
    model = pixelcnn.build("tiny-mse", image_shape=(3, 7, 9), levels=256)
    x = torch.randint(0, 256, (4, 3, 7, 9))
    output = model(x)  # linear: what the loss compares
    assert output.shape == (4, 3, 7, 9)
    expected = (output - x / 255).pow(2).flatten(1).mean(1)
    assert torch.allclose(model.loss(x), expected)
    assert model.encode(x).shape == (4, 4)
    decoded = model.reconstruct(x)  # the image: clamped to [0, 1]
    assert torch.equal(decoded, output.detach().clamp(0, 1))
    assert torch.equal(model.decode(model.encode(x)).detach(), decoded)
    # The same encoder as the PixelCNN auto-encoder's.
    assert type(model.encoder) is type(pixelcnn.build("tiny-ae").encoder)
    rows = model.preview_rows(x)
    assert rows.shape == (4, 2, 3, 7, 9) and torch.equal(rows[:, 0], x)
    assert torch.equal(rows[:, 1], (decoded * 255).round().long())


def test_mse_autoencoder_interpolation_ends_are_the_reconstructions():
    model = pixelcnn.build("tiny-mse")
    a, b = torch.randint(0, 2, (2, 1, 1, 8, 8))
    line = model.interpolate(a, b, 4)
    assert line.shape == (4, 1, 8, 8)
    assert torch.allclose(line[0], model.reconstruct(a)[0], atol=1e-6)
    assert torch.allclose(line[-1], model.reconstruct(b)[0], atol=1e-6)


def test_mse_autoencoder_learns_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = pixelcnn.build("tiny-mse")
    patterns = torch.zeros(4, 1, 8, 8, dtype=torch.long)
    patterns[0, :, :4], patterns[1, :, :, :4], patterns[2, :, 4:], patterns[3, :, :, 4:] = 1, 1, 1, 1
    x = patterns.repeat(4, 1, 1, 1)  # 16 images, 4 kinds: top/left/bottom/right
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = float(model.loss(x).mean().detach())
    for _ in range(40):
        loss = model.loss(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(model.loss(x).mean().detach()) < 0.5 * before
    loaded = pixelcnn.load(pixelcnn.save(model, tmp_path / "mse"))
    assert loaded.name == "mse_ae" and torch.equal(loaded.loss(x), model.eval().loss(x))


def test_mse_autoencoder_errors():
    model = pixelcnn.build("tiny-mse")
    x = torch.randint(0, 2, (2, 1, 8, 8))
    with pytest.raises(ValueError, match="has no likelihood"):
        model.log_prob(x)
    with pytest.raises(ValueError, match="does not sample"):
        model.sample(2)
    with pytest.raises(ValueError, match="does not complete"):
        model.complete(x, 4)
    with pytest.raises(ValueError, match="takes no condition"):
        model.loss(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"float tensor \[B, 4\]"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"integer tensor \[B, 1, 8, 8\]"):
        model.loss(x.float())
    with pytest.raises(ValueError, match="takes no condition"):
        pixelcnn.build("mse_ae", num_classes=10)
    with pytest.raises(ValueError, match="decoder_channels must be a positive integer"):
        pixelcnn.build("mse_ae", decoder_channels=0)


# ------------------------------------------------------------------ training through pixelcnn.train
def _train_config(tmp_path, model, **changes):
    from pixelcnn.train import TrainConfig

    values = dict(
        model=model,
        data="digits",
        max_steps=3,
        batch_size=8,
        eval_images=16,
        log_every=1,
        out=str(tmp_path / model),
        progress=False,
        tensorboard=False,
        sample_images=0,
    )
    return TrainConfig(**{**values, **changes})


def test_pixelcnn_ae_trains_through_pixelcnn_train(tmp_path):
    from pixelcnn.train import train

    result = train(
        _train_config(
            tmp_path, "pixelcnn_ae", model_options=dict(bottleneck=3, n_layers=2, hidden=4, encoder_channels=4)
        )
    )
    assert result.step == 3 and result.final_eval.nll > 0
    assert pixelcnn.load(result.model_path).name == "pixelcnn_ae"


def test_mse_ae_and_the_sample_grid_of_pixelcnn_ae_through_pixelcnn_train(tmp_path):
    import json

    from pixelcnn.train import train

    result = train(
        _train_config(
            tmp_path,
            "mse_ae",
            model_options=dict(bottleneck=3, encoder_channels=4, decoder_channels=4),
            sample_images=4,
        )
    )
    assert result.final_eval.loss_name == "mse" and 0 < result.final_eval.loss < 1
    lines = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all("loss_mse" in r and "loss_nats" not in r for r in lines if r["kind"] == "train")
    assert lines[-1]["kind"] == "eval" and lines[-1]["mse"] == result.final_eval.loss
    assert result.sample_grid is not None and result.sample_grid.exists()
    ae = train(
        _train_config(
            tmp_path,
            "pixelcnn_ae",
            sample_images=4,
            model_options=dict(bottleneck=3, n_layers=2, hidden=4, encoder_channels=4),
        )
    )
    assert ae.sample_grid is not None and ae.sample_grid.exists()


def test_the_mse_baseline_is_scored_in_batches_of_256():
    """The memory guard counted the MSE auto-encoder's linear decoder input (3,136 outputs) as maps over every
    pixel: 94 MB an image, so evaluating a batch of 256 on a 24 GB machine was refused. Linear outputs are per
    image; its estimate is now that of a convolutional model of its width."""
    from pixelcnn.models.base import working_bytes_per_image

    mse, ae = pixelcnn.build("mse-mnist"), pixelcnn.build("ae-mnist")
    assert working_bytes_per_image(mse) <= working_bytes_per_image(ae)
    x = torch.randint(0, 2, (256, 1, 28, 28))
    assert mse.loss(x).shape == (256,)
