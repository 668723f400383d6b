"""pixelcnn.viz's figures and `pixelcnn viz`: valid images of the expected size, that show the computed numbers."""

import csv
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import pixelcnn
from conftest import run
from pixelcnn import analysis
from pixelcnn import viz as figures
from pixelcnn.analysis import Context

pytestmark = pytest.mark.slow  # trains and draws every figure, one subprocess: the slow tier


def _pixel(image, xy):
    return tuple(image.convert("RGB").getpixel(xy))


# ------------------------------------------------------------------------------------- figures
def test_receptive_field_figure_draws_each_cell_in_its_colour(tmp_path):
    panels = [
        (name, analysis.fresh_receptive_field(name, image_size=8, n_layers=3, pixel=(6, 3)))
        for name in ("pixelcnn", "gated_pixelcnn")
    ]
    cell = 48  # wide enough for the key on one line
    figure = figures.receptive_field_figure(panels, cell=cell)
    path = figures.save(figure, tmp_path / "rf.png")
    with Image.open(path) as written:
        written.verify()
    written = Image.open(path)
    m, n = figures.MARGIN, len(panels)
    assert written.size == (
        2 * m + n * 8 * cell + (n - 1) * figures.GAP,
        m + figures.TITLE_HEIGHT + figures.FIELD_CAPTION_HEIGHT + 8 * cell + 8 + figures.LEGEND_HEIGHT + m,
    )
    top = m + figures.TITLE_HEIGHT + figures.FIELD_CAPTION_HEIGHT
    for k, (_, field_map) in enumerate(panels):
        left = m + k * (8 * cell + figures.GAP)
        for i in range(8):
            for j in range(8):
                code = Context(int(field_map[0, i, j]))
                assert (
                    _pixel(written, (left + j * cell + cell // 2, top + i * cell + cell // 2))
                    == figures.CONTEXT_COLOURS[code]
                ), (k, i, j)
    # PixelCNN's panel has red (blind spot) cells, the Gated PixelCNN's none at this depth near the pixel.
    assert (panels[0][1] == Context.BLIND_SPOT).any() and not (panels[1][1] == Context.BLIND_SPOT).any()


def test_spatial_context_prefers_the_telling_code():
    field_map = torch.tensor(
        [
            [[int(Context.SEEN), int(Context.FUTURE)]],
            [[int(Context.BLIND_SPOT), int(Context.TARGET)]],
            [[int(Context.SEEN), int(Context.LEAK)]],
        ]
    )  # [3, 1, 2]
    assert figures.spatial_context(field_map).tolist() == [[int(Context.BLIND_SPOT), int(Context.LEAK)]]
    field_map[1, 0, 0] = int(Context.OUT_OF_REACH)
    assert figures.spatial_context(field_map)[0, 0] == Context.OUT_OF_REACH


def test_softmax_figure_marks_the_observed_value():
    model = pixelcnn.build("pixelcnn", image_shape=(1, 6, 6), levels=5, n_layers=1, hidden=4)
    image = torch.randint(0, 5, (1, 6, 6))
    dists = analysis.pixel_distributions(model, image, [(2, 3), (5, 5)])
    figure = figures.softmax_figure(image, dists, levels=5, title="t")
    array = np.asarray(figure)
    assert figure.mode == "RGB" and figure.width > 2 * figures.BAR_PLOT_WIDTH
    assert (array == figures.OBSERVED).all(-1).sum() > 50  # the observed bars and markers
    assert (array == figures.BAR).all(-1).sum() > 50  # the other bars
    with pytest.raises(ValueError, match="no distributions"):
        figures.softmax_figure(image, [], levels=5)


def test_heat_colours_run_from_dark_to_bright():
    colours = figures.heat_colours(np.array([0.0, 0.5, 1.0, 2.0]), 1.0)
    assert colours[0].tolist() == figures.INFERNO[0].tolist() and colours[2].tolist() == figures.INFERNO[-1].tolist()
    assert colours[3].tolist() == colours[2].tolist()  # clipped
    assert colours.astype(int).sum(-1).tolist() == sorted(colours.astype(int).sum(-1).tolist())


def test_nll_figure_puts_the_brightest_cell_on_the_costliest_pixel():
    model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 7, 7), levels=4, n_layers=2, hidden=4)
    images = torch.randint(0, 4, (2, 1, 7, 7))
    bits = analysis.nll_bits(model, images)
    figure = figures.nll_figure(images, bits, levels=4, captions=["a", "b"])
    scale = 140 // 7
    row, i, j = np.unravel_index(int(bits.sum(1).argmax()), (2, 7, 7))  # the costliest pixel of both
    m = figures.MARGIN
    row_h = figures.CAPTION_HEIGHT // 2 + 7 * scale + 20
    x = m + 7 * scale + figures.GAP + j * scale + scale // 2
    y = m + figures.TITLE_HEIGHT + row * (row_h + figures.GAP) + figures.CAPTION_HEIGHT // 2 + i * scale + scale // 2
    assert _pixel(figure, (x, y)) == tuple(figures.INFERNO[-1].astype(int).tolist())
    assert figure.height == m + figures.TITLE_HEIGHT + 2 * row_h + figures.GAP + m
    with pytest.raises(ValueError, match="same shape"):
        figures.nll_figure(images, bits[:1], levels=4)


def test_sampling_gif_frames(tmp_path):
    model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 6, 6), levels=2, n_layers=2, hidden=4)
    frames = analysis.sampling_frames(model, 4, generator=torch.Generator().manual_seed(0))
    pictures = figures.sampling_animation(frames, levels=2, scale=4)
    path = figures.save_gif(pictures, tmp_path / "s.gif", frame_ms=50, hold_ms=500)
    gif = Image.open(path)
    assert gif.format == "GIF" and gif.n_frames == 7 and gif.info["loop"] == 0
    sizes = set()
    for k in range(gif.n_frames):
        gif.seek(k)
        sizes.add(gif.size)
    assert sizes == {pictures[0].size}
    gif.seek(0)
    first = np.asarray(gif.convert("RGB"))
    gif.seek(gif.n_frames - 1)
    last = np.asarray(gif.convert("RGB"))
    assert (first == figures.UNDRAWN).all(-1).sum() == 4 * 36 * 16  # every pixel of every image undrawn
    assert not (last == figures.UNDRAWN).all(-1).any()


# ----------------------------------------------------------------------------------- pixelcnn viz
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved tiny model, and a training-run-like folder holding one in model/."""
    root = tmp_path_factory.mktemp("viz")
    model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 8, 8), levels=17, n_layers=2, hidden=6)
    pixelcnn.save(model, root / "bare")
    pixelcnn.save(model, root / "run" / "model")
    pixelcnn.save(model, root / "two" / "a")
    pixelcnn.save(model, root / "two" / "b")
    from pixelcnn.train.config import TrainConfig

    TrainConfig(model="gated_pixelcnn", data="digits", out=str(root / "run"), max_steps=1).save(
        root / "run" / "config.json"
    )
    return root, model


def _run(argv, capsys):
    return run(capsys, "viz", *argv)


def _open_png(path):
    with Image.open(path) as image:
        image.verify()
    image = Image.open(path)
    assert image.format == "PNG"
    return image


def test_cli_receptive_field_compare(tmp_path, capsys):
    out = tmp_path / "rf.png"
    code, text, err = _run(
        [
            "receptive-field",
            "--compare",
            "pixelcnn",
            "gated_pixelcnn",
            "no_such_model",
            "--layers",
            "2",
            "--image-size",
            "6",
            "--cell",
            "20",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    assert "skipping no_such_model" in err and "pixelcnn: sees" in text
    image = _open_png(out)
    assert image.width >= 2 * figures.MARGIN + 2 * 6 * 20 + figures.GAP
    without_key = figures.MARGIN * 2 + figures.TITLE_HEIGHT + figures.FIELD_CAPTION_HEIGHT + 6 * 20 + 8
    assert image.height in (without_key + figures.LEGEND_HEIGHT, without_key + 2 * figures.LEGEND_HEIGHT)


def test_cli_receptive_field_of_a_saved_model(saved, tmp_path, capsys):
    root, model = saved
    code, text, err = _run(["receptive-field", root / "run", "--pixel", "7", "2", "--out", tmp_path / "r.png"], capsys)
    assert code == 0, err
    counts = analysis.count_context(analysis.receptive_field(model, (7, 2)))
    assert (
        f"sees {counts['SEEN']} of {analysis.earlier_count(counts)} earlier pixel-channels; blind spot "
        f"{counts['BLIND_SPOT']}, out of reach {counts['OUT_OF_REACH']}"
    ) in text
    _open_png(tmp_path / "r.png")


def test_cli_softmax_and_nll_map_on_the_runs_test_images(saved, tmp_path, capsys):
    root, model = saved
    try:
        from pixelcnn import data

        test = data.load("digits", "test")
    except (ImportError, ValueError) as err:
        pytest.skip(f"digits data set unavailable: {err}")
    code, text, err = _run(
        ["softmax", root / "run", "--test-index", "3", "--pixels", "2,3", "4,4", "--out", tmp_path / "s.png"], capsys
    )
    assert code == 0, err
    dists = analysis.pixel_distributions(model, test.images[3].long(), [(2, 3), (4, 4)])
    assert f"observed {dists[0].observed} with p = {dists[0].observed_prob:.4f}" in text
    assert (
        _open_png(tmp_path / "s.png").size
        == figures.softmax_figure(test.images[3].long(), dists, levels=17, title="").size
    )

    code, text, err = _run(["nll-map", root / "run", "--test-index", "0", "5", "--out", tmp_path / "n.png"], capsys)
    assert code == 0, err
    nll = -model.log_prob(test.images[[0, 5]].long()).detach()
    for value in nll:
        assert f"NLL {float(value):.3f} nats" in text
    image = _open_png(tmp_path / "n.png")
    assert (
        image.height
        == figures.nll_figure(
            test.images[[0, 5]].long(), analysis.nll_bits(model, test.images[[0, 5]]), levels=17
        ).height
    )


def test_cli_nll_map_folder_writes_a_csv_of_scores(saved, tmp_path, capsys):
    root, model = saved
    folder = tmp_path / "images"
    images = torch.randint(0, 17, (5, 1, 8, 8))
    for k in range(5):
        figures.save(
            figures.image_grid(images[k : k + 1], levels=17, padding=0), folder / ("sub" if k > 2 else "") / f"{k}.png"
        )
    (folder / "notes.txt").write_text("not an image")
    code, text, err = _run(
        [
            "nll-map",
            root / "bare",
            "--folder",
            folder,
            "--csv",
            tmp_path / "scores.csv",
            "--top",
            "2",
            "--out",
            tmp_path / "top.png",
        ],
        capsys,
    )
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert [r["file"] for r in rows] == ["0.png", "1.png", "2.png", "sub/3.png", "sub/4.png"]
    nll = -model.log_prob(images).detach()
    for row, value in zip(rows, nll):
        assert math.isclose(float(row["nll_nats"]), float(value), rel_tol=1e-5)
        assert math.isclose(float(row["bits_per_dim"]), float(value) / (64 * math.log(2)), rel_tol=1e-5)
    assert _open_png(tmp_path / "top.png").height > 2 * 8 * (140 // 8)
    worst = int(nll.argmax())
    assert f"highest: {worst}.png" in text


def test_cli_animate_writes_a_gif(saved, tmp_path, capsys):
    root, _ = saved
    code, text, err = _run(["animate", root / "bare", "--n", "4", "--every", "16", "--out", tmp_path / "a.gif"], capsys)
    assert code == 0, err
    gif = Image.open(tmp_path / "a.gif")
    assert gif.format == "GIF" and gif.n_frames == 1 + 64 // 16 and "fast sampler" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["softmax", "{root}/missing"], "no run or model folder at"),
        (["receptive-field", "--model", "pixelcnnn"], "unknown model 'pixelcnnn'; choose from:"),
        (["receptive-field", "--compare", "--model", "pixelcnn"], "not both"),
        (["receptive-field"], "give RUN, --model NAME or --compare"),
        (["receptive-field", "{root}/bare", "--pixel", "8", "0"], "pixel (8, 0) is outside the 8x8 image"),
        (["receptive-field", "{root}/bare", "--layers", "3"], "--layers apply to freshly built models"),
        (["softmax", "{root}/bare", "--pixels", "0,9"], "--test-index needs a data set"),
        (["softmax", "{root}/run", "--test-index", "100000"], "out of range"),
        (["nll-map", "{root}/two", "--test-index", "0"], "holds several saved models (a, b)"),
        (["nll-map", "{root}/run/model/..", "--folder", "{root}/nothing"], "is not a folder"),
        (["nll-map", "{root}/bare", "--image", "{root}/run/config.json"], "cannot read"),
        (["animate", "{root}/bare", "--label", "1"], "is unconditional"),
    ],
)
def test_cli_errors_are_one_line_and_status_2(saved, capsys, argv, message):
    root, _ = saved
    code, _, err = _run([a.format(root=root) for a in argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err


def test_cli_as_a_module_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pixelcnn", "viz", "nll-map", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"pixelcnn viz nll-map: error: no run or model folder at {tmp_path / 'nothing'}"
