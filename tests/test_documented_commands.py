"""Every ``pixelcnn`` command that README.md and the docs pages show, and every example of every ``--help``, runs
and writes what it says.

The documented commands are those of ``doc_commands.documentation_files()``: README.md, then docs/*.md (every
``bash`` / ``console`` block and inline command of each). Each runs exactly as documented, with only the shrink
flags of ``SHRINK`` appended (fewer steps and minutes, a smaller model, fewer images), in one temporary folder,
every train command first and then the rest in the order the files give them: ``runs/gated`` trained by an
earlier command exists for the later ones. A command shown twice runs once. The ``--help`` examples run in a
second folder that holds the documented runs. Commands run in-process through ``pixelcnn.cli.main`` (fast);
those in ``SUBPROCESS`` run as ``python -m pixelcnn ...`` to prove the entry point.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import pixelcnn
from doc_commands import _strip_comment, documentation_files, documented_commands
from pixelcnn import cli, coding

pytestmark = pytest.mark.slow  # a training run per documented train command: the slow tier
DOCUMENTS = documentation_files()

# Shrink flags appended to each subcommand (a list, or a function of the documented arguments). Every
# documented subcommand must have an entry (test_every_documented_subcommand_has_shrink_flags), so that
# a new command cannot slip in untested.
TRAIN_BUDGET = [
    "--max-steps",
    "2",
    "--eval-images",
    "16",
    "--batch-size",
    "8",
    "--sample-images",
    "0",
    "--no-progress",
    "--no-tensorboard",
]
MODEL_SIZE = {  # what each documented model or preset shrinks to
    "gated_pixelcnn": ["--n-layers", "2", "--hidden", "8"],
    "gated-cifar10": ["--n-layers", "2", "--hidden", "8"],
    "pixelcnn_ae": ["--n-layers", "1", "--hidden", "4", "--encoder-channels", "4"],
    "mse_ae": ["--encoder-channels", "4", "--decoder-channels", "4"],
    "pixelcnnpp-photo": ["--n-layers", "1", "--hidden", "4", "--n-mixtures", "2"],
}


def _train_shrink(args: list[str]) -> list[str]:
    if "--resume" in args:  # a resumed run keeps its model: only the budget changes
        return ["--max-steps", "3", "--eval-images", "16", "--no-progress"]
    named = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--model", "--preset")]
    return TRAIN_BUDGET + MODEL_SIZE[named[-1] if named else "gated_pixelcnn"]


def _receptive_field_shrink(args: list[str]) -> list[str]:
    if "--compare" not in args and "--model" not in args:
        return []  # RUN's own model has its own size
    return ["--layers", "2"] + ([] if "--image-size" in args else ["--image-size", "8"])


SHRINK = {
    ("train",): _train_shrink,
    ("eval",): ["--max-images", "16"],
    ("demo",): ["--minutes", "0.005", "--n-layers", "1", "--hidden", "4", "--per-class", "1", "--no-progress"],
    ("models",): ["--match", "tiny"],
    ("data",): [],
    ("sample",): [],
    ("complete",): ["--samples", "1"],
    ("interpolate",): ["--steps", "2", "--rows", "1"],
    ("reconstruct",): ["--samples", "1", "--n", "2", "--per-class", "1"],
    ("identity",): [
        "--steps",
        "2",
        "--triplet-steps",
        "2",
        "--n-layers",
        "1",
        "--hidden",
        "4",
        "--embedding-dim",
        "3",
        "--batch-size",
        "4",
        "--judge-steps",
        "2",
        "--judge-samples",
        "1",
        "--identities",
        "2",
        "--samples",
        "1",
        "--no-progress",
    ],
    ("identity-sample",): lambda args: (
        ["--samples", "1", "--identities", "2"] + (["--steps", "2", "--rows", "1"] if "--interpolate" in args else [])
    ),
    ("viz",): [],
    ("viz", "receptive-field"): _receptive_field_shrink,
    ("viz", "softmax"): [],
    ("viz", "nll-map"): [],
    ("viz", "animate"): ["--n", "4", "--every", "196"],
    ("compress",): ["--max-images", "4"],
    ("decompress",): [],
    ("score",): ["--max-images", "8"],
    ("zoo",): [],
    # A server never returns: --check opens the models and the page's tab choices and exits (tests/test_app.py
    # serves it for real).
    ("app",): lambda args: [] if "--check" in args else ["--check"],
}
SUBPROCESS = {"pixelcnn data", "pixelcnn eval runs/gated --json"}  # run as python -m pixelcnn: the entry point


def pixelcnn_args(command) -> list[str] | None:
    """The arguments after ``pixelcnn`` of a documented command, or None for one this test does not run.

    Not run here: ``pip install`` (installs packages), ``python -m pytest`` (this suite itself),
    ``python SCRIPT`` (tests/test_scripts.py runs the scripts) and ``torchrun`` (needs several processes).
    """
    argv = command.argv
    if argv[0] == "pixelcnn":
        return argv[1:]
    if argv[:3] == ["python", "-m", "pixelcnn"]:
        return argv[3:]
    return None


def subcommand(args: list[str]) -> tuple[str, ...]:
    words = tuple(a for a in args[:2] if not a.startswith("-"))
    return words[:2] if words[:1] == ("viz",) and len(words) > 1 else words[:1]


def help_examples() -> list[tuple[str, str]]:
    """(where, command) for every example line of every (sub)command's --help epilog, in parser order."""
    found = []
    for words, parser in cli.subcommand_parsers().items():
        epilog = parser.epilog or ""
        assert "examples:" in epilog, f"pixelcnn {' '.join(words)} --help has no examples"
        pending = ""
        for line in epilog.split("examples:", 1)[1].splitlines():
            line = _strip_comment(line.strip())
            if not line and not pending:
                if found and found[-1][0] == " ".join(words):
                    break  # the examples end at the first blank line
                continue
            if line.endswith("\\"):
                pending += line[:-1].rstrip() + " "
                continue
            if (pending + line).startswith("pixelcnn "):
                found.append((" ".join(words), pending + line))
            pending = ""
    return found


def doc_commands() -> list:
    """The pixelcnn commands of every documentation file: README.md first, each file in line order."""
    found = []
    for document in DOCUMENTS:
        commands = [c for c in documented_commands(document) if pixelcnn_args(c) is not None]
        found += sorted(commands, key=lambda c: int(c.source.rsplit(":", 1)[1]))
    return found


def _unique(commands):
    seen, kept = set(), []
    for c in commands:
        if c.text not in seen:
            seen.add(c.text)
            kept.append(c)
    return kept


DOC_COMMANDS = _unique(doc_commands())
HELP_EXAMPLES = [(where, text) for where, text in help_examples() if text not in {c.text for c in DOC_COMMANDS}]


# ------------------------------------------------------------------------------------- running
def shrunk(args: list[str]) -> list[str]:
    flags = SHRINK[subcommand(args)]
    return args + (flags(args) if callable(flags) else flags)


def run_command(args: list[str], folder: Path, capsys) -> tuple[int, str, str]:
    """Run ``pixelcnn ARGS`` (shrunk) in ``folder``: (exit status, stdout, stderr)."""
    argv = shrunk(args)
    if " ".join(["pixelcnn", *args]) in SUBPROCESS:
        result = subprocess.run(
            [sys.executable, "-m", "pixelcnn", *argv],
            cwd=folder,
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        return result.returncode, result.stdout, result.stderr
    before = os.getcwd()
    os.chdir(folder)
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # --help, or argparse refusing the command line
        status = exit_.code or 0
    finally:
        os.chdir(before)
    out, err = capsys.readouterr()
    return status, out, err


def _value(args: list[str], flag: str) -> str | None:
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]
    return values[-1] if values else None


def check_outputs(args: list[str], folder: Path, out: str) -> list[str]:
    """Every file the command says it writes exists and is valid; returns what was checked."""
    words, checked, target = subcommand(args), [], _value(args, "--out")
    if "--help" in args:
        return checked
    if words == ("train",):
        run = folder / (_value(args, "--out") or _value(args, "--resume"))
        assert pixelcnn.load(run / "model").image_shape
        checked.append(f"{run}/model")
    elif words == ("identity",):
        run = folder / target
        pixelcnn.load(run / "model")
        json.loads((run / "identity.json").read_text())
        _image(run / "identity.png", "PNG")
        checked.append(str(run))
    elif words == ("demo",):
        run = folder / (target or "runs/demo")
        for name in ("per_class_samples.png", "completions.png"):  # the files the docs name
            _image(run / name, "PNG")
        pixelcnn.load(run / "model")
        checked.append(str(run))
    elif words == ("compress",):
        assert coding.split_records((folder / target).read_bytes())
        checked.append(target)
    elif words == ("decompress",):
        files = sorted((folder / target).rglob("*.png"))
        assert files and all(_image(f, "PNG") for f in files)
        checked.append(target)
    elif target is not None:
        _image(folder / target, "GIF" if target.endswith(".gif") else "PNG")
        checked.append(target)
    if _value(args, "--csv"):
        rows = list(csv.DictReader(open(folder / _value(args, "--csv"))))
        assert rows and "nll_nats" in rows[0]
        checked.append(_value(args, "--csv"))
    if words == ("sample",) and _value(args, "--folder"):
        files = sorted((folder / _value(args, "--folder")).glob("*.png"))
        assert files and all(_image(f, "PNG") for f in files)
        checked.append(_value(args, "--folder"))
    if "--json" in args:
        json.loads(out)
        checked.append("JSON on stdout")
    return checked


def _image(path: Path, kind: str) -> bool:
    with Image.open(path) as image:
        assert image.format == kind, f"{path} is {image.format}, not {kind}"
        image.verify()
    return True


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny models run fastest on one thread
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    """The folder the documented commands run in; the documented train commands have run in it first."""
    return tmp_path_factory.mktemp("docs")


@pytest.fixture(scope="module")
def trained(docs_folder):
    """Run every documented ``pixelcnn train`` command, in document order, in ``docs_folder``: text -> status."""
    results, cwd = {}, os.getcwd()
    os.chdir(docs_folder)
    try:
        for command in DOC_COMMANDS:
            args = pixelcnn_args(command)
            if subcommand(args) == ("train",) and "--help" not in args:
                results[command.text] = cli.main(shrunk(args))
    finally:
        os.chdir(cwd)
    return results


@pytest.fixture(scope="module")
def help_folder(tmp_path_factory, docs_folder, trained):
    """A folder for the --help examples that holds the documented runs (runs/gated, runs/ae, runs/mse,
    runs/identity)."""
    folder = tmp_path_factory.mktemp("help")
    (folder / "runs").mkdir()
    for run in ("gated", "ae", "mse", "identity"):
        (folder / "runs" / run).symlink_to(docs_folder / "runs" / run, target_is_directory=True)
    _faces(folder / "faces")
    return folder


def _faces(folder: Path) -> None:
    """A stand-in for a folder of faces by identity (pixelcnn identity --data folder:faces): random 40x40 RGB
    images, 4 of each of 4 people in train/ and of 2 others in test/."""
    generator = torch.Generator().manual_seed(0)
    for split, people in (("train", ("ann", "bob", "cy", "dee")), ("test", ("eve", "fay"))):
        for person in people:
            (folder / split / person).mkdir(parents=True)
            for i in range(4):
                pixels = torch.randint(0, 256, (40, 40, 3), generator=generator, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / split / person / f"{i}.png")


# ------------------------------------------------------------------------------------- the tests
def test_every_documented_subcommand_has_shrink_flags():
    documented = {subcommand(pixelcnn_args(c)) for c in DOC_COMMANDS}
    documented |= {subcommand(shlex.split(text)[1:]) for _, text in HELP_EXAMPLES}
    documented |= set(cli.subcommand_parsers())  # every subcommand has --help examples, so is documented
    assert documented - set(SHRINK) == set(), "add shrink flags for these subcommands to SHRINK"
    assert len(DOC_COMMANDS) >= 20 and len(HELP_EXAMPLES) >= 25
    assert SUBPROCESS <= {c.text for c in DOC_COMMANDS}, "SUBPROCESS names commands the docs no longer show"


@pytest.mark.parametrize("command", DOC_COMMANDS, ids=[c.source for c in DOC_COMMANDS])
def test_documented_command_runs(command, docs_folder, trained, capsys):
    args = pixelcnn_args(command)
    if command.text in trained:  # run by the fixture, in document order
        status, out, err = trained[command.text], "", ""
    else:
        status, out, err = run_command(args, docs_folder, capsys)
    assert status == 0, f"{command}\nexit {status}: {err[-2000:]}"
    check_outputs(args, docs_folder, out)


@pytest.mark.parametrize("where, text", HELP_EXAMPLES, ids=[f"{w}: {t}" for w, t in HELP_EXAMPLES])
def test_help_example_runs(where, text, help_folder, capsys):
    args = shlex.split(text)[1:]
    status, out, err = run_command(args, help_folder, capsys)
    assert status == 0, f"pixelcnn {where} --help: {text}\nexit {status}: {err[-2000:]}"
    check_outputs(args, help_folder, out)


NOT_RUN = (["pip", "install"], ["python", "-m", "pytest"])  # shown for people to run: installing, the suite itself


def test_every_documented_command_is_run_by_a_test():
    """A command in a docs page or the README is run here (pixelcnn), by tests/test_scripts.py (python SCRIPT),
    or is one of NOT_RUN; anything else (a torchrun line, a shell script) would be shown untested."""
    unrun = []
    for document in DOCUMENTS:
        for command in documented_commands(document):
            argv = command.argv
            if pixelcnn_args(command) is not None or any(argv[: len(prefix)] == prefix for prefix in NOT_RUN):
                continue
            if argv[0] == "python" and len(argv) > 1 and argv[1].endswith(".py"):
                continue  # tests/test_scripts.py runs it
            unrun.append(str(command))
    assert not unrun, "documented commands that no test runs:\n" + "\n".join(unrun)
    pages = {c.source.split(":")[0] for c in DOC_COMMANDS}
    assert "README.md" in pages and any(page.startswith("docs/") for page in pages)
