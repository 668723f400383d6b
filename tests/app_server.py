"""What the app's tests share: tiny models to serve, a running app, and the browser that drives it.

``tiny_entries()`` builds the models (no training: the tests check that the page shows what the library
computes, not that the models are good); ``running_app(entries)`` starts the app on a free port of
127.0.0.1 and stops it; ``launch_chromium(playwright)`` starts Debian's Chromium (never a downloaded
one). ``docs/app_screenshots.py`` drives the page with the same functions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time

import torch

import pixelcnn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = "PIXELCNN_REQUIRE_BROWSER"  # 1: a missing Chromium, Playwright or Gradio fails the tests
VIEWPORT = {"width": 1280, "height": 900}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_entries():
    """Two tiny models: class-conditional binary 28x28 (mnist5k) and unconditional 17-level 8x8 (digits)."""
    from pixelcnn.app import AppModel

    torch.manual_seed(0)
    mnist = pixelcnn.build(
        "gated_pixelcnn", image_shape=(1, 28, 28), levels=2, num_classes=10, n_layers=2, hidden=8
    ).eval()
    digits = pixelcnn.build("pixelcnn", image_shape=(1, 8, 8), levels=17, n_layers=2, hidden=8).eval()
    return [
        AppModel("mnist-tiny", mnist, data="mnist5k", binarize="dynamic", reference_images=50),
        AppModel("digits-tiny", digits, data="digits", reference_images=50),
    ]


@contextlib.contextmanager
def running_app(entries):
    """The app serving ``entries`` on a free port of 127.0.0.1; yields the ``pixelcnn.app.Server``."""
    from pixelcnn import app

    server = app.start(entries, host="127.0.0.1", port=free_port())
    try:
        yield server
    finally:
        server.close()


def browser_missing() -> str | None:
    """None when the browser tests can run here, else why not."""
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class PageWatch:
    """A page's console errors and uncaught exceptions, collected while a test drives it."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.problems.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()


def draw_strokes(page, sketch_id: str, strokes) -> None:
    """Draw ``strokes`` (lists of (x, y) in -1..1 from the canvas centre) on a sketchpad with the mouse."""
    page.locator(f"#{sketch_id} button[aria-label='Brush']").click()
    box = page.locator(f"#{sketch_id} canvas").first.bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    half = min(box["width"], box["height"]) * 0.4  # the drawing square, inside the canvas element
    for stroke in strokes:
        points = [(centre_x + x * half, centre_y + y * half) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for start, end in zip(points, points[1:]):  # small steps, as a hand moves
            for t in (0.25, 0.5, 0.75, 1.0):
                page.mouse.move(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
        page.mouse.up()


SEVEN = [[(-0.5, -0.6), (0.5, -0.6), (0.0, 0.7)]]  # a 7: the top bar, then the stem


def wait_for_image(page, element_id: str, timeout_s: float = 120) -> None:
    page.wait_for_selector(f"#{element_id} img", state="visible", timeout=timeout_s * 1000)


def wait_for_text(page, element_id: str, text: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = page.locator(f"#{element_id}").inner_text()
        if text in found:
            return found
        time.sleep(0.2)
    shown = page.locator(f"#{element_id}").inner_text()
    raise AssertionError(f"#{element_id} never showed {text!r}; it shows {shown!r}")
