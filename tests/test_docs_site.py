"""The docs site's own machinery: the CLI page's --help sections come from the parsers, the README stays short.

(The site itself is built by ``mkdocs build --strict`` in .ci/run; the commands its pages show run in
tests/test_documented_commands.py and tests/test_scripts.py.)
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from pixelcnn import cli

REPO = Path(__file__).resolve().parents[1]


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(src_uri: str):
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_cli_page_holds_every_commands_help_as_the_parsers_print_it():
    hook = _hook("cli_help")
    page = (REPO / "docs" / "cli.md").read_text()
    assert hook.MARKER in page
    rendered = hook.on_page_markdown(page, _page("cli.md"), None, None)
    assert hook.MARKER not in rendered
    blocks = dict(re.findall(r"### `([^`]+)` \{#[\w-]+\}\n\n```text\n(.*?)\n```", rendered, re.S))
    parsers = {(): cli.build_parser(), **cli.subcommand_parsers()}
    assert set(blocks) == {" ".join(["pixelcnn", *words]) for words in parsers}
    for words, parser in parsers.items():
        text = blocks[" ".join(["pixelcnn", *words])]
        assert text.startswith("usage: pixelcnn"), text[:80]
        for action in parser._actions:  # every option of the parser is on the page
            for flag in action.option_strings:
                assert flag in text, f"pixelcnn {' '.join(words)}: {flag} missing from the docs page"


def test_cli_hook_leaves_other_pages_alone_and_refuses_a_page_without_its_marker():
    hook = _hook("cli_help")
    assert hook.on_page_markdown("# Data\n", _page("data.md"), None, None) == "# Data\n"
    with pytest.raises(ValueError, match="must hold the line"):
        hook.on_page_markdown("# The CLI\n", _page("cli.md"), None, None)


def test_repo_pages_hook_points_links_at_the_published_page():
    hook = _hook("repo_pages")
    text = "see [the benchmarks](../benchmarks/README.md) and [one](../benchmarks/README.md#sampling-speed)"
    assert hook.on_page_markdown(text, _page("reliability.md"), None, None) == (
        "see [the benchmarks](benchmarks.md) and [one](benchmarks.md#sampling-speed)"
    )


def test_every_docs_page_is_in_the_site_navigation():
    nav = (REPO / "mkdocs.yml").read_text().split("\nnav:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, re.M))
    pages = {path.name for path in (REPO / "docs").glob("*.md")}
    assert pages <= listed, f"docs pages missing from mkdocs.yml's nav: {sorted(pages - listed)}"


def test_readme_is_short_and_keeps_the_sections_left_for_the_zoo_and_the_app():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    lines = text.splitlines()
    for heading, placeholder in (
        ("## Trained models (zoo)", "<!-- zoo: filled in by the zoo work -->"),
        ("## The app", "<!-- app: filled in by the app work -->"),
    ):
        if placeholder in lines:  # until that work fills it in
            assert lines[lines.index(placeholder) - 1] == heading
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", text):  # links to pages exist
        assert (REPO / link).is_file(), f"README links to {link}, which does not exist"
