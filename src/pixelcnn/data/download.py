"""Resumable, checked downloads: HTTP Range into ``FILE.part``, SHA-256, atomic rename, progress bar.

``download_file(urls, dest, sha256=...)`` tries each mirror in turn. Bytes go
to ``dest.part``; an interrupted download resumes from there next time (the
server is asked for the rest with an HTTP Range header; one that ignores it
sends the whole file again, which we then start over with). The finished
file's SHA-256 (and its length: the one asked for, and the one the server
announced, so a connection that ends early without an error is caught even
without a checksum) is checked before it is renamed to ``dest``, so ``dest``
exists only when complete and verified: readers open ``dest`` only, never a
``.part``. A wrong file is removed; an existing ``dest`` is never replaced. A failure is a ``DownloadError``
with one line that says what, from where, why, and where to put the file by
hand to work offline.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

CHUNK_BYTES = 1 << 20  # read and hash 1 MiB at a time
TIMEOUT_S = 30  # per socket operation, not for the whole file
USER_AGENT = "pixelcnn-data/0.1 (python urllib)"


class DownloadError(OSError):
    """A file could not be downloaded or did not match its checksum (one-line message)."""


def sha256_of(path: str | os.PathLike, *, start_bytes: int | None = None) -> hashlib._Hash:
    """A SHA-256 object fed with the first ``start_bytes`` of ``path`` (the whole file when None)."""
    digest = hashlib.sha256()
    remaining = start_bytes
    with open(path, "rb") as f:
        while remaining is None or remaining > 0:
            chunk = f.read(CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest


def _progress(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        leave=False,
    )


def _fetch_once(url: str, part: Path, *, sha256: str | None, size: int | None, opener, progress: bool) -> None:
    """Download ``url`` into ``part`` (resuming it) and check it; raises on any failure."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:  # longer than the real file: not a prefix of it
        part.unlink()
        offset = 0
    digest = sha256_of(part, start_bytes=offset) if offset else hashlib.sha256()
    announced = None  # the whole file's length, when the server says it
    if size is None or offset < size:
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = opener.open(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not offset:  # 416: nothing left after offset, the .part may be whole
                raise
            response = None
        if response is not None:
            with response:
                status = getattr(response, "status", None) or response.getcode() or 200
                content_type = (response.headers.get("Content-Type") or "").lower()
                if content_type.startswith("text/html"):
                    raise DownloadError("the server sent a web page instead of the file (a login or error page)")
                if offset and status != 206:  # the server ignored Range: it sends the whole file
                    offset, digest = 0, hashlib.sha256()
                elif offset:  # 206: check it resumes where the .part ends
                    content_range = response.headers.get("Content-Range") or ""
                    start = re.match(r"bytes (\d+)-", content_range)
                    if start is None or int(start.group(1)) != offset:
                        raise DownloadError(f"asked for bytes from {offset}, the server sent {content_range!r}")
                length = response.headers.get("Content-Length")
                announced = offset + int(length) if length is not None and length.isdigit() else None
                total = announced if announced is not None else size
                with (
                    open(part, "ab" if offset else "wb") as out,
                    _progress(total, offset, part.name[: -len(".part")], progress) as bar,
                ):
                    while chunk := response.read(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
    got_size = part.stat().st_size
    if announced is not None and got_size < announced:  # the connection ended early without an error
        raise DownloadError(f"the transfer stopped after {got_size} of {announced} bytes (run again to resume)")
    if size is not None and got_size != size:
        raise DownloadError(f"got {got_size} bytes, expected {size}")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        part.unlink()  # a wrong file is no use for resuming either
        raise DownloadError(
            f"SHA-256 mismatch: expected {sha256}, got {digest.hexdigest()} (the partial file was removed)"
        )


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    opener=None,
    progress: bool = True,
) -> Path:
    """Download ``dest`` from the first mirror in ``urls`` that works; returns ``dest``.

    An existing ``dest`` is returned as is. ``sha256`` (hex) and ``size``
    (bytes) are checked when given; ``opener`` is a ``urllib`` opener (any
    object with ``open(request, timeout=)``), by default the standard one.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("download_file needs at least one URL")
    opener = opener or urllib.request.build_opener()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            _fetch_once(url, part, sha256=sha256, size=size, opener=opener, progress=progress)
        except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts and DownloadError are OSErrors
            failures.append((url, _reason(err)))
            continue
        os.replace(part, dest)
        return dest
    tried = "; ".join(f"{url}: {reason}" for url, reason in failures)
    source = failures[0][0] if len(failures) == 1 else f"{len(failures)} mirrors ({tried})"
    reason = failures[0][1] if len(failures) == 1 else "all failed"
    raise DownloadError(
        f"could not download {dest.name} from {source}: {reason}; put the file at {dest} to use it offline"
    )


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"{err.reason} (offline?)"
    return str(err) or type(err).__name__
