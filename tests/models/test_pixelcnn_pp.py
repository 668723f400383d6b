"""PixelCNN++: shapes at any size, sizes honoured, the whole causal context, dropout, presets.

Causality by Jacobian, normalization by enumeration and the sampler's chi-square
run for PixelCNN++ in test_causality.py / test_exactness.py beside the other models;
fast == naive in test_sampling.py.
"""

import pytest
import torch

import pixelcnn
import pixelcnn.models.pixelcnn_pp as pixelcnn_pp_module
from conftest import CONDITIONS, causal_allowed, dependency_map, make_cond, tiny
from pixelcnn.nn.shifted import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
)

count = lambda model: sum(p.numel() for p in model.parameters())


def _other_pixels(image_shape) -> torch.Tensor:
    """causal_allowed without a pixel's own earlier channels: what a network without colour masks must see."""
    allowed = causal_allowed(image_shape).clone()
    channels, height, width = image_shape
    for i in range(height):
        for j in range(width):
            allowed[:, i, j, :, i, j] = False
    return allowed


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 2), (1, 2, 3), (1, 5, 7), (3, 9, 6)])
def test_any_image_size_works(shape):
    model = tiny("pixelcnn_pp", image_shape=shape, levels=5, hidden=4, n_layers=1)
    x = torch.randint(0, 5, (2, *shape))
    assert model(x).shape == (2, shape[0], model.head.params_per_channel, *shape[1:])
    assert torch.isfinite(model.log_prob(x)).all()


@pytest.mark.parametrize("condition", ["none", "class", "spatial"])
@pytest.mark.parametrize("shape", [(1, 6, 5), (3, 4, 4)])
def test_every_earlier_pixel_channel_is_seen(shape, condition):
    # Two blocks per stage and three resolutions reach the whole of these images: no blind spot; the
    # mixture's coupling gives G the pixel's R, and B its R and G.
    model = tiny("pixelcnn_pp", image_shape=shape, levels=4, hidden=4, n_layers=2, **CONDITIONS[condition])
    seen = dependency_map(model, make_cond(model, 1))
    assert not (seen & ~causal_allowed(shape)).any()
    missing = causal_allowed(shape) & ~seen
    assert not missing.any(), f"blind spot at {missing.nonzero()[:5].tolist()}"


def test_without_the_mixture_a_pixels_channels_are_independent():
    # A categorical head has no coupling: each channel sees every earlier pixel, none of its own pixel.
    model = tiny("pixelcnn_pp", image_shape=(3, 3, 3), levels=4, hidden=4, n_layers=1, head="categorical")
    seen = dependency_map(model)
    assert torch.equal(seen, _other_pixels((3, 3, 3)))


def test_the_causality_test_catches_a_missing_shift(monkeypatch):
    # Without the input's down shift the u stream reads the current row: a leak the Jacobian must show.
    monkeypatch.setattr(pixelcnn_pp_module, "down_shift", lambda x: x)
    model = tiny("pixelcnn_pp", image_shape=(1, 4, 4), levels=4, hidden=4, n_layers=1)
    assert (dependency_map(model) & ~causal_allowed((1, 4, 4))).any()


def test_shifted_convolutions_read_only_their_window():
    x = torch.zeros(1, 1, 6, 6, requires_grad=True)
    for layer, stride, rows, cols in [
        (DownShiftedConv2d(1, 1, (2, 3)), 1, [2, 3], [2, 3, 4]),
        (DownRightShiftedConv2d(1, 1, (2, 2)), 1, [2, 3], [2, 3]),
        (DownShiftedConv2d(1, 1, (2, 3), stride=2), 2, [1, 2], [1, 2, 3]),  # coarse (1, 1): fine rows 1-2
        (DownRightShiftedConv2d(1, 1, (2, 2), stride=2), 2, [1, 2], [1, 2]),
    ]:
        out = layer(x)
        assert out.shape[-2:] == ((6, 6) if stride == 1 else (3, 3))
        (grad,) = torch.autograd.grad(out[0, 0, 3 // stride, 3 // stride], x)
        read = grad[0, 0].abs() > 0
        expected = torch.zeros(6, 6, dtype=torch.bool)
        expected[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True
        assert torch.equal(read, expected), layer
    coarse = torch.zeros(1, 1, 3, 3, requires_grad=True)
    for layer, reads in [
        (DownRightShiftedConvTranspose2d(1, 1), {(1, 1)}),
        (DownShiftedConvTranspose2d(1, 1), {(1, 1), (1, 2)}),
    ]:
        out = layer(coarse, (5, 5))  # cropped to any finer size
        assert out.shape[-2:] == (5, 5)
        (grad,) = torch.autograd.grad(out[0, 0, 3, 3], coarse)
        assert {tuple(p) for p in (grad[0, 0] != 0).nonzero().tolist()} == reads, layer


def test_sizes_are_honoured_and_dropout_acts_in_training_only():
    base = dict(image_shape=(3, 8, 8), levels=16, n_layers=1, hidden=8)
    model = pixelcnn.build("pixelcnn_pp", **base)
    for change in [dict(n_layers=2), dict(hidden=12), dict(weight_norm=True)]:
        assert count(pixelcnn.build("pixelcnn_pp", **{**base, **change})) != count(model), change
    dropped = pixelcnn.build("pixelcnn_pp", **base, dropout=0.5)
    x = torch.randint(0, 16, (2, 3, 8, 8))
    assert not torch.equal(dropped.log_prob(x), dropped.log_prob(x))  # training mode: a fresh mask each pass
    dropped.eval()
    assert torch.equal(dropped.log_prob(x), dropped.log_prob(x))
    with pytest.raises(ValueError, match="dropout must be in"):
        pixelcnn.build("pixelcnn_pp", dropout=1.0)
    with pytest.raises(ValueError, match="n_layers must be a positive integer"):
        pixelcnn.build("pixelcnn_pp", n_layers=0)


def test_weight_norm_keeps_the_function_and_trains():
    torch.manual_seed(0)
    model = pixelcnn.build("pixelcnn_pp", image_shape=(1, 6, 6), levels=4, n_layers=1, hidden=6, weight_norm=True)
    names = [name for name, _ in model.named_parameters()]
    assert any(name.endswith("original0") for name in names)  # g, one per output map
    x = torch.randint(0, 4, (8, 1, 6, 6))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.loss(x).mean().item()
    for _ in range(5):
        loss = model.loss(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.loss(x).mean().item() < before


def test_the_paper_preset():
    preset = pixelcnn.presets["pixelcnnpp-cifar10"]
    assert preset.model == "pixelcnn_pp"
    assert {k: preset.config[k] for k in ("n_layers", "hidden", "dropout")} == dict(n_layers=5, hidden=160, dropout=0.5)
    model = pixelcnn.build("pixelcnnpp-cifar10")
    # 5 + 5 + 5 blocks down, 5 + 6 + 6 up, per stream.
    assert [len(stage) for stage in model.down_u] == [5, 5, 5] and [len(s) for s in model.up_ul] == [5, 6, 6]
    assert count(model) == PRESET_PARAMETERS["pixelcnnpp-cifar10"]


PRESET_PARAMETERS = {"pixelcnnpp-cifar10": 53659080, "tiny-pixelcnnpp": 9422, "pixelcnnpp-photo": 576356}


@pytest.mark.parametrize("name", ["tiny-pixelcnnpp", "pixelcnnpp-photo"])
def test_small_preset_counts(name):
    assert count(pixelcnn.build(name)) == PRESET_PARAMETERS[name]


@pytest.mark.parametrize("shape, start_row", [((1, 7, 6), 3), ((3, 2, 9), 1)])
def test_the_cache_is_exact_at_odd_sizes_with_weight_norm(shape, start_row):
    # Stride-2 grids of odd sizes (7 -> 4 -> 2 rows) and weight-normalized layers, step by step.
    from test_sampling import _check_every_step

    model = tiny(
        "pixelcnn_pp", image_shape=shape, levels=6, hidden=5, n_layers=1, weight_norm=True, num_classes=2
    ).eval()
    x = torch.randint(0, 6, (2, *shape))
    _check_every_step(model, x, start_row, torch.tensor([0, 1]), rtol=0, atol=1e-9)


def test_the_step_test_catches_a_cache_that_skips_the_upsampling(monkeypatch):
    from pixelcnn.nn import shifted
    from test_sampling import _check_every_step

    monkeypatch.setattr(shifted.ConvTransposeWindow, "run", lambda *args: None)
    model = tiny("pixelcnn_pp", image_shape=(1, 4, 4), levels=4, hidden=4, n_layers=1).eval()
    with pytest.raises(AssertionError):
        _check_every_step(model, torch.zeros(1, 1, 4, 4, dtype=torch.long), 0, None, rtol=0, atol=1e-9)


def test_train_takes_the_presets_schedule_unless_a_flag_says_otherwise():
    from pixelcnn.cli import build_parser
    from pixelcnn.cli.train import train_config_from_args

    parser = build_parser()
    given = ["train", "--preset", "pixelcnnpp-cifar10", "--data", "cifar10", "--epochs", "1", "--lr", "2e-3"]
    config, _ = train_config_from_args(parser.parse_args(given))
    paper = (
        config.optimizer,
        config.beta1,
        config.beta2,
        config.lr_decay,
        config.decay_rate,
        config.decay_every,
        config.ema_decay,
        config.grad_clip,
        config.batch_size,
    )
    assert paper == ("adam", 0.95, 0.9995, "exponential", 0.999995, 1, 0.9995, None, 16)
    assert config.lr == 2e-3  # the flag wins over the preset
    other, _ = train_config_from_args(parser.parse_args(["train", "--preset", "gated-cifar10", "--epochs", "1"]))
    assert (other.beta1, other.lr_decay) == (0.9, "none")  # presets without a schedule: defaults


def test_save_and_load_keep_a_weight_normalized_conditional_model(tmp_path):
    model = pixelcnn.build(
        "pixelcnn_pp", image_shape=(3, 6, 6), levels=16, n_layers=1, hidden=4, weight_norm=True, num_classes=3
    ).eval()
    x, labels = torch.randint(0, 16, (2, 3, 6, 6)), torch.tensor([0, 2])
    pixelcnn.save(model, tmp_path / "model")
    loaded = pixelcnn.load(tmp_path / "model").eval()
    assert (loaded.config.head, loaded.config.weight_norm) == ("logistic_mixture", True)
    assert torch.equal(loaded.log_prob(x, labels), model.log_prob(x, labels))
