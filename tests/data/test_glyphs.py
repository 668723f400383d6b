"""The ``glyphs`` data set: it renders, drops symbol fonts, splits by font family, and is deterministic.

The tests rely only on matplotlib's fonts (the system's are switched off),
which every machine with the data extra has.
"""

import shutil

import numpy as np
import pytest
import torch

from pixelcnn import data
from pixelcnn.data import glyphs

N_CHARS = len(glyphs.CHARACTERS)


@pytest.fixture
def matplotlib_fonts_only(monkeypatch):
    """The loader with matplotlib's fonts only (no system font folders), and a fresh in-process cache."""
    monkeypatch.setattr(glyphs, "SYSTEM_FONT_DIRS", ())
    glyphs._render_all.cache_clear()
    yield
    glyphs._render_all.cache_clear()


def matplotlib_font(name: str):
    from pathlib import Path

    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


def test_both_splits_render_62_glyphs_of_each_font_with_font_and_character_labels(matplotlib_fonts_only):
    train, test = data.load("glyphs", "train"), data.load("glyphs", "test")
    for ds in (train, test):
        assert ds.image_shape == (1, 28, 28) and ds.images.dtype == torch.uint8 and ds.levels == 256
        fonts = ds.labels.unique()
        assert len(ds) == N_CHARS * len(fonts)
        characters = torch.as_tensor(ds.extra["characters"])
        for font in fonts:  # every font: each character once, in order
            assert characters[ds.labels == font].tolist() == list(range(N_CHARS))
        ink = ds.images.flatten(1).amax(1)
        assert (ink >= 128).all()  # no empty glyph
        # A glyph fits in the box with its margin: the outer ring of pixels is empty.
        assert ds.images[..., 0, :].max() == 0 and ds.images[..., -1, :].max() == 0
    assert train.num_classes == test.num_classes == len(train.class_names)
    assert len(train.labels.unique()) + len(test.labels.unique()) == train.num_classes
    # The matplotlib-only setting: DejaVu (Sans, Serif, Mono + styles), STIX and Computer Modern text fonts.
    assert train.num_classes >= 20, train.description


def test_the_split_is_by_font_family(matplotlib_fonts_only):
    train, test = data.load("glyphs", "train"), data.load("glyphs", "test")
    fonts = train.extra["fonts"]
    train_fonts, test_fonts = set(train.labels.tolist()), set(test.labels.tolist())
    assert train_fonts.isdisjoint(test_fonts) and test_fonts
    assert {fonts[i]["family"] for i in train_fonts}.isdisjoint({fonts[i]["family"] for i in test_fonts})
    assert all(fonts[i]["held_out"] for i in test_fonts) and not any(fonts[i]["held_out"] for i in train_fonts)
    families = {f["family"] for f in fonts}
    held = {f["family"] for f in fonts if f["held_out"]}
    assert len(held) == max(1, round(len(families) / 4))


@pytest.mark.slow  # renders the font set twice
def test_rendering_is_deterministic(matplotlib_fonts_only):
    file = matplotlib_font("DejaVuSerif.ttf")
    first, second = glyphs.render_font(file), glyphs.render_font(file)
    assert first.shape == (N_CHARS, 28, 28) and np.array_equal(first, second)
    loaded = data.load("glyphs", "test")
    glyphs._render_all.cache_clear()
    again = data.load("glyphs", "test")
    assert torch.equal(loaded.images, again.images) and torch.equal(loaded.labels, again.labels)
    loaded.images.zero_()  # editing one load must not leak into the in-process cache
    assert torch.equal(data.load("glyphs", "test").images, again.images)


def test_one_scale_per_font_keeps_its_proportions():
    drawn = glyphs.render_font(matplotlib_font("DejaVuSans.ttf"))
    height = lambda c: int((drawn[glyphs.CHARACTERS.index(c)] >= 128).any(1).sum())  # rows with ink
    assert height("x") < 0.8 * height("X")  # lowercase x is shorter than capital X
    assert height("l") > height("x")  # an ascender


def test_symbol_fonts_and_missing_glyphs_are_detected_by_what_they_draw(matplotlib_fonts_only):
    text = [
        glyphs.render_font(matplotlib_font(name))
        for name in ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "cmr10.ttf")
    ]
    box = np.zeros_like(text[0])
    box[:, 5:20, 8:18] = 255  # every character the same .notdef box
    shuffled = text[0][np.random.default_rng(0).permutation(N_CHARS)]  # letters on the wrong code points
    blank = text[1].copy()
    blank[3] = 0
    problems = glyphs.text_font_problems(text + [box, shuffled, blank])
    assert problems[:4] == [None] * 4
    assert "distinct" in problems[4] and "look like their character" in problems[5] and "no ink for D" in problems[6]
    # Among matplotlib's own fonts the symbol and size-variant fonts are dropped, the text fonts kept.
    train = data.load("glyphs", "train")
    dropped = {entry["file"].rsplit("/", 1)[-1] for entry in train.extra["dropped"]}
    kept = {f["file"].rsplit("/", 1)[-1] for f in train.extra["fonts"]}
    assert {"cmex10.ttf", "cmsy10.ttf", "STIXSizOneSymReg.ttf", "LastResortHE-Regular.ttf"} <= dropped
    assert {"DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "cmr10.ttf", "STIXGeneral.ttf"} <= kept


def test_fonts_in_root_come_first_and_copies_are_dropped(matplotlib_fonts_only, tmp_path):
    (tmp_path / "glyphs").mkdir()
    shutil.copy(matplotlib_font("DejaVuSans.ttf"), tmp_path / "glyphs" / "mine.ttf")
    ds = data.load("glyphs", "train", root=tmp_path)
    files = {f["name"]: f["file"] for f in ds.extra["fonts"]}
    assert files["DejaVu Sans"].endswith("mine.ttf")
    assert any(d["reason"] == "a second copy of DejaVu Sans" for d in ds.extra["dropped"])


def test_no_fonts_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(glyphs, "font_folders", lambda root: [])
    glyphs._render_all.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="usable text font.*install"):
            data.load("glyphs", "train")
    finally:
        glyphs._render_all.cache_clear()
