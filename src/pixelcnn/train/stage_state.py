"""What ``train_parameters`` saves so that a killed stage (of the identity experiment) resumes where it was.

A stage's folder (RUN/stages/decoder) holds one ``checkpoint.safetensors``,
written by ``save_checkpoint`` (atomic: a kill while saving leaves the
previous one whole): the state_dict of the module trained, the optimizer's
state, the steps done, the training time spent (so a budget in minutes counts
the time before the kill), the data generators' states, the loss window, the
lists the stage keeps beside (``extra``) and, once the stage is done, its
returned stats. Same state in, same steps out: a stage stopped and resumed
ends with the weights of one that ran through, bit for bit (with a budget in
steps; one in minutes ends where the clock says).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint

SAVE_EVERY_STEPS = 500  # a stage saves its state every this many steps,
SAVE_EVERY_MINUTES = 2.0  # and when this many minutes have passed since its last save: a kill loses at most that


@dataclass
class StageState:
    """Where one ``train_parameters`` run saves its state, and what that state holds beside the optimizer's.

    ``folder``: the stage's folder (created on the first save); ``title``:
    the stage in the log ("the decoder"); ``module``: whose state_dict is
    saved (the parameters trained, and their buffers); ``generators``: the
    random generators that draw its batches; ``extra``: lists the stage
    keeps beside (restored in place).
    """

    folder: Path
    title: str
    module: torch.nn.Module
    generators: tuple[torch.Generator, ...] = ()
    extra: dict[str, list] = field(default_factory=dict)
    last_saved: float = field(default_factory=time.perf_counter, init=False)

    @property
    def path(self) -> Path:
        return Path(self.folder) / CHECKPOINT_FILE

    def due(self, step: int) -> bool:
        """Time for a periodic save after ``step`` steps: every SAVE_EVERY_STEPS steps or SAVE_EVERY_MINUTES."""
        return step % SAVE_EVERY_STEPS == 0 or time.perf_counter() - self.last_saved >= 60 * SAVE_EVERY_MINUTES

    def save(
        self, optimizer: torch.optim.Optimizer, *, step: int, seconds: float, recent: list, stats: dict | None = None
    ) -> None:
        """Save the state after ``step`` steps and ``seconds`` of training; ``stats``: the stage is done."""
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        state = {
            "module": self.module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "seconds": seconds,
            "recent": list(recent),
            "generators": [generator.get_state() for generator in self.generators],
            "extra": {name: list(values) for name, values in self.extra.items()},
            "stats": stats,
        }
        save_checkpoint(state, self.folder)
        self.last_saved = time.perf_counter()

    def restore(self, optimizer: torch.optim.Optimizer) -> dict | None:
        """Load the saved state into the module, the optimizer, the generators and ``extra``; None: none saved.

        Returns {"step", "seconds", "recent", "stats"} (stats: None while the stage is unfinished).
        """
        if not self.path.is_file():
            return None
        state = load_checkpoint(self.folder)
        self.module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        for generator, saved in zip(self.generators, state["generators"]):
            generator.set_state(saved)
        for name, values in self.extra.items():
            values[:] = state["extra"][name]
        self.last_saved = time.perf_counter()
        return {key: state[key] for key in ("step", "seconds", "recent", "stats")}
