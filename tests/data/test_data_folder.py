"""``folder:PATH``: PNG / JPEG folders, split folders or the fixed hash split, class subfolders, resizing."""

import numpy as np
import pytest
import torch
from PIL import Image

from pixelcnn import data


def save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


def test_split_and_class_folders_with_png_and_jpeg_of_any_size(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                size = (20 + 7 * i, 30)  # different sizes and aspect ratios
                save(tmp_path / split / cls / f"{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    save(tmp_path / "test" / "dog" / "photo.jpg", np.full((40, 24, 3), 200, np.uint8), quality=95)

    train = data.load(f"folder:{tmp_path}", "train", image_size=16)
    test = data.load(f"folder:{tmp_path}", "test", image_size=16)
    assert (len(train), len(test)) == (6, 5) and train.image_shape == (3, 16, 16) and train.levels == 256
    assert train.class_names == ("cat", "dog") and train.num_classes == 2
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and test.labels.tolist() == [0, 0, 1, 1, 1]
    assert test.extra["files"][-1].endswith("photo.jpg")  # sorted: 0.png, 1.png, photo.jpg
    assert (test.images[-1].float() - 200).abs().max() <= 3  # a flat JPEG stays flat
    with pytest.raises(ValueError, match=r"different sizes .*pass image_size=N"):
        data.load(f"folder:{tmp_path}", "train")


def test_resize_scales_the_shorter_side_and_crops_the_centre(tmp_path):
    image = np.zeros((8, 16, 3), np.uint8)
    image[:, 4:12] = 255  # a white centre square, black sides
    save(tmp_path / "train" / "a.png", image)
    save(tmp_path / "test" / "b.png", image)
    ds = data.load(f"folder:{tmp_path}", "train", image_size=4)
    # Only the white centre remains (squashing the whole image to 4x4 would keep black columns).
    assert ds.image_shape == (3, 4, 4) and ds.images.min() >= 200
    assert ds.labels.tolist() == [-1] and ds.num_classes is None


def test_without_split_folders_the_hash_split_is_fixed_and_disjoint(tmp_path):
    for i in range(40):
        save(tmp_path / f"img{i:02d}.png", np.full((6, 6), i, np.uint8))
    train, test = data.load(f"folder:{tmp_path}", "train"), data.load(f"folder:{tmp_path}", "test")
    assert len(train) + len(test) == 40 and 0 < len(test) < 20
    assert set(train.extra["files"]).isdisjoint(test.extra["files"])
    assert train.image_shape == (1, 6, 6)  # all grey: one channel
    # Adding images never moves the old ones between splits.
    save(tmp_path / "zz_new.png", np.zeros((6, 6), np.uint8))
    assert set(test.extra["files"]) <= set(data.load(f"folder:{tmp_path}", "test").extra["files"])
    bits = data.load(f"folder:{tmp_path}", "test", binarize="threshold")
    assert bits.levels == 2 and set(bits.images.unique().tolist()) <= {0, 1}


def test_van_den_oord_style_split_folder_names_and_channels(tmp_path):
    save(tmp_path / "train_32x32" / "a.png", np.full((32, 32, 3), 9, np.uint8))
    save(tmp_path / "valid_32x32" / "b.png", np.full((32, 32, 3), 7, np.uint8))
    test = data.load(f"folder:{tmp_path}", "test")
    assert len(test) == 1 and int(test.images.max()) == 7 and test.image_shape == (3, 32, 32)
    grey = data.load(f"folder:{tmp_path}", "test", channels=1)
    assert grey.image_shape == (1, 32, 32) and int(grey.images[0, 0, 0, 0]) == 7


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.load(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(ValueError, match="has no train images"):
        data.load(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "bad" / "train").mkdir(parents=True)
    (tmp_path / "bad" / "test").mkdir()
    (tmp_path / "bad" / "train" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read .*x.png as an image"):
        data.load(f"folder:{tmp_path / 'bad'}")
    with pytest.raises(ValueError, match="channels must be 1 .* or 3"):
        data.load(f"folder:{tmp_path}", channels=4)
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        data.load(f"folder:{tmp_path}", image_size=0)


def test_images_keep_their_pixels(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save(tmp_path / "train" / "a.png", pixels)
    save(tmp_path / "test" / "a.png", pixels)
    ds = data.load(f"folder:{tmp_path}", "train")
    assert torch.equal(ds.images[0], torch.from_numpy(pixels).permute(2, 0, 1))  # [H, W, C] -> [C, H, W]
