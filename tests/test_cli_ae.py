"""The auto-encoder commands: interpolate, reconstruct, identity, identity-sample (shapes, contents, errors)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelcnn
from pixelcnn import data
from pixelcnn.cli import main
from pixelcnn.viz import display_values as to_display

DIGITS = dict(image_shape=(1, 8, 8), levels=17)  # scikit-learn's 8x8 digits: small and quick to sample


def cells(path, rows: int, columns: int, size: int = 8, padding: int = 2) -> np.ndarray:
    """The PNG grid at ``path`` (scale 1) cut into its cells: grey uint8 [rows, columns, size, size]."""
    picture = np.asarray(Image.open(path).convert("L"))
    assert picture.shape == (rows * (size + padding) + padding, columns * (size + padding) + padding)
    step = size + padding
    return np.stack(
        [
            np.stack([picture[padding + r * step :][:size, padding + c * step :][:, :size] for c in range(columns)])
            for r in range(rows)
        ]
    )


def shown(image: torch.Tensor, levels: int = 17) -> np.ndarray:
    return to_display(image[None], levels)[0, 0].numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    saved = {
        "ae": pixelcnn.build("pixelcnn_ae", **DIGITS, bottleneck=3, n_layers=2, hidden=4, encoder_channels=4),
        "mse": pixelcnn.build("mse_ae", **DIGITS, bottleneck=3, encoder_channels=4, decoder_channels=4),
        "gated": pixelcnn.build("gated_pixelcnn", **DIGITS, n_layers=1, hidden=4),
    }
    return {name: str(pixelcnn.save(model, folder / name)) for name, model in saved.items()}


@pytest.fixture(scope="module")
def digits_test():
    return data.load("digits", "test")


def test_interpolate_one_row_per_seed_between_the_two_images(models, digits_test, tmp_path):
    out = tmp_path / "interp.png"
    assert (
        main(
            [
                "interpolate",
                models["ae"],
                "--data",
                "digits",
                "--from",
                "3",
                "--to",
                "40",
                "--steps",
                "4",
                "--rows",
                "2",
                "--scale",
                "1",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    grid = cells(out, rows=2, columns=6)
    for row in grid:
        assert np.array_equal(row[0], shown(digits_test.images[3]))
        assert np.array_equal(row[5], shown(digits_test.images[40]))
    model = pixelcnn.load(models["ae"])
    expected = model.interpolate(digits_test.images[3:4], digits_test.images[40:41], 4, seed=1)  # row 2: seed 0 + 1
    assert all(np.array_equal(grid[1, 1 + k], shown(expected[k])) for k in range(4))


def test_interpolate_an_mse_autoencoder_decodes_its_mean(models, tmp_path):
    out = tmp_path / "interp.png"
    assert (
        main(
            [
                "interpolate",
                models["mse"],
                "--data",
                "digits",
                "--from",
                "0",
                "--to",
                "1",
                "--steps",
                "3",
                "--rows",
                "3",
                "--scale",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    cells(out, rows=1, columns=5)  # deterministic: one row


def test_reconstruct_figure_six_layout(models, digits_test, tmp_path, capsys):
    out = tmp_path / "recon.png"
    assert (
        main(
            [
                "reconstruct",
                models["ae"],
                "--mse-run",
                models["mse"],
                "--data",
                "digits",
                "--index",
                "0",
                "7",
                "--samples",
                "3",
                "--scale",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (
        "2 rows of test image | MSE auto-encoder reconstruction | 3 PixelCNN auto-encoder samples"
        in capsys.readouterr().out
    )
    grid = cells(out, rows=2, columns=5)
    mse = pixelcnn.load(models["mse"])
    for row, index in zip(grid, (0, 7)):
        assert np.array_equal(row[0], shown(digits_test.images[index]))
        mean = to_display(mse.reconstruct(digits_test.images[index : index + 1]), 17)[0, 0].numpy()
        assert np.array_equal(row[1], mean.astype(np.uint8))


def test_reconstruct_by_class_and_of_an_mse_autoencoder_alone(models, digits_test, tmp_path):
    out = tmp_path / "by_class.png"
    assert (
        main(
            [
                "reconstruct",
                models["ae"],
                "--data",
                "digits",
                "--classes",
                "1,2",
                "--per-class",
                "2",
                "--samples",
                "2",
                "--scale",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    grid = cells(out, rows=4, columns=3)
    ones = torch.nonzero(digits_test.labels == 1).flatten()
    assert np.array_equal(grid[0, 0], shown(digits_test.images[ones[0]]))
    assert (
        main(
            [
                "reconstruct",
                models["mse"],
                "--data",
                "digits",
                "--n",
                "3",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "mse.png"),
            ]
        )
        == 0
    )
    cells(tmp_path / "mse.png", rows=3, columns=2)


def test_reconstruct_reads_the_data_set_of_a_training_run(tmp_path):
    from pixelcnn.train import TrainConfig, train

    run = tmp_path / "run"
    train(
        TrainConfig(
            model="pixelcnn_ae",
            model_options=dict(bottleneck=3, n_layers=1, hidden=4, encoder_channels=4),
            data="digits",
            max_steps=2,
            batch_size=8,
            eval_images=8,
            out=str(run),
            progress=False,
            tensorboard=False,
            sample_images=0,
        )
    )
    assert (
        main(["reconstruct", str(run), "--n", "2", "--samples", "1", "--scale", "1", "--out", str(tmp_path / "r.png")])
        == 0
    )
    cells(tmp_path / "r.png", rows=2, columns=2)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["interpolate", "MISSING", "--from", "0", "--to", "1"], "no run or model folder at MISSING"),
        (
            ["interpolate", "{ae}", "--data", "digits", "--from", "0", "--to", "1", "--steps", "1"],
            "--steps must be >= 2",
        ),
        (
            ["interpolate", "{ae}", "--data", "digits", "--from", "0", "--to", "9999"],
            "image index 9999 is out of range",
        ),
        (["interpolate", "{ae}", "--from", "0", "--to", "1"], "bare model folder: say which data set with --data"),
        (["interpolate", "{gated}", "--data", "digits", "--from", "0", "--to", "1"], "needs an auto-encoder"),
        (
            ["interpolate", "{ae}", "--data", "mnist5k", "--from", "0", "--to", "1"],
            "the model expects images (1, 8, 8)",
        ),
        (["reconstruct", "{ae}", "--data", "digits", "--mse-run", "{ae}"], "--mse-run must be an mse_ae"),
        (["reconstruct", "{mse}", "--data", "digits", "--mse-run", "{mse}"], "RUN is already the mse_ae"),
        (["reconstruct", "{ae}", "--data", "digits", "--classes", "seven"], "classes are written like 0-6"),
        (["reconstruct", "{ae}", "--data", "digits", "--temperature", "0"], "--temperature must be a positive number"),
        (["reconstruct", "{ae}", "--data", "digits", "--n", "0"], "--n must be a positive integer"),
        (["identity-sample", "{ae}"], "not a run of pixelcnn identity"),
        (["identity", "--classes", "3", "--out", "{tmp}/x"], "at least 2 distinct classes"),
        (["identity", "--data", "photo-patches", "--binarize", "none", "--out", "{tmp}/x"], "has no labels"),
    ],
)
def test_errors_are_one_line_and_exit_status_2(models, tmp_path, capsys, argv, message):
    argv = (
        [a.format(**models, tmp=tmp_path) for a in argv] + ["--out", str(tmp_path / "x.png")]
        if argv[0] != "identity"
        else [a.format(tmp=tmp_path) for a in argv]
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pixelcnn {argv[0]}: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_a_bad_command_line_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["interpolate", "RUN", "--from", "0"])  # --to and --out missing
    assert exit_info.value.code == 2


def grouped_cells(path, rows: int, groups: list[int], size: int = 28, padding: int = 2) -> list[np.ndarray]:
    """A ``viz.grouped_rows`` PNG (scale 1) cut into its groups: grey uint8 [rows, n, size, size] each.

    The row names' margin on the left (its width: whatever the picture has beyond the cells) is cut off.
    """
    columns = sum(groups) + len(groups) - 1  # one empty column between groups
    picture = np.asarray(Image.open(path).convert("L"))
    margin = picture.shape[1] - (columns * (size + padding) + padding)
    assert margin >= 0 and picture.shape[0] == rows * (size + padding) + padding
    Image.fromarray(picture[:, margin:]).save(path.with_suffix(".cells.png"))
    grid = cells(path.with_suffix(".cells.png"), rows=rows, columns=columns, size=size, padding=padding)
    starts = np.cumsum([0] + [n + 1 for n in groups[:-1]])
    return [grid[:, start : start + n] for start, n in zip(starts, groups)]


@pytest.mark.slow  # trains the three stages of an identity run
def test_identity_trains_both_stages_and_draws_the_unseen_classes(tmp_path, capsys):
    run = tmp_path / "identity"
    argv = [
        "identity",
        "--data",
        "mnist5k",
        "--binarize",
        "dynamic",
        "--classes",
        "0-6",
        "--identity-images",
        "0",
        "--embedding-dim",
        "3",
        "--triplet-steps",
        "2",
        "--steps",
        "2",
        "--n-layers",
        "1",
        "--hidden",
        "4",
        "--batch-size",
        "4",
        "--judge-steps",
        "2",
        "--judge-samples",
        "1",
        "--samples",
        "2",
        "--scale",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(run),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "the same for the 3 unseen identities" in out and "chance 0.333" in out and "control" in out
    test = data.load("mnist5k", "test", binarize="dynamic")
    sources, drawn = grouped_cells(run / "identity.png", rows=3, groups=[1, 2])  # a 7, an 8, a 9; 2 draws each
    sevens = torch.nonzero(test.labels == 7).flatten()
    assert np.array_equal(sources[0, 0], shown(test.images[sevens[0]], levels=2))
    grouped_cells(run / "interpolation.png", rows=3, groups=[1, 8, 1])
    assert (
        main(
            [
                "identity-sample",
                str(run),
                "--classes",
                "8,9",
                "--sources",
                "2",
                "--samples",
                "1",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "eights.png"),
            ]
        )
        == 0
    )
    sources, _ = grouped_cells(tmp_path / "eights.png", rows=2, groups=[2, 1])
    eights = torch.nonzero(test.labels == 8).flatten()
    assert np.array_equal(sources[0, 1], shown(test.images[eights[-1]], levels=2))
    assert (
        main(
            [
                "identity-sample",
                str(run),
                "--classes",
                "7,8",
                "--interpolate",
                "--steps",
                "3",
                "--rows",
                "2",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "line.png"),
            ]
        )
        == 0
    )
    grouped_cells(tmp_path / "line.png", rows=2, groups=[1, 3, 1])
    # The run is an ordinary pixelcnn_ae: the other commands read it too.
    assert (
        main(
            [
                "interpolate",
                str(run),
                "--from",
                "700",
                "--to",
                "800",
                "--steps",
                "2",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "i.png"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    # A rerun of the same command reuses the finished run (nothing is stranded); other settings are refused.
    (run / "identity.png").unlink()
    assert main(argv) == 0
    assert "reusing its model" in capsys.readouterr().out and (run / "identity.png").is_file()
    assert main([*argv, "--steps", "3"]) == 2
    assert "other settings (decoder_steps differ)" in capsys.readouterr().err


@pytest.mark.slow  # trains the three stages of an identity run
def test_identity_on_glyphs_holds_out_whole_fonts(tmp_path, capsys):
    run = tmp_path / "glyphs"
    assert (
        main(
            [
                "identity",
                "--embedding-dim",
                "3",
                "--triplet-steps",
                "2",
                "--steps",
                "2",
                "--n-layers",
                "1",
                "--hidden",
                "4",
                "--batch-size",
                "4",
                "--judge-steps",
                "2",
                "--judge-samples",
                "1",
                "--identities",
                "3",
                "--samples",
                "2",
                "--scale",
                "1",
                "--no-progress",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    saved = json.loads((run / "identity.json").read_text())
    test = data.load("glyphs", "test", binarize="threshold")
    unseen = saved["measurements"]["unseen_classes"]
    assert saved["config"]["data"] == "glyphs" and unseen == sorted(set(test.labels.tolist()))
    assert set(unseen).isdisjoint(saved["measurements"]["training_classes"])
    judge = saved["measurements"]["judge"]
    assert judge["chance"] == pytest.approx(1 / len(unseen)) and judge["generated"]["images"] == len(unseen)
    sources, drawn = grouped_cells(run / "identity.png", rows=3, groups=[4, 2])  # 4 glyphs of a font | 2 new
    first = torch.nonzero(test.labels == unseen[0]).flatten()  # A, U, p, 9 of the first font
    assert np.array_equal(sources[0, 0], shown(test.images[first[0]], levels=2))
    assert "wrong identity's code" in capsys.readouterr().out


def test_a_faces_folder_run_at_image_size_n_reconstructs_and_interpolates_at_that_size(tmp_path):
    """folder:PATH identity runs read the images at --image-size N; reconstruct and interpolate read the
    run's own images the same way (they once read them at their stored size, and refused the model)."""
    generator = torch.Generator().manual_seed(0)
    for split, people in (("train", ("ann", "bob", "cy")), ("test", ("eve", "fay"))):
        for person in people:
            (tmp_path / "faces" / split / person).mkdir(parents=True)
            for i in range(3):
                pixels = torch.randint(0, 256, (20, 24, 3), generator=generator, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(tmp_path / "faces" / split / person / f"{i}.png")
    run = tmp_path / "run"
    assert (
        main(
            [
                "identity",
                "--data",
                f"folder:{tmp_path / 'faces'}",
                "--binarize",
                "none",
                "--image-size",
                "8",
                "--embedding-dim",
                "3",
                "--triplet-steps",
                "2",
                "--steps",
                "2",
                "--n-layers",
                "1",
                "--hidden",
                "4",
                "--batch-size",
                "4",
                "--judge-steps",
                "0",
                "--identity-images",
                "2",
                "--samples",
                "1",
                "--no-progress",
                "--scale",
                "1",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert pixelcnn.load(run / "model").image_shape == (3, 8, 8)
    assert (
        main(
            [
                "reconstruct",
                str(run),
                "--n",
                "2",
                "--samples",
                "1",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "recon.png"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "interpolate",
                str(run),
                "--from",
                "0",
                "--to",
                "3",
                "--steps",
                "3",
                "--scale",
                "1",
                "--out",
                str(tmp_path / "interp.png"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "recon.png").size == (2 + 2 * 10, 2 + 2 * 10)  # 2 columns, 2 rows of 8x8
    assert Image.open(tmp_path / "interp.png").size == (2 + 5 * 10, 12)  # image | 3 codes | image
