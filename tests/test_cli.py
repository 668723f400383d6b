"""The ``pixelcnn`` command: every subcommand end to end on tiny models, --help, and one-line errors."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

import pixelcnn
from conftest import run, tiny_train_flags
from pixelcnn import cli
from pixelcnn.train import TrainConfig, load_checkpoint

pytestmark = pytest.mark.slow  # end to end, SIGTERM / Ctrl-C in subprocesses: the slow tier

TINY = tiny_train_flags(n_layers=2)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A class-conditional model trained for 4 steps on the 8x8 digits (17 levels)."""
    folder = tmp_path_factory.mktemp("cli") / "digits"
    status = cli.main(
        [
            "train",
            *TINY,
            "--data",
            "digits",
            "--class-conditional",
            "--max-steps",
            "4",
            "--eval-images",
            "40",
            "--out",
            str(folder),
        ]
    )
    assert status == 0
    return folder


@pytest.mark.parametrize("command", ["train", "eval", "sample", "complete", "demo"])
def test_every_command_has_help_with_examples(capsys, command):
    status, out, _ = run(capsys, command, "--help")
    assert status == 0 and "examples:" in out and f"pixelcnn {command}" in out


def test_every_training_option_is_a_flag(capsys):
    _, out, _ = run(capsys, "train", "--help")
    for field in dataclasses.fields(TrainConfig):
        if field.name not in ("model", "model_options"):
            assert "--" + field.name.replace("_", "-") in out, field.name
    for option in ("--n-layers", "--hidden", "--kernel-size", "--output-hidden", "--preset", "--resume"):
        assert option in out
    args = cli.build_parser().parse_args(
        [
            "train",
            "--preset",
            "gated-mnist",
            "--lr",
            "3e-4",
            "--grad-clip",
            "none",
            "--precision",
            "fp32",
            "--binarize",
            "dynamic",
            "--n-layers",
            "3",
            "--spatial-cond",
            "--epochs",
            "2.5",
            "--out",
            "r",
        ]
    )
    config, resume = cli.train_config_from_args(args)
    assert not resume
    assert (config.model, config.lr, config.grad_clip, config.precision, config.binarize, config.epochs) == (
        "gated-mnist",
        3e-4,
        None,
        "fp32",
        "dynamic",
        2.5,
    )
    assert config.model_options == {"n_layers": 3, "spatial_cond": True}
    assert config.batch_size == TrainConfig().batch_size  # flags not given keep defaults


def test_train_eval_sample_complete(capsys, digits_run):
    config = json.loads((digits_run / "config.json").read_text())
    assert config["data"] == "digits" and config["model_options"] == {"n_layers": 2, "hidden": 4}
    model = pixelcnn.load(digits_run / "model")
    assert model.levels == 17 and model.image_shape == (1, 8, 8)

    status, out, _ = run(capsys, "eval", str(digits_run), "--json")
    result = json.loads(out)
    assert status == 0 and result["split"] == "test" and result["images"] == 360
    assert result["nll_nats_stderr"] > 0 and result["bits_per_dim"] == pytest.approx(
        result["nll_nats"] / (64 * 0.6931471805599453)
    )
    status, out, _ = run(
        capsys, "eval", str(digits_run / "model"), "--data", "digits", "--split", "train", "--max-images", "50"
    )
    assert status == 0 and "digits train (50 images): NLL" in out and "bits/dim" in out

    grid = digits_run / "per_class.png"
    status, out, _ = run(
        capsys, "sample", str(digits_run), "--per-class", "--n", "3", "--scale", "2", "--out", str(grid)
    )
    assert status == 0 and "30 images" in out
    width, height = Image.open(grid).size
    assert height == 10 * (8 * 2 + 2) + 2  # one row per class
    status, out, _ = run(
        capsys, "sample", str(digits_run), "--label", "7", "--n", "4", "--out", str(digits_run / "sevens.png")
    )
    assert status == 0 and (digits_run / "sevens.png").is_file()

    status, out, _ = run(
        capsys,
        "complete",
        str(digits_run),
        "--rows",
        "4",
        "--n",
        "3",
        "--samples",
        "2",
        "--scale",
        "1",
        "--out",
        str(digits_run / "completions.png"),
    )
    assert status == 0 and "3 images x 2 completions" in out
    assert Image.open(digits_run / "completions.png").size == (4 * (8 + 2) + 2, 3 * (8 + 2) + 2)


def test_completions_keep_the_given_rows(digits_run):
    model = pixelcnn.load(digits_run / "model")
    from pixelcnn import data

    test = data.load("digits", "test")
    images, labels = cli.pick_images(test, n=5)
    assert labels.unique().numel() > 1  # spread over the class-ordered test set
    done = cli.complete_images(model, images, labels, rows=3, samples=2, temperature=1.0, seed=0)
    assert done.shape == (5, 2, 1, 8, 8)
    assert torch.equal(done[:, :, :, :3], images[:, None, :, :3].long().expand(-1, 2, -1, -1, -1))


def test_resume_from_the_command_line(capsys, tmp_path):
    folder = tmp_path / "run"
    assert cli.main(["train", *TINY, "--data", "digits", "--max-steps", "2", "--out", str(folder)]) == 0
    status, out, err = run(capsys, "train", "--resume", str(folder), "--max-steps", "3", "--eval-images", "8")
    assert status == 0, err
    assert load_checkpoint(folder)["step"] == 2 + 3  # --max-steps on resume: 3 more steps
    assert json.loads((folder / "config.json").read_text())["max_steps"] == 5
    assert "max_steps 3 more; stops at max_steps 5 in all" in out


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    folder = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "pixelcnn",
        "train",
        *TINY,
        "--data",
        "mnist5k",
        "--binarize",
        "dynamic",
        "--max-steps",
        "100000",
        "--log-every",
        "1",
        "--eval-images",
        "8",
        "--out",
        str(folder),
        "--compile",
        "off",
    ]  # (a signal while compiling stops at once: tests/test_reliability_signals.py)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = folder / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err  # stopped by SIGTERM, after saving
    assert "SIGTERM" in err and "stopped at step" in out and "Traceback" not in err
    state = load_checkpoint(folder)
    assert 2 <= state["step"] < 100000
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged[-1] == state["step"]  # nothing trained after the checkpoint
    assert pixelcnn.load(folder / "model").config.n_layers == 2


def test_demo_end_to_end(capsys, tmp_path, monkeypatch):
    out_dir = tmp_path / "demo"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("a previous demo")  # never overwritten
    status, out, err = run(
        capsys,
        "demo",
        "--minutes",
        "0.002",
        "--per-class",
        "2",
        "--no-progress",
        "--n-layers",
        "1",
        "--hidden",
        "4",
        "--out",
        str(out_dir),
    )  # the real model trains for minutes
    assert status == 0, err
    folder = tmp_path / "demo-2"
    for line in ("test NLL", "per_class_samples.png", "completions.png", "images/s"):
        assert line in out
    assert "on the 1000 binarized mnist5k test digits" in out
    assert Image.open(folder / "per_class_samples.png").size[1] == 10 * (28 * 2 + 2) + 2
    assert (folder / "completions.png").is_file() and (folder / "model" / "model.safetensors").is_file()
    config = TrainConfig.load(folder / "config.json")
    assert config.class_conditional and config.binarize == "dynamic" and config.model == "gated_pixelcnn"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["train", "--lr", "fast"], "argument --lr: invalid float value"),
        (["train", "--optimizer", "sgd"], "argument --optimizer: invalid choice"),
        (["train", "--model", "pixelcnn", "--preset", "gated-mnist"], "not allowed with argument"),
        (["train", "--data", "digits", "--out", "{tmp}/r"], "say when to stop"),
        (["train", *TINY, "--data", "nope", "--max-steps", "1", "--out", "{tmp}/r"], "unknown data set 'nope'"),
        (
            ["train", "--model", "pixel_cnn", "--data", "digits", "--max-steps", "1", "--out", "{tmp}/r"],
            "unknown model 'pixel_cnn'",
        ),
        (["train", "--resume", "{tmp}/missing"], "nothing to resume at"),
        (["train", "--resume", "{run}", "--lr", "0.5"], "these cannot change: --lr"),
        (["train", "--resume", "{run}", "--hidden", "8"], "these cannot change: --hidden"),
        (["train", *TINY, "--data", "digits", "--max-steps", "1", "--out", "{run}"], "already holds a run"),
        (["eval", "{tmp}/missing"], "no run or model folder at"),
        (["eval", "{tmp}"], "neither a run folder"),
        (["eval", "{run}/model"], "say which data set with --data"),
        (["eval", "{run}", "--data", "mnist5k"], "the model expects images (1, 8, 8) with 17 levels"),
        (["eval", "{run}", "--batch-size", "0"], "--batch-size must be a positive integer"),
        (["sample", "{run}", "--out", "x.png", "--label", "10"], "--label must be a class in 0..9"),
        (["sample", "{run}", "--out", "x.png", "--temperature", "0"], "--temperature must be a positive number"),
        (["sample", "{run}", "--out", "x.png", "--method", "magic"], "argument --method: invalid choice: 'magic'"),
        (["sample", "{run}"], "the following arguments are required: --out"),
        (["complete", "{run}", "--rows", "9", "--out", "x.png"], "--rows must be in 0..8"),
        (["complete", "{run}", "--rows", "2", "--n", "9999", "--out", "x.png"], "is more than the 360 images"),
        (["demo", "--minutes", "0"], "--minutes must be positive"),
        (["train", "--device", "cuda:3", *TINY, "--data", "digits", "--max-steps", "1", "--out", "{tmp}/r"], "cuda:3"),
    ],
)
def test_errors_are_one_line_without_traceback(capsys, tmp_path, digits_run, argv, message):
    if "cuda:3" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(digits_run)) for a in argv]
    status, out, err = run(capsys, *argv)
    assert status in (1, 2)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in err and err.startswith("pixelcnn")


def test_unconditional_model_refuses_labels(capsys, tmp_path):
    folder = tmp_path / "unconditional"
    pixelcnn.save(pixelcnn.build("tiny-pixelcnn"), folder)
    status, _, err = run(capsys, "sample", str(folder), "--label", "1", "--out", str(tmp_path / "x.png"))
    assert status == 2 and "this model is unconditional" in err
    status, out, _ = run(capsys, "sample", str(folder), "--n", "3", "--out", str(tmp_path / "x.png"))
    assert status == 0 and "3 images" in out


def test_models_command_lists_presets(capsys):
    status, out, _ = run(capsys, "models")
    assert status == 0 and "gated-mnist" in out and "gated_pixelcnn" in out


def test_resume_takes_the_folder_or_out(capsys, tmp_path):
    folder = tmp_path / "run"
    assert cli.main(["train", *TINY, "--data", "digits", "--max-steps", "1", "--out", str(folder)]) == 0
    status, _, err = run(capsys, "train", "--resume", "--out", str(folder), "--max-steps", "2", "--eval-images", "8")
    assert status == 0, err
    assert load_checkpoint(folder)["step"] == 1 + 2
    status, _, err = run(capsys, "train", "--resume", str(folder), "--out", str(tmp_path / "other"), "--max-steps", "3")
    assert status == 2 and "names another" in err
    status, _, err = run(capsys, "train", "--resume", "--max-steps", "3")
    assert status == 2 and "--resume needs the run folder" in err


def test_sample_counts_are_exact(capsys, digits_run, tmp_path):
    status, out, _ = run(capsys, "sample", str(digits_run), "--n", "13", "--out", str(tmp_path / "a.png"))
    assert status == 0 and "13 images: classes 0..9 in turn" in out  # not rounded to 10
    status, out, _ = run(capsys, "sample", str(digits_run), "--per-class", "2", "--folder", str(tmp_path / "each"))
    assert status == 0 and len(list((tmp_path / "each").glob("*_class_*.png"))) == 20
    model = pixelcnn.load(digits_run / "model")
    from pixelcnn import data

    image = data.read_image(tmp_path / "each" / "0003_class_1.png", model.image_shape, model.levels)
    assert image.shape == (1, 1, 8, 8)  # written at the model's own size
    status, _, err = run(capsys, "sample", str(digits_run), "--per-class", "2", "--n", "4", "--out", "x.png")
    assert status == 2 and "not both" in err


def test_data_command_lists_the_data_sets(capsys):
    status, out, _ = run(capsys, "data")
    assert status == 0 and "mnist5k" in out and "folder:PATH" in out and "cifar10" in out


def test_exit_status_rule():
    from pixelcnn.cli.errors import CommandError, UsageError, exit_status

    assert exit_status(UsageError("x")) == 2 and exit_status(ValueError("x")) == 2
    assert exit_status(CommandError("x")) == 1 and exit_status(OSError("x")) == 1
    assert exit_status(KeyboardInterrupt()) == 130


def test_train_help_is_true_for_every_model(capsys):
    _, out, _ = run(capsys, "train", "--help")
    text = " ".join(out.split())
    assert "row_lstm, diagonal_bilstm: LSTM layers" in text or "row_lstm" in text.split("--n-layers", 2)[2][:600]
    assert "gated_pixelcnn:" in text.split("--kernel-size", 2)[2][:600]
