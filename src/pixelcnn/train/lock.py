"""RUN/train.lock: one training job per run folder at a time.

A running ``pixelcnn train`` holds the lock file: JSON with its host, pid and
the process's start time. A second job into the same folder is refused with
a message naming the holder. A lock whose process is gone (killed, crashed, a
pid reused by another process: its start time differs) is stale and taken
over, so a killed job never leaves its folder locked. A lock from another
host cannot be checked from here and is respected; the message says how to
remove it by hand.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..serialization import read_json

LOCK_FILE = "train.lock"


class RunLocked(RuntimeError):
    """Another live job holds the run folder."""


def process_start(pid: int) -> str | None:
    """An identifier of when process ``pid`` started (Linux: /proc/PID/stat field 22), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def holder_alive(holder: dict) -> bool:
    """Whether the process a lock names still runs (always True for another host's lock)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        return False
    started = process_start(pid)
    return started is None or holder.get("process_start") in (None, started)


class RunLock:
    """``with RunLock(run_dir): ...`` holds RUN/train.lock; raises RunLocked if a live job holds it."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    def _describe(self, holder: dict) -> str:
        started = holder.get("started")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
        return f"pid {holder.get('pid')} on {holder.get('host')}, started {when}"

    def acquire(self) -> None:
        mine = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": process_start(os.getpid()),
            "started": time.time(),
        }
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = read_json(self.path)
                except FileNotFoundError:  # released meanwhile: try again
                    continue
                except (OSError, ValueError):  # a lock cut by a crash while being written
                    holder = {}
                if not isinstance(holder, dict):
                    holder = {}
                if holder and holder_alive(holder):
                    raise RunLocked(
                        f"{self.path.parent} is in use by another training job ({self._describe(holder)}): "
                        f"wait for it to finish or stop it, or choose another --out (if that job is "
                        f"gone, delete {self.path})"
                    ) from None
                # Stale: move it aside under a unique name (only one taker wins), then try again.
                aside = self.path.with_name(f".{LOCK_FILE}.{os.getpid()}.stale")
                try:
                    os.replace(self.path, aside)
                except FileNotFoundError:
                    continue
                try:
                    moved = read_json(aside)
                except (OSError, ValueError):
                    moved = {}
                if isinstance(moved, dict) and moved and moved != holder and holder_alive(moved):
                    os.replace(aside, self.path)  # another job took it over meanwhile: give it back
                else:
                    aside.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
            self.held = True
            return
        raise RunLocked(f"could not take {self.path}: other jobs keep taking it")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            holder = read_json(self.path)
        except (OSError, ValueError):
            return
        if isinstance(holder, dict) and holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
