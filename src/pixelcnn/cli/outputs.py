"""The files a command writes that are not pictures: tables of scores (CSV), JSON documents, labels.csv.

One rule decides whether a command may replace an existing output file without ``--force``: the
file must be one that pixelcnn wrote and that nobody changed since. Pictures carry a mark inside
them (``viz.MARK``); a CSV or JSON file cannot carry one without breaking the readers of its format
(a header line that a user's own CSV may share is no mark: ``image,...`` was one and replaced a
user's annotations). So each such file is recorded when written: its resolved path and the SHA-256
of its bytes, in ``written-outputs.json`` of pixelcnn's cache folder (``$PIXELCNN_DATA`` or
``~/.cache/pixelcnn``). A file is ours when its bytes still hash to the record; a file the user
wrote, or edited after us, is not, and needs ``--force``. A lost record (another machine, a cleared
cache) only means ``--force`` is needed: the safe side.

Every write goes through a temporary file renamed into place, so an interrupted command never
leaves half a table; JSON is always valid JSON (a NaN or infinite score is written as null).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path

RECORD_FILE = "written-outputs.json"
MAX_RECORDS = 2000  # the oldest records are dropped beyond this (they then need --force)


def _record_path() -> Path:
    from ..data import default_root

    return Path(default_root()) / RECORD_FILE


def _key(path: Path) -> str:
    return str(Path(path).expanduser().resolve())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_records() -> dict:
    try:
        records = json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def record_written(path: Path, data: bytes) -> None:
    """Remember that ``path`` now holds ``data``, written by pixelcnn (best effort: a cache that cannot be
    written only means the next replacement needs --force)."""
    from ..serialization import _atomic_write

    records = _read_records()
    records.pop(_key(path), None)
    records[_key(path)] = _digest(data)
    while len(records) > MAX_RECORDS:
        records.pop(next(iter(records)))
    where = _record_path()
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(where, lambda tmp: Path(tmp).write_text(json.dumps(records, indent=0) + "\n"))
    except OSError:
        pass


def written_by_us(path: Path) -> bool:
    """True when ``path`` holds exactly the bytes pixelcnn last wrote there (see the module docstring)."""
    expected = _read_records().get(_key(path))
    if expected is None:
        return False
    try:
        return _digest(Path(path).read_bytes()) == expected
    except OSError:
        return False


def write_output(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (folders created) and record it as ours."""
    from ..serialization import _atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    record_written(path, data)
    return path


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6f}" if math.isfinite(value) else ""  # an empty cell: no score
    return str(value)


def table_text(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) -> CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def write_table(path, rows: list[dict]) -> Path:
    """The one CSV writer of the commands: a header, then one line per row (floats with 6 decimals)."""
    return write_output(path, table_text(rows).encode("utf-8"))


def finite_or_none(value):
    """A JSON-safe copy of ``value``: every NaN or infinite float becomes None (JSON null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def json_text(document) -> str:
    """Always valid JSON (``allow_nan=False`` after NaN / infinity became null), indented."""
    return json.dumps(finite_or_none(document), indent=2, allow_nan=False)


def write_json(path, document) -> Path:
    return write_output(path, (json_text(document) + "\n").encode("utf-8"))


def print_table(rows: list[dict], *, limit: int = 40) -> str:
    """Rows as aligned text columns for the terminal (the first ``limit`` rows, then how many more)."""
    shown = rows[:limit]
    columns = list(rows[0])
    cells = [[_cell(row[c]) or "-" for c in columns] for row in shown]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more (--csv FILE or --json for all)")
    return "\n".join(lines)
