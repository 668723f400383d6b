"""``pixelcnn app`` in a real browser: Debian's Chromium driven by Playwright, as a person would use the page.

Skipped when Chromium, Playwright or Gradio is missing, unless PIXELCNN_REQUIRE_BROWSER=1 (CI sets it),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from app_server import (
    REQUIRE_BROWSER,
    SEVEN,
    VIEWPORT,
    PageWatch,
    browser_missing,
    draw_strokes,
    launch_chromium,
    open_tab,
    running_app,
    tiny_entries,
    wait_for_image,
    wait_for_text,
)

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    from pixelcnn.app import gradio_missing

    return browser_missing() or gradio_missing()


def _need_browser() -> None:
    missing = _missing()
    if missing:
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{REQUIRE_BROWSER}=1 but the browser tests cannot run: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def page():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with running_app(tiny_entries()) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.watch = PageWatch(page)
            page.goto(server.url)
            page.wait_for_selector("#complete-button", timeout=300_000)  # a loaded machine: slow
            yield page
        finally:
            browser.close()


def test_draw_then_complete(page):
    draw_strokes(page, "complete-sketch", SEVEN)
    page.click("#complete-button")
    wait_for_image(page, "complete-grid")
    words = wait_for_text(page, "complete-words", "rows kept as given")
    assert "drawing inverted" in words and "the most likely given the kept rows" in words
    assert page.locator("#complete-live img").is_visible()
    assert page.watch.problems == []


def test_sample(page):
    open_tab(page, "Sample")
    page.click("#sample-button")
    wait_for_image(page, "sample-grid")
    assert "done" in wait_for_text(page, "sample-words", "done")
    assert page.watch.problems == []


def test_compress(page):
    open_tab(page, "Compress")
    page.click("#compress-button")
    assert "identical bit for bit" in wait_for_text(page, "compress-words", "identical bit for bit")
    assert "images\n.pxcz" in page.locator("#compress-file").inner_text()  # the file to download
    assert page.watch.problems == []


def test_an_unfit_tab_is_disabled_with_its_reason(page):
    open_tab(page, "New glyphs of an unseen font")
    assert "needs the model of an identity run" in wait_for_text(page, "glyphs-reason", "Not for this model")
    assert page.locator("#glyphs-button").is_disabled()
    page.locator("#model input").click()
    page.get_by_role("option", name="digits-tiny").click()
    open_tab(page, "Draw and complete")
    wait_for_text(page, "about", "unconditional")
    assert page.watch.problems == []


def test_the_documented_screenshot_command_writes_its_pictures(tmp_path, monkeypatch):
    """docs/app.md's ``python docs/app_screenshots.py runs/gated --out docs``, on a tiny model at runs/gated."""
    import pixelcnn
    from doc_commands import documented_commands

    _need_browser()
    (command,) = [
        c for c in documented_commands(ROOT / "docs" / "app.md") if c.argv[1:2] == ["docs/app_screenshots.py"]
    ]
    monkeypatch.chdir(tmp_path)
    model = pixelcnn.build("pixelcnn", image_shape=(1, 8, 8), levels=17, n_layers=1, hidden=4)
    pixelcnn.save(model, tmp_path / command.argv[2])  # runs/gated: a model folder here
    # A process of its own: Playwright's sync API refuses to run where another test left an asyncio loop.
    done = subprocess.run(
        [sys.executable, str(ROOT / command.argv[1]), *command.argv[2:], "--data", "digits"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shots = sorted((tmp_path / "docs").glob("app-*.png"))
    assert [p.name for p in shots] == sorted(
        f"app-{name}.png" for name in ("complete", "sample", "likelihood", "compress", "inside")
    )
    assert all(Image.open(p).size == (VIEWPORT["width"], VIEWPORT["height"]) for p in shots)
