"""The screenshots of docs/app.md: the app driven in Chromium (Playwright) as a person uses it, at a fixed size.

    python docs/app_screenshots.py                          # zoo:mnist5k (where this installation has the zoo)
    python docs/app_screenshots.py runs/mnist --out docs    # a run folder instead

Draws a 7 and completes it, samples, scores a test image, compresses eight, and shows a receptive
field; writes app-complete.png, app-sample.png, app-likelihood.png, app-compress.png and
app-inside.png (1280 x 900 each, 256 colours) into --out. Needs Debian's Chromium
(/usr/bin/chromium) and the playwright package; it downloads nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' browser helpers

from app_server import (
    SEVEN,
    VIEWPORT,
    PageWatch,
    browser_missing,
    draw_strokes,
    free_port,  # noqa: E402
    launch_chromium,
    open_tab,
    wait_for_image,
    wait_for_text,
)

SHOTS = ("complete", "sample", "likelihood", "compress", "inside")


def shoot(page, path: Path) -> Path:
    """The page as the viewport shows it, in 256 colours (a small PNG)."""
    from PIL import Image

    page.evaluate("window.scrollTo(0, 0)")  # the top: the tab's inputs and its results
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=256).save(path, optimize=True)
    return path


def take(url: str, out: Path, timeout_s: float = 600) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            watch = PageWatch(page)
            page.goto(url)
            page.wait_for_selector("#complete-button", timeout=timeout_s * 1000)
            draw_strokes(page, "complete-sketch", SEVEN)
            page.click("#complete-button")
            wait_for_image(page, "complete-grid", timeout_s)
            written.append(shoot(page, out / "app-complete.png"))
            open_tab(page, "Sample")
            page.click("#sample-button")
            wait_for_image(page, "sample-grid", timeout_s)
            written.append(shoot(page, out / "app-sample.png"))
            open_tab(page, "Likelihood")
            page.click("#likelihood-button")
            wait_for_text(page, "likelihood-words", "NLL", timeout_s)
            wait_for_image(page, "likelihood-map", timeout_s)
            written.append(shoot(page, out / "app-likelihood.png"))
            open_tab(page, "Compress")
            page.click("#compress-button")
            wait_for_text(page, "compress-words", "Round trip", timeout_s)
            written.append(shoot(page, out / "app-compress.png"))
            open_tab(page, "Look inside")
            page.click("#inside-button")
            wait_for_image(page, "inside-field", timeout_s)
            written.append(shoot(page, out / "app-inside.png"))
            if watch.problems:
                raise RuntimeError("the page reported errors: " + "; ".join(watch.problems))
        finally:
            browser.close()
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="RUN_OR_ZOO", help="models to serve (default: zoo:mnist5k)")
    parser.add_argument("--data", help="data set of a bare model folder")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="folder (default: docs/)")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        raise SystemExit(f"app_screenshots.py: {missing}")
    from pixelcnn import cli
    from pixelcnn.app import start
    from pixelcnn.cli.app import open_entries

    app_args = cli.build_parser().parse_args(
        ["app", *(args.runs or ["zoo:mnist5k"]), *(["--data", args.data] if args.data else [])]
    )
    server = start(open_entries(app_args), host="127.0.0.1", port=free_port())
    try:
        for path in take(server.url, Path(args.out)):
            print(f"wrote {path}")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
