"""``folder:PATH``: any folder of images (PNG, JPEG, BMP, GIF, WebP, TIFF, PPM/PGM) as a data set.

Splits: if PATH holds one train folder (``train`` or ``train_*``) and one
test folder (``test``, ``val``, ``valid``, ``validation``, or one of these
followed by ``_*``, such as van den Oord's ``valid_32x32``), those are the
splits. Otherwise every image under PATH is in exactly one split, fixed by
its path: test when the SHA-256 of its relative path is 0 mod 10 (about one
image in ten). Adding or removing images never moves the others.

Labels: when every image lies in a first-level subfolder of its split (the
``class_name/image.png`` layout), the subfolder names, sorted, are the
classes; otherwise the set is unlabelled (label -1).

Images (8 bits per channel): EXIF orientation applied; converted to grey (``channels=1``) or RGB
(``channels=3``; by default grey only when every image is grey); alpha is
dropped. With ``image_size=S`` each is scaled (Lanczos) so its shorter side is
S and centre-cropped to S x S; without it all images must share one size.
Files are read in sorted path order, so the order is the same everywhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .dataset import SplitData

FOLDER_PREFIX = "folder:"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
TRAIN_DIR_NAMES = ("train",)
TEST_DIR_NAMES = ("test", "val", "valid", "validation")
TEST_ONE_IN = 10  # without split folders: an image is test when sha256(path) % 10 == 0


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _matches(name: str, names: tuple[str, ...]) -> bool:
    name = name.lower()
    return any(name == n or name.startswith(n + "_") for n in names)


def _is_test(relative: Path) -> bool:
    return int(hashlib.sha256(relative.as_posix().encode()).hexdigest(), 16) % TEST_ONE_IN == 0


def _split_files(root: Path) -> dict[str, tuple[Path, list[Path]]]:
    """split -> (the folder that class names are relative to, its image files)."""
    subfolders = [p for p in root.iterdir() if p.is_dir()]
    train_dirs = [p for p in subfolders if _matches(p.name, TRAIN_DIR_NAMES)]
    test_dirs = [p for p in subfolders if _matches(p.name, TEST_DIR_NAMES)]
    if len(train_dirs) == 1 and len(test_dirs) == 1:
        return {
            "train": (train_dirs[0], _list_images(train_dirs[0])),
            "test": (test_dirs[0], _list_images(test_dirs[0])),
        }
    files = _list_images(root)
    return {
        split: (root, [f for f in files if _is_test(f.relative_to(root)) == (split == "test")])
        for split in ("train", "test")
    }


def _class_names(splits: dict[str, tuple[Path, list[Path]]]) -> tuple[str, ...] | None:
    """Sorted first-level subfolder names when every image of both splits lies in one, else None."""
    names = set()
    for base, files in splits.values():
        for f in files:
            parts = f.relative_to(base).parts
            if len(parts) < 2:
                return None
            names.add(parts[0])
    return tuple(sorted(names)) or None


def _open(file: Path, what: str):
    """PIL's lazy open (reads the header only); a file PIL cannot read is a ValueError naming it."""
    from PIL import Image

    try:
        image = Image.open(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}no image file at {file}") from None
    except OSError as err:
        raise ValueError(f"{what}cannot read {file} as an image ({err})") from None
    except Image.DecompressionBombError as err:  # a header claiming billions of pixels (found by fuzzing)
        raise ValueError(f"{what}{file} is too large to decode ({err})") from None
    return image


def _mode(file: Path, what: str) -> str:
    with _open(file, what) as image:
        return image.mode


def decode_image(file: str | Path, *, channels: int, size: tuple[int, int] | None = None, what: str = "") -> np.ndarray:
    """One image file -> uint8 [C, H, W]: EXIF orientation applied, grey (C = 1) or RGB (C = 3), alpha dropped.

    ``size`` = (width, height) scales it (Lanczos) and centre-crops it to that
    size. ``what`` prefixes the error messages (e.g. the data set's name).
    """
    from PIL import Image, ImageOps

    with _open(Path(file), what) as image:
        try:
            image = ImageOps.exif_transpose(image).convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
        except OSError as err:  # a truncated or corrupt file fails here, when decoded
            raise ValueError(f"{what}cannot decode {file} ({err})") from None
        if size is not None:
            image = ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)
        array = np.asarray(image, dtype=np.uint8)  # [H, W] or [H, W, 3]
    return array[None] if channels == 1 else array.transpose(2, 0, 1)  # -> [C, H, W] (C = 4: RGBA)


def read_image(
    path: str | Path,
    image_shape,
    levels: int,
    *,
    resize: bool = False,
    convert: bool = False,
    notes: list | None = None,
):
    """An image file -> the integer image [1, C, H, W] a model of ``image_shape`` and ``levels`` takes.

    8-bit values v become round(v * (levels - 1) / 255), which inverts the
    drawing of ``pixelcnn.viz`` (and ``pixelcnn decompress``): for such files
    nothing changes. A file whose pixels would change is refused (ValueError
    naming the conversion) unless ``convert``: values between the model's
    levels (a grey image given to a binary model is thresholded at 128),
    colour given to a grey model (converted to grey), more than 8 bits per
    channel, a transparent alpha channel (dropped). A file of another size is
    an error unless ``resize`` (then it is scaled and centre-cropped, which
    changes values too and so implies ``convert``). The size in the file's
    header is checked before anything is decoded. ``notes``, a list, receives
    one line per conversion made.
    """
    import torch

    channels, height, width = image_shape
    if channels not in (1, 3):
        raise ValueError(f"image files can feed models of 1 or 3 channels; this model has {channels}")
    convert = convert or resize
    changes = []
    with _open(Path(path), "") as image:  # the header only: nothing decoded yet
        mode, size = image.mode, image.size
    wrong_size = f"{path} is {{}} pixels; the model takes {width}x{height} (resize it, or pass --resize / resize=True)"
    if not resize and size not in ((width, height), (height, width)):  # (an EXIF rotation may swap them)
        raise ValueError(wrong_size.format(f"{size[0]}x{size[1]}"))
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        changes.append(f"{mode} pixels ({'32-bit' if mode in ('I', 'F') else '16-bit'}) scaled to 8 bits")
    if "A" in mode or mode == "P":
        rgba = decode_image(path, channels=4)
        if (rgba[3] < 255).any():
            changes.append("its transparency (alpha channel) dropped")
    if channels == 1 and mode not in GREY_MODES:
        rgb = decode_image(path, channels=3, size=(width, height) if resize else None)
        if (rgb[0] != rgb[1]).any() or (rgb[1] != rgb[2]).any():
            changes.append("colour converted to grey")
    values = decode_image(path, channels=channels, size=(width, height) if resize else None)
    if values.shape[1:] != (height, width):
        raise ValueError(wrong_size.format(f"{values.shape[2]}x{values.shape[1]}"))
    quantized = np.rint(values.astype(np.float64) * ((levels - 1) / 255))  # [C, H, W]
    drawn_back = np.rint(quantized * (255 / (levels - 1)))
    if (drawn_back != values).any():
        kind = (
            "thresholded at 128 to the model's 2 levels" if levels == 2 else f"rounded to the model's {levels} levels"
        )
        changes.append(f"8-bit values {kind}")
    if resize:
        changes.insert(0, f"resized from {size[0]}x{size[1]} to {width}x{height}")
    if changes and not convert:
        raise ValueError(
            f"{path}: reading it for this model would change its pixels ({'; '.join(changes)}); "
            f"pass --convert / convert=True to accept the conversion"
        )
    if notes is not None and changes:
        notes.append(f"{Path(path).name}: {'; '.join(changes)}")
    return torch.from_numpy(quantized).long().unsqueeze(0)  # [1, C, H, W]


def read_folder(path: str, split: str, *, image_size: int | None = None, channels: int | None = None) -> SplitData:
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{FOLDER_PREFIX}{path}: no such folder")
    splits = _split_files(root)
    base, files = splits[split]
    if not files:
        counts = ", ".join(f"{s}: {len(f)}" for s, (_, f) in splits.items())
        raise ValueError(
            f"{FOLDER_PREFIX}{path} has no {split} images ({counts}; image files end in "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}); for small folders make train/ and test/ subfolders"
        )
    class_names = _class_names(splits)

    what = f"{FOLDER_PREFIX}{path}: "
    if channels is None:
        all_files = [f for _, split_files in splits.values() for f in split_files]
        channels = 1 if all(_mode(f, what) in GREY_MODES for f in all_files) else 3
    size = None if image_size is None else (image_size, image_size)
    arrays = [decode_image(f, channels=channels, size=size, what=what) for f in files]  # [C, H, W] each
    shapes = sorted({a.shape for a in arrays})
    if len(shapes) > 1:
        raise ValueError(
            f"{FOLDER_PREFIX}{path}: images have different sizes ({shapes[0][1:]}, {shapes[1][1:]}, ...); "
            f"pass image_size=N to resize and centre-crop them all to N x N"
        )
    images = np.stack(arrays)  # [N, C, H, W]
    labels = None
    if class_names is not None:
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[f.relative_to(base).parts[0]] for f in files], dtype=np.int64)
    size = f"resized and centre-cropped to {image_size}x{image_size}" if image_size else "at their own size"
    return SplitData(
        images=np.ascontiguousarray(images),
        labels=labels,
        levels=256,
        num_classes=len(class_names) if class_names else None,
        class_names=class_names,
        description=f"images of {root} ({split}: {len(files)} files), {size}",
        extra={"files": [str(f.relative_to(root)) for f in files]},
    )
