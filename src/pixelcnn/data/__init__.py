"""Data sets by name: uint8 images and int labels, bundled offline or read from their standard formats.

    from pixelcnn import data
    data.list_datasets()                                   # the names below
    ds = data.load("mnist5k", "train", binarize="dynamic")
    image, label = ds[0]                                   # uint8 [1, 28, 28], int
    ds.images, ds.labels                                   # uint8 [N, C, H, W], int64 [N]
    ds.image_shape, ds.levels, ds.num_classes              # (1, 28, 28), 2, 10

Bundled, offline (``pip install 'pixelcnn[data]'``): ``mnist5k``, ``digits``,
``photo-patches``, ``lfw-faces`` (see ``bundled.py`` for their fixed splits).
Rendered: ``glyphs``, A-Z, a-z, 0-9 of every text font found, the font as the
label, split by font family (see ``glyphs.py``).
Standard, downloaded once into ``root`` (default ``$PIXELCNN_DATA`` or
``~/.cache/pixelcnn``) with a SHA-256 check: ``mnist``, ``fashion-mnist``,
``binarized-mnist``, ``cifar10``, ``imagenet32``, ``imagenet64`` (see
``standard.py`` for the files each needs, to place them by hand when offline).
``folder:PATH`` reads any folder of images (see ``folder.py``); ``read_image(path, image_shape, levels)``
reads one image file as a model's input.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import bundled, glyphs, standard
from .dataset import BINARIZE_CHOICES, SPLITS, ImageDataset, SplitData, fixed_binary_draw, threshold_binarize
from .download import DownloadError, download_file
from .folder import FOLDER_PREFIX, IMAGE_SUFFIXES, read_folder, read_image

__all__ = [
    "BUNDLED",
    "DownloadError",
    "IMAGE_SUFFIXES",
    "ImageDataset",
    "default_root",
    "download_file",
    "fixed_binary_draw",
    "list_datasets",
    "load",
    "read_image",
]

ROOT_ENV = "PIXELCNN_DATA"


@dataclass(frozen=True)
class DataSource:
    read: Callable[..., SplitData]  # bundled: read(split); standard: read(split, folder=, download=)
    bundled: bool  # ships inside a pip package (no download, no root)
    where: str | None = None  # where it comes from, when it is neither bundled nor downloaded


SOURCES: dict[str, DataSource] = {
    "mnist5k": DataSource(bundled.mnist5k, bundled=True),
    "digits": DataSource(bundled.digits, bundled=True),
    "photo-patches": DataSource(bundled.photo_patches, bundled=True),
    "lfw-faces": DataSource(bundled.lfw_faces, bundled=True),
    "glyphs": DataSource(
        glyphs.glyphs, bundled=False, where="rendered from the fonts of matplotlib, the system and ROOT/glyphs/"
    ),
    "mnist": DataSource(standard.mnist, bundled=False),
    "fashion-mnist": DataSource(standard.fashion_mnist, bundled=False),
    "binarized-mnist": DataSource(standard.binarized_mnist, bundled=False),
    "cifar10": DataSource(standard.cifar10, bundled=False),
    "imagenet32": DataSource(standard.imagenet32, bundled=False),
    "imagenet64": DataSource(standard.imagenet64, bundled=False),
}
BUNDLED = tuple(name for name, source in SOURCES.items() if source.bundled)


def list_datasets() -> list[str]:
    """Every name ``load`` accepts; ``folder:PATH`` stands for any folder of images."""
    return [*SOURCES, FOLDER_PREFIX + "PATH"]


def default_root() -> Path:
    """Where downloads are cached: ``$PIXELCNN_DATA`` if set, else ``~/.cache/pixelcnn``."""
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "pixelcnn").expanduser()


def _check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from: {', '.join(map(str, choices))}")


def load(
    name: str,
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    binarize: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> ImageDataset:
    """One split of a data set by name, as an ``ImageDataset`` held in memory.

    Args:
        name: one of ``list_datasets()``; ``"folder:PATH"`` for a folder of images.
        split: ``"train"`` or ``"test"``.
        root: download cache (default ``$PIXELCNN_DATA`` or ``~/.cache/pixelcnn``);
            a standard set lives in ``root/NAME/``.
        download: fetch missing files of a standard set; with False a missing
            file is a ``FileNotFoundError`` that names it and where to put it.
        binarize: None, ``"dynamic"`` or ``"threshold"`` (grey 8-bit sets only;
            see ``dataset.py``).
        image_size, channels: ``folder:PATH`` only: resize + centre-crop every
            image to image_size x image_size; 1 (grey) or 3 (RGB) channels.
    """
    if not isinstance(name, str):
        raise ValueError(f"data set name must be a string, got {type(name).__name__}")
    _check_choice("split", split, SPLITS)
    _check_choice("binarize", binarize, BINARIZE_CHOICES)
    if name.startswith(FOLDER_PREFIX):
        raw = read_folder(name[len(FOLDER_PREFIX) :], split, image_size=image_size, channels=channels)
    else:
        if name not in SOURCES:
            close = difflib.get_close_matches(name, list_datasets(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown data set {name!r}{hint}; choose from: {', '.join(list_datasets())}")
        for option, value in (("image_size", image_size), ("channels", channels)):
            if value is not None:
                raise ValueError(f"{option} applies only to {FOLDER_PREFIX}PATH data sets, not to {name!r}")
        source = SOURCES[name]
        if source.bundled:
            raw = source.read(split)
        else:
            folder = (Path(root).expanduser() if root is not None else default_root()) / name
            raw = source.read(split, folder=folder, download=download)
    return _make_dataset(name, split, raw, binarize)


def _make_dataset(name: str, split: str, raw: SplitData, binarize: str | None) -> ImageDataset:
    images = raw.images if isinstance(raw.images, torch.Tensor) else torch.from_numpy(np.array(raw.images))
    if raw.labels is None:
        labels = torch.full((len(images),), -1, dtype=torch.int64)
    else:
        labels = torch.from_numpy(np.array(raw.labels, dtype=np.int64))
    levels = raw.levels
    if binarize is not None:
        if images.shape[1] != 1 or raw.levels != 256:
            kind = "binary already" if raw.levels == 2 else f"{images.shape[1]}-channel, {raw.levels} levels"
            raise ValueError(
                f"binarize={binarize!r} applies to grey 8-bit images only (1 channel, 256 levels); "
                f"{name} is {kind}: use binarize=None"
            )
        if binarize == "threshold":
            images = threshold_binarize(images)
        elif split == "test":  # "dynamic": the test split is one fixed draw
            images = fixed_binary_draw(images)
        levels = 2
    return ImageDataset(
        images,
        labels,
        name=name,
        split=split,
        levels=levels,
        num_classes=raw.num_classes,
        binarize=binarize,
        class_names=raw.class_names,
        description=raw.description,
        extra=raw.extra,
    )
