"""``pixelcnn.data.load``: names, argument checks, binarization and ``prepare_batch`` (the data contract)."""

import pytest
import torch
from torch.utils.data import DataLoader

from pixelcnn import data


def test_list_datasets_names_every_set():
    assert data.list_datasets() == [
        "mnist5k",
        "digits",
        "photo-patches",
        "lfw-faces",
        "glyphs",
        "mnist",
        "fashion-mnist",
        "binarized-mnist",
        "cifar10",
        "imagenet32",
        "imagenet64",
        "folder:PATH",
    ]


def test_bad_arguments_are_value_errors_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown data set 'mnist5' \(did you mean 'mnist5k'\?\).*cifar10"):
        data.load("mnist5k"[:-1])
    with pytest.raises(ValueError, match="unknown split 'valid'; choose from: train, test"):
        data.load("digits", "valid")
    with pytest.raises(ValueError, match="unknown binarize 'yes'; choose from: None, dynamic, threshold"):
        data.load("mnist5k", binarize="yes")
    with pytest.raises(ValueError, match="image_size applies only to folder:PATH"):
        data.load("mnist5k", image_size=32)
    for name in ("photo-patches", "digits"):
        with pytest.raises(ValueError, match="grey 8-bit images only"):
            data.load(name, binarize="threshold")


def test_threshold_binarization_is_x_at_least_128_on_both_splits():
    for split in ("train", "test"):
        grey, bits = data.load("mnist5k", split), data.load("mnist5k", split, binarize="threshold")
        assert torch.equal(bits.images, (grey.images >= 128).to(torch.uint8)) and bits.levels == 2
        batch = bits.images[:4]
        assert bits.prepare_batch(batch) is batch and torch.equal(bits[3][0], bits.images[3])


def test_dynamic_train_split_keeps_grey_images_and_draws_fresh_bits():
    grey = data.load("lfw-faces", "train")
    ds = data.load("lfw-faces", "train", binarize="dynamic")
    assert torch.equal(ds.images, grey.images) and ds.levels == 2 and ds.dynamic
    batch = ds.images[:64]
    first = ds.prepare_batch(batch, torch.Generator().manual_seed(3))
    again = ds.prepare_batch(batch, torch.Generator().manual_seed(3))
    other = ds.prepare_batch(batch, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)  # the generator decides the bits
    assert first.dtype == torch.uint8 and set(first.unique().tolist()) <= {0, 1}
    assert torch.equal(first, torch.bernoulli(batch / 255, generator=torch.Generator().manual_seed(3)).to(torch.uint8))
    # ds[i] draws with the global RNG, so that a plain DataLoader works and seeds reproduce it.
    torch.manual_seed(11)
    item = ds[5][0]
    torch.manual_seed(11)
    assert torch.equal(item, ds[5][0]) and set(item.unique().tolist()) <= {0, 1}
    images, labels = next(iter(DataLoader(ds, batch_size=8)))
    assert images.shape == (8, 1, 25, 25) and images.max() <= 1 and labels.tolist() == ds.labels[:8].tolist()


def test_prepare_batch_checks_its_input():
    ds = data.load("mnist5k", "train", binarize="dynamic")
    with pytest.raises(ValueError, match="uint8"):
        ds.prepare_batch(ds.images[:2].float())
    with pytest.raises(ValueError, match=r"expects images \[B, 1, 28, 28\], got \(2, 1, 28, 27\)"):
        ds.prepare_batch(ds.images[:2, :, :, :27])
    plain = data.load("mnist5k", "train")
    batch = plain.images[:2]
    assert plain.prepare_batch(batch, torch.Generator().manual_seed(0)) is batch


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PIXELCNN_DATA", str(tmp_path / "cache"))
    assert data.default_root() == tmp_path / "cache"
    monkeypatch.delenv("PIXELCNN_DATA")
    assert str(data.default_root()).endswith(".cache/pixelcnn")
