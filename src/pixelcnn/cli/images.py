"""Which images of a data set a command shows (``pick_images``) and how large it draws them (``scale_for``)."""

from __future__ import annotations

from .errors import UsageError
from .flags import positive

MAX_SCALED_SIDE = 2048  # --scale: screen pixels of one image's longer side, at most


def pick_images(dataset, *, n: int | None = None, indices=None, classes: str | None = None, per_class: int = 1):
    """Images of ``dataset`` by index, by class (``per_class`` of each, spread within it) or ``n`` spread over it
    (data sets often store their classes in order).

    Returns (uint8 images [B, C, H, W] as the model reads them, labels [B]).
    """
    import torch

    from ..identity import parse_classes

    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(dataset)]
        if bad:
            raise UsageError(
                f"image index {bad[0]} is out of range: {dataset.name} {dataset.split} has "
                f"{len(dataset)} images (0..{len(dataset) - 1})"
            )
        index = torch.tensor(indices)
    elif classes is not None:
        positive("--per-class", per_class)
        chosen = []
        for c in parse_classes(classes):
            members = torch.nonzero(dataset.labels == c).flatten()
            if len(members) == 0:
                raise UsageError(f"{dataset.name} {dataset.split} has no image of class {c}")
            chosen.append(members[torch.linspace(0, len(members) - 1, min(per_class, len(members))).round().long()])
        index = torch.cat(chosen)
    else:
        positive("--n", n)
        if n > len(dataset):
            raise UsageError(f"--n {n} is more than the {len(dataset)} images of {dataset.name} {dataset.split}")
        index = torch.linspace(0, len(dataset) - 1, n).round().long()
    images = dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    return images, dataset.labels[index]


def scale_for(image_shape, requested: int | None) -> int:
    """--scale, or the default that makes an image of ``image_shape`` (C, H, W) about 56 pixels high."""
    from ..viz import default_scale

    if requested is not None:
        largest = max(1, MAX_SCALED_SIDE // max(image_shape[1:]))  # a picture that fits in memory and on screen
        if not 1 <= requested <= largest:
            raise UsageError(
                f"--scale must be in 1..{largest} for {image_shape[2]}x{image_shape[1]} images "
                f"(at most {MAX_SCALED_SIDE} screen pixels a side), got {requested}"
            )
        return requested
    return default_scale(image_shape)
