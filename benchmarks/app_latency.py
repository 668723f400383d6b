"""How long a person waits in ``pixelcnn app`` after pressing Complete: until the first completed row is on
the page, and until every completion is finished.

    python benchmarks/app_latency.py                       # zoo:mnist5k, where this installation has the zoo
    python benchmarks/app_latency.py runs/mnist            # a run folder (or model folder + --data NAME)
    python benchmarks/app_latency.py runs/mnist --repeats 1 --completions 2

The app runs in this process on a free port of 127.0.0.1 and is driven through ``gradio_client``, as
the browser drives it: the clock starts when the request is sent and stops when the first streamed
picture (one row drawn below the kept rows) arrives, and when the final result does. Beside it, the
same completion called directly (``model.complete`` with a callback): what the page adds is the
difference. Median of ``--repeats`` runs after one warm-up run. Prints the machine, a table, and
writes JSON (default runs/app_latency.json).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from pathlib import Path

import torch

from machine import command_line, default_out, describe, print_cells, print_machine, write_json
from pixelcnn import cli
from pixelcnn.app import start, work
from pixelcnn.cli.app import open_entries


def through_the_app(client, name: str, args) -> tuple[float, float, int]:
    """Seconds to the first streamed row and to the result of one Complete, and the frames received."""
    started = time.perf_counter()
    job = client.submit(
        name,
        "test image",
        None,
        None,
        args.image,
        args.known_rows,
        "most likely",
        args.completions,
        0,
        1.0,
        api_name="/complete",
    )
    first = None
    while not job.done():
        if first is None and job.outputs():
            first = time.perf_counter() - started
        time.sleep(0.002)
    job.result()
    total = time.perf_counter() - started
    return (total if first is None else first), total, len(job.outputs())


def in_the_library(entry, args) -> tuple[float, float]:
    """The same completion called directly: seconds to the first finished row, and to the end."""
    image, label = work.test_images(entry, [args.image])
    width = entry.model.image_shape[2]
    marks = []
    started = time.perf_counter()

    def callback(row, col, x):
        if not marks and col == width - 1:
            marks.append(time.perf_counter() - started)

    cond = int(label[0]) if entry.num_classes else None
    entry.model.complete(
        image.expand(args.completions, -1, -1, -1),
        args.known_rows,
        cond,
        generator=torch.Generator().manual_seed(0),
        callback=callback,
    )
    return marks[0], time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="RUN_OR_ZOO", help="the model (default: zoo:mnist5k)")
    parser.add_argument("--data", help="data set of a bare model folder")
    parser.add_argument("--known-rows", type=int, default=14, help="rows kept (default 14)")
    parser.add_argument("--completions", type=int, default=4, help="completions per press (default 4, the page's)")
    parser.add_argument("--image", type=int, default=0, help="test image completed (default 0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed presses after a warm-up (default 5)")
    parser.add_argument("--out", default=str(default_out("app_latency.json")))
    args = parser.parse_args(argv)
    from gradio_client import Client

    app_args = cli.build_parser().parse_args(
        ["app", *(args.runs or ["zoo:mnist5k"]), *(["--data", args.data] if args.data else [])]
    )
    entry = open_entries(app_args)[0]
    machine = describe()
    print_machine(machine)
    with socket.socket() as sock:  # a free port of 127.0.0.1
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start([entry], host="127.0.0.1", port=port)
    try:
        client = Client(server.url, verbose=False)
        through_the_app(client, entry.name, args)  # warm-up
        app_runs = [through_the_app(client, entry.name, args) for _ in range(args.repeats)]
    finally:
        server.close()
    in_the_library(entry, args)
    library_runs = [in_the_library(entry, args) for _ in range(args.repeats)]
    result = {
        "model": entry.name,
        "description": entry.describe(),
        "known_rows": args.known_rows,
        "completions": args.completions,
        "repeats": args.repeats,
        "app_first_row_s": statistics.median(r[0] for r in app_runs),
        "app_all_s": statistics.median(r[1] for r in app_runs),
        "app_frames": statistics.median(r[2] for r in app_runs),
        "library_first_row_s": statistics.median(r[0] for r in library_runs),
        "library_all_s": statistics.median(r[1] for r in library_runs),
        "machine": machine,
        "command": command_line(),
    }
    print_cells(
        [
            ["", "first completed row (s)", "all rows (s)"],
            ["pixelcnn app (press -> page)", f"{result['app_first_row_s']:.3f}", f"{result['app_all_s']:.3f}"],
            ["model.complete (direct)", f"{result['library_first_row_s']:.3f}", f"{result['library_all_s']:.3f}"],
        ]
    )
    write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
