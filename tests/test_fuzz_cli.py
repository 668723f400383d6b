"""Fuzzed command lines and files: exit 0, or exit 2 with one line on stderr, nothing else (see fuzzing.py).

Runs ``pixelcnn.cli.main`` in this process on one tiny run (a class-conditional
Gated PixelCNN on the bundled 8x8 digits, one training step).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import tiny_train_flags
from fuzzing import cli_call, corrupted_bytes, hostile_arg, hostile_json_text, png_bytes, quick

pytestmark = pytest.mark.slow  # property tests (hypothesis) over command lines: the slow tier

WORK = Path(tempfile.mkdtemp(prefix="pixelcnn-fuzz-cli-"))
TINY = tiny_train_flags("--data", "digits", "--batch-size", "8", "--eval-images", "8", "--threads", "1")


@functools.cache
def tiny_run() -> Path:
    run = WORK / "run"
    assert cli_call("train (set-up)", ["train", *TINY, "--class-conditional", "--max-steps", "1", "--out", run]) == 0
    return run


def fresh(name: str) -> Path:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def copy_of_run(name: str) -> Path:
    folder = fresh(name)
    shutil.copytree(tiny_run(), folder)
    return folder


def written(path: Path):
    def check():
        assert path.is_file() and path.stat().st_size > 0, path

    return check


# ----------------------------------------------------------------------------------- numeric options
@quick
@given(
    n=st.just("2") | hostile_arg,
    temperature=st.just("1.0") | hostile_arg,
    seed=st.just("0") | hostile_arg,
    method=st.sampled_from(["auto", "fast", "naive", "", "bogus"]),
    label=st.none() | hostile_arg,
    scale=st.none() | hostile_arg,
)
def test_sample_with_hostile_numbers(n, temperature, seed, method, label, scale):
    out = fresh("sample") / "s.png"
    argv = [
        "sample",
        tiny_run(),
        "--n",
        n,
        "--temperature",
        temperature,
        "--seed",
        seed,
        "--method",
        method,
        "--out",
        out,
    ]
    argv += ["--label", label] if label is not None else []
    argv += ["--scale", scale] if scale is not None else []
    valid = (
        (n, temperature, seed) == ("2", "1.0", "0")
        and method in ("auto", "fast", "naive")
        and label is None
        and scale is None
    )
    cli_call("cli sample", argv, check=written(out), valid=valid)


@quick
@given(rows=hostile_arg, n=st.just("1") | hostile_arg, samples=st.just("1") | hostile_arg)
def test_complete_with_hostile_numbers(rows, n, samples):
    out = fresh("complete") / "c.png"
    cli_call(
        "cli complete",
        ["complete", tiny_run(), "--rows", rows, "--n", n, "--samples", samples, "--out", out],
        check=written(out),
    )


TRAIN_FLAGS = [
    "--lr",
    "--batch-size",
    "--beta1",
    "--beta2",
    "--grad-clip",
    "--ema-decay",
    "--warmup-steps",
    "--weight-decay",
    "--hidden",
    "--n-layers",
    "--kernel-size",
    "--eval-images",
    "--eval-every",
    "--checkpoint-every",
    "--checkpoint-every-minutes",
    "--threads",
    "--perturb",
    "--seed",
    "--log-every",
    "--max-minutes",
    "--epochs",
    "--decay-rate",
    "--final-lr-ratio",
    "--on-nan",
    "--optimizer",
    "--lr-decay",
    "--binarize",
    "--device",
]


@quick
@given(flag=st.sampled_from(TRAIN_FLAGS), value=hostile_arg)
def test_train_with_a_hostile_option(flag, value):
    out = fresh("train")
    argv = ["train", *TINY, "--max-steps", "1", "--out", out]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    cli_call("cli train", argv, check=written(out / "checkpoint.safetensors"))


# ----------------------------------------------------------------------------------- files
@quick
@given(data_=st.data())
def test_resume_of_a_run_whose_config_is_hostile(data_):
    run = copy_of_run("resume")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(data_.draw(hostile_json_text(config)), errors="surrogatepass")
    cli_call(
        "cli train --resume",
        ["train", "--resume", run, "--max-steps", "2"],
        check=written(run / "checkpoint.safetensors"),
    )


@quick
@given(
    data_=st.data(),
    which=st.sampled_from(["model/config.json", "model/model.safetensors", "checkpoint.safetensors", "config.json"]),
    command=st.sampled_from(["eval", "sample", "score"]),
)
def test_commands_on_a_run_with_a_corrupted_file(data_, which, command):
    run = copy_of_run("corrupt")
    original = (run / which).read_bytes()
    if which.endswith(".json"):
        (run / which).write_text(data_.draw(hostile_json_text(json.loads(original))), errors="surrogatepass")
    else:
        (run / which).write_bytes(data_.draw(corrupted_bytes(original)))
    out = fresh("corrupt-out")
    out.mkdir()
    argv = {
        "eval": ["eval", run, "--max-images", "4"],
        "sample": ["sample", run, "--n", "1", "--out", out / "s.png"],
        "score": ["score", run, "digits:test", "--max-images", "4", "--csv", out / "s.csv"],
    }[command]
    cli_call(f"cli {command} (corrupted run)", argv)


@functools.cache
def good_compressed() -> bytes:
    out = WORK / "good.pxcz"
    assert (
        cli_call("compress (set-up)", ["compress", tiny_run(), "digits:test", "--max-images", "2", "--out", out]) == 0
    )
    return out.read_bytes()


@quick
@given(data_=st.data())
def test_decompress_of_a_corrupted_file(data_):
    folder = fresh("decompress")
    folder.mkdir()
    (folder / "in.pxcz").write_bytes(data_.draw(corrupted_bytes(good_compressed())))
    cli_call(
        "cli decompress",
        ["decompress", folder / "in.pxcz", "--run", tiny_run(), "--out", folder / "out"],
        check=written(folder / "out" / "digits-test-00000.png"),
    )


@quick
@given(
    kinds=st.lists(
        st.sampled_from(["good", "garbage", "truncated", "empty", "other size", "bomb", "text"]), min_size=1, max_size=4
    ),
    command=st.sampled_from(["compress", "score", "train"]),
)
def test_commands_on_a_folder_of_hostile_files(kinds, command):
    folder = fresh("files")
    folder.mkdir()
    for i, kind in enumerate(kinds):
        path = folder / f"f{i}.png"
        if kind == "good":
            path.write_bytes(png_bytes(8, 8))
        elif kind == "garbage":
            path.write_bytes(bytes(range(i, i + 30)))
        elif kind == "truncated":
            path.write_bytes(png_bytes(8, 8)[:40])
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "other size":
            path.write_bytes(png_bytes(9, 7))
        elif kind == "bomb":
            import zlib

            path.write_bytes(png_bytes(100_000, 100_000, body=zlib.compress(b"\0" * 64)))
        else:
            (folder / f"f{i}.txt").write_text("hello")
    out = fresh("files-out")
    out.mkdir()
    argv = {
        "compress": ["compress", tiny_run(), folder, "--label", "1", "--out", out / "f.pxcz"],
        "score": ["score", tiny_run(), folder, "--label", "1", "--csv", out / "s.csv"],
        "train": ["train", *TINY, "--data", f"folder:{folder}", "--max-steps", "1", "--out", out / "run"],
    }[command]
    cli_call(f"cli {command} (folder)", argv)
