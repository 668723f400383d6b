"""`pixelcnn identity` runs survive a stop: each stage saves its state in RUN/stages, a run of the same config
resumes it, and a run stopped then resumed ends with the weights of one that ran through, bit for bit."""

import json
import os
import signal
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from pixelcnn.cli import main
from pixelcnn.identity import IdentityConfig, finished_identity, train_identity
from pixelcnn.identity.config import stage_config
from pixelcnn.train import load_checkpoint, stage_state
from pixelcnn.train.signals import StoppedBySignal
from pixelcnn.train.stage_state import StageState
from pixelcnn.train.steps import OptimizerStep, make_optimizer, train_parameters

CONFIG = IdentityConfig(
    data="mnist5k",
    binarize="dynamic",
    train_classes=(0, 1, 2, 3, 4, 5, 6),
    embedding_dim=3,
    encoder_channels=4,
    triplet_steps=4,
    per_class=2,
    n_layers=1,
    hidden=4,
    decoder_steps=6,
    decoder_minutes=None,
    batch_size=4,
    judge_steps=4,
    judge_samples=2,
)
FIRST_STEP = {"triplet": 1, "decoder": 1 + CONFIG.triplet_steps, "judge": 1 + CONFIG.triplet_steps + 6}


def stop_at_step(monkeypatch, number: int, stop) -> None:
    """``stop()`` at the start of the ``number``-th optimizer step of the process (counting from 1)."""
    taken = []
    take = OptimizerStep.take

    def counted(self, *args, **kwargs):
        taken.append(1)
        if len(taken) == number:
            stop()
        return take(self, *args, **kwargs)

    monkeypatch.setattr(OptimizerStep, "take", counted)


def weights(folder) -> dict:
    return load_file(str(folder / "model" / "model.safetensors"))


def judge_weights(folder) -> dict:
    return load_checkpoint(folder / "stages" / "judge")["module"]


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_minutes(measured):
    if isinstance(measured, dict):
        return {k: without_minutes(v) for k, v in measured.items() if k != "minutes"}
    return measured


@pytest.fixture(scope="module")
def through(tmp_path_factory):
    """The run that nobody stopped: (its folder, its measurements)."""
    folder = tmp_path_factory.mktemp("through") / "run"
    return folder, train_identity(CONFIG, folder, log=None).measurements


@pytest.mark.parametrize(
    "stage, title, step, total",
    [
        ("triplet", "the embedding network", 2, CONFIG.triplet_steps),
        ("decoder", "the decoder", 3, CONFIG.decoder_steps),
        ("judge", "the judge", 2, CONFIG.judge_steps),
    ],
)
def test_a_run_stopped_by_ctrl_c_resumes_to_the_same_weights(tmp_path, monkeypatch, through, stage, title, step, total):
    run = tmp_path / "run"
    stop_at_step(monkeypatch, FIRST_STEP[stage] + step - 1, lambda: os.kill(os.getpid(), signal.SIGINT))
    messages = []
    with pytest.raises(StoppedBySignal) as stopped:
        train_identity(CONFIG, run, log=messages.append)
    assert stopped.value.signum == signal.SIGINT
    assert any(f"stopped {title} at step {step};" in m for m in messages)
    assert load_checkpoint(run / "stages" / stage)["step"] == step  # the step under way ended, then the save
    assert not (run / "identity.json").exists()
    monkeypatch.undo()

    messages.clear()
    resumed = train_identity(CONFIG, run, log=messages.append)
    assert any(m.startswith(f"identity: resuming the run in {run}") for m in messages)
    assert any(m.startswith(f"  resuming {title} at step {step} of {total} (") for m in messages)
    if stage == "judge":
        assert "  the decoder: finished before (6 steps), loaded from " + str(run / "stages" / "decoder") in messages
    folder, measured = through
    assert same_tensors(weights(run), weights(folder)) and same_tensors(judge_weights(run), judge_weights(folder))
    assert without_minutes(resumed.measurements) == without_minutes(measured)


def test_a_killed_run_loses_only_the_steps_since_its_last_save(tmp_path, monkeypatch, through):
    """A kill (no chance to save: here an exception at the start of step 5 of the decoder) resumes from the last
    periodic save (step 4, saving every 2 steps), to the same weights."""
    run = tmp_path / "run"
    monkeypatch.setattr(stage_state, "SAVE_EVERY_STEPS", 2)

    def kill():
        raise RuntimeError("killed")

    stop_at_step(monkeypatch, FIRST_STEP["decoder"] + 4, kill)
    with pytest.raises(RuntimeError, match="killed"):
        train_identity(CONFIG, run, log=None)
    assert load_checkpoint(run / "stages" / "decoder")["step"] == 4
    monkeypatch.undo()
    messages = []
    train_identity(CONFIG, run, log=messages.append)
    assert any("resuming the decoder at step 4 of 6" in m for m in messages)
    assert same_tensors(weights(run), weights(through[0]))


def test_another_config_is_refused_and_a_finished_run_reused(tmp_path, monkeypatch, through):
    run = tmp_path / "run"
    stop_at_step(monkeypatch, FIRST_STEP["decoder"], lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(StoppedBySignal):
        train_identity(CONFIG, run, log=None)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"stopped identity run with other settings \(batch_size, seed differ\)"):
        train_identity(replace(CONFIG, seed=1, batch_size=2), run, log=None)
    assert finished_identity(CONFIG, run) is None  # stopped, not finished
    result = train_identity(CONFIG, run, log=None)
    reused = finished_identity(CONFIG, run)
    assert reused.model_path == result.model_path
    assert json.dumps(reused.measurements) == json.dumps(json.loads(json.dumps(result.measurements)))
    with pytest.raises(ValueError, match="already holds an identity run"):
        train_identity(CONFIG, run, log=None)


def test_a_run_refused_for_its_data_leaves_no_folder(tmp_path):
    with pytest.raises(ValueError, match="has no labels"):
        train_identity(replace(CONFIG, data="photo-patches", binarize=None, train_classes=None), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_sigterm_stops_the_command_with_143_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    argv = [
        "identity",
        *("--data", "mnist5k", "--binarize", "dynamic", "--classes", "0-6", "--embedding-dim", "3"),
        *("--triplet-steps", "4", "--steps", "6", "--minutes", "none", "--n-layers", "1", "--hidden", "4"),
        *("--batch-size", "4", "--judge-steps", "4", "--judge-samples", "2", "--samples", "1", "--scale", "1"),
        *("--device", "cpu", "--no-progress", "--out", str(run)),
    ]
    stop_at_step(monkeypatch, FIRST_STEP["decoder"] + 2, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert main(argv) == 143
    captured = capsys.readouterr()
    assert "SIGTERM: stopping after this step" in captured.err and "pixelcnn identity: aborted" in captured.err
    assert "stopped the decoder at step 3" in captured.out
    monkeypatch.undo()
    assert main(argv) == 0
    assert "resuming the decoder at step 3 of 6" in capsys.readouterr().out
    assert json.loads((run / "identity.json").read_text())["measurements"]["decoder"]["steps"] == 6


def test_the_budget_in_minutes_counts_the_training_before_the_stop(tmp_path):
    """A stage saved after 30 s of a 0.5 minute budget has no time left: resumed, it takes no step."""
    module = torch.nn.Linear(2, 1)
    config = stage_config(CONFIG, lr=1e-3, minutes=0.5)
    StageState(tmp_path / "toy", "the toy", module).save(
        make_optimizer(module.parameters(), config), step=7, seconds=30.0, recent=[1.0]
    )

    def batch_loss(step):
        raise AssertionError("no step is left")

    messages = []
    stats = train_parameters(
        module.parameters(),
        batch_loss,
        config,
        log=messages.append,
        state=StageState(tmp_path / "toy", "the toy", module),
    )
    assert stats["steps"] == 7 and stats["minutes"] >= 0.5 and stats["last_loss"] == 1.0
    assert "  resuming the toy at step 7 (0.5 of 0.5 minutes)" in messages
    assert load_checkpoint(tmp_path / "toy")["stats"] == stats  # now done


def test_a_failed_save_leaves_the_previous_state_whole(tmp_path, monkeypatch):
    import safetensors.torch

    module = torch.nn.Linear(2, 1)
    optimizer = make_optimizer(module.parameters(), stage_config(CONFIG, lr=1e-3, steps=5))
    state = StageState(tmp_path / "toy", "the toy", module)
    state.save(optimizer, step=1, seconds=1.0, recent=[])

    def half_written(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"\x00" * 10)
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    with pytest.raises(OSError, match="No space left"):
        state.save(optimizer, step=2, seconds=2.0, recent=[])
    assert load_checkpoint(tmp_path / "toy")["step"] == 1
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["checkpoint.safetensors"]


def test_a_resumed_runs_total_minutes_count_the_stages_minutes_before_its_stop(tmp_path, monkeypatch):
    """identity.json's "minutes" is the whole run's: this process's clock plus what the stages spent before."""
    from pixelcnn.identity import pipeline

    earlier = pipeline._EarlierMinutes()
    assert earlier.of(lambda: {"minutes": 30.0}) == {"minutes": 30.0}  # a stage loaded or resumed: 30 min before
    assert earlier.of(lambda: ("judge", {"minutes": 2.0}))[0] == "judge"  # (the judge's stats come last)
    assert 31.99 < earlier.minutes <= 32.0
    # The run adds them to its clock: stages that spent 45 minutes before a stop make a run of 45 minutes or more.
    monkeypatch.setattr(pipeline._EarlierMinutes, "__init__", lambda self: setattr(self, "minutes", 45.0))
    measured = train_identity(CONFIG, tmp_path / "run", log=None).measurements
    assert measured["minutes"] >= 45.0
