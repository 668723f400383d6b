"""Reliability under faults: outputs that must not be overwritten, two jobs in one folder, diverged training,
failed writes, out-of-range options. Tiny models, a few steps each."""

import errno
import functools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pixelcnn
from conftest import quiet_train, run, tiny_config, tiny_train_flags
from pixelcnn import cli
from pixelcnn.train import TrainConfig, Trainer, load_checkpoint
from pixelcnn.train.lock import LOCK_FILE, RunLock, process_start

pytestmark = pytest.mark.slow  # subprocesses, kills and locks: the slow tier

TINY = tiny_train_flags("--data", "digits", "--eval-images", "16", n_layers=2)


# conftest's tiny run, on the digits (unconditional, not binarized), 4 steps, a checkpoint every 2.
tiny_config = functools.partial(
    tiny_config, data="digits", binarize=None, class_conditional=False, max_steps=4, checkpoint_every=2
)


def snapshot(folder):
    """Every file under ``folder`` -> its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reliability") / "run"
    assert cli.main(["train", *TINY, "--max-steps", "2", "--out", str(folder)]) == 0
    return folder


# ------------------------------------------------------------------------------------- 1. overwriting
@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "{run}", "--n", "2", "--out", "{run}/config.json"],
        ["sample", "{run}", "--n", "2", "--out", "{run}/model/model.safetensors"],
        ["sample", "{run}", "--n", "2", "--out", "{run}/checkpoint.safetensors"],
        ["sample", "{run}", "--n", "2", "--out", "{run}/metrics.jsonl"],
        ["sample", "{run}", "--n", "2", "--folder", "{run}/model"],
        ["complete", "{run}", "--rows", "4", "--n", "1", "--out", "{run}/model/config.json"],
        ["viz", "nll-map", "{run}", "--test-index", "0", "--out", "{run}/config.json"],
        ["viz", "animate", "{run}", "--n", "1", "--out", "{run}/samples/x.gif"],
        ["train", *TINY, "--max-steps", "1", "--out", "{run}/model"],
    ],
)
def test_no_command_writes_over_a_run_folders_own_files(capsys, finished_run, argv):
    before = snapshot(finished_run)
    status, out, err = run(capsys, *[a.format(run=finished_run) for a in argv])
    assert status == 2, err
    assert "of the run folder" in err and "choose a path outside it" in err and err.count("\n") == 1
    assert snapshot(finished_run) == before
    pixelcnn.load(finished_run / "model")  # the run still works


@pytest.mark.parametrize("own", ["identity.json", "identity-config.json", "stages/decoder/checkpoint.safetensors"])
def test_no_command_writes_over_an_identity_runs_own_files_even_with_force(capsys, finished_run, tmp_path, own):
    """An identity run has no config.json of its own (its model is in model/): its files are still its own."""
    import shutil

    identity_run = tmp_path / "identity"
    shutil.copytree(finished_run / "model", identity_run / "model")
    (identity_run / "stages" / "decoder").mkdir(parents=True)
    (identity_run / "identity-config.json").write_text("{}")
    (identity_run / "identity.json").write_text("{}")
    (identity_run / "stages" / "decoder" / "checkpoint.safetensors").write_text("state")
    before = snapshot(identity_run)
    status, _, err = run(capsys, "sample", finished_run, "--n", "1", "--out", identity_run / own, "--force")
    assert status == 2 and "of the run folder" in err and "choose a path outside it" in err, err
    assert snapshot(identity_run) == before


def test_an_existing_file_is_replaced_only_with_force_or_when_pixelcnn_wrote_it(capsys, finished_run, tmp_path):
    mine = tmp_path / "notes.png"
    mine.write_bytes(b"my own picture")
    status, _, err = run(capsys, "sample", finished_run, "--n", "2", "--out", mine)
    assert status == 2 and "exists and was not written by pixelcnn: give --force" in err
    assert mine.read_bytes() == b"my own picture"
    # A picture pixelcnn wrote is the command's own earlier output: written again without --force.
    grid = tmp_path / "grid.png"
    assert run(capsys, "sample", finished_run, "--n", "2", "--out", grid)[0] == 0
    first = grid.read_bytes()
    assert run(capsys, "sample", finished_run, "--n", "2", "--seed", "1", "--out", grid)[0] == 0
    assert grid.read_bytes() != first
    # --force replaces anything that is a file.
    assert run(capsys, "sample", finished_run, "--n", "2", "--out", mine, "--force")[0] == 0
    assert mine.read_bytes().startswith(b"\x89PNG")
    # A folder is never replaced by a file.
    status, _, err = run(capsys, "sample", finished_run, "--n", "2", "--out", tmp_path, "--force")
    assert status == 2 and "is a folder" in err


def test_sample_folder_refuses_to_replace_foreign_files(capsys, finished_run, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    (folder / "0001.png").write_text("not mine")
    status, _, err = run(capsys, "sample", finished_run, "--n", "2", "--folder", folder)
    assert status == 2 and "0001.png exists" in err
    assert (folder / "0001.png").read_text() == "not mine" and not (folder / "0000.png").exists()
    assert run(capsys, "sample", finished_run, "--n", "2", "--folder", folder, "--force")[0] == 0


def test_nll_map_csv_is_checked_too(capsys, finished_run, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    assert run(capsys, "sample", finished_run, "--n", "2", "--folder", images)[0] == 0
    scores = tmp_path / "scores.csv"
    scores.write_text("precious,data\n")
    argv = ["viz", "nll-map", finished_run, "--folder", images, "--csv", scores, "--out", tmp_path / "top.png"]
    status, _, err = run(capsys, *argv)
    assert status == 2 and "--csv" in err and scores.read_text() == "precious,data\n"
    scores.unlink()
    assert run(capsys, *argv)[0] == 0
    assert run(capsys, *argv)[0] == 0  # its own CSV and PNG: replaced without --force


def test_train_refuses_a_saved_model_folder_and_a_finished_run(capsys, finished_run, tmp_path):
    model_folder = pixelcnn.save(pixelcnn.load(finished_run / "model"), tmp_path / "saved")
    before = snapshot(model_folder)
    status, _, err = run(capsys, "train", *TINY, "--max-steps", "1", "--out", model_folder)
    assert status == 2 and "is a saved model folder" in err
    assert snapshot(model_folder) == before
    before = snapshot(finished_run)
    status, _, err = run(capsys, "train", *TINY, "--max-steps", "1", "--out", finished_run)
    assert status == 2 and "already holds a run" in err and "--resume" in err
    assert snapshot(finished_run) == before


def test_train_refuses_a_folder_whose_config_json_is_not_a_run(capsys, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}')
    status, _, err = run(capsys, "train", *TINY, "--max-steps", "1", "--out", folder)
    assert status == 2 and "config.json that pixelcnn train did not write" in err
    assert (folder / "config.json").read_text() == '{"mine": true}'


def test_resume_with_another_out_is_refused_and_out_is_not_listed_as_changeable(capsys, finished_run, tmp_path):
    before = snapshot(finished_run)
    status, _, err = run(capsys, "train", "--resume", finished_run, "--out", tmp_path / "other", "--max-steps", "3")
    assert status == 2 and "names another" in err and "cannot move" in err
    assert not (tmp_path / "other").exists() and snapshot(finished_run) == before
    status, _, err = run(capsys, "train", "--resume", finished_run, "--lr", "0.5")
    assert status == 2 and "--lr" in err and "--out" not in err.split("may change")[1]


# ------------------------------------------------------------------------------------- 2. one job per folder
def test_a_lock_held_by_a_live_process_refuses_a_second_job(capsys, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / LOCK_FILE).write_text(
            json.dumps(
                {
                    "pid": holder.pid,
                    "host": socket.gethostname(),
                    "process_start": process_start(holder.pid),
                    "started": time.time(),
                }
            )
        )
        status, _, err = run(capsys, "train", *TINY, "--max-steps", "1", "--out", folder)
        assert status == 1 and f"in use by another training job (pid {holder.pid}" in err
        assert err.count("\n") == 1 and sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing: its lock is stale and taken over.
    assert run(capsys, "train", *TINY, "--max-steps", "1", "--out", folder)[0] == 0
    assert not (folder / LOCK_FILE).exists()  # released at the end
    assert load_checkpoint(folder)["step"] == 1


def test_a_stale_lock_of_a_reused_pid_is_taken_over(tmp_path):
    lock_path = tmp_path / LOCK_FILE
    # Our own pid, but another process start: the pid was reused, the job that wrote this is gone.
    lock_path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "process_start": "-1"}))
    with RunLock(tmp_path):
        assert json.loads(lock_path.read_text())["process_start"] == process_start(os.getpid())
    assert not lock_path.exists()
    lock_path.write_text('{"pid": ')  # cut by a crash while being written
    with RunLock(tmp_path):
        pass


def test_two_train_processes_into_one_folder(tmp_path):
    folder = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "pixelcnn",
        "train",
        *TINY,
        "--max-steps",
        "100000",
        "--log-every",
        "1",
        "--checkpoint-every",
        "100000",
        "--out",
        str(folder),
    ]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (folder / "metrics.jsonl").exists():
            time.sleep(0.2)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "in use by another training job" in second.stderr
        assert "Traceback" not in second.stderr and second.stderr.count("\n") == 1
        resumed = subprocess.run(
            [sys.executable, "-m", "pixelcnn", "train", "--resume", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 1 and "in use by another training job" in resumed.stderr
    finally:
        first.kill()
        first.wait()
    assert (folder / LOCK_FILE).exists()  # SIGKILL: left behind, but stale


# ------------------------------------------------------------------------------------- 3. diverged training
def _nan_after(monkeypatch, good_steps: int, where: str):
    """Make the loss, or only the gradients, non-finite from optimizer step ``good_steps + 1`` on."""
    from pixelcnn.train import loop

    if where == "loss":
        original = loop.TrainingLoss.forward

        def forward(self, images, cond=None):
            loss = original(self, images, cond)
            return (
                loss * float("nan")
                if self.model.training and forward.calls.append(1) is None and len(forward.calls) > good_steps
                else loss
            )

        forward.calls = []
        monkeypatch.setattr(loop.TrainingLoss, "forward", forward)
        return
    original_step = loop.Trainer._train_step

    def poisoned(self, images, labels):  # a finite loss whose gradients are infinite
        if self.step < good_steps:
            return original_step(self, images, labels)
        handles = [p.register_hook(lambda g: g * float("inf")) for p in self.model.parameters()]
        try:
            return original_step(self, images, labels)
        finally:
            for handle in handles:
                handle.remove()

    monkeypatch.setattr(loop.Trainer, "_train_step", poisoned)


@pytest.mark.parametrize("where", ["loss", "grad"])
def test_on_nan_stop_keeps_the_last_good_checkpoint_and_model(tmp_path, monkeypatch, where):
    quiet_train(tiny_config(tmp_path, max_steps=2))
    before = snapshot(tmp_path / "run")
    _nan_after(monkeypatch, 0, where)
    name = "loss" if where == "loss" else "gradient norm"
    with pytest.raises(FloatingPointError, match=f"the {name} became (nan|inf) at step 3: stopped"):
        quiet_train(tiny_config(tmp_path, max_steps=6), resume=True)
    after = snapshot(tmp_path / "run")
    assert {k: v for k, v in after.items() if k != "config.json"} == {
        k: v for k, v in before.items() if k != "config.json"
    }
    assert load_checkpoint(tmp_path / "run")["step"] == 2
    assert all(torch.isfinite(t).all() for t in pixelcnn.load(tmp_path / "run" / "model").state_dict().values())


def test_on_nan_skip_skips_the_step_and_leaves_the_weights_finite(tmp_path, monkeypatch):
    from pixelcnn.train import loop

    original = loop.TrainingLoss.forward
    calls = {"n": 0}

    def forward(self, images, cond=None):  # step 3 only is non-finite
        calls["n"] += 1
        loss = original(self, images, cond)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(loop.TrainingLoss, "forward", forward)
    trainer = Trainer(tiny_config(tmp_path, max_steps=5, on_nan="skip"), log=lambda m: None)
    trainer.run()
    assert trainer.skipped_steps == 1
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["step"] for r in records if r["kind"] == "skipped"] == [3]
    assert all(math_finite(r.get("loss_nats", 0.0)) for r in records)
    assert load_checkpoint(tmp_path / "run")["step"] == 5
    assert all(torch.isfinite(t).all() for t in pixelcnn.load(tmp_path / "run" / "model").state_dict().values())


def test_on_nan_skip_stops_when_every_step_diverges(tmp_path, monkeypatch):
    from pixelcnn.train import loop

    _nan_after(monkeypatch, 2, "loss")
    with pytest.raises(FloatingPointError, match=f"at {loop.MAX_SKIPPED_IN_A_ROW} steps in a row"):
        quiet_train(tiny_config(tmp_path, max_steps=50, on_nan="skip"))
    state = load_checkpoint(tmp_path / "run")  # steps 3..12 skipped; checkpoints of unchanged weights
    assert state["step"] == 10 and all(torch.isfinite(t).all() for t in state["weights"].values())


def test_nan_weights_are_never_saved(tmp_path, monkeypatch):
    quiet_train(tiny_config(tmp_path, max_steps=2, ema_decay=None))
    before = snapshot(tmp_path / "run")
    from pixelcnn.train import loop

    original_step = loop.Trainer._train_step

    def poison(self, images, labels):  # a finite loss, but the weights go NaN
        result = original_step(self, images, labels)
        if self.step == 3:  # step 4, which is checkpointed
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return result

    monkeypatch.setattr(loop.Trainer, "_train_step", poison)
    with pytest.raises(FloatingPointError, match="weights are not finite at step 4: nothing was saved"):
        quiet_train(tiny_config(tmp_path, max_steps=6, ema_decay=None), resume=True)
    after = snapshot(tmp_path / "run")
    assert {k: v for k, v in after.items() if not k.startswith(("config", "metrics"))} == {
        k: v for k, v in before.items() if not k.startswith(("config", "metrics"))
    }


def test_on_nan_from_the_command_line(capsys, tmp_path):
    status, _, err = run(capsys, "train", *TINY, "--max-steps", "1", "--on-nan", "ignore", "--out", tmp_path / "r")
    assert status == 2 and "--on-nan" in err and "stop" in err and "skip" in err


def math_finite(value):
    return value == value and abs(value) != float("inf")


# ------------------------------------------------------------------------------------- 4. failed writes
@pytest.mark.parametrize("fault", ["enospc", "safetensors", "readonly"])
def test_a_failed_write_keeps_the_previous_checkpoint_and_model_and_is_one_line(capsys, tmp_path, monkeypatch, fault):
    folder = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--max-steps", "2", "--checkpoint-every", "2", "--out", folder)[0] == 0
    before = snapshot(folder)
    if fault == "readonly":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (folder / "model").chmod(0o555)
    else:
        import safetensors.torch

        def failing_save_file(tensors, filename, metadata=None):
            with open(filename, "wb") as f:
                f.write(b"half a file")
            if fault == "enospc":
                raise OSError(errno.ENOSPC, "No space left on device")
            from safetensors import SafetensorError

            raise SafetensorError(
                'Error while serializing: IoError(Os { code: 27, kind: FileTooLarge, message: "File too large" })'
            )

        monkeypatch.setattr(safetensors.torch, "save_file", failing_save_file)
    try:
        status, out, err = run(capsys, "train", "--resume", folder, "--max-steps", "4", "--checkpoint-every", "2")
    finally:
        (folder / "model").chmod(0o755)
    assert status == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err and "SafetensorError" not in err
    assert "the previous checkpoint and saved model" in err and "intact" in err
    after = snapshot(folder)
    for name in ("checkpoint.safetensors", "model/model.safetensors", "model/config.json"):
        assert after[name] == before[name]
    assert not [p for p in folder.rglob(".*.tmp")]  # no temporary file left
    assert load_checkpoint(folder)["step"] == 2
    pixelcnn.load(folder / "model")


# ------------------------------------------------------------------------------------- 5. option ranges
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
        (["--lr", "inf"], "--lr must be a positive number, got inf"),
        (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
        (["--ema-decay", "1.5"], "--ema-decay must be in [0, 1) or None, got 1.5"),
        (["--beta1", "1.5"], "--beta1 must be in [0, 1), got 1.5"),
        (["--beta2", "-0.1"], "--beta2 must be in [0, 1), got -0.1"),
        (["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1.0"),
        (["--grad-clip", "-1"], "--grad-clip must be >= 0 or None, got -1.0"),
        (["--final-lr-ratio", "2"], "--final-lr-ratio must be in [0, 1], got 2.0"),
        (["--decay-rate", "0"], "--decay-rate must be in (0, 1], got 0.0"),
        (["--max-minutes", "nan"], "--max-minutes must be positive or None, got nan"),
        (["--hidden", "0"], "--hidden must be a positive integer, got 0"),
        (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
    ],
)
def test_out_of_range_train_options_are_one_line_naming_option_value_and_range(capsys, tmp_path, flags, message):
    status, out, err = run(capsys, "train", *TINY, "--max-steps", "1", *flags, "--out", tmp_path / "run")
    assert status == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"lr": "fast"}', "lr must be a number, got 'fast'"),
        ('{"lr": 0.1, "bogus": 1}', "unknown training option(s) bogus"),
        ('{"batch_size": true}', "batch_size must be an int, got True"),
        ('{"ema_decay": 7}', "ema_decay must be in [0, 1) or None, got 7"),
        ("[1, 2]", "is not a training config"),
        ('{"lr": 1', "is corrupt (not valid JSON"),
    ],
)
def test_a_config_file_with_a_wrong_field_names_the_file_and_the_field(capsys, tmp_path, text, message):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(text)
    with pytest.raises(ValueError) as raised:
        TrainConfig.load(folder / "config.json")
    assert str(folder / "config.json") in str(raised.value) and message in str(raised.value)
    status, _, err = run(capsys, "train", "--resume", folder)
    assert status == 2 and str(folder / "config.json") in err and message in err and err.count("\n") == 1


def _wait_until_command_runs(process, timeout: float = 120.0) -> None:
    """Wait until the command catches SIGTERM: ``cli.main`` is inside its handler's ``try`` (Linux: SigCgt).

    A fixed sleep was not enough on a loaded machine, where importing torch alone can take seconds."""
    status_file = Path(f"/proc/{process.pid}/status")
    if not status_file.exists():
        time.sleep(4)  # no /proc: the old fixed wait
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the command ended before it could be interrupted"
        caught = next(
            (line.split()[1] for line in status_file.read_text().splitlines() if line.startswith("SigCgt:")), "0"
        )
        if int(caught, 16) & (1 << (15 - 1)):  # SIGTERM (15) has a handler
            return
        time.sleep(0.05)
    raise AssertionError("the command never installed its SIGTERM handler")


@pytest.mark.parametrize("sig, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_sigterm_and_ctrl_c_exit_with_143_and_130_without_a_traceback(sig, status):
    import signal

    # SIGINT back to its default in the child: a shell's background job (a CI runner's) starts with it ignored,
    # and Python then never raises KeyboardInterrupt.
    process = subprocess.Popen(
        [sys.executable, "-m", "pixelcnn", "models", "--count"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_until_command_runs(process)  # imported, counting parameters
    process.send_signal(getattr(signal, sig))
    out, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "Traceback" not in err and err.count("\n") == 1 and "pixelcnn models:" in err


# ------------------------------------------------------------------------------------- checkpoint interval in time
def test_checkpoint_every_minutes_saves_a_slow_run_between_step_checkpoints(tmp_path, monkeypatch):
    from pixelcnn.train import loop

    clock = {"now": 1000.0}
    monkeypatch.setattr(loop.time, "monotonic", lambda: clock["now"])
    original_step = loop.Trainer._train_step
    saved_at = []

    def slow_step(self, images, labels):  # each step takes 40 s of wall-clock time
        clock["now"] += 40
        return original_step(self, images, labels)

    original_save = loop.Trainer._save

    def save(self):
        saved_at.append(self.step)
        original_save(self)

    monkeypatch.setattr(loop.Trainer, "_train_step", slow_step)
    monkeypatch.setattr(loop.Trainer, "_save", save)
    quiet_train(tiny_config(tmp_path, max_steps=7, checkpoint_every=100, checkpoint_every_minutes=1.5))
    assert saved_at == [3, 6, 7]  # 120 s >= 90 s after 3 steps; and at the end
    with pytest.raises(ValueError, match="checkpoint_every_minutes must be positive or None, got 0"):
        tiny_config(tmp_path, checkpoint_every_minutes=0)


# ------------------------------------------------------------------------------------- files cannot run code
class _TouchOnUnpickle:
    """Unpickling this object creates ``marker``: the side effect that proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _pickles(marker):
    """A raw pickle (protocol 2 and 0: the second does not start with the 0x80 byte) and torch.save's zip."""
    import io
    import pickle

    payload = {"weight": _TouchOnUnpickle(marker)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return {
        "pickle-2": pickle.dumps(payload, protocol=2),
        "pickle-0": pickle.dumps(payload, protocol=0),
        "torch.save": buffer.getvalue(),
    }


def test_the_crafted_pickles_do_run_code_when_unpickled(tmp_path):
    """The control: without pixelcnn's refusal these files would create the marker."""
    import pickle

    for kind, blob in _pickles(tmp_path / "marker").items():
        if kind != "torch.save":
            pickle.loads(blob)
            assert (tmp_path / "marker").exists(), kind
            (tmp_path / "marker").unlink()


@pytest.mark.parametrize("kind", ["pickle-2", "pickle-0", "torch.save"])
def test_a_pickle_named_model_safetensors_is_refused_without_running_it(capsys, finished_run, tmp_path, kind):
    marker = tmp_path / "marker"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes((finished_run / "model" / "config.json").read_bytes())
    (folder / "model.safetensors").write_bytes(_pickles(marker)[kind])
    with pytest.raises(ValueError, match=r"model.safetensors (is a pickle|is corrupt or not a safetensors file)"):
        pixelcnn.load(folder)
    status, out, err = run(capsys, "sample", folder, "--n", "1", "--out", tmp_path / "s.png")
    assert status == 2 and err.count("\n") == 1 and "model.safetensors" in err
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle-2", "torch.save"])
def test_a_pickle_named_checkpoint_safetensors_is_refused_without_running_it(capsys, finished_run, tmp_path, kind):
    import shutil

    marker, run_dir = tmp_path / "marker", tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "checkpoint.safetensors").write_bytes(_pickles(marker)[kind])
    with pytest.raises(ValueError, match="is corrupt or not a pixelcnn checkpoint"):
        load_checkpoint(run_dir)
    status, out, err = run(capsys, "train", "--resume", run_dir, "--max-steps", "3")
    assert status == 2 and err.count("\n") == 1 and "checkpoint.safetensors" in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "builtins.eval",
        "__import__('os').system('touch {marker}')",
        "pixelcnn.cli.main",
        "subprocess:Popen",
        ["gated_pixelcnn"],
        None,
    ],
)
def test_a_config_naming_an_unknown_class_or_model_is_refused(capsys, finished_run, tmp_path, name):
    import shutil

    marker = tmp_path / "marker"
    name = name.format(marker=marker) if isinstance(name, str) else name
    model = tmp_path / "model"
    shutil.copytree(finished_run / "model", model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model": name}))
    with pytest.raises(ValueError, match="names a model this version of pixelcnn does not have"):
        pixelcnn.load(model)
    # The training config and the checkpoint name models too.
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    train_config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**train_config, "model": name}))
    status, out, err = run(capsys, "train", "--resume", run_dir, "--max-steps", "3")
    assert status == 2 and err.count("\n") == 1, err
    state = load_checkpoint(finished_run)
    state["model"]["name"] = name
    from pixelcnn.train.checkpoint import save_checkpoint

    (run_dir / "config.json").write_text(json.dumps(train_config))
    save_checkpoint(state, run_dir)
    status, out, err = run(capsys, "train", "--resume", run_dir, "--max-steps", "3")
    assert status == 2 and err.count("\n") == 1 and "checkpoint.safetensors names a model" in err, err
    assert not marker.exists()


@pytest.mark.parametrize("out", ["../../elsewhere", "{tmp}/elsewhere"])
def test_a_path_outside_the_run_folder_in_its_config_is_never_written(capsys, finished_run, tmp_path, out):
    """A saved config whose "out" points elsewhere (a copied run, or a hostile file): --resume RUN
    continues in RUN and writes nothing at the other path."""
    import shutil

    run_dir = tmp_path / "a" / "b" / "run"
    shutil.copytree(finished_run, run_dir)
    elsewhere = tmp_path / "elsewhere"
    config = json.loads((run_dir / "config.json").read_text())
    config["out"] = out.format(tmp=tmp_path) if out.startswith("{") else str(run_dir / out)
    (run_dir / "config.json").write_text(json.dumps(config))
    status, _, err = run(capsys, "train", "--resume", run_dir, "--max-steps", "3")
    assert status == 0, err
    assert not elsewhere.exists() and not (tmp_path / "a" / "elsewhere").exists()
    assert load_checkpoint(run_dir)["step"] == 2 + 3  # --max-steps on resume: 3 more steps
    assert json.loads((run_dir / "config.json").read_text())["out"] == str(run_dir)
