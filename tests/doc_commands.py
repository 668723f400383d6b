"""The shell commands that the documentation shows, as the tests run them.

``documented_commands(path)`` reads a Markdown file and returns every command
of its ``bash`` / ``sh`` / ``console`` / ``shell`` code blocks (and of blocks
without a language whose lines start with a known program), one per entry,
with backslash continuations joined, trailing ``# comments`` removed and
``a && b`` chains split into their parts; and every inline code span in the
prose that is a whole command (it starts with ``pixelcnn `` or ``python ``). Each entry is a ``DocCommand`` that
remembers where it came from, so a failure names the file and line (``README.md:165``, ``docs/cli.md:12``).

``documentation_files()`` lists the Markdown files whose commands the tests run: README.md, then every
page of the docs site (docs/*.md) in name order.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
PROGRAMS = ("pixelcnn", "python", "pip", "bash", "torchrun")
REPOSITORY = Path(__file__).resolve().parents[1]


def documentation_files() -> list[Path]:
    """README.md, then the docs site's pages (docs/*.md) in name order: every file whose commands are run."""
    return [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]


def _where(path: Path) -> str:
    """``README.md`` or ``docs/cli.md``: the path from the repository root, or the file name outside it."""
    try:
        return path.resolve().relative_to(REPOSITORY).as_posix()
    except ValueError:
        return path.name


@dataclass(frozen=True)
class DocCommand:
    source: str  # file and line, e.g. "README.md:165" or "docs/cli.md:12"
    text: str  # the command as documented, comments and continuations resolved

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def program(self) -> str:
        return self.argv[0]

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


def _strip_comment(line: str) -> str:
    """Drop a trailing ``# comment`` that is not inside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _code_blocks(text: str):
    """(language, first line number, lines) of each fenced code block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if match:
            language, start, body = match.group(1).lower(), i + 2, []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            yield language, start, body
        i += 1


def documented_commands(path: str | Path) -> list[DocCommand]:
    """Every shell command shown in the Markdown file at ``path``, in order."""
    path = Path(path)
    commands: list[DocCommand] = []
    for language, start, body in _code_blocks(path.read_text()):
        if language not in SHELL_LANGUAGES:
            if language or not any(line.strip().startswith(PROGRAMS) for line in body):
                continue
        pending, pending_line = "", None
        for offset, raw in enumerate(body):
            line = _strip_comment(raw.strip().removeprefix("$ "))
            if not line and not pending:
                continue
            if pending_line is None:
                pending_line = start + offset
            if line.endswith("\\"):
                pending += line[:-1].rstrip() + " "
                continue
            full = (pending + line).strip()
            pending = ""
            for part in full.split(" && "):
                if part.strip():
                    commands.append(DocCommand(f"{_where(path)}:{pending_line}", part.strip()))
            pending_line = None
    commands += _inline_commands(path)
    return commands


def _inline_commands(path: Path) -> list[DocCommand]:
    """Commands written inline in the prose, e.g. `python benchmarks/sampling.py --out x.json`."""
    found, in_block = [], False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if re.match(r"^(pixelcnn|python) [\w./-]", span) and not span.startswith("python -c"):
                found.append(DocCommand(f"{_where(path)}:{number}", span.strip()))
    return found
