"""The sample grid a run writes at each evaluation (RUN/samples/step-NNNNNNN.png)."""

from __future__ import annotations

from pathlib import Path

import torch


def write_samples(
    model, path: Path, *, count: int, generator: torch.Generator, test_set, conditional: bool, class_names=None
) -> Path:
    """A grid of ``count`` images drawn from ``model`` at ``path``: per class when ``conditional``; for a model
    that draws from test images (an auto-encoder), rows of ``test_set`` images and their decodings."""
    from .. import viz

    scale = viz.default_scale(model.image_shape)
    if hasattr(model, "preview_rows"):
        # A model that draws from test images (an auto-encoder): one row per test image.
        rows = max(1, min(8, count // 4))
        index = torch.linspace(0, len(test_set) - 1, rows).round().long()
        images = test_set.prepare_batch(test_set.images[index], generator)
        drawn = model.preview_rows(images, generator=generator)  # [rows, K, C, H, W]
        grid = viz.image_grid(drawn.flatten(0, 1), levels=model.levels, columns=drawn.shape[1], scale=scale)
        return viz.save(grid, path)
    if conditional:
        classes = model.config.num_classes
        per_class = max(1, count // classes)
        labels = torch.arange(classes).repeat_interleave(per_class)
        images = model.sample(len(labels), labels, generator=generator)
        grid = viz.class_grid(images, labels, levels=model.levels, scale=scale, class_names=class_names)
    else:
        images = model.sample(count, generator=generator)
        grid = viz.image_grid(images, levels=model.levels, scale=scale)
    return viz.save(grid, path)
