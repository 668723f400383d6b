"""Standard data sets in their real formats, downloaded from their canonical mirrors with SHA-256 checks.

Files live in ``ROOT/NAME/`` (ROOT: ``load(root=)``, ``$PIXELCNN_DATA`` or
``~/.cache/pixelcnn``). To work offline, put the files listed here there:

- ``mnist``, ``fashion-mnist``: the four IDX files ``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
  ``t10k-labels-idx1-ubyte.gz`` (gunzipped copies without ``.gz`` work too).
  60,000 train / 10,000 test, 28x28 grey, 10 classes.
- ``binarized-mnist``: ``binarized_mnist_train.amat`` and
  ``binarized_mnist_test.amat``, the fixed binarization of Larochelle & Murray
  (2011) that the papers report on: 50,000 train / 10,000 test (the 10,000
  ``valid`` images are not used), 28x28 bits, unlabelled.
- ``cifar10``: ``cifar-10-python.tar.gz`` or its extracted folder
  ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``, ``test_batch``):
  50,000 / 10,000, 32x32 RGB, 10 classes. These batches are Python pickles
  (the format CIFAR-10 is published in); they are read with an unpickler that
  only builds numpy arrays, lists, dicts and strings.
- ``imagenet32``, ``imagenet64``: the downsampled ImageNet of Chrabaszcz et al.
  (2017) in npz form: ``Imagenet32_train_npz.zip`` + ``Imagenet32_val_npz.zip``
  (64: ``Imagenet64_train_part1_npz.zip``, ``..._part2_npz.zip``,
  ``Imagenet64_val_npz.zip``), or their extracted ``train_data_batch_1.npz`` ..
  ``train_data_batch_10.npz`` and ``val_data.npz`` anywhere under the folder.
  1,281,167 train / 50,000 test (the validation set), 1,000 classes. The first
  load writes the images to a raw uint8 cache in ``ROOT/NAME/cache/`` that later
  loads map from disk instead of reading into memory. The image-net.org
  server asks for a (free) account: when the download is refused, log in,
  download the zips and put them in ``ROOT/NAME/``. NOTE: the PixelRNN and
  Gated PixelCNN papers used van den Oord's downsampled ImageNet (folders of
  PNGs, ``train_32x32/``), a different resize of the same images; read it
  with ``folder:PATH``.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .dataset import SplitData
from .download import DownloadError, download_file

DIGIT_NAMES = tuple(map(str, range(10)))
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its name on disk, its mirrors (tried in order), its SHA-256 and size."""

    name: str
    urls: tuple[str, ...]
    sha256: str | None  # hex; None only where no published sum could be found (said at the definition)
    size: int | None  # bytes


def _mirrored(name: str, bases: tuple[str, ...], sha256: str, size: int) -> RemoteFile:
    return RemoteFile(name, tuple(base + name for base in bases), sha256, size)


# MNIST: the canonical site (LeCun) often refuses downloads now, so the two mirrors that torchvision
# and TensorFlow use come first. SHA-256 sums as published in TensorFlow Datasets' url_checksums/mnist
# (the same sums appear in several independent projects).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
}
# Fashion-MNIST: the authors' S3 bucket, then the files in their GitHub repository (data/fashion/).
# SHA-256 sums from TensorFlow Datasets' url_checksums/fashion_mnist.
FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
}
# Binarized MNIST (Larochelle's site); SHA-256 sums from TensorFlow Datasets' url_checksums/binarized_mnist.
BINARIZED_MNIST_MIRRORS = ("http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",)
BINARIZED_MNIST_FILES = {
    "binarized_mnist_train.amat": ("ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", 78400000),
    "binarized_mnist_test.amat": ("e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", 15680000),
}
# CIFAR-10 python version (Krizhevsky's site); its SHA-256 is the one Keras' cifar10.load_data checks
# (published MD5: c58f30108f718f92721af3b95e74349a).
CIFAR10_ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    170498071,
)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
# Downsampled ImageNet, npz version (image-net.org; needs an account). SHA-256 sums and sizes from
# TensorFlow Datasets' imagenet_resized/checksums.tsv; we could not check them against the server.
IMAGENET_BASE = "https://image-net.org/data/downsample/"
IMAGENET_ARCHIVES = {
    32: {
        "train": (
            (
                "Imagenet32_train_npz.zip",
                "94226337ecc1b0309d9fcd0167127aaadc931587035fbcb53925235edbaec4fc",
                3580435279,
            ),
        ),
        "test": (
            ("Imagenet32_val_npz.zip", "013990e6dec1237dcd1f9beadbab81ead6604cc119af5cacbfb59ae28148377a", 139697668),
        ),
    },
    64: {
        "train": (
            (
                "Imagenet64_train_part1_npz.zip",
                "9422dc1dc5d092e9814a70a1cb7fc74880d2db5d88a0cb8a34ee363b12bde3f1",
                6783426789,
            ),
            (
                "Imagenet64_train_part2_npz.zip",
                "9fafc115afb7e6c301e66dc16b2d737152b427bd5dab26e1293487a6819c7f30",
                6780506068,
            ),
        ),
        "test": (
            ("Imagenet64_val_npz.zip", "e1e75133158a1924135a9c6f97a80d2d237b158945e0b34074e58e6c8430eeb8", 529522927),
        ),
    },
}
IMAGENET_MEMBERS = {"train": tuple(f"train_data_batch_{i}.npz" for i in range(1, 11)), "test": ("val_data.npz",)}
IMAGENET_LOGIN_HINT = (
    "image-net.org asks for a free account: log in there, download the file by hand and put it in place"
)


def fetch(file: RemoteFile, folder: Path, *, download: bool, data_set: str, hint: str = "") -> Path:
    """``folder/file.name``, downloaded (checked) when missing and ``download`` is true."""
    path = folder / file.name
    if path.exists():
        return path
    if not download:
        raise FileNotFoundError(
            f"{data_set}: {path} is missing and download=False; download it from {file.urls[0]}"
            + (f" (SHA-256 {file.sha256})" if file.sha256 else "")
            + " and put it there, or pass download=True"
        )
    try:
        return download_file(file.urls, path, sha256=file.sha256, size=file.size)
    except DownloadError as err:
        raise DownloadError(f"{data_set}: {err}" + (f" ({hint})" if hint else "")) from None


# --- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------------------

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_maybe_gzip(path: Path) -> bytes:
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
        return f.read()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array: magic 0x00 0x00 TYPE NDIM, NDIM big-endian sizes, data."""
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (its first bytes are {raw[:4].hex()}, expected 0000TTNN)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[raw[2]]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: its header says {shape} of {dtype} ({expected} bytes), "
            f"it holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx_split(
    data_set: str,
    files: dict,
    mirrors: tuple[str, ...],
    split: str,
    folder: Path,
    download: bool,
    class_names: tuple[str, ...],
    description: str,
) -> SplitData:
    prefix = "train" if split == "train" else "t10k"
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte.gz"
        unzipped = folder / name[: -len(".gz")]
        if not (folder / name).exists() and unzipped.exists():
            path = unzipped
        else:
            path = fetch(_mirrored(name, mirrors, *files[name]), folder, download=download, data_set=data_set)
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or images.dtype != np.uint8:
        raise ValueError(
            f"{data_set} {split}: expected uint8 images [N, H, W] and labels [N], got "
            f"{images.dtype} {images.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"{data_set} {split}: labels must be in 0..{len(class_names) - 1}")
    return SplitData(
        images=images[:, None],
        labels=labels.astype(np.int64),
        levels=256,  # [N, 1, H, W]
        num_classes=len(class_names),
        class_names=class_names,
        description=description,
    )


def mnist(split: str, *, folder: Path, download: bool = True) -> SplitData:
    return _idx_split(
        "mnist",
        MNIST_FILES,
        MNIST_MIRRORS,
        split,
        folder,
        download,
        DIGIT_NAMES,
        "MNIST (LeCun et al.), IDX files: 60,000 train / 10,000 test, 28x28 grey",
    )


def fashion_mnist(split: str, *, folder: Path, download: bool = True) -> SplitData:
    return _idx_split(
        "fashion-mnist",
        FASHION_FILES,
        FASHION_MIRRORS,
        split,
        folder,
        download,
        FASHION_NAMES,
        "Fashion-MNIST (Xiao et al.), IDX files: 60,000 train / 10,000 test, 28x28 grey",
    )


# --- binarized MNIST (.amat) --------------------------------------------------------------------


def read_amat(path: str | os.PathLike, *, pixels: int = 784) -> np.ndarray:
    """A binarized-MNIST ``.amat`` text file -> uint8 [N, pixels].

    One image a line: ``pixels`` values, each 0 or 1, separated by spaces.
    """
    path = Path(path)
    text = np.fromfile(path, dtype=np.uint8)
    is_bit = (text == ord("0")) | (text == ord("1"))
    is_space = (text == ord(" ")) | (text == ord("\t")) | (text == ord("\r")) | (text == ord("\n"))
    if not np.all(is_bit | is_space):
        bad = int(np.flatnonzero(~(is_bit | is_space))[0])
        raise ValueError(
            f"{path} is not a binarized-MNIST .amat file: byte {bad} is {bytes(text[bad : bad + 1])!r}, "
            f"expected only 0, 1 and spaces"
        )
    # A value is a run of digits: "01" would be one (invalid) value, so count run starts, not digits.
    starts = is_bit & ~np.concatenate([[False], is_bit[:-1]])
    if np.count_nonzero(starts) != np.count_nonzero(is_bit):
        raise ValueError(f"{path} is not a binarized-MNIST .amat file: values must be single digits 0 or 1")
    newlines = np.flatnonzero(text == ord("\n"))
    bits_before = np.concatenate([[0], np.cumsum(is_bit)])  # bits before each byte position
    line_ends = np.concatenate([newlines, [len(text)]])
    per_line = np.diff(np.concatenate([[0], bits_before[line_ends]]))
    per_line = per_line[per_line > 0]  # blank lines (the last one) hold none
    if per_line.size == 0 or np.any(per_line != pixels):
        wrong = per_line[per_line != pixels]
        raise ValueError(
            f"{path} is not a binarized-MNIST .amat file: each line must hold {pixels} values, "
            f"found a line with {int(wrong[0]) if wrong.size else 0}"
        )
    return (text[is_bit] - ord("0")).reshape(-1, pixels)  # [N * 784] -> [N, 784]


def binarized_mnist(split: str, *, folder: Path, download: bool = True) -> SplitData:
    name = f"binarized_mnist_{split}.amat"
    path = fetch(
        _mirrored(name, BINARIZED_MNIST_MIRRORS, *BINARIZED_MNIST_FILES[name]),
        folder,
        download=download,
        data_set="binarized-mnist",
    )
    bits = read_amat(path)
    return SplitData(
        images=bits.reshape(-1, 1, 28, 28),
        labels=None,
        levels=2,  # [N, 784] -> [N, 1, 28, 28]
        description="binarized MNIST of Larochelle & Murray (2011), .amat: 50,000 train / 10,000 test",
    )


# --- CIFAR-10 (python batches) ------------------------------------------------------------------


def _numpy_globals() -> dict[tuple[str, str], object]:
    core = getattr(np, "_core", None) or np.core
    reconstruct, frombuffer = core.multiarray._reconstruct, core.numeric._frombuffer
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}
    for module in ("numpy.core", "numpy._core"):  # pickles name the module of the numpy that wrote them
        allowed[(f"{module}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{module}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, strings, numbers and numpy arrays: no other class or function is called."""

    allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        raise pickle.UnpicklingError(
            f"a CIFAR-10 batch may hold only numpy arrays, lists and strings; this one asks for {module}.{name}"
        )


def read_cifar_batch(raw: bytes, *, source: str = "CIFAR-10 batch") -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> images uint8 [N, 3, 32, 32], labels int64 [N].

    The batch is a pickled dict with ``data`` uint8 [N, 3072] and ``labels``
    (also ``batch_label`` and ``filenames``, not used).
    """
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()  # latin1: written by Python 2
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ValueError(f"{source} is not a CIFAR-10 python batch ({err})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{source} is not a CIFAR-10 python batch (it holds a {type(batch).__name__})")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(
            f"{source} is not a CIFAR-10 python batch: it has keys {sorted(batch)}, expected 'data' and 'labels'"
        )
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(
            f"{source}: expected data uint8 [N, 3072] and N labels, got {data.dtype} {data.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{source}: labels must be in 0..9")
    return data.reshape(-1, 3, 32, 32), labels  # rows are the R, G, B planes, each 32x32 row-major


def cifar10(split: str, *, folder: Path, download: bool = True) -> SplitData:
    names = CIFAR10_BATCHES[split]
    extracted = folder / CIFAR10_FOLDER
    if all((extracted / n).is_file() for n in names):
        raws = [((extracted / n).read_bytes(), str(extracted / n)) for n in names]
    else:
        archive = fetch(CIFAR10_ARCHIVE, folder, download=download, data_set="cifar10")
        with tarfile.open(archive, "r:*") as tar:  # read the members in place: nothing is extracted
            raws = []
            for n in names:
                try:
                    member = tar.extractfile(f"{CIFAR10_FOLDER}/{n}")
                except KeyError:
                    member = None
                if member is None:
                    raise ValueError(f"{archive} has no file {CIFAR10_FOLDER}/{n}: not the CIFAR-10 python archive")
                raws.append((member.read(), f"{archive}:{CIFAR10_FOLDER}/{n}"))
    batches = [read_cifar_batch(raw, source=source) for raw, source in raws]
    return SplitData(
        images=np.concatenate([b[0] for b in batches]),
        labels=np.concatenate([b[1] for b in batches]),
        levels=256,
        num_classes=10,
        class_names=CIFAR10_NAMES,
        description="CIFAR-10 (Krizhevsky 2009), python batches: 50,000 train / 10,000 test, 32x32 RGB",
    )


# --- downsampled ImageNet (npz) -----------------------------------------------------------------


def read_imagenet_npz(file, size: int, *, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One downsampled-ImageNet npz -> images uint8 [N, 3, size, size], labels 0..999.

    Keys: ``data`` uint8 [N, 3*size*size] (each row the R, G, B planes),
    ``labels`` 1..1000 (1-based), and ``mean`` (not used).
    """
    try:
        npz = np.load(file, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{source} is not a downsampled-ImageNet npz ({err})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{source} is a single array, not a downsampled-ImageNet npz with 'data' and 'labels'")
    with npz:
        missing = [key for key in ("data", "labels") if key not in npz.files]
        if missing:
            raise ValueError(
                f"{source} is not a downsampled-ImageNet npz: it has keys {npz.files}, "
                f"lacks {', '.join(map(repr, missing))}"
            )
        data, labels = npz["data"], np.asarray(npz["labels"]).astype(np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * size * size or labels.shape != (len(data),):
        raise ValueError(
            f"{source}: expected data uint8 [N, {3 * size * size}] and labels [N], got "
            f"{data.dtype} {data.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 1 or labels.max() > 1000):
        raise ValueError(f"{source}: labels must be 1..1000 (1-based), got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, size, size), labels - 1  # [N, 3*s*s] -> [N, 3, s, s] (planes R, G, B)


def _imagenet_sources(size: int, split: str, folder: Path, download: bool, data_set: str) -> list:
    """(member name, open()) for each npz of the split, in order: loose files under ``folder``, else the zips."""
    wanted = IMAGENET_MEMBERS[split]
    loose = {}
    if folder.is_dir():
        for path in folder.rglob("*.npz"):
            if path.name in wanted and "cache" not in path.relative_to(folder).parts:
                loose.setdefault(path.name, path)
    if len(loose) == len(wanted):
        return [(name, lambda p=loose[name]: open(p, "rb")) for name in wanted]
    if loose:
        missing = [n for n in wanted if n not in loose]
        raise FileNotFoundError(
            f"{data_set}: found some extracted npz files under {folder} but not "
            f"{', '.join(missing)}; the {split} split needs all of {', '.join(wanted)}"
        )
    members = {}
    for name, sha256, nbytes in IMAGENET_ARCHIVES[size][split]:
        archive = fetch(
            RemoteFile(name, (IMAGENET_BASE + name,), sha256, nbytes),
            folder,
            download=download,
            data_set=data_set,
            hint=IMAGENET_LOGIN_HINT,
        )
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base in wanted:
                    members[base] = (archive, info.filename)
    missing = [n for n in wanted if n not in members]
    if missing:
        raise ValueError(f"{data_set}: the archives in {folder} lack {', '.join(missing)}")

    def opener(archive, member):
        # np.load needs a seekable file; a member of a zip seeks slowly, so copy it to memory first.
        def open_member():
            with zipfile.ZipFile(archive) as z:
                return io.BytesIO(z.read(member))

        return open_member

    return [(name, opener(*members[name])) for name in wanted]


def _imagenet(size: int, split: str, folder: Path, download: bool) -> SplitData:
    data_set = f"imagenet{size}"
    cache = folder / "cache"
    meta_path = cache / f"{split}.json"
    images_path, labels_path = cache / f"{split}_images_uint8.raw", cache / f"{split}_labels.npy"
    if not meta_path.exists():
        sources = _imagenet_sources(size, split, folder, download, data_set)
        cache.mkdir(parents=True, exist_ok=True)
        tmp_images = images_path.with_name(images_path.name + ".tmp")
        labels, count = [], 0
        with open(tmp_images, "wb") as out:  # one batch in memory at a time
            for name, open_source in sources:
                with open_source() as f:
                    batch, batch_labels = read_imagenet_npz(f, size, source=f"{folder}/{name}")
                out.write(np.ascontiguousarray(batch).tobytes())
                labels.append(batch_labels)
                count += len(batch)
        os.replace(tmp_images, images_path)
        np.save(labels_path, np.concatenate(labels))
        tmp_meta = meta_path.with_name(meta_path.name + ".tmp")  # written last: it marks a complete cache
        tmp_meta.write_text(json.dumps({"shape": [count, 3, size, size], "sources": [n for n, _ in sources]}))
        os.replace(tmp_meta, meta_path)
    meta = json.loads(meta_path.read_text())
    shape = tuple(meta["shape"])
    # Copy-on-write map: pages load on demand, in-place edits stay in memory and never reach the file.
    images = np.memmap(images_path, dtype=np.uint8, mode="c", shape=shape) if shape[0] else np.zeros(shape, np.uint8)
    labels = np.load(labels_path)
    return SplitData(
        images=torch.from_numpy(images),
        labels=labels,
        levels=256,
        num_classes=1000,
        description=f"downsampled ImageNet {size}x{size} (Chrabaszcz et al. 2017), npz; "
        f"test = the 50,000 validation images",
    )


def imagenet32(split: str, *, folder: Path, download: bool = True) -> SplitData:
    return _imagenet(32, split, folder, download)


def imagenet64(split: str, *, folder: Path, download: bool = True) -> SplitData:
    return _imagenet(64, split, folder, download)
