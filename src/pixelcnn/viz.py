"""Every picture, drawn with Pillow: image grids (samples, per-class samples, completions), the figures of
what ``analysis.py`` computes (receptive fields, predicted distributions, NLL maps) and a sampling GIF.

Plain functions on tensors: integer images [N, C, H, W] with values in
0..levels-1 (what ``model.sample`` returns) and the arrays ``analysis``
returns. Each ``*_grid`` / ``*_figure`` function gives a ``PIL.Image``;
``save`` and ``save_gif`` write them::

    from pixelcnn import analysis, viz
    viz.save(viz.image_grid(images, levels=2, columns=8, scale=3), "samples.png")
    viz.save(viz.class_grid(images, labels, levels=2, scale=3), "per_class.png")
    viz.save(viz.completion_grid(originals, completions, known_rows=14, levels=2), "completions.png")
    panels = [(name, analysis.fresh_receptive_field(name, n_layers=12)) for name in ("pixelcnn", "gated_pixelcnn")]
    viz.save(viz.receptive_field_figure(panels, title="12 layers"), "receptive_field.png")
    viz.save_gif(viz.sampling_animation(analysis.sampling_frames(model, 16), levels=2), "sampling.gif")

Everything is drawn cell by cell (a pixel of the model is a square of
``scale`` screen pixels), so the pictures are exact, small, and need no
plotting library.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from .analysis import Context, PixelDistribution, SamplingFrames, count_context, earlier_count, nll_totals

# Receptive-field colours, by Context code.
CONTEXT_COLOURS = {
    Context.FUTURE: (232, 232, 232),  # light grey
    Context.BLIND_SPOT: (229, 57, 53),  # red
    Context.SEEN: (30, 136, 229),  # blue
    Context.TARGET: (255, 193, 7),  # amber: the pixel being predicted
    Context.LEAK: (142, 36, 170),  # purple: read from the future (a bug)
    Context.OUT_OF_REACH: (160, 205, 240),  # pale blue: seen once the model is deeper
}
CONTEXT_LABELS = {
    Context.SEEN: "seen",
    Context.OUT_OF_REACH: "out of reach (more layers see it)",
    Context.BLIND_SPOT: "blind spot (no depth sees it)",
    Context.FUTURE: "future",
    Context.TARGET: "predicted pixel",
    Context.LEAK: "future but read (bug)",
}
LEGEND_ORDER = (Context.SEEN, Context.OUT_OF_REACH, Context.BLIND_SPOT, Context.FUTURE, Context.TARGET, Context.LEAK)
ALWAYS_IN_LEGEND = {Context.SEEN, Context.BLIND_SPOT, Context.FUTURE, Context.TARGET}
WHITE, BLACK, GREY = (255, 255, 255), (20, 20, 20), (110, 110, 110)
BAR, OBSERVED = (120, 120, 120), (229, 57, 53)
UNDRAWN = (58, 68, 96)  # pixels an animation frame has not sampled yet
ANIMATION_BACKGROUND = (40, 40, 40)  # between the images of an animation frame
# Anchors of matplotlib's "inferno" colour map at 0, 1/8, ..., 1 (linearly interpolated between).
INFERNO = np.array(
    [
        (0, 0, 4),
        (33, 12, 74),
        (87, 16, 110),
        (138, 34, 106),
        (188, 55, 84),
        (228, 90, 49),
        (249, 142, 9),
        (249, 203, 53),
        (252, 255, 164),
    ],
    dtype=np.float64,
)

# Layout, in screen pixels.
MARK = "written by pixelcnn"  # in every PNG (text chunk) and GIF (comment) saved here: the CLI may replace them

MARGIN = 12  # around the whole figure
TITLE_HEIGHT = 26  # the figure's title line
CAPTION_HEIGHT = 34  # two caption lines above a panel
FIELD_CAPTION_HEIGHT = 48  # three caption lines above a receptive-field panel
GAP = 14  # between panels
LEGEND_HEIGHT = 26  # the colour key under a receptive-field figure
BAR_PLOT_WIDTH = 256  # a softmax panel's plot area (bars fill it)
BAR_PLOT_HEIGHT = 80
AXIS_HEIGHT = 24  # tick labels and the observed-value marker under a bar plot
COLOUR_BAR_WIDTH = 14


# ----------------------------------------------------------------------------------- image grids
BACKGROUND = (110, 110, 110)  # between the cells of a grid
HIDDEN_TINT = (170, 40, 40)  # the hidden part of a completion's input
BOUNDARY = (230, 60, 60)  # the line under the known rows of each completion


def default_scale(image_shape) -> int:
    """An integer upscaling that makes each image about 56 pixels high (28x28 -> 2, 8x8 -> 7, 64x64 -> 1).

    image_shape: (C, H, W) or (H, W).
    """
    if isinstance(image_shape, int) or len(image_shape) not in (2, 3):
        raise ValueError(f"expected an image shape (C, H, W) or (H, W), got {image_shape!r}")
    return max(1, round(56 / image_shape[-2]))


def display_values(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Images -> int64 grey values 0..255 of the same shape, for drawing.

    Integers 0..levels-1 map linearly to 0..255 (level k to round(255 k / (levels - 1)));
    floats are taken as intensities in [0, 1] (an MSE auto-encoder's decoded means).
    """
    if images.dtype.is_floating_point:
        return (images.detach().clamp(0, 1) * 255).round().long().cpu()
    return (images.detach().cpu().double() * (255 / (levels - 1))).round().long()


def to_rgb_array(images: torch.Tensor, *, levels: int) -> np.ndarray:
    """Integer images [N, C, H, W] (C = 1 or 3, values 0..levels-1) -> uint8 array [N, H, W, 3]."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"expected an integer tensor [N, C, H, W], got "
            f"{type(images).__name__}{list(images.shape) if isinstance(images, torch.Tensor) else ''}"
        )
    if images.dtype.is_floating_point:
        raise ValueError(f"expected integer images with values 0..{levels - 1}, got {images.dtype}")
    channels = images.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"can draw images with 1 (grey) or 3 (RGB) channels, got {channels}")
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    values = images.detach().cpu().long()
    if values.numel() and (int(values.min()) < 0 or int(values.max()) > levels - 1):
        raise ValueError(f"expected values in 0..{levels - 1}, got {int(values.min())}..{int(values.max())}")
    scaled = display_values(values, levels).to(torch.uint8)  # [N, C, H, W]
    if channels == 1:
        scaled = scaled.expand(-1, 3, -1, -1)  # [N, 3, H, W]
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()  # [N, H, W, 3]


def tile(
    cells: np.ndarray,
    rows: int,
    columns: int,
    *,
    scale: int = 1,
    padding: int = 2,
    left_margin: int = 0,
    background=BACKGROUND,
) -> np.ndarray:
    """cells [n <= rows * columns, h, w, 3] (row-major) -> one uint8 array with ``padding`` pixels between cells:
    [rows * (h*scale + padding) + padding, left_margin + columns * (w*scale + padding) + padding, 3]."""
    _, height, width, _ = cells.shape
    if scale > 1:
        cells = cells.repeat(scale, axis=1).repeat(scale, axis=2)  # [n, h*s, w*s, 3]
        height, width = height * scale, width * scale
    canvas = np.empty(
        (rows * (height + padding) + padding, left_margin + columns * (width + padding) + padding, 3), dtype=np.uint8
    )
    canvas[:] = background
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = left_margin + padding + column * (width + padding)
        canvas[top : top + height, left : left + width] = cell
    return canvas


def _check_layout(scale: int, padding: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")


def image_grid(images: torch.Tensor, *, levels: int, columns: int | None = None, scale: int = 1, padding: int = 2):
    """Images [N, C, H, W] in a grid, row by row, ``columns`` per row (default: about sqrt(N))."""
    from PIL import Image

    _check_layout(scale, padding)
    cells = to_rgb_array(images, levels=levels)
    count = len(cells)
    if count == 0:
        raise ValueError("no images to draw")
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    return Image.fromarray(tile(cells, rows, columns, scale=scale, padding=padding))


def class_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    levels: int,
    scale: int = 1,
    padding: int = 2,
    class_names: list[str] | None = None,
):
    """One row per class (ascending label), its images side by side, the class name on the left.

    ``labels`` [N] gives each image's class; rows shorter than the longest are
    filled with background.
    """
    from PIL import Image, ImageDraw

    _check_layout(scale, padding)
    cells = to_rgb_array(images, levels=levels)
    labels = torch.as_tensor(labels).long().cpu()
    if labels.shape != (len(cells),):
        raise ValueError(f"expected one label per image: labels [{len(cells)}], got {list(labels.shape)}")
    classes = sorted(set(labels.tolist()))
    if not classes:
        raise ValueError("no images to draw")
    columns = max(int((labels == k).sum()) for k in classes)
    rows = []
    for k in classes:
        row = cells[(labels == k).numpy()]
        filler = np.empty((columns - len(row), *cells.shape[1:]), dtype=np.uint8)
        filler[:] = BACKGROUND
        rows.append(np.concatenate([row, filler]))
    names = [str(k) if class_names is None else class_names[k] for k in classes]
    margin = 8 + 7 * max(len(name) for name in names)  # the default bitmap font is ~6 px per character
    canvas = Image.fromarray(
        tile(np.concatenate(rows), len(classes), columns, scale=scale, padding=padding, left_margin=margin)
    )
    draw = ImageDraw.Draw(canvas)
    cell_height = cells.shape[1] * scale
    for row, name in enumerate(names):
        top = padding + row * (cell_height + padding) + cell_height // 2 - 5
        draw.text((4, top), name, fill=(255, 255, 255))
    return canvas


def completion_grid(
    originals: torch.Tensor,
    completions: torch.Tensor,
    *,
    known_rows: int,
    levels: int,
    scale: int = 1,
    padding: int = 2,
):
    """One row per image: the original, the input the model saw (hidden rows tinted), then its completions.

    originals [B, C, H, W]; completions [B, K, C, H, W] (K completions of each).
    A line marks where the known rows end on every completion.
    """
    from PIL import Image

    _check_layout(scale, padding)
    if (
        completions.dim() != 5
        or completions.shape[0] != originals.shape[0]
        or tuple(completions.shape[2:]) != tuple(originals.shape[1:])
    ):
        raise ValueError(
            f"expected completions [B, K, C, H, W] matching originals {list(originals.shape)}, "
            f"got {list(completions.shape)}"
        )
    batch, per_image, _, height, _ = completions.shape
    if not isinstance(known_rows, int) or not 0 <= known_rows <= height:
        raise ValueError(f"known_rows must be an integer in 0..{height}, got {known_rows!r}")
    original = to_rgb_array(originals, levels=levels)  # [B, H, W, 3]
    shown = original.copy()
    shown[:, known_rows:] = (0.35 * shown[:, known_rows:] + 0.65 * np.array(HIDDEN_TINT)).astype(np.uint8)
    completed = to_rgb_array(completions.flatten(0, 1), levels=levels)  # [B*K, H, W, 3]
    completed = completed.reshape(batch, per_image, *completed.shape[1:])  # [B, K, H, W, 3]
    cells = np.concatenate([original[:, None], shown[:, None], completed], axis=1)  # [B, 2+K, H, W, 3]
    columns = per_image + 2
    canvas = tile(cells.reshape(-1, *cells.shape[2:]), batch, columns, scale=scale, padding=padding)
    if 0 < known_rows < height:
        cell_height, cell_width = height * scale, original.shape[2] * scale
        for row in range(batch):
            y = padding + row * (cell_height + padding) + known_rows * scale
            for column in range(2, columns):
                x = padding + column * (cell_width + padding)
                canvas[y : y + max(1, scale // 2), x : x + cell_width] = BOUNDARY
    return Image.fromarray(canvas)


def grouped_rows(
    groups: list[torch.Tensor], *, levels: int, scale: int = 1, padding: int = 2, row_names: list[str] | None = None
):
    """Rows of image groups side by side, one empty column between groups.

    groups: tensors [R, n_i, C, H, W] (the same R rows in each). The identity
    figures of the Conditional PixelCNN paper: its Figure 4 is [source images,
    new images] per identity, its Figure 5 [image A, decodings from A's code
    to B's, image B]. ``row_names``: a label left of each row.
    """
    from PIL import Image, ImageDraw

    _check_layout(scale, padding)
    if not groups or any(
        g.dim() != 5 or g.shape[0] != groups[0].shape[0] or g.shape[2:] != groups[0].shape[2:] for g in groups
    ):
        raise ValueError(
            f"expected groups of images [R, n, C, H, W] with the same R, C, H, W; got {[list(g.shape) for g in groups]}"
        )
    rows = groups[0].shape[0]
    cells = [
        to_rgb_array(g.flatten(0, 1), levels=levels).reshape(rows, g.shape[1], *g.shape[3:], 3) for g in groups
    ]  # [R, n_i, H, W, 3] each
    gap = np.empty((rows, 1, *cells[0].shape[2:]), dtype=np.uint8)  # [R, 1, H, W, 3]
    gap[:] = BACKGROUND
    laid = np.concatenate([part for cell in cells for part in (gap, cell)][1:], axis=1)  # [R, columns, H, W, 3]
    margin = 0 if row_names is None else 8 + 7 * max(len(name) for name in row_names)
    canvas = Image.fromarray(
        tile(laid.reshape(-1, *laid.shape[2:]), rows, laid.shape[1], scale=scale, padding=padding, left_margin=margin)
    )
    if row_names is not None:
        draw, cell_height = ImageDraw.Draw(canvas), laid.shape[2] * scale
        for row, name in enumerate(row_names):
            draw.text((4, padding + row * (cell_height + padding) + cell_height // 2 - 5), name, fill=(255, 255, 255))
    return canvas


# ------------------------------------------------------------------------------- drawing helpers
def font(size: int):
    """Pillow's built-in font at ``size`` points (the bitmap font on an old Pillow)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed size
        return ImageFont.load_default()


def _text_width(text: str, size: int) -> int:
    return math.ceil(font(size).getlength(text))


def _upscale(cells: np.ndarray, scale: int) -> np.ndarray:
    """[h, w, 3] -> [h * scale, w * scale, 3], each pixel a square."""
    return cells.repeat(scale, axis=0).repeat(scale, axis=1)


def _new_canvas(width: int, height: int):
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (width, height), WHITE)
    return canvas, ImageDraw.Draw(canvas)


def save(image, path: str | os.PathLike) -> Path:
    """Write a PIL image as PNG (folders created as needed); returns the path."""
    from PIL.PngImagePlugin import PngInfo

    from .serialization import _atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("Software", MARK)
    # (through a temporary file renamed into place: a command stopped mid-write leaves no half a PNG)
    _atomic_write(path, lambda tmp: image.save(tmp, format="PNG", optimize=True, pnginfo=info))
    return path


# ------------------------------------------------------------------------------- receptive field
def spatial_context(field_map: torch.Tensor) -> torch.Tensor:
    """A receptive-field map [C, H, W] -> one code per pixel [H, W].

    Over a pixel's channels the most telling code wins: LEAK, then TARGET,
    then BLIND_SPOT and OUT_OF_REACH (a channel missed), then SEEN, then FUTURE.
    """
    priority = [Context.FUTURE, Context.SEEN, Context.OUT_OF_REACH, Context.BLIND_SPOT, Context.TARGET, Context.LEAK]
    rank = torch.tensor([priority.index(Context(code)) for code in range(len(Context))])
    best = rank[field_map.long()].amax(0)  # [H, W] rank
    return torch.tensor([int(code) for code in priority])[best]


def receptive_field_cell(height: int, width: int) -> int:
    """Default screen pixels per image pixel: panels about 240 pixels across, grid lines kept visible."""
    return max(6, min(24, 240 // max(height, width)))


def receptive_field_figure(panels: list[tuple[str, torch.Tensor]], *, title: str = "", cell: int | None = None):
    """Receptive-field maps side by side: one panel per (caption, map [C, H, W]) from ``analysis.receptive_field``.

    Each panel is captioned with its name and its counts of seen and unseen
    earlier pixels; a colour key runs along the bottom.
    """
    if not panels:
        raise ValueError("no receptive-field maps to draw")
    height, width = panels[0][1].shape[-2:]
    cell = cell or receptive_field_cell(height, width)
    grid = cell >= 8  # a white line between cells when they are big enough
    panel_w, panel_h = width * cell, height * cell
    present = {Context(code) for _, field_map in panels for code in field_map.unique().tolist()}
    legend = [c for c in LEGEND_ORDER if c in present or c in ALWAYS_IN_LEGEND]
    entry_w = [18 + _text_width(CONTEXT_LABELS[c], 12) + 16 for c in legend]
    fig_w = max(
        2 * MARGIN + len(panels) * panel_w + (len(panels) - 1) * GAP,
        2 * MARGIN + _text_width(title, 15),
        2 * MARGIN + max(entry_w),
    )
    legend_rows, x = 1, 0  # the key wraps onto more lines when it must
    for width_needed in entry_w:
        if x and x + width_needed > fig_w - 2 * MARGIN:
            legend_rows, x = legend_rows + 1, 0
        x += width_needed
    fig_h = MARGIN + TITLE_HEIGHT + FIELD_CAPTION_HEIGHT + panel_h + 8 + legend_rows * LEGEND_HEIGHT + MARGIN
    canvas, draw = _new_canvas(fig_w, fig_h)
    draw.text((MARGIN, MARGIN), title, fill=BLACK, font=font(15))
    top = MARGIN + TITLE_HEIGHT + FIELD_CAPTION_HEIGHT
    palette = np.array([CONTEXT_COLOURS[Context(code)] for code in range(len(Context))], dtype=np.uint8)
    for index, (caption, field_map) in enumerate(panels):
        left = MARGIN + index * (panel_w + GAP)
        counts = count_context(field_map)
        seen = f"sees {counts['SEEN']} of {earlier_count(counts)} earlier"
        missed = f"blind spot {counts['BLIND_SPOT']}"
        if counts["OUT_OF_REACH"]:
            missed += f", out of reach {counts['OUT_OF_REACH']}"
        if counts["LEAK"]:
            seen += f", {counts['LEAK']} LATER READ"
        draw.text((left, top - FIELD_CAPTION_HEIGHT), caption, fill=BLACK, font=font(13))
        draw.text((left, top - FIELD_CAPTION_HEIGHT + 17), seen, fill=GREY, font=font(11))
        draw.text((left, top - FIELD_CAPTION_HEIGHT + 31), missed, fill=GREY, font=font(11))
        cells = palette[spatial_context(field_map).numpy()]  # [H, W, 3]
        picture = _upscale(cells, cell)
        if grid:
            picture[cell - 1 :: cell, :] = WHITE
            picture[:, cell - 1 :: cell] = WHITE
        canvas.paste(_image(picture), (left, top))
    x, y = MARGIN, top + panel_h + 8 + 4
    for context, width_needed in zip(legend, entry_w):
        if x > MARGIN and x + width_needed > fig_w - MARGIN:
            x, y = MARGIN, y + LEGEND_HEIGHT
        draw.rectangle([x, y, x + 12, y + 12], fill=CONTEXT_COLOURS[context], outline=GREY)
        draw.text((x + 18, y - 1), CONTEXT_LABELS[context], fill=BLACK, font=font(12))
        x += width_needed
    return canvas


def _image(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))


# ---------------------------------------------------------------------------- softmax bar plots
def _marked_image(image: torch.Tensor, levels: int, pixels: list[tuple[int, int]], scale: int):
    """The image [C, H, W] scaled up, with a numbered box around each of ``pixels``."""
    from PIL import ImageDraw

    picture = _image(_upscale(to_rgb_array(image.unsqueeze(0).cpu(), levels=levels)[0], scale))
    draw = ImageDraw.Draw(picture)
    for number, (row, col) in enumerate(pixels, start=1):
        x, y = col * scale, row * scale
        draw.rectangle([x - 1, y - 1, x + scale, y + scale], outline=OBSERVED, width=2)
        above = number % 2 == 1 and y >= 15  # alternate above / below, so neighbours' labels stay apart
        draw.text((x, y - 15 if above else y + scale + 2), str(number), fill=OBSERVED, font=font(12))
    return picture


def softmax_figure(
    image: torch.Tensor,
    distributions: list[PixelDistribution],
    *,
    levels: int,
    title: str = "",
    columns: int | None = None,
):
    """The image with the chosen pixels marked, and a bar plot of each predicted distribution.

    Bars are p(value | everything before); the observed value's bar is red
    and marked under the axis. image: integer [C, H, W] or [1, C, H, W].
    """
    if not distributions:
        raise ValueError("no distributions to draw")
    image = image[0] if image.dim() == 4 else image
    channels, height, width = image.shape
    names = "RGB" if channels == 3 else [f"channel {c}" for c in range(channels)]
    pixels = list(dict.fromkeys((d.row, d.col) for d in distributions))
    scale = max(1, 168 // max(height, width))
    picture = _marked_image(image, levels, pixels, scale)
    columns = columns or (channels if channels > 1 else 2)
    rows = math.ceil(len(distributions) / columns)
    bar_w = max(1, BAR_PLOT_WIDTH // levels)
    plot_w = bar_w * levels
    panel_w = max(plot_w, 230)
    panel_h = CAPTION_HEIGHT + BAR_PLOT_HEIGHT + AXIS_HEIGHT
    left0 = MARGIN + picture.width + 3 * GAP
    fig_w = max(left0 + columns * panel_w + (columns - 1) * GAP + MARGIN, 2 * MARGIN + _text_width(title, 15))
    fig_h = MARGIN + TITLE_HEIGHT + max(rows * panel_h + (rows - 1) * GAP, picture.height + 20) + MARGIN
    canvas, draw = _new_canvas(fig_w, fig_h)
    draw.text((MARGIN, MARGIN), title, fill=BLACK, font=font(15))
    canvas.paste(picture, (MARGIN, MARGIN + TITLE_HEIGHT))
    for index, dist in enumerate(distributions):
        row, column = divmod(index, columns)
        left = left0 + column * (panel_w + GAP)
        top = MARGIN + TITLE_HEIGHT + row * (panel_h + GAP)
        number = pixels.index((dist.row, dist.col)) + 1
        channel = names[dist.channel] if channels > 1 else ""
        draw.text((left, top), f"#{number}  pixel ({dist.row}, {dist.col}) {channel}", fill=BLACK, font=font(13))
        draw.text(
            (left, top + 16),
            f"observed {dist.observed}: p = {dist.observed_prob:.3f}, entropy {dist.entropy_bits:.2f} bits",
            fill=GREY,
            font=font(11),
        )
        base = top + CAPTION_HEIGHT + BAR_PLOT_HEIGHT  # the x axis
        probs = dist.probs.double()
        peak = max(float(probs.max()), 1e-12)
        for value, p in enumerate(probs.tolist()):
            bar_h = round((BAR_PLOT_HEIGHT - 14) * p / peak)  # the top 14 pixels hold the scale
            if bar_h > 0:
                x = left + value * bar_w
                draw.rectangle(
                    [x, base - bar_h, x + max(bar_w - 2, 0), base - 1], fill=OBSERVED if value == dist.observed else BAR
                )
        draw.line([left, base, left + plot_w - 1, base], fill=BLACK)
        scale_label = f"highest bar: p = {peak:.3f}"
        draw.text(
            (left + plot_w - _text_width(scale_label, 10), top + CAPTION_HEIGHT), scale_label, fill=GREY, font=font(10)
        )
        marker_x = left + dist.observed * bar_w + bar_w // 2
        draw.polygon([(marker_x, base + 2), (marker_x - 5, base + 10), (marker_x + 5, base + 10)], fill=OBSERVED)
        draw.text((left, base + 10), "0", fill=GREY, font=font(10))
        last = str(levels - 1)
        draw.text((left + plot_w - _text_width(last, 10), base + 10), last, fill=GREY, font=font(10))
    return canvas


# -------------------------------------------------------------------------------------- NLL map
def heat_colours(values: np.ndarray, vmax: float) -> np.ndarray:
    """Values in [0, vmax] -> uint8 RGB [..., 3] on the inferno colour map (brighter = larger)."""
    t = np.clip(np.asarray(values, dtype=np.float64) / max(vmax, 1e-12), 0, 1) * (len(INFERNO) - 1)
    low = np.floor(t).astype(int).clip(max=len(INFERNO) - 2)
    frac = (t - low)[..., None]
    return (INFERNO[low] * (1 - frac) + INFERNO[low + 1] * frac).round().astype(np.uint8)


def nll_figure(
    images: torch.Tensor,
    bits: torch.Tensor,
    *,
    levels: int,
    captions: list[str] | None = None,
    title: str = "",
    vmax: float | None = None,
):
    """Each image beside its heat map of -log2 p per pixel (bits, summed over channels), one row per image.

    images: integer [B, C, H, W]; bits: ``analysis.nll_bits`` [B, C, H, W].
    Under each row: the image's NLL in nats and bits, and its bits/dim. One
    colour scale for all rows (``vmax`` bits, default the largest pixel), so
    rows compare.
    """
    if images.dim() != 4 or tuple(bits.shape) != tuple(images.shape):
        raise ValueError(
            f"expected images [B, C, H, W] and bits of the same shape, got {list(images.shape)} and {list(bits.shape)}"
        )
    batch, channels, height, width = images.shape
    captions = captions or [""] * batch
    pixel_bits = bits.double().sum(1).numpy()  # [B, H, W]
    vmax = float(pixel_bits.max()) if vmax is None else float(vmax)
    nats, per_dim = nll_totals(bits.double(), images.shape[1:])
    scale = max(1, 140 // max(height, width))
    cell_w, cell_h = width * scale, height * scale
    row_h = CAPTION_HEIGHT // 2 + cell_h + 20
    tick_w = _text_width(f"{vmax:.1f} bits", 11) + 6
    fig_w = max(
        2 * MARGIN + 2 * cell_w + GAP + 2 * GAP + COLOUR_BAR_WIDTH + tick_w, 2 * MARGIN + _text_width(title, 15)
    )
    fig_h = MARGIN + TITLE_HEIGHT + batch * row_h + (batch - 1) * GAP + MARGIN
    canvas, draw = _new_canvas(fig_w, fig_h)
    draw.text((MARGIN, MARGIN), title, fill=BLACK, font=font(15))
    rgb = to_rgb_array(images.cpu(), levels=levels)  # [B, H, W, 3]
    for index in range(batch):
        top = MARGIN + TITLE_HEIGHT + index * (row_h + GAP)
        draw.text((MARGIN, top), captions[index], fill=BLACK, font=font(12))
        image_top = top + CAPTION_HEIGHT // 2
        canvas.paste(_image(_upscale(rgb[index], scale)), (MARGIN, image_top))
        heat = _upscale(heat_colours(pixel_bits[index], vmax), scale)
        canvas.paste(_image(heat), (MARGIN + cell_w + GAP, image_top))
        total_bits = float(nats[index]) / math.log(2)
        draw.text(
            (MARGIN, image_top + cell_h + 4),
            f"NLL {float(nats[index]):.2f} nats = {total_bits:.1f} bits, {float(per_dim[index]):.4f} bits/dim",
            fill=BLACK,
            font=font(11),
        )
    # One colour bar beside the first row's heat map: vmax at the top, 0 at the bottom.
    bar_left = MARGIN + 2 * cell_w + 2 * GAP
    bar_top = MARGIN + TITLE_HEIGHT + CAPTION_HEIGHT // 2
    ramp = heat_colours(np.linspace(vmax, 0, cell_h)[:, None].repeat(COLOUR_BAR_WIDTH, 1), vmax)
    canvas.paste(_image(ramp), (bar_left, bar_top))
    for fraction in (0.0, 0.5, 1.0):
        y = bar_top + round((1 - fraction) * (cell_h - 1))
        draw.line([bar_left + COLOUR_BAR_WIDTH, y, bar_left + COLOUR_BAR_WIDTH + 3, y], fill=BLACK)
        draw.text((bar_left + COLOUR_BAR_WIDTH + 5, y - 6), f"{fraction * vmax:.1f} bits", fill=BLACK, font=font(11))
    return canvas


# ----------------------------------------------------------------------------- sampling animation
def sampling_animation(
    frames: SamplingFrames, *, levels: int, scale: int | None = None, columns: int | None = None, title: str = ""
) -> list:
    """One PIL image per snapshot of ``analysis.sampling_frames``: the grid so far, undrawn pixels tinted.

    ``title`` may hold several lines ("\\n"); a status line under the grid counts the pixels drawn.
    """
    if not frames.frames:
        raise ValueError("no frames to draw")
    count, _, height, width = frames.frames[0].shape
    scale = scale or max(1, 64 // max(height, width))
    columns = columns or math.ceil(math.sqrt(count))
    total = height * width
    rank = frames.rank.numpy() if frames.rank is not None else np.arange(total).reshape(height, width)
    title_lines = title.split("\n") if title else []
    header = 16 * len(title_lines) + 2
    pictures = []
    for snapshot, done in zip(frames.frames, frames.pixels_done):
        cells = to_rgb_array(snapshot.long(), levels=levels)  # [n, H, W, 3]
        cells[:, rank >= done] = UNDRAWN  # not drawn yet
        grid = tile(cells, math.ceil(count / columns), columns, scale=scale, padding=2, background=ANIMATION_BACKGROUND)
        status = f"{done}/{total} pixels"
        canvas_w = max(grid.shape[1], *(_text_width(line, 12) + 8 for line in title_lines), _text_width(status, 11) + 8)
        canvas, draw = _new_canvas(canvas_w, header + grid.shape[0] + 18)
        canvas.paste(_image(grid), ((canvas_w - grid.shape[1]) // 2, header))
        for number, line in enumerate(title_lines):
            draw.text((4, 2 + 16 * number), line, fill=BLACK, font=font(12))
        draw.text((4, header + grid.shape[0] + 2), status, fill=GREY, font=font(11))
        pictures.append(canvas)
    return pictures


def save_gif(pictures: list, path: str | os.PathLike, *, frame_ms: int = 60, hold_ms: int = 2000) -> Path:
    """Write frames as a looping GIF; the last one is held ``hold_ms``."""
    if not pictures:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    # One palette for every frame, from the first (undrawn colour) and the last (all the samples' colours),
    # so that colours do not flicker from frame to frame.
    first, last = pictures[0], pictures[-1]
    reference = Image.new("RGB", (first.width + last.width, max(first.height, last.height)), WHITE)
    reference.paste(first, (0, 0))
    reference.paste(last, (first.width, 0))
    reference = reference.quantize(colors=255)
    frames = [p.quantize(palette=reference, dither=Image.Dither.NONE) for p in pictures]
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    from .serialization import _atomic_write

    _atomic_write(
        path,
        lambda tmp: frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=durations,
            loop=0,
            optimize=True,
            comment=MARK,
        ),
    )
    return path
