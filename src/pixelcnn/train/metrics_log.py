"""A run's log: ``metrics.jsonl`` (one JSON object per log line and per evaluation) and TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """``metrics.jsonl`` (one JSON object per line) plus TensorBoard scalars when it is installed."""

    def __init__(self, run_dir: Path, *, tensorboard: bool, resume_step: int | None = None):
        self.path = run_dir / METRICS_FILE
        if resume_step is not None and self.path.exists():
            self._drop_after(resume_step)
        self.file = open(self.path, "a")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: the JSON lines are the log
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def _drop_after(self, step: int) -> None:
        """Forget lines logged after the checkpoint we resume from (a crash may have left some)."""
        from ..serialization import _atomic_write

        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a crash
                continue
        text = "".join(line + "\n" for line in kept)
        _atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            prefix = record.get("kind", "train")
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                    self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
