"""The training loop: exact resume, what a run folder holds, the budget, errors. Tiny models, a few steps."""

import json
import math
import os
import signal

import pytest
import torch

import pixelcnn
from conftest import quiet_train, tiny_config
from pixelcnn.train import TrainConfig, Trainer, load_checkpoint
from pixelcnn.train.loop import EMA, learning_rate


def train_losses(run_dir) -> dict[int, float]:
    lines = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    return {line["step"]: line["loss_nats"] for line in lines if line["kind"] == "train"}


def weights(run_dir) -> dict:
    return pixelcnn.load(os.path.join(run_dir, "model")).state_dict()


def test_resume_after_ctrl_c_continues_exactly_like_an_uninterrupted_run(tmp_path, monkeypatch):
    # Dynamic binarization, a class condition, EMA, clipping and a warm-up + cosine schedule all take part.
    schedule = dict(warmup_steps=2, lr_decay="cosine", ema_decay=0.9, grad_clip=0.5)
    whole = quiet_train(tiny_config(tmp_path, "whole", **schedule))
    assert whole.step == 6 and not whole.interrupted

    original_step = Trainer._train_step

    def step_then_ctrl_c(self, images, labels):
        result = original_step(self, images, labels)
        if self.step == 2:  # the third step is running: Ctrl-C now
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(Trainer, "_train_step", step_then_ctrl_c)
    cut = quiet_train(tiny_config(tmp_path, "cut", **schedule))
    monkeypatch.undo()
    assert cut.interrupted and cut.step == 3 and cut.final_eval is None
    assert load_checkpoint(cut.run_dir)["step"] == 3

    resumed = quiet_train(tiny_config(tmp_path, "cut", **schedule), resume=True)
    assert resumed.step == 6 and not resumed.interrupted
    assert train_losses(whole.run_dir) == train_losses(resumed.run_dir)  # exactly, step by step
    for key, value in weights(whole.run_dir).items():
        assert torch.equal(value, weights(resumed.run_dir)[key]), key
    assert resumed.final_eval.nll == whole.final_eval.nll


def test_resume_with_a_longer_budget_equals_one_longer_run(tmp_path):
    # Without a decay tied to the budget, extending --max-steps continues the same training.
    one = quiet_train(tiny_config(tmp_path, "one", optimizer="rmsprop", max_steps=5, class_conditional=False))
    quiet_train(tiny_config(tmp_path, "two", optimizer="rmsprop", max_steps=2, class_conditional=False))
    two = quiet_train(
        tiny_config(tmp_path, "two", optimizer="rmsprop", max_steps=5, class_conditional=False), resume=True
    )
    assert train_losses(one.run_dir) == train_losses(two.run_dir)
    state = load_checkpoint(two.run_dir)
    assert {"square_avg", "momentum_buffer"} <= set(state["optimizer"]["state"][0])  # RMSProp's state


def test_the_run_folder(tmp_path):
    config = tiny_config(tmp_path, max_steps=4, eval_every=2, sample_images=10, log_every=2)
    result = quiet_train(config)
    run = result.run_dir
    assert TrainConfig.load(run / "config.json") == config
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [(r["kind"], r["step"]) for r in records] == [("train", 2), ("eval", 2), ("train", 4), ("eval", 4)]
    assert {"loss_nats", "bits_per_dim", "lr", "images_per_second"} <= set(records[0])
    assert records[0]["bits_per_dim"] == pytest.approx(records[0]["loss_nats"] / (784 * math.log(2)))
    final = records[-1]
    assert final["nll_nats"] == result.final_eval.nll and final["images"] == 16
    # The saved model is the EMA model the evaluation used, and pixelcnn.load reads it.
    model = pixelcnn.load(result.model_path)
    assert model.config.num_classes == 10 and model.levels == 2
    from pixelcnn import data
    from pixelcnn.evaluate import evaluate

    again = evaluate(model, data.load("mnist5k", "test", binarize="dynamic"), max_images=16)
    assert again.nll == pytest.approx(result.final_eval.nll, rel=1e-6)
    state = load_checkpoint(run)
    assert state["step"] == 4 and state["ema"]["updates"] == 4
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["ema"]["weights"][key])
    # A per-class sample grid at each evaluation (10 classes x 1 image).
    from PIL import Image

    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    assert Image.open(result.sample_grid).size[1] > 10 * 28


def test_without_ema_the_raw_weights_are_saved(tmp_path):
    result = quiet_train(tiny_config(tmp_path, ema_decay=None, max_steps=2))
    state = load_checkpoint(result.run_dir)
    assert state["ema"] is None
    for key, value in weights(result.run_dir).items():
        assert torch.equal(value, state["weights"][key])


def test_budget_by_epochs_and_by_minutes(tmp_path):
    result = quiet_train(
        tiny_config(tmp_path, "epochs", data="digits", binarize=None, max_steps=None, epochs=0.02, batch_size=16)
    )
    assert result.step == math.ceil(0.02 * (1437 // 16))
    result = quiet_train(tiny_config(tmp_path, "minutes", max_steps=None, max_minutes=1e-6))
    assert result.step == 1 and result.train_minutes >= 1e-6


def test_learning_rate_schedule():
    def lr(step, **changes):
        config = TrainConfig(lr=1.0, max_steps=100, **changes)
        return learning_rate(config, step, planned_steps=100, time_fraction=None)

    assert [lr(s, warmup_steps=4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr(0, lr_decay="cosine") == 1.0 and lr(50, lr_decay="cosine") == pytest.approx(0.5)
    assert lr(100, lr_decay="cosine", final_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr(10, lr_decay="cosine", warmup_steps=10) == 1.0  # decay starts after warm-up
    assert lr(75, lr_decay="linear") == pytest.approx(0.25)
    assert lr(2000, lr_decay="exponential", decay_rate=0.5, decay_every=1000) == pytest.approx(0.25)
    assert lr(50, lr_decay="cosine", decay_steps=200) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    # A time budget: the decay follows the fraction of the minutes used.
    config = TrainConfig(lr=1.0, max_minutes=10, lr_decay="linear")
    assert learning_rate(config, 7, planned_steps=None, time_fraction=0.25) == pytest.approx(0.75)


def test_ema_is_the_warmed_up_moving_average():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # first update: decay min(0.5, 1/10) = 0.1
    assert torch.allclose(ema.model.weight, 0.1 * start + 0.9 * (start + 1))
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_metrics_logged_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    config = tiny_config(tmp_path, max_steps=2)
    quiet_train(config)
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:  # a crash after step 2 logged steps 3-4
        f.write(json.dumps({"kind": "train", "step": 3, "loss_nats": 1.0}) + "\n")
        f.write('{"kind": "train", "st')
    quiet_train(tiny_config(tmp_path, max_steps=3), resume=True)
    steps = [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert steps == [1, 2, 2, 3, 3]  # train 1, 2, eval 2, train 3, eval 3


def test_a_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    quiet_train(tiny_config(tmp_path, max_steps=2))
    from pixelcnn.models.base import AutoregressiveModel

    monkeypatch.setattr(AutoregressiveModel, "log_prob", lambda self, x, cond=None: torch.full((len(x),), math.nan))
    with pytest.raises(FloatingPointError, match="loss became nan at step 3"):
        quiet_train(tiny_config(tmp_path, max_steps=4), resume=True)
    assert load_checkpoint(tmp_path / "run")["step"] == 2


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(max_steps=None), "say when to stop"),
        (dict(data="photo-patches", binarize=None), "photo-patches has no labels"),
        (dict(model="gated-mnist", binarize=None, model_options={}), "add --binarize dynamic"),
        (dict(model_options=dict(levels=4)), "levels comes from the data set"),
        (dict(model_options=dict(n_layer=2)), "has no option n_layer"),
        (dict(batch_size=5000), "is more than the 4000 training images"),
        (dict(device="cuda:7"), "sees no CUDA GPU|cuda:7"),
    ],
)
def test_configuration_errors_say_what_is_wrong(tmp_path, changes, message):
    if "cuda" in str(changes.get("device")) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=message):
        quiet_train(tiny_config(tmp_path, **changes))
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start


def test_a_run_is_never_overwritten_and_resume_keeps_its_config(tmp_path):
    quiet_train(tiny_config(tmp_path, max_steps=1))
    with pytest.raises(ValueError, match="already holds a run"):
        quiet_train(tiny_config(tmp_path, max_steps=2))
    with pytest.raises(ValueError, match=r"cannot change lr \(run: 0.001, given: 0.01\)"):
        quiet_train(tiny_config(tmp_path, max_steps=2, lr=0.01), resume=True)
    with pytest.raises(ValueError, match="must be one of adam, rmsprop"):
        TrainConfig(optimizer="sgd")


def test_a_model_with_its_own_loss_trains_on_it(tmp_path):
    # mse_ae is not a likelihood model: it trains and is evaluated on model.loss (its mean squared error),
    # and its pictures come from preview_rows (test images beside their decodings).
    result = quiet_train(
        tiny_config(tmp_path, model="tiny-mse", model_options={}, class_conditional=False, max_steps=2, sample_images=8)
    )
    records = [json.loads(line) for line in open(result.run_dir / "metrics.jsonl")]
    assert "loss_mse" in records[0] and "loss_nats" not in records[0]
    assert result.final_eval.loss_name == "mse" and records[-1]["mse"] == result.final_eval.loss
    assert 0 < result.final_eval.loss < 1
    from PIL import Image

    assert Image.open(result.sample_grid).size == (2 * (28 * 2 + 2) + 2, 2 * (28 * 2 + 2) + 2)  # 2 rows x 2


@pytest.mark.parametrize("data, binarize", [("digits", None), ("photo-patches", None), ("mnist5k", "dynamic")])
def test_the_default_model_is_small_and_fits_every_bundled_data_set(tmp_path, data, binarize):
    # The default preset's sizes (6 blocks of 32, 5x5) apply; image_shape and levels come from the data.
    config = TrainConfig(
        data=data,
        binarize=binarize,
        max_steps=1,
        batch_size=4,
        eval_images=4,
        sample_images=0,
        progress=False,
        tensorboard=False,
        out=str(tmp_path / data),
    )
    assert config.model == "pixelcnn-6x32-k5"
    result = quiet_train(config)
    model = pixelcnn.load(result.model_path)
    from pixelcnn import data as datasets

    test = datasets.load(data, "test", binarize=binarize)
    assert (model.name, model.config.n_layers, model.config.hidden, model.config.kernel_size) == ("pixelcnn", 6, 32, 5)
    assert model.image_shape == tuple(test.image_shape) and model.levels == test.levels
    assert result.final_eval.nll > 0


def test_a_time_budgeted_run_shows_a_total_and_the_time_left(tmp_path, capsys):
    config = tiny_config(tmp_path, max_steps=None, max_minutes=0.05, progress=True, log_every=1)
    result = quiet_train(config)
    assert result.train_minutes >= 0.05
    bar = capsys.readouterr().err
    assert "/3 s of training" in bar and "<" in bar and "step=" in bar  # 3 s of 3 s, elapsed<left, step
