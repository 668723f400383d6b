"""A run folder of ``pixelcnn train``: the files a run writes there, its lock, and the checks before a run
starts in it (a new or empty folder, or ``--force``) or resumes in it (the one resume check of the config)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from .checkpoint import CHECKPOINT_FILE, load_checkpoint
from .config import RESUMABLE_FIELDS, TrainConfig, changed_on_resume
from .lock import LOCK_FILE, RunLock
from .metrics_log import METRICS_FILE

CONFIG_FILE = "config.json"
MODEL_DIR = "model"
SAMPLES_DIR = "samples"
# What a run folder holds that train writes (``--force`` replaces these, and only these).
RUN_FILES = (CONFIG_FILE, CHECKPOINT_FILE, MODEL_DIR, METRICS_FILE, SAMPLES_DIR, "tensorboard")


class RunFolder:
    """The folder ``path`` of one run, as process 0 holds it (locked from ``take()`` to ``release()``)."""

    def __init__(self, path: Path, say: Callable[[str], None]):
        self.path = Path(path)
        self.say = say
        self.replacing: list[str] = []  # --force: what the folder held, replaced once set-up has worked
        self._lock = None
        self._created = False

    def take(self) -> None:
        """Lock the run folder, creating it if needed; remove temporary files a killed job left."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"--out {self.path} is a file, not a run folder")
        self._created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = RunLock(self.path)
        self._lock.acquire()
        for folder in (self.path, self.path / MODEL_DIR):
            for leftover in folder.glob(".*.tmp") if folder.is_dir() else ():
                leftover.unlink(missing_ok=True)

    def release(self) -> None:
        """Unlock; remove the folder if we created it and nothing was written."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()  # set-up failed before anything was written

    def check_fresh(self, force: bool) -> None:
        """A new run starts only in a new or empty folder; with ``force``, in any folder, replacing the files
        of a run there (and saying which). The lock we hold does not count."""
        entries = sorted(p.name for p in self.path.iterdir() if p.name != LOCK_FILE)
        if not entries:
            return
        if force:  # (replaced once the data and the model are known to work: replace_run_files)
            self.replacing = entries
            return
        listed = ", ".join(entries[:6]) + (", ..." if len(entries) > 6 else "")
        if (self.path / CHECKPOINT_FILE).exists():
            raise ValueError(
                f"{self.path} already holds a run: continue it with --resume "
                f"(pixelcnn train --resume {self.path}), replace it with --force, or choose another --out"
            )
        if (self.path / CONFIG_FILE).exists():
            try:
                TrainConfig.load(self.path / CONFIG_FILE)
            except (OSError, ValueError, TypeError):
                raise ValueError(
                    f"{self.path} holds a {CONFIG_FILE} that pixelcnn train did not write: choose "
                    f"another --out (or give --force to write into that folder)"
                ) from None
            raise ValueError(
                f"{self.path} already holds a run ({listed}) without a checkpoint: continue it with "
                f"--resume (it starts again from step 0), replace it with --force, or choose another --out"
            )
        raise ValueError(
            f"{self.path} is not empty ({listed}): a new run starts in a new or empty folder; choose "
            f"another --out, or give --force to write into it"
        )

    def replace_run_files(self) -> None:
        """--force: remove the run files the folder held (``RUN_FILES``; anything else stays) and say so."""
        ours = [name for name in self.replacing if name in RUN_FILES]
        for name in ours:
            path = self.path / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
        kept = [name for name in self.replacing if name not in RUN_FILES]
        self.say(
            f"--force: replacing {', '.join(ours) or 'nothing'} in {self.path}"
            + (f" (kept: {', '.join(kept)})" if kept else "")
        )
        self.replacing = []

    def resume_state(self, config: TrainConfig, force: bool) -> dict | None:
        """The checkpoint to resume from (None: the run never reached one and starts again from step 0), after
        the one resume check (``config.changed_on_resume``) of this config against the run's config.json and of
        config.json against the config the checkpoint was trained with (an edited config.json is refused,
        not printed and then ignored)."""
        where = self.path / CONFIG_FILE
        if not where.is_file():
            raise ValueError(f"nothing to resume at {self.path}: no {CONFIG_FILE} (not a run folder of pixelcnn train)")
        saved = TrainConfig.load(where)
        self._refuse_changes(saved, config.to_dict(), "given")
        if not (self.path / CHECKPOINT_FILE).exists():
            written = sorted(p.name for p in self.path.iterdir() if p.name in (MODEL_DIR, SAMPLES_DIR))
            if written and not force:
                raise ValueError(
                    f"{self.path} holds {' and '.join(f + '/' for f in written)} but no "
                    f"{CHECKPOINT_FILE} to resume from (deleted?): resuming would replace them with a "
                    f"new run; give --force to start it again from step 0, or choose another --out"
                )
            self.say(f"note: {self.path} never reached a checkpoint: the run starts again from step 0")
            return None
        checkpoint = load_checkpoint(self.path)
        trained = checkpoint.get("config")
        if isinstance(trained, dict):
            try:
                trained_config = TrainConfig.from_dict(trained)
            except (TypeError, ValueError):
                trained_config = None
            if trained_config is not None:
                self._refuse_changes(
                    trained_config,
                    saved.to_dict(),
                    f"{CONFIG_FILE} says",
                    edited=f"{where} was edited after the checkpoint was written",
                )
        return checkpoint

    def _refuse_changes(self, saved: TrainConfig, given: dict, said: str, edited: str | None = None) -> None:
        changed = changed_on_resume(saved, given)
        if not changed:
            return

        def value(config, name):
            return (
                (
                    config.get("model_options", {}).get(name.split(".", 1)[1])
                    if name.startswith("model_options.")
                    else config.get(name)
                )
                if isinstance(config, dict)
                else None
            )

        details = ", ".join(f"{n} (run: {value(saved.to_dict(), n)!r}, {said}: {value(given, n)!r})" for n in changed)
        start = f"{edited}: " if edited else ""
        raise ValueError(
            f"{start}cannot change {details} when resuming {self.path}; only "
            f"{', '.join(f for f in RESUMABLE_FIELDS if f != 'out')} may change (a run with other "
            f"settings is a new run: another --out)"
        )
