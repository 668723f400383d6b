"""docs/ranges.md is true: every row's refused value is one line naming the option, exit status 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import tiny_train_flags
from pixelcnn import cli

RANGES = Path(__file__).resolve().parents[1] / "docs" / "ranges.md"
TINY = tiny_train_flags("--data", "digits", "--batch-size", "8", "--eval-images", "8", "--max-steps", "1")


def rows() -> list[tuple[str, str, str]]:
    """(command, option, refused value) of every table row; train's table has no command column."""
    found, command = [], None
    for line in RANGES.read_text().splitlines():
        if line.startswith("## "):
            command = "train" if "pixelcnn train" in line else None
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= {"-"} or cells[0] in ("Option", "Command"):
            continue
        if command == "train":
            found.append(("train", cells[0].strip("`"), cells[-1]))
        else:
            found.append((cells[0], cells[1].strip("`"), cells[-1]))
    return found


ROWS = rows()


def test_the_tables_were_read():
    assert len(ROWS) > 40 and {command for command, _, _ in ROWS} >= {"train", "sample", "complete", "eval"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ranges") / "run"
    assert cli.main(["train", *TINY, "--class-conditional", "--out", str(run)]) == 0
    return run


def base_argv(command: str, run: Path, out: Path) -> list[str]:
    return {
        "train": ["train", *TINY, "--out", out / "run"],
        "sample": ["sample", run, "--out", out / "a.png"],
        "complete": ["complete", run, "--rows", "2", "--out", out / "a.png"],
        "eval": ["eval", run],
        "score": ["score", run, "digits:test", "--csv", out / "s.csv"],
        "compress": ["compress", run, "digits:test", "--out", out / "a.pxcz"],
        "viz animate": ["viz", "animate", run, "--out", out / "a.gif"],
    }[command]


@pytest.mark.parametrize("command, option, refused", ROWS, ids=[f"{c} {o} {v}" for c, o, v in ROWS])
def test_a_value_out_of_range_is_one_line_naming_the_option(capsys, tiny_run, tmp_path, command, option, refused):
    argv = [str(a) for a in base_argv(command, tiny_run, tmp_path)] + [f"{option}={refused}"]
    try:
        status = cli.main(argv)
    except SystemExit as stop:
        status = stop.code
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, (argv, err)
    assert re.search(re.escape(option) + r"\b", err), f"{' '.join(argv)}: the error does not name {option}: {err}"
    assert not (tmp_path / "run").exists()  # refused before anything was written
