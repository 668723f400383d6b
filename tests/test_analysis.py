"""pixelcnn.analysis: receptive fields against the theory, distributions, NLL maps, sampling frames."""

import math

import numpy as np
import pytest
import torch

import pixelcnn
from pixelcnn import analysis, data, viz
from pixelcnn.analysis import Context
from pixelcnn.nn.masks import causal_mask


def _fresh(name, image_shape=(1, 8, 8), *, n_layers=2, levels=2, **options):
    return pixelcnn.build(
        name, image_shape=image_shape, levels=levels, n_layers=n_layers, hidden=6, input_kernel_size=3, **options
    )


def _needs(name):
    if name not in pixelcnn.list_models():
        pytest.skip(f"{name} is not in this version's registry")


def stacked_3x3_theory(image_shape, pixel, n_layers, *, widening_left: bool, reach_up: int | None):
    """The receptive field of 3-wide masked layers (first one mask A), derived from the masks by hand.

    Each layer moves the field one row up with a column step in -1..1, or
    stays in the row with a step in -1..0 (the first layer may not stay put).
    So d rows up (d <= the layers) the field spans columns j - (L + 1) ..
    j + d: the right edge grows one column per row, and everything right of
    it, though earlier in raster order, is the blind spot, at any depth. In the
    pixel's own row it spans j - (L + 1) .. j - 1. The Row LSTM's recurrence
    over the rows above adds one column per row on the left too
    (``widening_left``) and reaches every row (``reach_up=None``). The rest of
    the past is out of reach: more layers would see it.
    """
    _, height, width = image_shape
    row, col = pixel
    reach_left = n_layers + 1
    expected = torch.full(image_shape, int(Context.FUTURE))
    for i in range(row + 1):
        d = row - i
        for j in range(width):
            if d == 0 and j >= col:
                continue
            dj = j - col
            left = reach_left + (d if widening_left else 0)
            within_rows = reach_up is None or d <= reach_up
            seen = within_rows and -left <= dj <= (d if d > 0 else -1)
            blind = d > 0 and dj > d
            expected[0, i, j] = int(Context.SEEN if seen else Context.BLIND_SPOT if blind else Context.OUT_OF_REACH)
    expected[0, row, col] = int(Context.TARGET)
    return expected


PIXELS = [(0, 0), (0, 5), (3, 0), (5, 4), (6, 6), (6, 2)]


@pytest.mark.parametrize("n_layers", [1, 3])
def test_pixelcnn_blind_spot_is_where_the_theory_puts_it(n_layers):
    model = _fresh("pixelcnn", (1, 7, 8), n_layers=n_layers, kernel_size=3)
    for pixel, field_map in zip(PIXELS, analysis.receptive_fields(model, PIXELS)):
        expected = stacked_3x3_theory((1, 7, 8), pixel, n_layers, widening_left=False, reach_up=n_layers + 1)
        assert torch.equal(field_map, expected), pixel
    # The blind spot itself: above-right of (6, 2) with 3 layers reaching 4 rows up.
    field_map = analysis.receptive_fields(model, PIXELS)[PIXELS.index((6, 2))]
    if n_layers == 3:
        assert field_map[0, 5, 4] == Context.BLIND_SPOT and field_map[0, 5, 3] == Context.SEEN
        assert field_map[0, 4, 5] == Context.BLIND_SPOT and field_map[0, 4, 4] == Context.SEEN
        assert field_map[0, 1, 2] == Context.OUT_OF_REACH  # 5 rows up: 3 layers do not reach


def test_row_lstm_sees_a_triangle():
    _needs("row_lstm")
    model = _fresh("row_lstm", (1, 7, 9), n_layers=1)
    pixels = PIXELS + [(6, 8)]
    for pixel, field_map in zip(pixels, analysis.receptive_fields(model, pixels)):
        expected = stacked_3x3_theory((1, 7, 9), pixel, 1, widening_left=True, reach_up=None)
        assert torch.equal(field_map, expected), pixel


@pytest.mark.parametrize("image_shape", [(1, 6, 6), (3, 4, 4)])
def test_gated_pixelcnn_and_diagonal_bilstm_have_no_blind_spot(image_shape):
    models = [_fresh("gated_pixelcnn", image_shape, n_layers=6, levels=4, kernel_size=3)]
    if "diagonal_bilstm" in pixelcnn.list_models():
        models.append(_fresh("diagonal_bilstm", image_shape, n_layers=1, levels=4))
    _, height, width = image_shape
    pixels = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1), (2, 3)]
    for model in models:
        for channel in range(image_shape[0]):
            for pixel, field_map in zip(pixels, analysis.receptive_fields(model, pixels, channel, split_unseen=False)):
                counts = analysis.count_context(field_map)
                before = (pixel[0] * width + pixel[1]) * image_shape[0] + channel
                assert counts["SEEN"] == before, (model.name, pixel, channel)
                assert counts["BLIND_SPOT"] == counts["OUT_OF_REACH"] == counts["LEAK"] == 0
                assert counts["TARGET"] == 1


def test_colour_channels_see_the_earlier_channels_of_their_own_pixel():
    model = _fresh("pixelcnn", (3, 5, 5), levels=4, kernel_size=3)
    for channel in range(3):
        field_map = analysis.receptive_field(model, (2, 2), channel, split_unseen=False)
        assert torch.equal(
            analysis.receptive_fields(model, [(0, 4), (2, 2)], channel, split_unseen=False)[1], field_map
        )
        assert field_map[channel, 2, 2] == Context.TARGET
        assert (field_map[:channel, 2, 2] == Context.SEEN).all()
        assert (field_map[channel + 1 :, 2, 2] == Context.FUTURE).all()
        assert (field_map[:, 2, 3:] == Context.FUTURE).all() and (field_map[:, 3:] == Context.FUTURE).all()


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm"])
def test_nothing_in_the_future_is_seen(name):
    _needs(name)
    model = _fresh(name, (3, 4, 5), levels=4, num_classes=3)
    for channel in range(3):
        field_maps = analysis.receptive_fields(
            model, [(0, 0), (1, 3), (3, 4)], channel, cond=torch.tensor([2]), split_unseen=False
        )
        assert not (field_maps == Context.LEAK).any(), channel
        assert ((field_maps == Context.TARGET).sum((1, 2, 3)) == 1).all()


def test_a_broken_mask_shows_up_as_a_leak():
    # Negative control: mask B in the first layer lets every channel read itself.
    model = _fresh("pixelcnn", (3, 4, 4), levels=4)
    conv = model.input_conv
    conv.mask.copy_(causal_mask(conv.kernel_size[0], 3, conv.out_channels, mask_type="B", color_channels=3))
    field_map = analysis.receptive_field(model, (2, 1), channel=1, split_unseen=False)
    assert field_map[1, 2, 1] == Context.LEAK
    assert analysis.count_context(field_map)["LEAK"] == 1


def test_the_map_does_not_depend_on_the_weights():
    # Dead ReLUs and signed weights in a "trained" model must not hide a dependency.
    model = _fresh("pixelcnn", (1, 7, 7), n_layers=2)
    fresh = analysis.receptive_field(model, (5, 3))
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 3 - 2)  # most ReLUs closed
    assert torch.equal(analysis.receptive_field(model, (5, 3)), fresh)


def test_a_gated_pixelcnn_too_shallow_for_the_image_has_no_blind_spot_only_reach():
    model = _fresh("gated_pixelcnn", (1, 9, 9), n_layers=2, kernel_size=3)
    field_map = analysis.receptive_field(model, (8, 4))
    counts = analysis.count_context(field_map)
    assert counts["BLIND_SPOT"] == 0 and counts["OUT_OF_REACH"] > 0
    assert field_map[0, 0, 8] == Context.OUT_OF_REACH
    # Without the deeper pass every unread earlier input counts as blind.
    flat = analysis.receptive_field(model, (8, 4), split_unseen=False)
    assert analysis.count_context(flat)["BLIND_SPOT"] == counts["OUT_OF_REACH"]


def test_bad_pixels_and_channels_are_clear_errors():
    model = _fresh("pixelcnn", (1, 6, 7))
    with pytest.raises(ValueError, match=r"pixel \(6, 0\) is outside the 6x7 image: row must be in 0..5"):
        analysis.receptive_field(model, (6, 0))
    with pytest.raises(ValueError, match="pair of integers"):
        analysis.receptive_field(model, (1.5, 2))
    with pytest.raises(ValueError, match="channel must be an integer in 0..0"):
        analysis.receptive_field(model, (1, 1), channel=1)


# ------------------------------------------------------------------------ distributions and NLL
@pytest.mark.parametrize("levels, channels", [(2, 1), (5, 3)])
def test_nll_map_sums_to_log_prob(levels, channels):
    model = _fresh("gated_pixelcnn", (channels, 5, 6), levels=levels, num_classes=3).double()
    images = torch.randint(0, levels, (3, channels, 5, 6))
    cond = torch.tensor([0, 2, 1])
    bits = analysis.nll_bits(model, images, cond)
    assert bits.shape == (3, channels, 5, 6) and (bits >= 0).all()
    log_prob = model.log_prob(images, cond).double()
    assert torch.allclose(bits.sum((1, 2, 3)) * math.log(2), -log_prob, rtol=1e-10, atol=1e-9)
    nats, per_dim = analysis.nll_totals(bits, model.image_shape)
    assert torch.allclose(nats, -log_prob) and torch.allclose(
        per_dim, pixelcnn.bits_per_dim(-log_prob, (channels, 5, 6))
    )


@pytest.mark.parametrize("levels, channels", [(2, 1), (7, 3)])
def test_distributions_are_the_models_conditionals(levels, channels):
    model = _fresh("pixelcnn", (channels, 5, 5), levels=levels).double()
    image = torch.randint(0, levels, (channels, 5, 5))
    bits = analysis.nll_bits(model, image.unsqueeze(0))[0]
    dists = analysis.pixel_distributions(model, image, [(1, 2), (4, 0)])
    assert [(d.row, d.col, d.channel) for d in dists] == [
        (r, c, k) for r, c in [(1, 2), (4, 0)] for k in range(channels)
    ]
    for d in dists:
        assert d.probs.shape == (levels,) and abs(float(d.probs.sum()) - 1) < 1e-12
        assert d.observed == int(image[d.channel, d.row, d.col])
        # The bar of the observed value is exactly the probability the NLL map charges for it.
        assert math.isclose(d.observed_prob, 2 ** -float(bits[d.channel, d.row, d.col]), rel_tol=1e-9)
        assert 0 <= d.entropy_bits <= math.log2(levels) + 1e-9
    only_last = analysis.pixel_distributions(model, image, [(0, 0)], channels=[channels - 1])
    assert len(only_last) == 1 and only_last[0].channel == channels - 1


def test_default_pixels_are_the_most_uncertain():
    model = _fresh("pixelcnn", (1, 6, 6))
    image = torch.randint(0, 2, (1, 6, 6))
    dists = analysis.pixel_distributions(model, image, count=3)
    entropy = [
        d.entropy_bits for d in analysis.pixel_distributions(model, image, [(r, c) for r in range(6) for c in range(6)])
    ]
    assert len(dists) == 3 and sorted(d.entropy_bits for d in dists) == sorted(entropy)[-3:]
    with pytest.raises(ValueError, match="outside the 6x6 image"):
        analysis.pixel_distributions(model, image, [(0, 6)])


# ------------------------------------------------------------------------------- image files
@pytest.mark.parametrize("levels, channels", [(2, 1), (17, 1), (256, 3)])
def test_load_image_inverts_the_grid_drawing(tmp_path, levels, channels):
    images = torch.randint(0, levels, (1, channels, 6, 5))
    path = viz.save(viz.image_grid(images, levels=levels, padding=0), tmp_path / "x.png")
    assert torch.equal(data.read_image(path, (channels, 6, 5), levels), images)


def test_load_image_sizes(tmp_path):
    from PIL import Image

    Image.new("L", (10, 12), 200).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="is 10x12 pixels; the model takes 5x6"):
        data.read_image(tmp_path / "big.png", (1, 6, 5), 2)
    resized = data.read_image(tmp_path / "big.png", (1, 6, 5), 2, resize=True)
    assert resized.shape == (1, 1, 6, 5) and (resized == 1).all()
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        data.read_image(tmp_path / "bad.png", (1, 6, 5), 2)
    with pytest.raises(FileNotFoundError):
        data.read_image(tmp_path / "none.png", (1, 6, 5), 2)


# ---------------------------------------------------------------------------- sampling frames
@pytest.mark.parametrize("name", ["gated_pixelcnn", "pixelcnn"])
def test_sampling_frames_follow_the_samples(name):
    model = _fresh(name, (1, 5, 4), levels=3)
    frames = analysis.sampling_frames(model, 3, generator=torch.Generator().manual_seed(1))
    assert frames.method == "fast"
    reference = model.sample(3, generator=torch.Generator().manual_seed(1), method="naive")
    assert torch.equal(frames.images, reference)
    assert frames.pixels_done == [0, 4, 8, 12, 16, 20]  # one frame per row
    order = np.arange(20).reshape(5, 4)
    for frame, done in zip(frames.frames, frames.pixels_done):
        drawn = torch.from_numpy(order < done)
        assert torch.equal(frame.long()[:, :, drawn], reference[:, :, drawn])
        assert (frame[:, :, ~drawn] == 0).all()
    every = analysis.sampling_frames(model, 1, every=3)
    assert every.pixels_done == [0, 3, 6, 9, 12, 15, 18, 20]
    with pytest.raises(ValueError, match="every must be a positive number"):
        analysis.sampling_frames(model, 1, every=0)
    with pytest.raises(ValueError, match="unknown sampling method 'quick'"):
        analysis.sampling_frames(model, 1, method="quick")


def test_a_model_drawing_in_another_order_is_judged_by_that_order():
    # The Multi-Scale PixelRNN draws the subsampled grid first: an off-grid pixel reads grid pixels
    # below it (earlier for it, later in raster order), and that is no leak.
    _needs("multiscale_pixelrnn")
    model = pixelcnn.build("multiscale_pixelrnn", image_shape=(1, 6, 6), levels=2, n_layers=1, hidden=4)
    rank = analysis.generation_rank(model)
    assert rank[0, 2] == 1 and rank[2, 0] == 3 and rank[0, 1] == 9  # grid (every 2nd) first
    off_grid, on_grid = analysis.receptive_fields(model, [(3, 3), (2, 2)], split_unseen=False)
    assert off_grid[0, 4, 0] == Context.SEEN and off_grid[0, 4, 1] == Context.FUTURE
    assert not (off_grid == Context.LEAK).any() and not (on_grid == Context.LEAK).any()
    assert on_grid[0, 0, 1] == Context.FUTURE and on_grid[0, 2, 0] == Context.SEEN
    frames = analysis.sampling_frames(model, 2, every=9, generator=torch.Generator().manual_seed(0))
    assert frames.pixels_done == [0, 9, 18, 27, 36] and torch.equal(frames.rank, rank)
    for frame, done in zip(frames.frames, frames.pixels_done):
        drawn = rank < done
        assert torch.equal(frame.long()[:, :, drawn], frames.images[:, :, drawn])
        assert (frame[:, :, ~drawn] == 0).all()


def test_the_dependency_map_is_every_receptive_field_at_once():
    # PixelCNN++'s mixture head couples a pixel's channels after the network (``head_params``): with
    # ``head.params`` alone the RGB maps failed (the coupled output has more maps than the head's).
    torch.manual_seed(0)
    model = pixelcnn.build("pixelcnn_pp", image_shape=(3, 4, 4), levels=4, n_layers=1, hidden=6)
    seen = analysis.dependency_map(model)  # [C, H, W, C, H, W]
    assert not (seen & ~analysis.causal_order(model)).any()
    field = analysis.receptive_field(model, (2, 1), channel=2, split_unseen=False)
    assert torch.equal(seen[2, 2, 1], field == int(Context.SEEN))
    assert seen[2, 2, 1, :2, 2, 1].all() and not seen[0, 2, 1, :, 2, 1].any()  # B reads R and G; R nothing


def test_causal_order_follows_the_generation_order():
    model = pixelcnn.build("multiscale_pixelrnn", image_shape=(1, 4, 4), levels=2, n_layers=1, hidden=4)
    allowed = analysis.causal_order(model)
    rank = analysis.generation_rank(model)
    assert rank[0, 2] < rank[0, 1]  # the subsampled grid is drawn first ...
    assert allowed[0, 0, 1, 0, 0, 2] and not allowed[0, 0, 2, 0, 0, 1]  # ... so (0, 1) may read (0, 2)
    raster = pixelcnn.build("pixelcnn", image_shape=(2, 2, 2), levels=2, n_layers=1, hidden=4)
    assert analysis.causal_order(raster)[1, 0, 0, 0, 0, 0] and not analysis.causal_order(raster)[0, 0, 0, 1, 0, 0]
