"""Multi-Scale PixelRNN: an exact, normalized likelihood of x in the order "grid pixels first",
causal in that order, sampled in that order by both samplers, through the ordinary API."""

import pytest
import torch

import pixelcnn
import test_api as shared_api
from conftest import CONDITIONS, all_images, causal_allowed, dependency_map, make_cond, tiny
from pixelcnn.sampling import naive_generate

LAYERS = ["row_lstm", "diagonal_bilstm"]


def _model(shape, layer="diagonal_bilstm", condition="none", levels=2, **sizes):
    sizes = {"hidden": 6, "n_layers": 2, "context_channels": 3, "input_kernel_size": 3, **sizes}
    return tiny("multiscale_pixelrnn", image_shape=shape, levels=levels, layer=layer, **CONDITIONS[condition], **sizes)


def _total_probability(model, log_prob, images, cond):
    if cond is not None:
        cond = cond.expand(images.shape[0], *cond.shape[1:])
    with torch.no_grad():
        return log_prob(images, cond).exp().sum().item()


def grid_first_allowed(image_shape, factor) -> torch.Tensor:
    """bool [C, H, W, C, H, W]: input before output in the model's order (grid pixels, then the rest)."""
    channels, height, width = image_shape
    grid = torch.zeros(height, width, dtype=torch.bool)
    grid[::factor, ::factor] = True
    raster = torch.arange(height * width).view(height, width)
    pixel_rank = torch.where(grid, raster, raster + height * width)
    rank = pixel_rank[None] * channels + torch.arange(channels)[:, None, None]  # [C, H, W]
    return rank.view(*image_shape, 1, 1, 1) > rank.view(1, 1, 1, *image_shape)


# ------------------------------------------------------------------------------------------ likelihood
@pytest.mark.slow  # the multi-scale sweep: the full suite runs it
@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("layer", LAYERS)
def test_probabilities_of_all_binary_images_sum_to_one(layer, condition):
    for shape in [(1, 3, 3), (3, 2, 2)]:  # 512 and 4096 images
        model = _model(shape, layer, condition)
        images = all_images(shape, 2)
        for cond in [make_cond(model, 1), make_cond(model, 1)]:
            assert _total_probability(model, model.log_prob, images, cond) == pytest.approx(1.0, abs=1e-9)


def test_scoring_the_grid_twice_would_not_normalize():
    """Negative control: log p_small(x_s) + the large model's log-likelihood of *every* pixel."""
    model = _model((1, 3, 3))

    def double_counted(x, cond):
        scaled = model.scale_input(x)
        small = model.small_image(scaled)
        large = model.head.params(model.large(scaled, None, model.context(small)))
        small_params = model.head.params(model.small(small))
        return model.head.log_prob(large, x).flatten(1).sum(1) + model.head.log_prob(
            small_params, model.small_image(x)
        ).flatten(1).sum(1)

    total = _total_probability(model, double_counted, all_images((1, 3, 3), 2), None)
    assert abs(total - 1.0) > 0.01


def test_log_prob_is_the_small_image_plus_the_pixels_off_the_grid():
    model = _model((3, 4, 5), "row_lstm", "class", levels=5)
    x, y = torch.randint(0, 5, (2, 3, 4, 5)), torch.tensor([0, 2])
    with torch.no_grad():
        h = model.encode_condition(y)
        scaled = model.scale_input(x)
        small_x = model.small_image(x)  # [2, 3, 2, 3]
        small = model.head.log_prob(model.head.params(model.small(model.small_image(scaled), h)), small_x)
        large = model.head.log_prob(
            model.head.params(model.large(scaled, h, model.context(model.small_image(scaled)))), x
        )
        off_grid = torch.ones(4, 5, dtype=torch.bool)
        off_grid[::2, ::2] = False
        expected = small.flatten(1).sum(1) + large[:, :, off_grid].flatten(1).sum(1)
        assert torch.allclose(model.log_prob(x, y), expected, atol=1e-10)


# ------------------------------------------------------------------------------------------ causality
@pytest.mark.parametrize("condition", ["none", "class", "spatial"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("layer", LAYERS)
def test_no_output_reads_its_own_or_a_later_pixel_channel_in_the_model_order(layer, channels, condition):
    shape = (channels, 4, 5) if channels == 1 else (3, 4, 4)
    model = _model(shape, layer, condition, levels=4)
    seen = dependency_map(model, make_cond(model, 1))
    leaks = seen & ~grid_first_allowed(shape, 2)
    assert not leaks.any(), f"outputs read later inputs at {leaks.nonzero()[:5].tolist()}"


@pytest.mark.parametrize("shape", [(1, 4, 5), (3, 4, 4)])
def test_what_the_diagonal_multiscale_model_sees(shape):
    model = _model(shape, "diagonal_bilstm", levels=4)
    seen = dependency_map(model)
    channels, height, width = shape
    grid = torch.zeros(height, width, dtype=torch.bool)
    grid[::2, ::2] = True
    raster = causal_allowed(shape)
    # Off the grid: the whole raster-order context (Diagonal BiLSTM: no blind spot) ...
    assert (seen | ~raster)[:, ~grid].all()
    # ... and later grid pixels, which a raster-order model could not read: all of them, at this size.
    later_grid = ~raster & grid_first_allowed(shape, 2)
    assert torch.equal(seen[:, ~grid] & later_grid[:, ~grid], later_grid[:, ~grid])
    # On the grid: every earlier grid pixel and nothing else.
    assert torch.equal(seen[:, grid][..., grid], grid_first_allowed(shape, 2)[:, grid][..., grid])
    assert not seen[:, grid][..., ~grid].any()


# ------------------------------------------------------------------------------------------ sampling
def _chi_square(model, samples):
    images = all_images(model.image_shape, 2)
    with torch.no_grad():
        expected = model.log_prob(images).exp() * samples.shape[0]
    weights = 2 ** torch.arange(images[0].numel() - 1, -1, -1)
    observed = torch.bincount((samples.flatten(1) * weights).sum(1), minlength=images.shape[0]).double()
    return ((observed - expected) ** 2 / expected).sum().item()


@pytest.mark.slow  # the multi-scale sweep: the full suite runs it
@pytest.mark.parametrize("layer", LAYERS)
def test_samples_follow_the_model_and_the_raster_order_would_not(layer):
    """1 x 3 images: the order is (0, 0), (0, 2), then (0, 1). 12,000 samples, 7 degrees of freedom."""
    model = _model((1, 1, 3), layer)
    with torch.no_grad():
        for name, param in model.named_parameters():  # peaked, and leaning hard on the small image
            param.mul_(5 if "upsample" in name or "context" in name else 2)
        # The test has something to detect: p(x[0, 1] | x[0, 0]) depends on x[0, 2], drawn before it.
        p_middle = model(torch.tensor([[[[0, 0, 0]]], [[[0, 0, 1]]]]))[:, 0, 0, 0, 1].sigmoid()
        assert (p_middle[0] - p_middle[1]).abs() > 0.02
    n, critical = 12000, 24.3  # p < 0.001
    for method in ("naive", "fast"):
        samples = model.sample(n, generator=torch.Generator().manual_seed(1), method=method)
        assert _chi_square(model, samples) < critical, method
    # Negative control: the generic raster-order sampler draws (0, 1) before (0, 2), which it reads.
    raster = naive_generate(
        model,
        torch.zeros(n, 1, 1, 3, dtype=torch.long),
        0,
        None,
        generator=torch.Generator().manual_seed(1),
        order=[(0, 0), (0, 1), (0, 2)],
    )
    assert _chi_square(model, raster) > critical


@pytest.mark.parametrize("channels, condition", [(1, "none"), (1, "spatial"), (3, "class")])
@pytest.mark.parametrize("layer", LAYERS)
def test_fast_and_naive_use_the_same_logits_and_draw_the_same_images(layer, channels, condition, monkeypatch):
    model = _model((channels, 4, 5), layer, condition, levels=2 if channels == 1 else 7)
    cond = make_cond(model, 2)
    used = {}
    for method in ("naive", "fast"):
        logits = used[method] = []
        sample = model.head.sample
        monkeypatch.setattr(model.head, "sample", lambda p, **kw: logits.append(p.clone()) or sample(p, **kw))
        draw = model.sample(2, cond, generator=torch.Generator().manual_seed(4), method=method)
        done = model.complete(draw, 2, cond, generator=torch.Generator().manual_seed(5), method=method)
        monkeypatch.undo()
        used[method + " images"] = (draw, done)
    # The naive sampler's logits come from a full forward pass on the partial image of each step.
    assert len(used["naive"]) == len(used["fast"]) == channels * (20 + 10)
    for naive, fast in zip(used["naive"], used["fast"]):
        assert torch.allclose(naive, fast, rtol=0, atol=1e-9)
    for naive, fast in zip(used["naive images"], used["fast images"]):
        assert torch.equal(naive, fast)


@pytest.mark.parametrize("shape, factor", [((1, 5, 1), 2), ((1, 5, 4), 3), ((3, 4, 3), 2)])
def test_fast_and_naive_agree_on_odd_grids(shape, factor, monkeypatch):
    """Rows wholly on the grid (width 1), a grid that does not divide the image, a last pixel on the grid."""
    model = _model(shape, "row_lstm", levels=2 if shape[0] == 1 else 5, factor=factor)
    for known_rows in (0, 1):
        x = torch.randint(0, model.levels, (2, *shape))
        used = {}
        for method in ("naive", "fast"):
            logits = used[method] = []
            sample = model.head.sample
            monkeypatch.setattr(model.head, "sample", lambda p, **kw: logits.append(p.clone()) or sample(p, **kw))
            used[method + " images"] = model.complete(
                x, known_rows, generator=torch.Generator().manual_seed(3), method=method
            )
            monkeypatch.undo()
        assert len(used["naive"]) == len(used["fast"]) > 0
        for naive, fast in zip(used["naive"], used["fast"]):
            assert torch.allclose(naive, fast, rtol=0, atol=1e-9), known_rows
        assert torch.equal(used["naive images"], used["fast images"]), known_rows


def test_complete_keeps_the_known_rows_and_reads_no_hidden_one():
    model = _model((1, 5, 4), "row_lstm", levels=16)
    x = torch.randint(0, 16, (3, 1, 5, 4))
    done = model.complete(x, known_rows=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(done[:, :, :3], x[:, :, :3]) and not torch.equal(done[:, :, 3:], x[:, :, 3:])
    again = model.complete(torch.cat([x[:, :, :3], 15 - x[:, :, 3:]], 2), 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(done, again)
    assert torch.equal(model.complete(x, known_rows=5), x)


# ------------------------------------------------------------------------------------------ API
@pytest.mark.slow  # the multi-scale sweep: the full suite runs it
def test_a_few_training_steps_lower_the_nll():
    shared_api.test_a_few_training_steps_lower_the_nll("tiny-multiscale")


def test_save_load_round_trip(tmp_path):
    model = pixelcnn.build("tiny-multiscale", num_classes=3, layer="row_lstm", kernel_size=5)
    x, y = torch.randint(0, 2, (4, 1, 8, 8)), torch.tensor([0, 1, 2, 1])
    pixelcnn.save(model, tmp_path / "m")
    loaded = pixelcnn.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    model.eval()
    assert torch.equal(model.log_prob(x, y), loaded.log_prob(x, y))
    draw = lambda m: m.sample(2, cond=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw(model), draw(loaded))


def test_config_is_checked():
    with pytest.raises(ValueError, match="kernel_size applies to layer='row_lstm' only"):
        pixelcnn.build("multiscale_pixelrnn", layer="diagonal_bilstm", kernel_size=3)
    with pytest.raises(ValueError, match="layer must be one of row_lstm, diagonal_bilstm"):
        pixelcnn.build("multiscale_pixelrnn", layer="lstm")
    with pytest.raises(ValueError, match="factor must be an integer >= 2"):
        pixelcnn.build("multiscale_pixelrnn", factor=1)
    model = pixelcnn.build("multiscale-mnist")
    assert model.small_image(torch.zeros(1, 1, 28, 28)).shape == (1, 1, 14, 14)
    sizes = dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4)
    count = lambda **kw: sum(p.numel() for p in pixelcnn.build("multiscale_pixelrnn", **{**sizes, **kw}).parameters())
    for change in [dict(small_n_layers=3), dict(small_hidden=8), dict(context_channels=8), dict(n_layers=3)]:
        assert count(**change) != count(), change
