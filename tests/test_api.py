"""The public contract: build / presets / list_models / bits_per_dim, input checks, smoke training."""

import math

import pytest
import torch

import pixelcnn


def test_registry_and_presets():
    from pixelcnn.models.registry import BASELINES, model_class

    # The autoregressive models; the MSE auto-encoder is a baseline, built and saved alike but not listed here.
    assert pixelcnn.list_models() == [
        "diagonal_bilstm",
        "gated_pixelcnn",
        "multiscale_pixelrnn",
        "pixelcnn",
        "pixelcnn_ae",
        "pixelcnn_pp",
        "row_lstm",
    ]
    assert sorted(BASELINES) == ["mse_ae"] and model_class("mse_ae").loss_name == "mse"
    assert all(model_class(name).loss_name == "nll" for name in pixelcnn.list_models())
    for name, preset in pixelcnn.presets.items():
        assert preset.model in [*pixelcnn.list_models(), *BASELINES] and preset.description, name
    model = pixelcnn.build("tiny-gated", n_layers=4)
    assert model.config.n_layers == 4 and len(model.layers) == 4
    with pytest.raises(ValueError, match="unknown model 'pixel_cnn'.*gated_pixelcnn"):
        pixelcnn.build("pixel_cnn")
    with pytest.raises(ValueError, match="no option n_layer; its options are"):
        pixelcnn.build("pixelcnn", n_layer=3)
    with pytest.raises(ValueError, match="odd"):
        pixelcnn.build("gated_pixelcnn", kernel_size=4)


def test_sizes_are_honoured():
    # A size that changes nothing would be a silent bug: check each one changes the model.
    base = pixelcnn.build("pixelcnn", image_shape=(1, 8, 8), n_layers=2, hidden=8)
    count = lambda m: sum(p.numel() for p in m.parameters())
    for change in [
        dict(n_layers=3),
        dict(hidden=16),
        dict(kernel_size=5),
        dict(input_kernel_size=5),
        dict(output_hidden=32),
    ]:
        other = pixelcnn.build("pixelcnn", **{**dict(image_shape=(1, 8, 8), n_layers=2, hidden=8), **change})
        assert count(other) != count(base), change
    gated = dict(image_shape=(1, 8, 8), n_layers=2, hidden=8)
    base = pixelcnn.build("gated_pixelcnn", **gated)
    for change in [
        dict(n_layers=3),
        dict(hidden=16),
        dict(kernel_size=5),
        dict(input_kernel_size=7),
        dict(skip_channels=4),
        dict(output_hidden=32),
    ]:
        assert count(pixelcnn.build("gated_pixelcnn", **{**gated, **change})) != count(base), change


def test_paper_preset_sizes():
    model = pixelcnn.build("gated-imagenet32")
    assert (model.config.n_layers, model.config.hidden, model.config.kernel_size) == (20, 384, 5)
    assert pixelcnn.build("pixelcnn-cifar10").config.n_layers == 15


def test_bits_per_dim():
    assert pixelcnn.bits_per_dim(3 * 32 * 32 * math.log(2), (3, 32, 32)) == pytest.approx(1.0)
    nll = torch.tensor([784 * math.log(2), 0.0])
    assert torch.allclose(pixelcnn.bits_per_dim(nll, (1, 28, 28)), torch.tensor([1.0, 0.0]))


@pytest.fixture
def class_model():
    return pixelcnn.build("tiny-gated", image_shape=(1, 4, 4), levels=16, num_classes=10)


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.rand(2, 1, 4, 4), r"integer tensor \[B, 1, 4, 4\].*got a torch.float32"),
        (torch.full((2, 1, 4, 4), 16), r"values in 0..15.*got values in 16..16"),
        (torch.full((2, 1, 4, 4), -1), r"got values in -1..-1"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.long), r"\[B, 1, 4, 4\].*shape \[2, 3, 4, 4\]"),
        (torch.zeros(1, 4, 4, dtype=torch.long), r"unsqueeze\(0\)"),
        ([[0, 1]], r"got list"),
    ],
)
def test_bad_images_are_named(class_model, x, message):
    with pytest.raises(ValueError, match=message):
        class_model.log_prob(x, torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize(
    "cond, message",
    [
        (None, r"built with num_classes=10: pass cond"),
        (torch.tensor([0, 10]), r"0..9.*got class indices in 0..10"),
        (torch.zeros(2), r"integer tensor \[2\].*float32"),
        (torch.zeros(3, dtype=torch.long), r"\[2\].*shape \[3\]"),
    ],
)
def test_bad_class_conditions_are_named(class_model, cond, message):
    x = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=message):
        class_model.log_prob(x, cond)


def test_bad_vector_conditions_and_unexpected_ones():
    x = torch.zeros(2, 1, 8, 8, dtype=torch.long)
    vector = pixelcnn.build("tiny-pixelcnn", cond_dim=5)
    with pytest.raises(ValueError, match=r"float tensor \[2, 5\].*shape \[2, 4\]"):
        vector.log_prob(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="cond_dim=5"):
        vector.sample(2)
    with pytest.raises(ValueError, match="unconditional"):
        pixelcnn.build("tiny-pixelcnn").log_prob(x, torch.zeros(2, dtype=torch.long))


def test_bad_sampling_arguments(class_model):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        class_model.sample(0, cond=1)
    with pytest.raises(ValueError, match="temperature"):
        class_model.sample(1, cond=1, temperature=0)
    with pytest.raises(ValueError, match="unknown sampling method 'quick'.*naive"):
        class_model.sample(1, cond=1, method="quick")
    with pytest.raises(ValueError, match="known_rows"):
        class_model.complete(torch.zeros(1, 1, 4, 4, dtype=torch.long), 5, cond=1)


def test_uint8_bool_and_numpy_images_are_accepted():
    model = pixelcnn.build("tiny-gated")
    x = torch.randint(0, 2, (2, 1, 8, 8))
    expected = model.log_prob(x)
    assert torch.equal(model.log_prob(x.to(torch.uint8)), expected)
    assert torch.equal(model.log_prob(x.bool()), expected)
    assert torch.equal(model.log_prob(x.numpy()), expected)


@pytest.mark.parametrize("name", ["tiny-pixelcnn", "tiny-gated"])
def test_a_few_training_steps_lower_the_nll(name):
    model = pixelcnn.build(name, num_classes=2)
    x = (torch.rand(16, 1, 8, 8) < torch.linspace(0.1, 0.9, 8)).long()  # striped images
    y = torch.randint(0, 2, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = -model.log_prob(x, y).mean().item()
    for _ in range(30):
        loss = -model.log_prob(x, y).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.85 * first


@pytest.mark.parametrize("name", ["gated-mnist", "pixelcnn-cifar10"])
def test_activations_stay_small_at_initialization(name):
    # A residual added twice grows activations geometrically with depth (1e4 in a public repo).
    model = pixelcnn.build(name)
    C, H, W = model.image_shape
    x = torch.randint(0, model.levels, (2, C, H, W))
    with torch.no_grad():
        logits = model(x)
    assert logits.abs().max() < 20, logits.abs().max()


def test_named_presets_of_the_demo_and_the_best_ten_minute_model():
    from pixelcnn.train.config import DEMO_SCHEDULE

    demo = pixelcnn.build("gated-demo")
    assert demo.name == "gated_pixelcnn" and demo.image_shape == (1, 28, 28) and demo.levels == 2
    sizes = lambda m: (m.config.num_classes, m.config.n_layers, m.config.hidden, m.config.kernel_size)
    assert sizes(demo) == (10, 4, 32, 5)
    best = pixelcnn.build("pixelcnn-6x32-k5")
    assert best.name == "pixelcnn" and best.image_shape == (1, 28, 28) and best.levels == 2
    assert sizes(best) == (None, 6, 32, 5)
    assert DEMO_SCHEDULE == dict(
        batch_size=16, lr=4e-3, warmup_steps=50, lr_decay="cosine", ema_decay=0.998, grad_clip=1.0
    )


# Parameter counts of the presets small enough to build in a moment (the README's table lists them all).
PRESET_PARAMETERS = {
    "pixelcnn-cifar10": 3503616,
    "pixelcnn-mnist": 101505,
    "pixelcnn-6x32-k5": 186369,
    "pixelcnn-12x32-k5": 365313,
    "tiny-pixelcnn": 2177,
    "gated-mnist": 3371393,
    "gated-demo": 144097,
    "tiny-gated": 3609,
    "diagbilstm-mnist": 68609,
    "rowlstm-mnist": 60929,
    "tiny-rowlstm": 1249,
    "tiny-diagbilstm": 1425,
    "multiscale-mnist": 155970,
    "tiny-multiscale": 3426,
    "ae-mnist": 753291,
    "ae-photo-patches": 2865860,
    "tiny-ae": 3413,
    "mse-mnist": 232267,
    "mse-photo-patches": 1346375,
    "tiny-mse": 3253,
}


@pytest.mark.parametrize("name", sorted(PRESET_PARAMETERS))
def test_preset_parameter_counts(name):
    assert sum(p.numel() for p in pixelcnn.build(name).parameters()) == PRESET_PARAMETERS[name]


def test_presets_live_beside_their_models():
    from pixelcnn.models import autoencoder, baseline, gated, multiscale, pixelcnn_pp, pixelrnn
    from pixelcnn.models import pixelcnn as pixelcnn_module
    from pixelcnn.models.registry import model_class

    gathered = {}
    for module in (pixelcnn_module, gated, pixelrnn, multiscale, autoencoder, baseline, pixelcnn_pp):
        for name, preset in module.PRESETS.items():
            assert model_class(preset.model).__module__ == module.__name__, name  # the file of its model
            assert name not in gathered, name
            gathered[name] = preset
    assert gathered == pixelcnn.presets


@pytest.mark.parametrize(
    "name",
    ["tiny-pixelcnn", "tiny-gated", "tiny-rowlstm", "tiny-diagbilstm", "tiny-multiscale", "tiny-ae", "tiny-pixelcnnpp"],
)
def test_the_loss_of_a_likelihood_model_is_its_nll(name):
    model = pixelcnn.build(name)
    x = torch.randint(0, 2, (3, 1, 8, 8))
    assert model.loss_name == "nll"
    assert torch.equal(model.loss(x), -model.log_prob(x))
