"""Standard sets read from small files written in each real format: IDX, .amat, CIFAR-10 batches, ImageNet npz."""

import gzip
import io
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from pixelcnn import data
from pixelcnn.data import standard


def write_idx(path, array, *, compress=True):
    """IDX: two zero bytes, the type code (0x08 = unsigned byte), the number of dims, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_idx_set(folder, rng, *, n_train=7, n_test=5, compress=True):
    folder.mkdir(parents=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        arrays[prefix] = images, labels
    return arrays


def test_idx_magic_numbers_are_the_real_ones(tmp_path):
    write_idx(tmp_path / "images.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8))
    assert gzip.decompress((tmp_path / "images.gz").read_bytes())[:4] == struct.pack(">I", 2051)
    assert gzip.decompress((tmp_path / "labels.gz").read_bytes())[:4] == struct.pack(">I", 2049)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("compress", [True, False])
def test_idx_sets_load_from_gzipped_or_plain_files(tmp_path, name, compress):
    arrays = make_idx_set(tmp_path / name, np.random.default_rng(0), compress=compress)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = data.load(name, split, root=tmp_path, download=False)
        images, labels = arrays[prefix]
        assert torch.equal(ds.images, torch.from_numpy(images)[:, None]) and ds.labels.tolist() == labels.tolist()
        assert (ds.image_shape, ds.levels, ds.num_classes) == ((1, 28, 28), 256, 10)
    assert data.load(name, root=tmp_path, download=False).class_names[0] == ("0" if name == "mnist" else "T-shirt/top")
    bits = data.load(name, "test", root=tmp_path, download=False, binarize="dynamic")
    assert torch.equal(bits.images, data.fixed_binary_draw(torch.from_numpy(arrays["t10k"][0])[:, None]))


def test_idx_errors_name_the_file(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x12\x34\x08\x01" + bytes(8)))
    with pytest.raises(ValueError, match="bad.gz is not an IDX file"):
        standard.read_idx(tmp_path / "bad.gz")
    write_idx(tmp_path / "short", np.zeros((2, 28, 28), np.uint8), compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        standard.read_idx(tmp_path / "short")


def test_missing_file_without_download_says_what_and_where(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"mnist: .*mnist/train-images-idx3-ubyte.gz is missing and "
        r"download=False; download it from https://.*SHA-256 440fcabf",
    ):
        data.load("mnist", root=tmp_path, download=False)


def write_amat(path, bits):
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in bits.reshape(len(bits), -1)))


def test_binarized_mnist_reads_amat_text(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "binarized-mnist"
    folder.mkdir()
    splits = {"train": rng.integers(0, 2, (6, 28, 28)), "test": rng.integers(0, 2, (3, 28, 28))}
    for split, bits in splits.items():
        write_amat(folder / f"binarized_mnist_{split}.amat", bits)
    for split, bits in splits.items():
        ds = data.load("binarized-mnist", split, root=tmp_path, download=False)
        assert torch.equal(ds.images, torch.from_numpy(bits.astype(np.uint8))[:, None])
        assert ds.levels == 2 and ds.num_classes is None and (ds.labels == -1).all()
    with pytest.raises(ValueError, match="binary already"):
        data.load("binarized-mnist", root=tmp_path, download=False, binarize="dynamic")


def test_amat_errors(tmp_path):
    (tmp_path / "a.amat").write_text("0 1 " * 392 + "\n" + "0 1 " * 391 + "0\n")
    with pytest.raises(ValueError, match="each line must hold 784 values, found a line with 783"):
        standard.read_amat(tmp_path / "a.amat")
    (tmp_path / "b.amat").write_text("0.5 " * 784 + "\n")
    with pytest.raises(ValueError, match=r"byte 1 is b'\.'"):
        standard.read_amat(tmp_path / "b.amat")


def cifar_batch(rng, n, label):
    """A CIFAR-10 python batch with the real keys: data uint8 [n, 3072] (R, G, B planes), labels, names."""
    return {
        "batch_label": label,
        "labels": rng.integers(0, 10, n).tolist(),
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def make_cifar(rng):
    batches = {f"data_batch_{i}": cifar_batch(rng, 3, f"training batch {i} of 5") for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(rng, 4, "testing batch 1 of 1")
    return batches


def check_cifar(ds, batches, names):
    data_rows = np.concatenate([batches[n]["data"] for n in names])
    assert torch.equal(ds.images, torch.from_numpy(data_rows.reshape(-1, 3, 32, 32)))
    assert ds.labels.tolist() == sum((batches[n]["labels"] for n in names), [])
    # Row layout: 1024 red values, then green, then blue, each a 32x32 image row by row.
    assert int(ds.images[0, 1, 2, 3]) == int(data_rows[0, 1024 + 2 * 32 + 3])
    assert (ds.image_shape, ds.num_classes, ds.class_names[0]) == ((3, 32, 32), 10, "airplane")


def test_cifar10_reads_the_extracted_batches_folder(tmp_path):
    batches = make_cifar(np.random.default_rng(2))
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    check_cifar(
        data.load("cifar10", "train", root=tmp_path, download=False), batches, [f"data_batch_{i}" for i in range(1, 6)]
    )
    check_cifar(data.load("cifar10", "test", root=tmp_path, download=False), batches, ["test_batch"])


def test_cifar10_reads_the_tar_gz_archive(tmp_path):
    batches = make_cifar(np.random.default_rng(3))
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, batch in batches.items():
            raw = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    check_cifar(data.load("cifar10", "test", root=tmp_path, download=False), batches, ["test_batch"])
    assert not (tmp_path / "cifar10" / "cifar-10-batches-py").exists()  # read in place, not extracted


class _OpensAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_cifar10_batches_cannot_run_code(tmp_path):
    marker = tmp_path / "was-run"
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batch = cifar_batch(np.random.default_rng(4), 2, "testing batch 1 of 1")
    batch["labels"] = _OpensAFile(marker)
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match="may hold only numpy arrays.*asks for io.open"):
        data.load("cifar10", "test", root=tmp_path, download=False)
    assert not marker.exists()


def imagenet_npz(rng, n, size):
    """A downsampled-ImageNet npz with the real keys: data uint8 [n, 3*s*s] (CHW), labels 1..1000, mean."""
    buffer = io.BytesIO()
    images = rng.integers(0, 256, (n, 3 * size * size), dtype=np.uint8)
    labels = rng.integers(1, 1001, n)
    np.savez(buffer, data=images, labels=labels, mean=images.mean(axis=0))
    return buffer.getvalue(), images, labels


def test_imagenet32_reads_the_npz_zips_and_caches_them(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "imagenet32"
    folder.mkdir()
    train_rows, train_labels = [], []
    with zipfile.ZipFile(folder / "Imagenet32_train_npz.zip", "w") as z:
        for k in range(1, 11):
            raw, rows, labels = imagenet_npz(rng, 2 + k % 3, 32)
            z.writestr(f"Imagenet32_train_npz/train_data_batch_{k}.npz", raw)
            train_rows.append(rows), train_labels.append(labels)
    raw, val_rows, val_labels = imagenet_npz(rng, 3, 32)
    with zipfile.ZipFile(folder / "Imagenet32_val_npz.zip", "w") as z:
        z.writestr("Imagenet32_val_npz/val_data.npz", raw)

    train = data.load("imagenet32", "train", root=tmp_path, download=False)
    assert torch.equal(train.images, torch.from_numpy(np.concatenate(train_rows).reshape(-1, 3, 32, 32)))
    assert train.labels.tolist() == (np.concatenate(train_labels) - 1).tolist()  # 1-based -> 0-based
    assert (train.image_shape, train.num_classes, train.levels) == ((3, 32, 32), 1000, 256)
    test = data.load("imagenet32", "test", root=tmp_path, download=False)
    assert torch.equal(test.images, torch.from_numpy(val_rows.reshape(-1, 3, 32, 32)))
    # Later loads read the cache alone; editing the loaded images never reaches it.
    (folder / "Imagenet32_val_npz.zip").unlink()
    test.images[0].zero_()
    again = data.load("imagenet32", "test", root=tmp_path, download=False)
    assert torch.equal(again.images, torch.from_numpy(val_rows.reshape(-1, 3, 32, 32)))


def test_imagenet64_reads_extracted_npz_files(tmp_path):
    rng = np.random.default_rng(6)
    part1, part2 = tmp_path / "imagenet64" / "Imagenet64_train_part1_npz", tmp_path / "imagenet64" / "part2"
    part1.mkdir(parents=True), part2.mkdir()
    rows = []
    for k in range(1, 11):
        raw, batch, _ = imagenet_npz(rng, 1, 64)
        ((part1 if k <= 5 else part2) / f"train_data_batch_{k}.npz").write_bytes(raw)
        rows.append(batch)
    train = data.load("imagenet64", "train", root=tmp_path, download=False)
    assert train.image_shape == (3, 64, 64) and len(train) == 10
    assert torch.equal(train.images, torch.from_numpy(np.concatenate(rows).reshape(-1, 3, 64, 64)))  # batch order
    (part2 / "train_data_batch_7.npz").unlink()
    (tmp_path / "imagenet64" / "cache" / "train.json").unlink()
    with pytest.raises(FileNotFoundError, match="not train_data_batch_7.npz"):
        data.load("imagenet64", "train", root=tmp_path, download=False)


def test_imagenet_npz_errors(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((1, 3072), np.uint8), labels=np.ones(1))
    with pytest.raises(ValueError, match=r"has keys \['images', 'labels'\], lacks 'data'"):
        standard.read_imagenet_npz(io.BytesIO(buffer.getvalue()), 32, source="x.npz")
    raw, _, _ = imagenet_npz(np.random.default_rng(7), 2, 32)
    with pytest.raises(ValueError, match=r"expected data uint8 \[N, 12288\]"):
        standard.read_imagenet_npz(io.BytesIO(raw), 64, source="x.npz")
