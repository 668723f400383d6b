"""Fast (cached) sampling is exact for every registry model: its logits equal a full forward pass
at every step, and under the same generator it draws the same images as the naive sampler."""

import pytest
import torch

from conftest import make_cond, proof_cases, proof_names, tiny

# Larger than the tiny configurations where a model has the option: three layers of 5x5 kernels for
# the convolutional models (PixelCNN++ has fixed 2x3 / 2x2 ones); a 3x3 input layer for the LSTMs.
SIZES = {
    "pixelcnn": dict(n_layers=3, kernel_size=5),
    "gated_pixelcnn": dict(n_layers=3, kernel_size=5),
    "pixelcnn_pp": dict(n_layers=3),
    "row_lstm": dict(input_kernel_size=3),
    "diagonal_bilstm": dict(input_kernel_size=3),
}


def _check_every_step(model, x, start_row, cond, rtol, atol):
    """Run cached generation by hand, in the model's generation order (``sampling.cached_generate``'s
    protocol); at each step compare with a full forward pass on the same partial image."""
    channels = model.image_shape[0]
    h = model.encode_condition(cond)
    cache = model.fast_cache(model.scale_input(x), h, start_row)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    order = model.generation_order(start_row)
    with torch.no_grad():
        for index, (row, col) in enumerate(order):
            for channel in range(channels):
                fast = cache.step(row, col, channel)  # [B, P]
                full = model._params(x, h)[:, channel, :, row, col]
                assert torch.allclose(fast, full, rtol=rtol, atol=atol), (row, col, channel)
                worst = max(worst, (fast - full).abs().max().item())
                value = model.head.sample(full, generator=generator)
                x[:, channel, row, col] = value
                cache.write_value(row, col, channel, value.to(fast.dtype) * 2 / (model.levels - 1) - 1)
            if index + 1 == len(order) or order[index + 1][0] != row:  # the order leaves the row
                cache.finish_row(row)
    return worst


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name, condition", proof_cases())
def test_fast_logits_equal_full_forward_in_float64(name, condition, channels):
    model = tiny(name, condition, image_shape=(channels, 4, 5), levels=5, hidden=6, **SIZES.get(name, {}))
    for start_row in (0, 2):
        x = torch.randint(0, 5, (2, channels, 4, 5))
        _check_every_step(model, x, start_row, make_cond(model, 2), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", proof_names(["class"]))
def test_fast_logits_equal_full_forward_in_float32(name):
    model = tiny(name, image_shape=(3, 4, 4), levels=256, hidden=12, n_layers=3, num_classes=2).float()
    x = torch.randint(0, 256, (2, 3, 4, 4))
    _check_every_step(model, x, 1, torch.tensor([0, 1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name, condition", proof_cases(["none", "class", "spatial"]))
def test_fast_and_naive_draw_the_same_images(name, condition, channels):
    model = tiny(
        name,
        condition,
        image_shape=(channels, 5, 4),
        levels=2 if channels == 1 else 16,
        hidden=6,
        **SIZES.get(name, {}),
    )
    assert set(model.sampling_methods()) == {"naive", "fast"}
    cond = make_cond(model, 3)
    draw = lambda method: model.sample(3, cond, generator=torch.Generator().manual_seed(7), method=method)
    assert torch.equal(draw("naive"), draw("fast"))
    x = torch.randint(0, model.levels, (3, channels, 5, 4))
    complete = lambda method: model.complete(x, 3, cond, generator=torch.Generator().manual_seed(7), method=method)
    fast = complete("fast")
    assert torch.equal(complete("naive"), fast) and torch.equal(fast[:, :, :3], x[:, :, :3])


def test_auto_picks_fast_and_unusual_kernels_work():
    model = tiny(
        "gated_pixelcnn", image_shape=(1, 3, 3), levels=2, hidden=4, n_layers=2, kernel_size=1, input_kernel_size=7
    )
    assert set(model.sampling_methods()) == {"naive", "fast"}
    draw = lambda method: model.sample(4, generator=torch.Generator().manual_seed(1), method=method)
    assert torch.equal(draw("auto"), draw("naive"))
    one_block = tiny("pixelcnn", image_shape=(3, 2, 2), levels=4, hidden=3, n_layers=1)
    assert torch.equal(
        one_block.sample(2, generator=torch.Generator().manual_seed(1), method="fast"),
        one_block.sample(2, generator=torch.Generator().manual_seed(1), method="naive"),
    )


def test_fast_sampler_catches_a_broken_cache(monkeypatch):
    """Negative control: a cache that forgets the vertical stack's shift is caught by the step test."""
    from pixelcnn.models import gated

    model = tiny("gated_pixelcnn", image_shape=(1, 3, 3), levels=2, hidden=4, n_layers=2)
    original = gated.GatedPixelCNNCache.finish_row
    monkeypatch.setattr(gated.GatedPixelCNNCache, "finish_row", lambda self, row: None)
    with pytest.raises(AssertionError):
        _check_every_step(model, torch.zeros(1, 1, 3, 3, dtype=torch.long), 0, None, rtol=0, atol=1e-9)
    monkeypatch.setattr(gated.GatedPixelCNNCache, "finish_row", original)


def test_callback_sees_every_pixel_in_order():
    model = tiny("gated_pixelcnn", image_shape=(1, 3, 2), levels=2, hidden=4, n_layers=2)
    for method in ("naive", "fast"):
        seen = []
        model.sample(1, method=method, callback=lambda row, col, x: seen.append((row, col)))
        assert seen == [(r, c) for r in range(3) for c in range(2)]


@pytest.mark.parametrize("n_layers", [1, 2])
def test_gated_cache_with_one_or_two_layers_in_rgb(n_layers):
    """The first layer writes the skips and, with no residual, its gated units straight into the next
    layer's input row; a single layer is first and last at once (its stacks' outputs are not read)."""
    model = tiny(
        "gated_pixelcnn", "spatial", image_shape=(3, 3, 4), levels=4, hidden=6, n_layers=n_layers, kernel_size=3
    )
    x = torch.randint(0, 4, (2, 3, 3, 4))
    for start_row in (0, 1):
        _check_every_step(model, x.clone(), start_row, make_cond(model, 2), rtol=0, atol=1e-9)
