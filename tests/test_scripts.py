"""Every ``python SCRIPT ...`` command that README.md, the docs pages and benchmarks/README.md show runs, as written.

Each command runs in a temporary working directory, exactly as documented plus the shrink flags
of its script in ``SCRIPTS`` (tiny models, seconds of training), and must exit with 0 and write
the files it says it writes: JSON that parses and, for the benchmarks, names the machine; PNG and
GIF images that open. The scripts run in this process (``runpy``), which saves a torch start-up
per command; the subprocesses of the speed benchmarks are skipped with their ``--in-process``.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image

from doc_commands import documentation_files, documented_commands

pytestmark = pytest.mark.slow  # each documented script trains something: the slow tier
REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [*documentation_files(), REPO / "benchmarks" / "README.md"]
TINY_TRAINING = ["--minutes", "0.01", "--eval-images", "16"]


@dataclass(frozen=True)
class Script:
    shrink: list[str]  # appended to every documented command of the script
    output_option: str  # the option that names what it writes
    default_output: str | None  # what it writes without that option (relative to the cwd)
    files: tuple[str, ...] = ()  # files inside the output folder; () when the output is a file
    shrink_if_given: dict[str, str] = field(default_factory=dict)  # appended only where the command sets it
    dropped: tuple[str, ...] = ()  # options (with their value) the test removes: they name what a
    # test cannot have (a trained run), and the shrunk command makes it


# The one table of shrink flags, keyed by script path.
SCRIPTS = {
    "benchmarks/train_curves.py": Script(
        ["--only", "tiny-gated", *TINY_TRAINING, "--marks", "0.01", "--step-ms", "300"],
        "--out",
        "runs/train_curves.json",
    ),
    "benchmarks/sampling.py": Script(
        ["--only", "tiny-gated", "--batches", "2", "--naive-full-limit", "0"], "--out", "runs/sampling.json"
    ),
    "benchmarks/train_speed.py": Script(
        ["--only", "tiny-gated", "--steps", "1", "--warmup", "0", "--in-process", "--settings", "fp32", "bf16"],
        "--out",
        "runs/train_speed.json",
    ),
    "benchmarks/pixelrnn_speed.py": Script(
        [
            "--only",
            "tiny-rowlstm",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--in-process",
            "--eval-images",
            "16",
            "--step-ms",
            "300",
        ],
        "--out",
        "runs/pixelrnn_speed.json",
        shrink_if_given={"--nll-minutes": "0.01"},
    ),
    "benchmarks/compression.py": Script(
        ["--data", "digits", "--images", "4", "--train-steps", "5", "--single-images", "1"],
        "--out",
        "runs/compression.json",
        dropped=("--run",),
    ),
    "benchmarks/ood.py": Script(
        ["--train-steps", "3", "--images", "8", "--n-layers", "1", "--hidden", "4"], "--out", "runs/ood.json"
    ),
    "benchmarks/faults.py": Script(
        [
            "--kills",
            "2",
            "--steps",
            "20",
            "--checkpoint-every",
            "5",
            "--eval-every",
            "10",
            "--fuzz-examples",
            "0",
            "--no-cases",
            "--no-hostile",
        ],
        "--out",
        "runs/faults.json",
    ),  # (they run in the suite)
    "benchmarks/sample_quality.py": Script(
        ["--per-class", "1", "--classifier-epochs", "1"], "--out", "runs/sample_quality.json"
    ),
    "benchmarks/families.py": Script(
        [
            "--only",
            "row-lstm",
            "pixelcnn-ae",
            "mse-ae",
            "--minutes",
            "0.005",
            "--per-class",
            "1",
            "--classifier-epochs",
            "1",
            "--eval-images",
            "8",
        ],
        "--out",
        "runs/families.json",
    ),
    "benchmarks/zoo.py": Script(["--max-images", "8"], "--out", "runs/zoo.json"),
    "benchmarks/gpu_check.py": Script(
        ["--device", "cpu", "--tiny", "--minutes", "0.5", "--grace", "0"], "--out", "runs/gpu_check.json"
    ),  # (--grace 0: never os._exit the test runner)
    "docs/make_figures.py": Script(
        [
            "--minutes",
            "0.01",
            "--n-layers",
            "1",
            "--hidden",
            "4",
            "--samples",
            "1",
            "--rf-size",
            "4",
            "--out",
            "figures",
        ],
        "--out",
        None,
        ("receptive_field.png", "softmax.png", "nll_map.png", "sampling.gif"),
    ),
    "experiments/autoencoder.py": Script(
        [
            "--minutes-mnist",
            "0.005",
            "--minutes-photo",
            "0.005",
            "--minutes-long",
            "0.005",
            "--n-layers",
            "1",
            "--hidden",
            "4",
            "--eval-images",
            "16",
            "--picture-images",
            "2",
            "--docs",
            "pictures",
        ],
        "--docs",
        None,
        ("autoencoder.json", "recon.png", "recon-photo.png", "interp.png"),
    ),
    "experiments/glyphs.py": Script(
        [
            "--steps",
            "2",
            "--triplet-steps",
            "2",
            "--judge-steps",
            "2",
            "--judge-samples",
            "1",
            "--n-layers",
            "1",
            "--hidden",
            "4",
            "--rows",
            "2",
            "--docs",
            "pictures",
        ],
        "--docs",
        None,
        ("glyphs.json", "identity.png", "identity-interpolation.png"),
    ),
}


# Scripts whose documented commands another test runs (they need a running app or a browser).
TESTED_ELSEWHERE = {
    "benchmarks/app_latency.py": "tests/test_app.py",
    "docs/app_screenshots.py": "tests/test_app_browser.py",
}


def script_commands():
    """The documented ``python SCRIPT`` commands, each once (``python -m ...`` and ``TESTED_ELSEWHERE`` are
    tested elsewhere)."""
    seen, commands = set(), []
    for document in DOCUMENTS:
        for command in documented_commands(document):
            if (
                command.program == "python"
                and command.argv[1] != "-m"
                and command.text not in seen
                and command.argv[1] not in TESTED_ELSEWHERE
            ):
                seen.add(command.text)
                commands.append(
                    pytest.param(command, id=f"{document.relative_to(REPO)}:{command.source.split(':')[1]}")
                )
    return commands


COMMANDS = script_commands()


def test_every_documented_script_has_shrink_flags():
    scripts = {param.values[0].argv[1] for param in COMMANDS}
    assert scripts, "no documented python commands found"
    assert scripts <= set(SCRIPTS), f"add shrink flags for {sorted(scripts - set(SCRIPTS))} to SCRIPTS"
    for script in scripts:
        assert (REPO / script).is_file(), f"{script} is documented but does not exist"


def final_argv(argv: list[str], script: Script) -> list[str]:
    extra = [item for option, value in script.shrink_if_given.items() if option in argv for item in (option, value)]
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item in script.dropped:
            skip = True
        else:
            kept.append(item)
    return kept + script.shrink + extra


def outputs(argv: list[str], script: Script) -> list[Path]:
    """The files the command writes: the last value of its output option, else the default."""
    given = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == script.output_option]
    where = Path(given[-1] if given else script.default_output)
    return [where / name for name in script.files] if script.files else [where]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A fresh working directory; torch's thread count and random state restored afterwards."""
    monkeypatch.chdir(tmp_path)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    yield tmp_path
    torch.set_num_threads(threads)
    torch.set_rng_state(rng)


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_script_command_runs(command, isolated, monkeypatch):
    program, script_path, *arguments = command.argv
    script = SCRIPTS[script_path]
    argv = final_argv([script_path, *arguments], script)
    path = REPO / script_path
    monkeypatch.setattr(sys, "argv", [str(path), *argv[1:]])
    monkeypatch.syspath_prepend(str(path.parent))  # as `python SCRIPT` puts the script's folder first
    try:
        runpy.run_path(str(path), run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    assert code == 0, f"{command} (+ {' '.join(argv[len(command.argv) - 1 :])}) exited with {code}"

    for written in outputs(argv, script):
        assert written.is_file(), f"{command}: {written} was not written"
        if written.suffix == ".json":
            data = json.loads(written.read_text())
            if script_path.startswith("benchmarks/"):
                assert data["machine"]["cpu"], f"{written} does not name the CPU"
        else:
            with Image.open(written) as image:
                image.verify()


def test_the_families_step_time_never_makes_a_runaway_budget(monkeypatch):
    """families.py times a step as the difference of a 13-step and a 3-step run's CPU time. For a tiny model,
    noise once made that difference ~0, the step time its floor of 1e-6 s and the budget 300,000 steps (a CI
    run hung in test_documented_script_command_runs); the longer run's mean time per step is used then."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    families = runpy.run_path(str(REPO / "benchmarks" / "families.py"), run_name="families")
    step_seconds_from = families["step_seconds_from"]
    assert step_seconds_from([1.0, 2.0]) == pytest.approx(0.1)  # the difference: set-up left out
    assert step_seconds_from([0.50, 0.49]) == pytest.approx(0.49 / 13)  # noise: the mean, set-up included
    assert step_seconds_from([0.50, 0.5001]) == pytest.approx(0.5001 / 13)
    assert step_seconds_from([0.0, 0.0]) == 1e-6
