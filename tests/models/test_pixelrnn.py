"""PixelRNN (Row LSTM, Diagonal BiLSTM): receptive fields, exactness, fast sampling, save/load.

The proofs every registry model passes (no output reads a later pixel-channel, normalization,
sequential conditionals, the sampler's chi-square, fast == naive, completion) run for these
models in test_causality.py, test_exactness.py and test_sampling.py. Here: what is particular to
the LSTMs. The causality tests use the exact structural Jacobian (``conftest.dependency_map``);
the negative controls break the layers the way public implementations did and check that the
tests notice.
"""

import math

import pytest
import torch

import pixelcnn
import test_api as shared_api  # reused by module, so that pytest does not collect it twice
from conftest import CONDITIONS, all_images, causal_allowed, dependency_map, make_cond, tiny
from pixelcnn.nn.lstm import DiagonalBiLSTMLayer, RowLSTMLayer, skew, unskew
from pixelcnn.nn.masks import causal_mask
from test_sampling import _check_every_step

MODELS = ["row_lstm", "diagonal_bilstm"]


def _model(name, shape, condition="none", **sizes):
    sizes = {"hidden": 6, "n_layers": 2, **sizes}
    return tiny(name, image_shape=shape, levels=4, **CONDITIONS[condition], **sizes)


# ------------------------------------------------------------------------------------------ causality
@pytest.mark.parametrize("condition", ["none", "spatial"])
@pytest.mark.parametrize("shape, input_kernel_size", [((1, 5, 5), 7), ((1, 4, 9), 3), ((3, 4, 7), 3)])
def test_diagonal_bilstm_sees_the_whole_causal_context(shape, input_kernel_size, condition):
    # One layer suffices; the wide shapes with a 3x3 input layer are those where the paper's layer,
    # as written, misses the last pixel of the row above (see the negative control below).
    model = _model("diagonal_bilstm", shape, condition, n_layers=1, input_kernel_size=input_kernel_size)
    seen = dependency_map(model, make_cond(model, 1))
    assert torch.equal(seen, causal_allowed(shape))


def row_lstm_theory(shape, n_layers, kernel_size, input_kernel_size) -> torch.Tensor:
    """The pixels a C = 1 Row LSTM output reads, from the layer rules: bool [1, H, W, 1, H, W].

    With a = k0//2 (input layer) and b = k//2 (Row LSTM), output (i, j) reads
    row i - d at columns
      d = 0:  j - a - L*b .. j - 1            (mask A input layer, then each layer's
                                               input-to-state reaches b further left)
      d >= 1: j - a - L*b - d*b .. j + a + (d - 1)*b
    The right edge is the triangle: the input layer reaches a columns right one
    row up, each state-to-state step one row and b columns further.
    """
    _, height, width = shape
    a, b = input_kernel_size // 2, kernel_size // 2
    theory = torch.zeros(height, width, height, width, dtype=torch.bool)
    for i in range(height):
        for j in range(width):
            for d in range(i + 1):
                low = j - a - n_layers * b - d * b
                high = j - 1 if d == 0 else j + a + (d - 1) * b
                theory[i, j, i - d, max(low, 0) : max(min(high, width - 1) + 1, 0)] = True
    return theory.view(1, height, width, 1, height, width)


@pytest.mark.parametrize("n_layers, kernel_size, input_kernel_size", [(2, 3, 3), (1, 3, 5), (2, 5, 3)])
def test_row_lstm_receptive_field_is_exactly_the_triangle(n_layers, kernel_size, input_kernel_size):
    shape = (1, 6, 11)
    model = _model(
        "row_lstm", shape, n_layers=n_layers, kernel_size=kernel_size, input_kernel_size=input_kernel_size, hidden=4
    )
    seen = dependency_map(model)
    assert torch.equal(seen, row_lstm_theory(shape, n_layers, kernel_size, input_kernel_size))


def test_row_lstm_sees_the_triangle_and_misses_the_rest():
    """Spelled out for one pixel: 2 layers, k = 3, a 3x3 input layer, output (5, 2) of a 6 x 11 image."""
    model = _model("row_lstm", (1, 6, 11), n_layers=2, input_kernel_size=3, hidden=4)
    seen = dependency_map(model)[0, 5, 2, 0]  # [H, W] inputs read by (5, 2)
    for d in range(1, 6):  # row 5 - d: up to column 2 + d
        assert seen[5 - d, : 3 + d].all() and not seen[5 - d, 3 + d :].any(), d
    assert seen[5, :2].all() and not seen[5, 2:].any()
    # The context it misses although it comes earlier: right of the triangle in every row above.
    missed = causal_allowed((1, 6, 11))[0, 5, 2, 0] & ~seen
    assert missed[4, 4:].all() and missed[0, 8:].all() and missed.sum() == 7 + 6 + 5 + 4 + 3


def test_the_tests_catch_the_known_bugs(monkeypatch):
    """Negative controls: each bug below must make a causality test fail."""
    import pixelcnn.nn.lstm as lstm

    # 1. The Diagonal BiLSTM's right-to-left output not shifted down: it sees the rest of its row.
    monkeypatch.setattr(lstm, "shift_down", lambda x: x)
    model = _model("diagonal_bilstm", (1, 4, 4))
    assert (dependency_map(model) & ~causal_allowed((1, 4, 4))).any()
    monkeypatch.undo()

    # 2. An RGB input-to-state mask letting G see B at the same pixel (centre tap open to all groups).
    model = _model("row_lstm", (3, 4, 4))
    model.rnn.layers[1].input_to_state.mask[:, :, 0, -1] = 1
    assert (dependency_map(model) & ~causal_allowed((3, 4, 4))).any()

    # 3. Mask B in the input layer: every channel sees itself.
    model = _model("diagonal_bilstm", (3, 4, 4))
    model.rnn.input_conv.mask.copy_(causal_mask(7, 3, 12, mask_type="B", color_channels=3))
    assert (dependency_map(model) & ~causal_allowed((3, 4, 4))).any()

    # 4. The paper's layer as written (the right-to-left LSTM not reading the image): a blind spot at
    #    the last pixel of the row above, for every pixel more than k0//2 + 1 columns from the right.
    model = _model("diagonal_bilstm", (1, 4, 9), n_layers=1, input_kernel_size=3)
    model.rnn.layers[0].reads_image = False
    missing = causal_allowed((1, 4, 9)) & ~dependency_map(model)
    assert missing.any() and set(missing.nonzero()[:, 5].tolist()) == {8}


def test_the_condition_reaches_every_output():
    for name in MODELS:
        model = tiny(name, image_shape=(1, 3, 3), levels=2, hidden=4, n_layers=1, num_classes=3)
        params = model(torch.zeros(3, 1, 3, 3, dtype=torch.long), torch.tensor([0, 1, 2]))
        assert (params[0] - params[1]).abs().min() > 0 and (params[1] - params[2]).abs().min() > 0


def test_skew_and_unskew():
    x = torch.arange(3 * 4 * 2.0).view(1, 3, 4, 2)  # [B, H, W, F], channels last
    skewed = skew(x)  # [1, 3, 6, 2]
    assert skewed.shape == (1, 3, 6, 2)
    for r in range(3):
        assert torch.equal(skewed[0, r, r : r + 4], x[0, r])
        assert skewed[0, r, :r].eq(0).all() and skewed[0, r, r + 4 :].eq(0).all()
    for shape in [(2, 3, 5, 2), (1, 1, 6, 1), (2, 2, 4, 4, 3)]:
        x = torch.randn(shape)
        assert torch.equal(unskew(skew(x), shape[-2]), x)


# ------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("name", MODELS)
def test_float32_models_and_more_levels_normalize_too(name):
    model = pixelcnn.build(name, image_shape=(1, 3, 3), levels=2, hidden=8, n_layers=2)
    with torch.no_grad():
        assert model.log_prob(all_images((1, 3, 3), 2)).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    model = tiny(name, image_shape=(3, 1, 2), levels=4, hidden=6, n_layers=2, residual=False)
    with torch.no_grad():
        assert model.log_prob(all_images((3, 1, 2), 4)).exp().sum().item() == pytest.approx(1.0, abs=1e-9)


# -------------------------------------------------------------------------------------- fast sampling
def test_a_broken_cache_is_caught(monkeypatch):
    """Negative control: a Row LSTM cache that forgets the row above fails the step-by-step test."""
    from pixelcnn.nn import lstm

    original = lstm.RowLSTMCache.end_row

    def forgetful(self, i, image_row):
        original(self, i, image_row)
        self.from_above.zero_()

    monkeypatch.setattr(lstm.RowLSTMCache, "end_row", forgetful)
    model = tiny("row_lstm", image_shape=(1, 3, 3), levels=2, hidden=4, n_layers=1)
    with pytest.raises(AssertionError):
        _check_every_step(model, torch.randint(0, 2, (2, 1, 3, 3)), 0, None, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------ API and sizes
@pytest.mark.parametrize(
    "name, extra",
    [
        ("tiny-rowlstm", dict(num_classes=3)),
        ("tiny-diagbilstm", dict(cond_dim=4, spatial_cond=True)),
        ("tiny-rowlstm", dict(image_shape=(3, 4, 4), levels=256, residual=False, kernel_size=5)),
    ],
)
def test_save_load_round_trip(tmp_path, name, extra):
    model = pixelcnn.build(name, **extra)
    C, H, W = model.image_shape
    x = torch.randint(0, model.levels, (3, C, H, W))
    cond = make_cond(model, 3)
    cond = cond.float() if cond is not None and cond.is_floating_point() else cond
    pixelcnn.save(model, tmp_path / "model")
    loaded = pixelcnn.load(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.config == model.config
    model.eval()
    assert torch.equal(model.log_prob(x, cond), loaded.log_prob(x, cond))
    gen = lambda m: m.sample(2, None if cond is None else cond[:2], generator=torch.Generator().manual_seed(3))
    assert torch.equal(gen(model), gen(loaded))


@pytest.mark.parametrize("name", ["tiny-rowlstm", "tiny-diagbilstm"])
def test_a_few_training_steps_lower_the_nll(name):
    shared_api.test_a_few_training_steps_lower_the_nll(name)


def test_sizes_are_honoured_and_bad_sizes_are_named():
    count = lambda **kw: sum(p.numel() for p in pixelcnn.build(**kw).parameters())
    for name, changes in [
        (
            "row_lstm",
            [
                dict(n_layers=3),
                dict(hidden=8),
                dict(kernel_size=5),
                dict(input_kernel_size=5),
                dict(skip_channels=4),
                dict(output_hidden=4),
            ],
        ),
        (
            "diagonal_bilstm",
            [dict(n_layers=3), dict(hidden=8), dict(input_kernel_size=5), dict(skip_channels=4), dict(output_hidden=4)],
        ),
    ]:
        base = dict(name=name, image_shape=(1, 6, 6), levels=2, n_layers=2, hidden=4)
        for change in changes:
            assert count(**{**base, **change}) != count(**base), (name, change)
    # residual=False keeps the parameters but changes the function.
    x = torch.randint(0, 2, (2, 1, 6, 6))
    torch.manual_seed(0)
    with_residual = pixelcnn.build("tiny-rowlstm", image_shape=(1, 6, 6)).log_prob(x)
    torch.manual_seed(0)
    assert not torch.equal(
        pixelcnn.build("tiny-rowlstm", image_shape=(1, 6, 6), residual=False).log_prob(x), with_residual
    )
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        pixelcnn.build("row_lstm", kernel_size=4)
    with pytest.raises(ValueError, match="diagonal_bilstm has no option kernel_size"):
        pixelcnn.build("diagonal_bilstm", kernel_size=3)
    with pytest.raises(ValueError, match="hidden must be at least the 3 colour channels"):
        pixelcnn.build("row_lstm", image_shape=(3, 8, 8), hidden=2)


def test_paper_presets():
    sizes = {
        "diagbilstm-mnist": (7, 16),
        "rowlstm-cifar10": (12, 128),
        "diagbilstm-cifar10": (12, 128),
        "rowlstm-imagenet32": (12, 384),
        "rowlstm-imagenet64": (4, 512),
    }
    for preset, size in sizes.items():
        config = pixelcnn.models.registry.config_for(preset)[1]
        assert (config.n_layers, config.hidden) == size, preset
    assert pixelcnn.models.registry.config_for("rowlstm-imagenet64")[1].residual is False
    assert isinstance(pixelcnn.build("diagbilstm-mnist").rnn.layers[0], DiagonalBiLSTMLayer)
    assert isinstance(pixelcnn.build("rowlstm-mnist").rnn.layers[0], RowLSTMLayer)


@pytest.mark.parametrize("name", ["diagbilstm-mnist", "rowlstm-mnist", "rowlstm-cifar10"])
def test_activations_stay_small_at_initialization(name):
    model = pixelcnn.build(name)
    C, H, W = model.image_shape
    with torch.no_grad():
        logits = model(torch.randint(0, model.levels, (2, C, H, W)))
    assert logits.abs().max() < 20 and math.isfinite(logits.abs().max().item())
