"""``glyphs``: the characters A-Z, a-z, 0-9 of every text font on the machine; the font is the identity.

Each font file is one identity and its 62 glyphs are its views (as the poses
and lighting of one person's portraits are in the Conditional PixelCNN
paper's face experiment). Labels: the font (``ds.labels``, an index into
``ds.class_names``, the same numbering in both splits) and the character
(``ds.extra["characters"]``, an index into ``CHARACTERS``).

Fonts, in this order (a font whose name, family + style, was already seen is
skipped): every ``.ttf`` / ``.otf`` / ``.ttc`` file under ``root/glyphs/``
(yours), matplotlib's own fonts (``mpl-data/fonts/ttf``, about 40 files), and
the system's font folders (``SYSTEM_FONT_DIRS``). matplotlib's alone give 22
text fonts in 10 families; the Debian packages that ``.ci/run`` installs
(fonts-dejavu-core, -extra, fonts-urw-base35, fonts-liberation,
fonts-freefont-ttf, fonts-crosextra-carlito, -caladea) bring it to 100 in 28.

Symbol, icon and incomplete fonts are dropped by what they draw, not by
name: a font is kept when every character leaves ink, its 62 glyphs are
distinct enough (a missing glyph draws the same .notdef box as another), and
most of its glyphs are recognised as their own character by the nearest mean
glyph over all fonts (a font of symbols on the same code points is not).
``ds.extra["dropped"]`` says which files were dropped and why.

Rendering (deterministic: the same bytes for the same font files and
FreeType): each glyph is drawn white on black at 4x the box size, and box-
averaged down to 28 x 28 with 256 grey levels (``binarize="threshold"``
for bits). One scale per font, so a font's proportions survive (x-height
against cap height, descenders, width): the font's union of glyph boxes
over the 62 characters fills the box less a 1-pixel margin. Each glyph
sits on the font's baseline, centred horizontally.

Split by font family, so that neither network sees a sibling (the bold or
italic) of a held-out font: the families whose SHA-256 of their name is
smallest, a quarter of them (at least one), are test; every font of those
families is held out entirely. Ranking by a hash of the name keeps a family's
side fixed as fonts are added, except near the boundary. Bold, italic and
condensed styles of one family are distinct identities (distinct files, and
a style is visible in every glyph), so chance for a judge of held-out fonts
is 1 / the number of held-out fonts, not families.

Rendering 100 fonts takes 2-4 s on one core of the shared AMD EPYC (so
nothing is cached on disk); the result is kept in memory per process.
"""

from __future__ import annotations

import functools
import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import SplitData

CHARACTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits  # 62 characters
GLYPH_SIZE = 28  # side of the box, pixels
SUPERSAMPLE = 4  # glyphs are drawn at 4x and box-averaged down (anti-aliasing)
MARGIN = 1  # empty pixels on each side of the box
HELD_OUT_FRACTION = 0.25  # of the font families: test
FONT_SUFFIXES = {".ttf", ".otf", ".ttc"}
SYSTEM_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
)
# Checks of a text font, on glyphs scaled to their own box (shape only)
SHAPE_SIZE = 16  # each glyph's ink box, resized to 16 x 16, for the checks
MIN_DISTINCT = 0.8  # of the 62 glyphs, at least 80% distinct (l / I / 1 may coincide)
MIN_RECOGNISED = 0.5  # of the 62 glyphs, at least 50% nearest to their own character's mean glyph


@dataclass(frozen=True)
class Font:
    name: str  # family + style, e.g. "DejaVu Serif Bold"; the identity
    family: str  # e.g. "DejaVu Serif": the unit of the split
    file: str


def font_folders(root: Path | None) -> list[Path]:
    """Where fonts are looked for, in order: ``root`` (yours), matplotlib's fonts, the system's folders."""
    folders = [root] if root is not None else []
    try:
        import matplotlib

        folders.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:  # optional: the system's fonts may be enough
        pass
    folders += [Path(d).expanduser() for d in SYSTEM_FONT_DIRS]
    return [f for f in folders if f.is_dir()]


def find_font_files(folders) -> list[Path]:
    """Font files under ``folders``, each folder's in sorted path order, duplicates (same resolved file) once."""
    seen, files = set(), []
    for folder in folders:
        for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in FONT_SUFFIXES):
            resolved = path.resolve()
            if resolved not in seen and path.is_file():
                seen.add(resolved)
                files.append(path)
    return files


def _open_font(file: Path, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(file), size)


def render_font(file: Path, *, size: int = GLYPH_SIZE, characters: str = CHARACTERS) -> np.ndarray:
    """The glyphs of ``characters`` in one font: uint8 [len(characters), size, size] (see the module docstring)."""
    from PIL import Image, ImageDraw

    big = size * SUPERSAMPLE
    room = big - 2 * MARGIN * SUPERSAMPLE - SUPERSAMPLE  # half a pixel of slack each side: anti-aliasing

    def boxes_and_extent(font_size: int):
        font = _open_font(file, font_size)
        boxes = np.array([font.getbbox(c, anchor="ls") for c in characters])  # [n, 4]: l, t, r, b
        return font, boxes, max(boxes[:, 3].max() - boxes[:, 1].min(), (boxes[:, 2] - boxes[:, 0]).max())

    probe_size = 100
    _, _, extent = boxes_and_extent(probe_size)
    font_size = max(1, int(probe_size * room / max(extent, 1)))
    font, boxes, extent = boxes_and_extent(font_size)
    while extent > room and font_size > 1:  # hinting does not scale exactly: shrink to fit
        font_size -= 1
        font, boxes, extent = boxes_and_extent(font_size)
    top, bottom = boxes[:, 1].min(), boxes[:, 3].max()
    baseline = (big - (bottom - top)) // 2 - top  # the font's union box centred vertically
    glyphs = np.empty((len(characters), size, size), dtype=np.uint8)
    for i, (c, (left, _, right, _)) in enumerate(zip(characters, boxes)):
        canvas = Image.new("L", (big, big), 0)
        ImageDraw.Draw(canvas).text(((big - (right - left)) // 2 - left, baseline), c, font=font, fill=255, anchor="ls")
        glyphs[i] = np.asarray(canvas.resize((size, size), Image.Resampling.BOX))
    return glyphs


def _shapes(glyphs: np.ndarray) -> np.ndarray:
    """Each glyph's ink box resized to SHAPE_SIZE x SHAPE_SIZE, as unit vectors: float [n, SHAPE_SIZE**2]."""
    from PIL import Image

    out = np.zeros((len(glyphs), SHAPE_SIZE * SHAPE_SIZE))
    for i, glyph in enumerate(glyphs):
        rows, cols = np.nonzero(glyph > 32)
        if len(rows):
            crop = Image.fromarray(glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
            out[i] = np.asarray(crop.resize((SHAPE_SIZE, SHAPE_SIZE), Image.Resampling.BILINEAR)).ravel()
    out -= out.mean(1, keepdims=True)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def text_font_problems(glyphs_by_font: list[np.ndarray]) -> list[str | None]:
    """For each font's glyphs [62, H, W]: None when it is a text font with all 62 characters, else why not.

    Checks, in order: every glyph leaves ink; at least MIN_DISTINCT of them
    are distinct; at least MIN_RECOGNISED of them are nearest (cosine, on
    their ink box) to the mean glyph of their own character over the fonts
    that passed the first two checks. The means are taken twice, the second
    time over the fonts the first round recognised, so a few symbol fonts
    do not blur them.
    """
    problems: list[str | None] = []
    for glyphs in glyphs_by_font:
        blank = [CHARACTERS[i] for i, g in enumerate(glyphs) if g.max() < 128]
        distinct = len({g.tobytes() for g in (glyphs >= 128)}) / len(glyphs)
        problems.append(
            f"no ink for {''.join(blank[:8])}"
            if blank
            else f"only {distinct:.0%} of the glyphs are distinct"
            if distinct < MIN_DISTINCT
            else None
        )
    shapes = [_shapes(g) for g in glyphs_by_font]  # [n, S*S] each
    voters = [i for i, p in enumerate(problems) if p is None]
    recognised = [0.0] * len(shapes)
    for _ in range(2):
        if not voters:
            break
        means = np.mean([shapes[i] for i in voters], axis=0)  # [62, S*S]
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-9)
        recognised = [float(np.mean((s @ means.T).argmax(1) == np.arange(len(s)))) for s in shapes]
        voters = [i for i in voters if recognised[i] >= MIN_RECOGNISED] or voters
    return [
        p
        if p is not None or recognised[i] >= MIN_RECOGNISED
        else f"only {recognised[i]:.0%} of the glyphs look like their character (a symbol font?)"
        for i, p in enumerate(problems)
    ]


def held_out_families(families: list[str]) -> set[str]:
    """The quarter of ``families`` (at least one) with the smallest SHA-256 of their name."""
    ranked = sorted(families, key=lambda f: hashlib.sha256(f.encode()).hexdigest())
    return set(ranked[: max(1, round(HELD_OUT_FRACTION * len(ranked)))])


@functools.lru_cache(maxsize=4)
def _render_all(root: str | None) -> tuple:
    """(fonts kept, their glyphs [fonts, 62, 28, 28], held-out families, dropped files [(file, why)])."""
    files = find_font_files(font_folders(Path(root) if root else None))
    candidates, glyph_sets, dropped, names = [], [], [], set()
    for file in files:
        try:
            font = _open_font(file, 20)
            family, style = font.getname()
        except OSError as err:
            dropped.append((str(file), f"cannot be read ({err})"))
            continue
        family = (family or file.stem).strip()
        style = (style or "").strip()
        name = family if style.lower() in ("", "regular", "roman", "book", "normal") else f"{family} {style}"
        if name in names:
            dropped.append((str(file), f"a second copy of {name}"))
            continue
        try:
            glyphs = render_font(file)
        except (OSError, ValueError) as err:
            dropped.append((str(file), f"cannot be drawn ({err})"))
            continue
        names.add(name)
        candidates.append(Font(name=name, family=family, file=str(file)))
        glyph_sets.append(glyphs)
    problems = text_font_problems(glyph_sets) if glyph_sets else []
    dropped += [(font.file, why) for font, why in zip(candidates, problems) if why is not None]
    kept = sorted(
        ((font, glyphs) for font, glyphs, why in zip(candidates, glyph_sets, problems) if why is None),
        key=lambda pair: pair[0].name,
    )
    if len(kept) < 2:
        raise FileNotFoundError(
            f"the glyphs data set found {len(kept)} usable text font(s) in {', '.join(map(str, font_folders(None)))}"
            f"{' or ' + root if root else ''}: install matplotlib (pip install matplotlib), font packages "
            f"(e.g. apt-get install fonts-liberation), or put .ttf / .otf files in root/glyphs/"
        )
    fonts = tuple(font for font, _ in kept)
    held_out = held_out_families(sorted({f.family for f in fonts}))
    return fonts, np.stack([g for _, g in kept]), frozenset(held_out), tuple(dropped)


def glyphs(split: str, *, folder: Path | None = None, download: bool = True) -> SplitData:
    """One split of ``glyphs``; fonts in ``folder`` (root/glyphs) are added to matplotlib's and the system's."""
    fonts, all_glyphs, held_out, dropped = _render_all(str(folder) if folder is not None and folder.is_dir() else None)
    keep = [i for i, f in enumerate(fonts) if (f.family in held_out) == (split == "test")]
    n_chars = len(CHARACTERS)
    images = all_glyphs[keep].reshape(-1, 1, GLYPH_SIZE, GLYPH_SIZE)  # [fonts * 62, 1, 28, 28]
    labels = np.repeat(np.array(keep, dtype=np.int64), n_chars)
    characters = np.tile(np.arange(n_chars, dtype=np.int64), len(keep))
    side = "held-out" if split == "test" else "training"
    return SplitData(
        images=np.ascontiguousarray(images),
        labels=labels,
        levels=256,
        num_classes=len(fonts),
        class_names=tuple(f.name for f in fonts),
        description=f"glyphs {CHARACTERS[0]}-{CHARACTERS[25]}, {CHARACTERS[26]}-{CHARACTERS[51]}, "
        f"{CHARACTERS[52]}-{CHARACTERS[-1]} of {len(keep)} {side} fonts "
        f"({len(fonts)} in all, {len(held_out)} of {len({f.family for f in fonts})} families held out)",
        extra={
            "characters": characters,
            "character_set": CHARACTERS,
            "fonts": [
                {"name": f.name, "family": f.family, "file": f.file, "held_out": f.family in held_out} for f in fonts
            ],
            "dropped": [{"file": file, "reason": why} for file, why in dropped],
        },
    )
