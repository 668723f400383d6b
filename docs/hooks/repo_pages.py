"""MkDocs hook: Markdown files of the repository that live outside docs/, published as pages of the site.

``PAGES`` maps a repository file to the page it becomes. The file is read where it is (no copy to
drift), and a page's link to it (``../benchmarks/README.md`` from a page in docs/) is pointed at the
published page, so the link works in the repository and on the site alike.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"benchmarks/README.md": "benchmarks.md"}


def on_files(files, config):
    for source, page in PAGES.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / source)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    for source, target in PAGES.items():
        # ](../benchmarks/README.md) or ](../benchmarks/README.md#section), from a page at the top of docs/
        link = re.compile(r"\]\(\.\./" + re.escape(source) + r"(#[^)]*)?\)")
        markdown = link.sub(lambda m, page=target: f"]({page}{m.group(1) or ''})", markdown)
    return markdown
