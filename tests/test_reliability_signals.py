"""SIGTERM and Ctrl-C at every moment of ``pixelcnn train``, not only between steps: start-up (the lock held),
data loading, model build, the first compiled step, evaluation and a checkpoint write. Each moment is made long
by a patched function in a child process (it writes a file, then sleeps); the test signals the child when the
file appears and asserts that it ends within seconds with 143 / 130, one line on stderr, the lock released and no
half-written file, and (during evaluation and saving) with a checkpoint that loads."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import tiny_train_flags
from test_reliability_hostile import REPORT, slack

pytestmark = pytest.mark.slow  # signals to training subprocesses: the slow tier

TINY = [
    "train",
    *tiny_train_flags(
        "--data", "digits", "--eval-images", "16", "--batch-size", "8", "--compile", "off", "--log-every", "1"
    ),
]

DRIVER = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
import torch, pixelcnn, pixelcnn.cli, pixelcnn.data, pixelcnn.evaluate
from pixelcnn.train import lock, loop


def pause(seconds=120.0):
    open(spec["ready"], "w").close()
    time.sleep(seconds)


def before(owner, name, seconds=120.0, once=True):
    original = getattr(owner, name)
    calls = []

    def patched(*args, **kwargs):
        if not (once and calls):
            calls.append(1)
            pause(seconds)
        return original(*args, **kwargs)
    setattr(owner, name, patched)


def after(owner, name):
    original = getattr(owner, name)

    def patched(*args, **kwargs):
        result = original(*args, **kwargs)
        pause()
        return result
    setattr(owner, name, patched)


phase = spec["phase"]
if phase == "start-up":
    after(lock.RunLock, "acquire")                    # the lock is held, nothing else done yet
elif phase == "data loading":
    before(pixelcnn.data, "load")
elif phase == "model build":
    before(loop.Trainer, "_build_model")
elif phase == "compiling":
    class SlowFirstCall(torch.nn.Module):             # stands for torch.compile's tens of seconds
        def __init__(self, module):
            super().__init__()
            self.module, self.first = module, True

        def forward(self, *args):
            if self.first:
                self.first = False
                pause()
            return self.module(*args)
    loop.choose_compile = lambda *args, **kwargs: (True, "compiled (a slow stand-in)")
    torch.compile = lambda module, **kwargs: SlowFirstCall(module)
elif phase == "evaluation":
    before(pixelcnn.evaluate, "evaluate")
elif phase == "saving":
    before(loop, "save_checkpoint", seconds=2.0, once=False)
sys.exit(pixelcnn.cli.main(spec["argv"]))
"""

PHASES = {
    "start-up": [],
    "data loading": [],
    "model build": [],
    "compiling": [],
    "evaluation": ["--eval-every", "2"],
    "saving": ["--checkpoint-every", "2"],
}


@pytest.mark.parametrize(
    "phase, sig", [*[(phase, "SIGTERM") for phase in PHASES], ("model build", "SIGINT"), ("saving", "SIGINT")]
)
def test_a_signal_at_any_moment_of_training_ends_it_within_seconds(tmp_path, phase, sig):
    folder, ready = tmp_path / "run", tmp_path / "ready"
    spec = {
        "phase": phase,
        "ready": str(ready),
        "argv": [*TINY, *PHASES[phase], "--max-steps", "100000", "--out", str(folder)],
    }
    env = {**os.environ, "PIXELCNN_DATA": str(tmp_path / ".cache")}
    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(spec)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600  # (importing torch alone took minutes on a loaded 2-core machine)
    while not ready.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the phase was never reached"
        time.sleep(0.05)
    signalled = time.monotonic()
    child.send_signal(getattr(signal, sig))
    out, err = child.communicate(timeout=120)
    seconds = time.monotonic() - signalled
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(
                json.dumps(
                    {
                        "case": f"{sig} during {phase}",
                        "status": child.returncode,
                        "seconds": seconds,
                        "grew": 0,
                        "peak": 0,
                    }
                )
                + "\n"
            )
    assert child.returncode == {"SIGTERM": 143, "SIGINT": 130}[sig], err
    assert "Traceback" not in err and "pixelcnn train: aborted" in err.splitlines()[-1], err
    assert seconds < 5 * slack(), f"{seconds:.1f} s after {sig} during {phase}"
    assert not (folder / "train.lock").exists()
    assert not [p for p in tmp_path.rglob("*.tmp")], "a half-written file was left"
    if phase in ("evaluation", "saving"):  # stopped after a checkpoint: it loads, and resumes
        import pixelcnn
        from pixelcnn.train import load_checkpoint

        assert load_checkpoint(folder)["step"] >= 2
        pixelcnn.load(folder / "model")
    if phase == "start-up":  # nothing was written: the folder it made is gone
        assert not folder.exists()
