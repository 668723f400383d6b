"""What Ctrl-C and SIGTERM do to a training run: it depends on what the run is doing, its phase."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


class EvaluationStopped(KeyboardInterrupt):
    """A signal during an evaluation: the evaluation is dropped, then the run saves and stops."""


class StoppedBySignal(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (``signum``) stopped a training; what it had done is saved where it saves (a stage's
    state, see ``pixelcnn.train.stage_state``), unless a second signal stopped it at once."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class RunPhase:
    """What a run is doing ("start-up", "data loading", "model build", "compiling", "steps", "saving",
    "evaluation"), whether it was asked to stop, and by which signal."""

    def __init__(self):
        self.name = "start-up"
        self.stop_requested = False  # stop after the current step (and save a checkpoint)
        self.stop_signal = None  # the signal (SIGINT / SIGTERM) that stopped the run, if any

    @contextlib.contextmanager
    def stop_on_signals(self):
        """Ctrl-C / SIGTERM. During training steps: stop after this step and save a checkpoint. While saving:
        the save completes first (seconds), then the same. During an evaluation: the evaluation is dropped, then
        the same. At any other moment (start-up, data loading, model build, the first compiled step, which
        compiles for tens of seconds): stop at once (KeyboardInterrupt; ``stop_signal`` says which signal),
        releasing the lock and leaving no half-written file. A second signal stops at once, whatever the phase."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            self.stop_signal = signum
            which = signal.Signals(signum).name
            if self.stop_requested or self.name not in ("steps", "saving", "evaluation"):
                if not self.stop_requested:
                    sys.stderr.write(f"\n{which} during {self.name}: stopping now\n")
                raise KeyboardInterrupt
            self.stop_requested = True
            doing = {
                "steps": "stopping after this step and saving a checkpoint",
                "saving": "stopping once this checkpoint is written",
                "evaluation": "dropping this evaluation, saving a checkpoint and stopping",
            }[self.name]
            sys.stderr.write(f"\n{which}: {doing} (Ctrl-C again to abort without saving)\n")
            if self.name == "evaluation":
                raise EvaluationStopped

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def during(self, name: str):
        """Mark what the run is doing (for the signal handler), then go back to the previous phase."""
        previous, self.name = self.name, name
        try:
            yield
        finally:
            self.name = previous
