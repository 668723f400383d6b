"""Image grids as PNG files (Pillow): samples, per-class samples, completions.

Plain functions on integer image tensors [N, C, H, W] with values in
0..levels-1 (what ``model.sample`` returns); each ``*_grid`` returns a
``PIL.Image`` and ``save`` writes one as PNG::

    from pixelcnn import viz
    viz.save(viz.image_grid(images, levels=2, columns=8, scale=3), "samples.png")
    viz.save(viz.class_grid(images, labels, levels=2, scale=3), "per_class.png")
    viz.save(viz.completion_grid(originals, completions, known_rows=14, levels=2), "completions.png")
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

BACKGROUND = (110, 110, 110)    # between cells
HIDDEN_TINT = (170, 40, 40)     # the hidden part of a completion's input
BOUNDARY = (230, 60, 60)        # the line under the known rows of each completion


def default_scale(image_shape) -> int:
    """An integer upscaling that makes each image about 56 pixels high (28x28 -> 2, 8x8 -> 7, 64x64 -> 1)."""
    return max(1, round(56 / image_shape[-2]))


def to_rgb_array(images: torch.Tensor, *, levels: int) -> np.ndarray:
    """Integer images [N, C, H, W] (C = 1 or 3, values 0..levels-1) -> uint8 array [N, H, W, 3]."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"expected an integer tensor [N, C, H, W], got "
                         f"{type(images).__name__}{list(images.shape) if isinstance(images, torch.Tensor) else ''}")
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
    scaled = (values.double() * (255.0 / (levels - 1))).round().to(torch.uint8)      # [N, C, H, W]
    if channels == 1:
        scaled = scaled.expand(-1, 3, -1, -1)                                        # [N, 3, H, W]
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()                          # [N, H, W, 3]


def _tile(cells: np.ndarray, rows: int, columns: int, *, scale: int, padding: int,
          left_margin: int = 0) -> np.ndarray:
    """cells [rows * columns, h, w, 3] (row-major) -> one array with ``padding`` pixels between cells."""
    _, height, width, _ = cells.shape
    if scale > 1:
        cells = cells.repeat(scale, axis=1).repeat(scale, axis=2)                    # [n, h*s, w*s, 3]
        height, width = height * scale, width * scale
    canvas = np.empty((rows * (height + padding) + padding,
                       left_margin + columns * (width + padding) + padding, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = left_margin + padding + column * (width + padding)
        canvas[top: top + height, left: left + width] = cell
    return canvas


def _check_layout(scale: int, padding: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")


def image_grid(images: torch.Tensor, *, levels: int, columns: int | None = None, scale: int = 1,
               padding: int = 2):
    """Images [N, C, H, W] in a grid, row by row, ``columns`` per row (default: about sqrt(N))."""
    from PIL import Image

    _check_layout(scale, padding)
    cells = to_rgb_array(images, levels=levels)
    count = len(cells)
    if count == 0:
        raise ValueError("no images to draw")
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    filler = np.empty((rows * columns - count, *cells.shape[1:]), dtype=np.uint8)
    filler[:] = BACKGROUND
    return Image.fromarray(_tile(np.concatenate([cells, filler]), rows, columns, scale=scale, padding=padding))


def class_grid(images: torch.Tensor, labels: torch.Tensor, *, levels: int, scale: int = 1, padding: int = 2,
               class_names: list[str] | None = None):
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
    margin = 8 + 7 * max(len(name) for name in names)      # the default bitmap font is ~6 px per character
    canvas = Image.fromarray(_tile(np.concatenate(rows), len(classes), columns, scale=scale, padding=padding,
                                   left_margin=margin))
    draw = ImageDraw.Draw(canvas)
    cell_height = cells.shape[1] * scale
    for row, name in enumerate(names):
        top = padding + row * (cell_height + padding) + cell_height // 2 - 5
        draw.text((4, top), name, fill=(255, 255, 255))
    return canvas


def completion_grid(originals: torch.Tensor, completions: torch.Tensor, *, known_rows: int, levels: int,
                    scale: int = 1, padding: int = 2):
    """One row per image: the original, the input the model saw (hidden rows tinted), then its completions.

    originals [B, C, H, W]; completions [B, K, C, H, W] (K completions of each).
    A line marks where the known rows end on every completion.
    """
    from PIL import Image

    _check_layout(scale, padding)
    if completions.dim() != 5 or completions.shape[0] != originals.shape[0] \
            or tuple(completions.shape[2:]) != tuple(originals.shape[1:]):
        raise ValueError(f"expected completions [B, K, C, H, W] matching originals {list(originals.shape)}, "
                         f"got {list(completions.shape)}")
    batch, per_image, _, height, _ = completions.shape
    if not isinstance(known_rows, int) or not 0 <= known_rows <= height:
        raise ValueError(f"known_rows must be an integer in 0..{height}, got {known_rows!r}")
    original = to_rgb_array(originals, levels=levels)                                 # [B, H, W, 3]
    shown = original.copy()
    shown[:, known_rows:] = (0.35 * shown[:, known_rows:] + 0.65 * np.array(HIDDEN_TINT)).astype(np.uint8)
    completed = to_rgb_array(completions.flatten(0, 1), levels=levels)                # [B*K, H, W, 3]
    completed = completed.reshape(batch, per_image, *completed.shape[1:])            # [B, K, H, W, 3]
    cells = np.concatenate([original[:, None], shown[:, None], completed], axis=1)    # [B, 2+K, H, W, 3]
    columns = per_image + 2
    canvas = _tile(cells.reshape(-1, *cells.shape[2:]), batch, columns, scale=scale, padding=padding)
    if 0 < known_rows < height:
        cell_height, cell_width = height * scale, original.shape[2] * scale
        for row in range(batch):
            y = padding + row * (cell_height + padding) + known_rows * scale
            for column in range(2, columns):
                x = padding + column * (cell_width + padding)
                canvas[y: y + max(1, scale // 2), x: x + cell_width] = BOUNDARY
    return Image.fromarray(canvas)


def save(image, path: str | os.PathLike) -> Path:
    """Write a PIL image as PNG (folders created as needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
