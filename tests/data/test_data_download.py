"""Downloads without the network: file:// URLs and a fake opener that serves bytes (and HTTP Range)."""

import gzip
import hashlib
import socket
import struct
import urllib.error

import numpy as np
import pytest

from pixelcnn import data
from pixelcnn.data import DownloadError, download_file, standard

PAYLOAD = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes: more than one read of a small chunk
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeResponse:
    def __init__(self, body, status, headers, *, fail_after=None):
        self.body, self.status, self.headers, self.fail_after, self.sent = body, status, headers, fail_after, 0

    def read(self, n):
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        chunk = self.body[self.sent : self.sent + min(n, 1000)]
        self.sent += len(chunk)
        return chunk

    def getcode(self):
        return self.status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeServer:
    """A urllib-style opener serving ``files`` (url -> bytes); honours Range unless ``ranges`` is False."""

    def __init__(self, files, *, ranges=True, content_type="application/octet-stream", fail_after=None):
        self.files, self.ranges, self.content_type, self.fail_after = files, ranges, content_type, fail_after
        self.requests = []  # (url, Range header or None)

    def open(self, request, timeout=None):
        url, wanted = request.full_url, request.get_header("Range")
        self.requests.append((url, wanted))
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        body, start, status = self.files[url], 0, 200
        headers = {"Content-Type": self.content_type}
        if wanted and self.ranges:
            start, status = int(wanted.split("=")[1].rstrip("-")), 206
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        headers["Content-Length"] = str(len(body) - start)
        fail_after, self.fail_after = self.fail_after, None  # fail only the first response
        return FakeResponse(body[start:], status, headers, fail_after=fail_after)


def test_download_from_a_file_url_checks_and_renames(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "file.bin"
    assert download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), progress=False) == dest
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "out" / "file.bin.part").exists()
    source.unlink()  # an existing file is not fetched again
    assert download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False) == dest


def test_interrupted_download_resumes_from_the_part_file(tmp_path):
    server = FakeServer({"https://a/f": PAYLOAD}, fail_after=3000)
    dest = tmp_path / "f"
    with pytest.raises(
        DownloadError,
        match="could not download f from https://a/f: connection reset by peer; "
        f"put the file at {dest} to use it offline",
    ):
        download_file("https://a/f", dest, sha256=PAYLOAD_SHA, opener=server, progress=False)
    part = tmp_path / "f.part"
    assert part.read_bytes() == PAYLOAD[:3000] and not dest.exists()
    download_file("https://a/f", dest, sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert server.requests == [("https://a/f", None), ("https://a/f", "bytes=3000-")]
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_server_that_ignores_range_restarts_the_file(tmp_path):
    (tmp_path / "f.part").write_bytes(PAYLOAD[:500])
    server = FakeServer({"https://a/f": PAYLOAD}, ranges=False)
    download_file("https://a/f", tmp_path / "f", sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert (tmp_path / "f").read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_partial_file(tmp_path):
    server = FakeServer({"https://a/f": PAYLOAD[:-1] + b"X"})
    with pytest.raises(DownloadError, match=f"SHA-256 mismatch: expected {PAYLOAD_SHA}, got [0-9a-f]{{64}}"):
        download_file("https://a/f", tmp_path / "f", sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert not (tmp_path / "f").exists() and not (tmp_path / "f.part").exists()


def test_size_mismatch_and_web_pages_are_errors(tmp_path):
    with pytest.raises(DownloadError, match="got 10244 bytes, expected 99"):
        download_file(
            "https://a/f", tmp_path / "f", size=99, opener=FakeServer({"https://a/f": PAYLOAD}), progress=False
        )
    with pytest.raises(DownloadError, match="sent a web page instead of the file"):
        download_file(
            "https://a/g",
            tmp_path / "g",
            opener=FakeServer({"https://a/g": b"<html>"}, content_type="text/html"),
            progress=False,
        )


def test_offline_error_is_one_line_naming_file_source_and_where_to_put_it(tmp_path):
    class Offline:
        def open(self, request, timeout=None):
            raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    with pytest.raises(DownloadError) as caught:
        download_file("https://a/f.bin", tmp_path / "f.bin", opener=Offline(), progress=False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("could not download f.bin from https://a/f.bin: ")
    assert "(offline?)" in message and message.endswith(f"put the file at {tmp_path / 'f.bin'} to use it offline")


def test_mirrors_are_tried_in_order(tmp_path):
    server = FakeServer({"https://b/f": PAYLOAD})
    download_file(["https://a/f", "https://b/f"], tmp_path / "f", sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert [url for url, _ in server.requests] == ["https://a/f", "https://b/f"]
    with pytest.raises(DownloadError, match=r"from 2 mirrors \(https://a/g: HTTP 404 Not Found; https://b/g: HTTP 404"):
        download_file(["https://a/g", "https://b/g"], tmp_path / "g", opener=server, progress=False)


def _idx(array):
    return gzip.compress(bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def test_load_downloads_missing_files_into_root(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files = {
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": _idx(rng.integers(0, 10, 4, dtype=np.uint8)),
    }
    # Serve our small files from the first mirror, with their own checksums in place of the real ones.
    server = FakeServer({standard.MNIST_MIRRORS[0] + name: raw for name, raw in files.items()})
    monkeypatch.setattr(
        standard, "MNIST_FILES", {n: (hashlib.sha256(raw).hexdigest(), len(raw)) for n, raw in files.items()}
    )
    monkeypatch.setattr("urllib.request.build_opener", lambda *handlers: server)
    ds = data.load("mnist", "test", root=tmp_path)
    assert (
        len(ds) == 4
        and (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes() == files["t10k-images-idx3-ubyte.gz"]
    )


def test_load_offline_is_a_download_error_naming_the_data_set(tmp_path, monkeypatch):
    class Offline:
        def open(self, request, timeout=None):
            raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.build_opener", lambda *handlers: Offline())
    with pytest.raises(
        DownloadError,
        match=r"^binarized-mnist: could not download binarized_mnist_test.amat from "
        r"http://www.cs.toronto.edu/.*no network \(offline\?\); put the file at "
        r".*binarized-mnist/binarized_mnist_test.amat to use it offline$",
    ):
        data.load("binarized-mnist", "test", root=tmp_path)
    with pytest.raises(DownloadError, match=r"imagenet32: .*image-net.org asks for a free account"):
        data.load("imagenet32", "test", root=tmp_path)


class EndsEarly(FakeServer):
    """Announces the whole length, then closes the connection cleanly after ``cut`` bytes (once)."""

    def __init__(self, files, cut):
        super().__init__(files)
        self.cut = cut

    def open(self, request, timeout=None):
        response = super().open(request, timeout)
        if self.cut is not None:
            response.body, self.cut = response.body[: self.cut], None
        return response


def test_a_connection_that_ends_early_is_not_taken_for_the_whole_file_even_without_a_checksum(tmp_path):
    server = EndsEarly({"https://a/f": PAYLOAD}, cut=4000)
    with pytest.raises(DownloadError, match=f"stopped after 4000 of {len(PAYLOAD)} bytes"):
        download_file("https://a/f", tmp_path / "f", opener=server, progress=False)
    assert not (tmp_path / "f").exists() and (tmp_path / "f.part").read_bytes() == PAYLOAD[:4000]
    download_file("https://a/f", tmp_path / "f", opener=server, progress=False)  # resumes from byte 4000
    assert server.requests[-1] == ("https://a/f", "bytes=4000-") and (tmp_path / "f").read_bytes() == PAYLOAD


def test_a_wrong_checksum_keeps_the_old_good_file_and_leaves_nothing_behind(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(PAYLOAD[::-1])  # what the mirror now serves: not our file
    dest = tmp_path / "data" / "f.bin"
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert list((tmp_path / "data").iterdir()) == []  # no file, no .part, no temporary file
    dest.write_bytes(PAYLOAD)  # an old good file (placed by hand or downloaded)
    assert download_file(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD and sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]


def test_a_partly_downloaded_data_file_is_never_read_as_complete(tmp_path, monkeypatch):
    """Killed halfway: only FILE.part exists; loading without download says the file is missing, and the
    next download resumes it, after which the set loads."""
    rng = np.random.default_rng(1)
    files = {
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": _idx(rng.integers(0, 10, 3, dtype=np.uint8)),
    }
    monkeypatch.setattr(
        standard, "MNIST_FILES", {n: (hashlib.sha256(raw).hexdigest(), len(raw)) for n, raw in files.items()}
    )
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = "t10k-images-idx3-ubyte.gz"
    (folder / (images + ".part")).write_bytes(files[images][:100])
    with pytest.raises(FileNotFoundError, match=images):
        data.load("mnist", "test", root=tmp_path, download=False)
    server = FakeServer({standard.MNIST_MIRRORS[0] + name: raw for name, raw in files.items()})
    monkeypatch.setattr("urllib.request.build_opener", lambda *handlers: server)
    assert len(data.load("mnist", "test", root=tmp_path)) == 3
    assert (standard.MNIST_MIRRORS[0] + images, "bytes=100-") in server.requests
    assert not list(folder.glob("*.part"))
