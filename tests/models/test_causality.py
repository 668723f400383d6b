"""Causality by Jacobian for every registry model x {C=1, C=3} x {no cond, class, vector, spatial}.

These tests make the known bugs of public implementations impossible: a
vertical stack that keeps the blind spot, an RGB mask where G does not see R
or sees B, mask A applied twice. Each model is checked in its own generation
order (raster; the multi-scale model: the grid pixels first).
"""

import pytest
import torch

from conftest import causal_allowed, dependency_map, make_cond, model_allowed, proof_cases, tiny
from pixelcnn.nn.masks import causal_mask

SHAPES = {1: (1, 5, 5), 3: (3, 4, 4)}
# Three layers for the convolutional models; the recurrent ones see far in two.
LAYERS = {"pixelcnn": 3, "gated_pixelcnn": 3, "pixelcnn_pp": 3}


def _model(name, channels, condition, **sizes):
    sizes = {"hidden": 6, "n_layers": LAYERS.get(name, 2), **sizes}
    return tiny(name, condition, image_shape=SHAPES[channels], levels=4, **sizes)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name, condition", proof_cases())
def test_no_output_reads_its_own_or_a_later_pixel_channel(name, condition, channels):
    model = _model(name, channels, condition)
    seen = dependency_map(model, make_cond(model, 1))
    leaks = seen & ~model_allowed(model)
    assert not leaks.any(), f"outputs read later inputs at {leaks.nonzero()[:5].tolist()}"


@pytest.mark.parametrize("condition", ["none", "class", "spatial"])
@pytest.mark.parametrize("channels", [1, 3])
def test_gated_pixelcnn_sees_the_whole_causal_context(channels, condition):
    # 5 layers of k = 3 reach 5 rows up and 5 columns either side: the whole 5x5 / 4x4 image.
    model = _model("gated_pixelcnn", channels, condition, kernel_size=3, n_layers=5)
    seen = dependency_map(model, make_cond(model, 1))
    missing = causal_allowed(model.image_shape) & ~seen
    assert not missing.any(), f"blind spot at {missing.nonzero()[:5].tolist()}"


def _minkowski(a: set, b: set) -> set:
    return {(i + k, j + l) for i, j in a for k, l in b}


def pixelcnn_theory(image_shape, n_layers, kernel_size, input_kernel_size) -> torch.Tensor:
    """The pixels a PixelCNN output reads, from the masks alone: bool [C, H, W, C, H, W].

    Spatial offsets of a k x k mask-B layer: the rows above within k//2
    columns, and the row's taps left of and at the centre. The mask-A input
    layer the same without its centre, except that for C > 1 its centre joins
    the colour groups (R's value reaches G's units at the same pixel).
    The composition of layers is the Minkowski sum of their offsets.
    """
    channels, height, width = image_shape

    def offsets(k, centre):
        half = k // 2
        taps = {(di, dj) for di in range(-half, 0) for dj in range(-half, half + 1)}
        taps |= {(0, dj) for dj in range(-half, 0)}
        return taps | ({(0, 0)} if centre else set())

    reach = offsets(input_kernel_size, centre=channels > 1)
    for _ in range(n_layers):
        reach = _minkowski(reach, offsets(kernel_size, centre=True))
    reach.discard((0, 0))
    theory = torch.zeros(channels, height, width, channels, height, width, dtype=torch.bool)
    for i in range(height):
        for j in range(width):
            for di, dj in reach:
                if 0 <= i + di < height and 0 <= j + dj < width:
                    theory[:, i, j, :, i + di, j + dj] = True
            for c in range(channels):
                theory[c, i, j, :c, i, j] = True
    return theory


@pytest.mark.parametrize("channels", [1, 3])
def test_pixelcnn_blind_spot_is_exactly_where_the_theory_puts_it(channels):
    shape = (channels, 7, 8)
    model = tiny("pixelcnn", image_shape=shape, levels=3, hidden=6, n_layers=2, kernel_size=3, input_kernel_size=5)
    seen = dependency_map(model)
    theory = pixelcnn_theory(shape, 2, 3, 5)
    assert torch.equal(seen, theory)
    # The blind spot exists: output (6, 0) does not see the right part of row 5,
    # although all of it comes earlier in raster order.
    blind = causal_allowed(shape)[0, 6, 0] & ~seen[0, 6, 0]
    assert blind[:, 5, 3:].all() and not blind[:, 5, :3].any()


def test_the_condition_reaches_every_output():
    # A condition that never arrived would pass every causality test; check it does.
    model = tiny("gated_pixelcnn", image_shape=(1, 3, 3), levels=2, hidden=4, n_layers=2, num_classes=3)
    x = torch.zeros(3, 1, 3, 3, dtype=torch.long)
    params = model(x, torch.tensor([0, 1, 2]))
    assert (params[0] - params[1]).abs().min() > 0 and (params[1] - params[2]).abs().min() > 0


def test_the_causality_test_catches_the_known_bugs(monkeypatch):
    """Negative controls: break the model the way public repos did and watch the test fail."""
    import pixelcnn.nn.gated as gated_layer

    allowed = causal_allowed((3, 4, 4))

    # 1. The vertical stack fed to the horizontal one without the down shift: it sees the future.
    monkeypatch.setattr(gated_layer, "shift_down", lambda x: x)
    model = _model("gated_pixelcnn", 3, "none")
    assert (dependency_map(model) & ~allowed).any()
    monkeypatch.undo()

    # 2. Mask B in the first layer: every channel sees itself.
    model = _model("pixelcnn", 3, "none")
    model.input_conv.mask.copy_(causal_mask(7, 3, 12, mask_type="B", color_channels=3))
    assert (dependency_map(model) & ~allowed).any()

    # 3. An RGB mask where G does not see R (centre of mask A closed to all groups): context missing.
    model = _model("gated_pixelcnn", 3, "none", n_layers=5)
    model.layers[0].horizontal_conv.mask[:, :, 0, -1] = 0
    assert (allowed & ~dependency_map(model)).any()
