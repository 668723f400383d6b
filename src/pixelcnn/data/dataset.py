"""The object every loader returns: one split of a named data set, in memory, plus binarization.

An ``ImageDataset`` holds uint8 images [N, C, H, W] and int64 labels [N]
(-1 where the set has no labels) and says what they are: ``name``,
``split``, ``image_shape``, ``levels`` (values are 0 .. levels-1 after
``prepare_batch``) and ``num_classes``.

Binarization of grey 8-bit images (MNIST-like data):

- ``"threshold"``: a pixel is 1 when its value is >= 128 (x / 255 > 0.5); both splits.
- ``"dynamic"``: train images stay grey in ``ds.images`` and every pass draws
  fresh bits ~ Bernoulli(x / 255), the common benchmark protocol. The test
  split is one fixed draw, ``torch.bernoulli(test_images / 255,
  generator=torch.Generator().manual_seed(0))`` over the test set in order,
  so that evaluation numbers are comparable between runs and programs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "test")
BINARIZE_CHOICES = (None, "dynamic", "threshold")
THRESHOLD = 128  # "threshold" binarization: bit = x >= 128, i.e. x / 255 > 0.5
FIXED_DRAW_SEED = 0  # seed of the one Bernoulli draw that binarizes a "dynamic" test split


@dataclass
class SplitData:
    """What a reader returns for one split, before binarization."""

    images: np.ndarray | torch.Tensor  # uint8 [N, C, H, W]
    labels: np.ndarray | None  # int [N], or None when the set has no labels
    levels: int  # number of intensity values (256 for 8-bit images)
    num_classes: int | None = None  # None when unlabelled
    class_names: tuple[str, ...] | None = None
    description: str = ""  # one line: what the images are and where they came from
    extra: dict = field(default_factory=dict)  # set-specific facts worth keeping (source photos, ...)


def fixed_binary_draw(images: torch.Tensor, seed: int = FIXED_DRAW_SEED) -> torch.Tensor:
    """One Bernoulli(x / 255) draw over ``images`` in order, from a generator seeded with ``seed``.

    For a test split this is exactly ``torch.bernoulli(test_images / 255,
    generator=torch.Generator().manual_seed(0))``, returned as uint8 bits.
    """
    return torch.bernoulli(images / 255, generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


def threshold_binarize(images: torch.Tensor) -> torch.Tensor:
    """Bits = (x >= 128) as uint8."""
    return (images >= THRESHOLD).to(torch.uint8)


class ImageDataset(Dataset):
    """One split of a named data set: ``ds[i] -> (image uint8 [C, H, W], label int)``.

    ``ds.images`` is uint8 [N, C, H, W]; ``ds.labels`` int64 [N] (-1: no label).
    With ``binarize="dynamic"`` on the train split, ``ds.images`` holds the grey
    source images; ``ds[i]`` draws its bits with torch's global RNG (so a plain
    ``DataLoader`` works) and ``prepare_batch(ds.images[idx], generator)`` draws
    them with a generator the training loop owns (so a resumed run is exact).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        name: str,
        split: str,
        levels: int,
        num_classes: int | None = None,
        binarize: str | None = None,
        class_names: tuple[str, ...] | None = None,
        description: str = "",
        extra: dict | None = None,
    ):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor [N, C, H, W], got "
                f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}"
            )
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape [{len(images)}], got {tuple(labels.shape)}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        if binarize not in BINARIZE_CHOICES:
            raise ValueError(f"binarize must be one of {BINARIZE_CHOICES}; got {binarize!r}")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.name = name
        self.split = split
        self.levels = levels
        self.num_classes = num_classes
        self.binarize = binarize
        self.class_names = class_names
        self.description = description
        self.extra = dict(extra or {})
        # Only the train split of a "dynamic" set draws bits on the fly; its test split is one fixed draw.
        self.dynamic = binarize == "dynamic" and split == "train"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.dynamic:
            image = torch.bernoulli(image / 255).to(torch.uint8)  # global RNG
        return image, int(self.labels[index])

    def prepare_batch(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Rows of ``ds.images`` -> model input, uint8 [B, C, H, W] with values in 0 .. levels-1.

        The identity except for ``binarize="dynamic"`` on the train split, where
        it draws fresh bits ~ Bernoulli(x / 255) with ``generator`` (on the
        images' device). Pass rows of ``ds.images``, not items from ``ds[i]``:
        those are already binarized.
        """
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise ValueError(
                f"prepare_batch expects a uint8 tensor [B, C, H, W] of rows of ds.images, got "
                f"{getattr(images, 'dtype', type(images).__name__)}"
            )
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"prepare_batch expects images [B, {', '.join(map(str, self.image_shape))}], got {tuple(images.shape)}"
            )
        if not self.dynamic:
            return images
        return torch.bernoulli(images / 255, generator=generator).to(torch.uint8)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        classes = f", {self.num_classes} classes" if self.num_classes else ", unlabelled"
        binarized = f", binarize={self.binarize}" if self.binarize else ""
        return (
            f"ImageDataset({self.name!r}, split={self.split!r}, {len(self)} images {shape}, "
            f"levels={self.levels}{classes}{binarized})"
        )
