"""The mixture head on the models: normalization by enumeration, sampling, coding, analysis, training, loading."""

import pytest
import torch

import pixelcnn
from conftest import all_images, causal_allowed, dependency_map, tiny
from pixelcnn.heads import LogisticMixtureHead
from test_cli import TINY, run
from test_coding import assert_round_trip

MIXTURE = dict(head="logistic_mixture", n_mixtures=3)
SIZES = dict(hidden=6, n_layers=2)


def sharpened(model, factor=3.0):
    """The model with its weights scaled up: far from uniform, so a wrong normalization shows."""
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(factor)
    return model


@pytest.mark.parametrize("shape", [(1, 2, 3), (3, 1, 2)])
@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn", pytest.param("pixelcnn_pp", marks=pytest.mark.slow)])
def test_probabilities_of_all_images_sum_to_one(name, shape):
    model = sharpened(tiny(name, image_shape=shape, levels=4, num_classes=2, **SIZES, **MIXTURE))
    assert isinstance(model.head, LogisticMixtureHead)
    images = all_images(shape, 4)  # 4^6 = 4,096 images
    with torch.no_grad():
        for label in (0, 1):
            log_p = model.log_prob(images, torch.full((len(images),), label))
            assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
            assert log_p.max() - log_p.min() > 3  # far from uniform


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_each_channels_mixture_reads_only_earlier_pixel_channels(name):
    # The colour masks split the 3 * 3K outputs into the channels' groups: R's mixture reads nothing of
    # its pixel, G's reads R, B's reads R and G. The Gated PixelCNN sees all of them (no blind spot).
    model = tiny(name, image_shape=(3, 3, 3), levels=4, hidden=6, n_layers=3, kernel_size=3, **MIXTURE)
    seen = dependency_map(model)
    allowed = causal_allowed(model.image_shape)
    assert not (seen & ~allowed).any()
    if name == "gated_pixelcnn":
        assert not (allowed & ~seen).any()


@pytest.mark.parametrize(
    "name, shape, options",
    [
        ("row_lstm", (3, 1, 2), dict(hidden=4, n_layers=1)),
        ("diagonal_bilstm", (3, 1, 2), dict(hidden=4, n_layers=1)),
        ("multiscale_pixelrnn", (1, 2, 3), dict(hidden=4, n_layers=1)),
        ("pixelcnn_ae", (1, 2, 3), dict(hidden=4, n_layers=1, bottleneck=2)),
    ],
)
def test_every_model_with_a_head_takes_the_mixture(name, shape, options):
    model = sharpened(tiny(name, image_shape=shape, levels=4, **options, **MIXTURE), 2.0)
    images = all_images(shape, 4)
    cond = model.encode(images[:1]).expand(len(images), -1) if name == "pixelcnn_ae" else None
    with torch.no_grad():
        assert model.log_prob(images, cond).exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    assert model.forward(images[:2], cond[:2] if cond is not None else None).shape == (2, shape[0], 9, *shape[1:])


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn", "row_lstm"])
def test_fast_and_naive_draw_the_same_images(name):
    model = pixelcnn.build(
        name,
        image_shape=(3, 4, 4),
        levels=256,
        hidden=8,
        n_layers=2,
        num_classes=2,
        head="logistic_mixture",
        n_mixtures=5,
    )
    labels = torch.tensor([0, 1, 1])
    draw = lambda method: model.sample(3, labels, generator=torch.Generator().manual_seed(7), method=method)
    naive = draw("naive")
    assert torch.equal(naive, draw("fast"))
    assert len(naive.unique()) > 10  # real draws, not one value


def test_compress_and_decompress_round_trip():
    model = pixelcnn.build(
        "gated_pixelcnn", image_shape=(3, 4, 5), levels=256, hidden=8, n_layers=2, head="logistic_mixture", n_mixtures=4
    )
    x = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert_round_trip(model, x)
    assert_round_trip(model, torch.randint(0, 256, (1, 3, 4, 5)), method="naive")


def test_predicted_distributions_are_the_heads():
    from pixelcnn import analysis

    model = pixelcnn.build("gated_pixelcnn", image_shape=(3, 5, 5), levels=16, hidden=8, n_layers=2, **MIXTURE)
    image = torch.randint(0, 16, (1, 3, 5, 5))
    found = analysis.pixel_distributions(model, image, [(2, 3)])
    bits = analysis.nll_bits(model, image)  # [1, C, H, W]
    for dist in found:
        assert dist.probs.shape == (16,) and dist.probs.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert -torch.log2(torch.tensor(dist.observed_prob)).item() == pytest.approx(
            bits[0, dist.channel, 2, 3].item(), abs=1e-4
        )


def test_train_with_the_mixture_head_and_load_the_model(capsys, tmp_path):
    folder = tmp_path / "mixture"
    status, _, err = run(
        capsys,
        "train",
        *TINY,
        "--head",
        "logistic_mixture",
        "--n-mixtures",
        "5",
        "--data",
        "digits",
        "--max-steps",
        "2",
        "--eval-images",
        "16",
        "--out",
        str(folder),
    )
    assert status == 0, err
    model = pixelcnn.load(folder / "model")
    assert isinstance(model.head, LogisticMixtureHead) and model.head.n_mixtures == 5
    assert (model.config.head, model.config.n_mixtures) == ("logistic_mixture", 5)
    x = torch.randint(0, 17, (2, 1, 8, 8))
    assert torch.isfinite(model.log_prob(x)).all()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--head", "softmax"], "argument --head: invalid choice: 'softmax'"),
        (["--head", "logistic_mixture", "--n-mixtures", "0"], "n-mixtures must be a positive integer, got 0"),
        (["--head", "bernoulli"], "a Bernoulli head models binary images (levels=2), got levels=17"),
        (
            ["--n-mixtures", "4"],
            "--n-mixtures must be left at 10 unless head='logistic_mixture' (got n_mixtures=4 with head='auto')",
        ),
    ],
)
def test_bad_head_flags_are_one_line_errors(capsys, tmp_path, flags, message):
    status, _, err = run(
        capsys, "train", *TINY, *flags, "--data", "digits", "--max-steps", "1", "--out", str(tmp_path / "r")
    )
    assert status == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not (tmp_path / "r" / "model").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(head="softmax"), "unknown head 'softmax'"),
        (dict(head="logistic_mixture", n_mixtures=0), "n_mixtures must be a positive integer, got 0"),
        (dict(head="bernoulli", levels=256), "a Bernoulli head models binary images (levels=2), got levels=256"),
        (dict(head="categorical", n_mixtures=5), "n_mixtures must be left at 10 unless head='logistic_mixture'"),
    ],
)
def test_bad_head_options_are_value_errors(options, message):
    options = {"image_shape": (1, 4, 4), "levels": 4, **options}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pixelcnn.build("gated_pixelcnn", **options)


def test_mse_baseline_has_no_head():
    with pytest.raises(ValueError, match="mse_ae has no output distribution"):
        pixelcnn.build("tiny-mse", head="logistic_mixture")


def test_saved_configs_without_head_fields_load_and_keep_their_coding_hash():
    from pathlib import Path

    from pixelcnn.coding import model_hash

    model = pixelcnn.load(Path(__file__).parent / "fixtures" / "pixelcnn_ae_v0_1")  # saved by version 0.1
    assert model.config.head == "auto" and model.head.name == "bernoulli"
    assert model_hash(model).hex() == "fb746fe66eb05fae"  # its hash under version 0.1
    torch.manual_seed(0)
    mixture = pixelcnn.build("tiny-gated", head="logistic_mixture")
    torch.manual_seed(0)
    assert model_hash(mixture) != model_hash(pixelcnn.build("tiny-gated", head="logistic_mixture", n_mixtures=9))
