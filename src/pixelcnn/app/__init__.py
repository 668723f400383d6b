"""``pixelcnn app``: the models in a browser (Gradio), an optional extra: ``pip install 'pixelcnn[app]'``.

    from pixelcnn import app
    entries = [app.AppModel("mnist", pixelcnn.load("runs/mnist/model"), data="mnist5k", binarize="dynamic")]
    app.serve(entries, host="127.0.0.1", port=7860)          # blocks until Ctrl-C

Six tabs (``work.TABS``): draw and complete, sample, likelihood, compress,
new glyphs of an unseen font, look inside. ``work.py`` computes what they
show through the library's public functions, without Gradio; ``ui.py`` lays
out the page. Everything the app writes (its files and Gradio's uploads and
caches) lies in one temporary folder, removed when the app stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .work import TAB_TITLES, TABS, AppModel, tab_reasons

__all__ = ["AppModel", "TABS", "TAB_TITLES", "Server", "gradio_missing", "serve", "start", "tab_reasons"]

INSTALL_HINT = "pip install 'pixelcnn[app]'"


def gradio_missing() -> str | None:
    """None when Gradio can be imported, else the one line that says how to install it."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        return f"the app needs Gradio, which is not installed: {INSTALL_HINT}"
    return None


class Server:
    """A running app: its address, its temporary folder, and ``close()``."""

    def __init__(self, blocks, url: str, workdir: Path, previous_temp_dir: str | None = None):
        self.blocks, self.url, self.workdir = blocks, url, workdir
        self._previous_temp_dir = previous_temp_dir

    def close(self) -> None:
        try:
            self.blocks.close()
        finally:
            _restore("GRADIO_TEMP_DIR", self._previous_temp_dir)
            shutil.rmtree(self.workdir, ignore_errors=True)


def _restore(variable: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = value


def start(entries: list[AppModel], *, host: str = "127.0.0.1", port: int | None = None, quiet: bool = True) -> Server:
    """Start the app in a background thread and return at once (``Server.close()`` stops it)."""
    missing = gradio_missing()
    if missing:
        raise ImportError(missing)
    workdir = Path(tempfile.mkdtemp(prefix="pixelcnn-app-"))
    # Gradio keeps uploads and the files it serves under GRADIO_TEMP_DIR, read when its components and server are
    # made and again per streamed output: point it inside the app's own folder while the app runs (``close``
    # puts the previous value back), and send nothing anywhere.
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        from .ui import Page, build_blocks

        blocks = build_blocks(Page(entries, workdir))
        blocks.queue(default_concurrency_limit=1)
        _, url, _ = blocks.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            quiet=quiet,
            share=False,
            inbrowser=False,
            show_error=True,
            ssr_mode=False,
        )
    except BaseException:
        _restore("GRADIO_TEMP_DIR", previous)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Server(blocks, url, workdir, previous)


def serve(entries: list[AppModel], *, host: str = "127.0.0.1", port: int | None = None, say=print) -> None:
    """Start the app, say where it listens and how to stop it, and block until Ctrl-C (or SIGTERM)."""
    import time

    server = start(entries, host=host, port=port)
    say(
        f"pixelcnn app: serving {', '.join(e.name for e in entries)} at {server.url} (listening on {host} only"
        f"{'' if host in ('127.0.0.1', 'localhost') else ': reachable from other machines'}); "
        f"stop it with Ctrl-C",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()
