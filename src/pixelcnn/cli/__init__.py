"""The ``pixelcnn`` command. One module per group of commands, each adding its parsers with a handler.

Where each command is defined:

    train, eval, demo, models, data             train.py
    sample, complete                            generate.py
    interpolate, reconstruct, identity,         autoencoder.py
    identity-sample
    viz receptive-field / softmax / nll-map /   viz.py
    animate
    compress, decompress, score                 coding.py
    app (the models in a browser)               app.py
    zoo (the trained models shipped)            zoo.py

What they share, one concern a module:

    errors.py    the error types and the exit rule (one line on stderr)
    flags.py     the shared flags, declared once each (RUN, --out, --seed and the draw flags, --device, ...)
                 and the checks of their values; ``add_dataclass_flags``: a config dataclass's fields as flags
    runs.py      ``open_run``: RUN (run folder, model folder or zoo:NAME) -> model, config, data
    images.py    ``pick_images`` (which test images) and ``scale_for`` (how large they are drawn)
    paths.py     ``output_path``: the one check of every path a command writes
    outputs.py   the tables and JSON files a command writes, and which of them pixelcnn wrote

The command modules import these and nothing else of each other (``demo`` borrows
``generate.complete_images``, ``sample`` the file writers of ``coding``). Every subcommand's --help ends
with examples, and the tests run every one of them. Exit status: 0, 2 for a usage error, 1 for a
failure at run time, 130 on Ctrl-C, 143 on SIGTERM; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from . import app, autoencoder, coding, generate, train, viz, zoo
from .errors import PROG, REPORTED, CommandError, UsageError, exit_status, one_line, terminate_on_sigterm
from .flags import OneLineParser
from .generate import complete_images
from .images import pick_images
from .runs import open_run
from .train import train_config_from_args

__all__ = [
    "CommandError",
    "UsageError",
    "build_parser",
    "complete_images",
    "main",
    "open_run",
    "pick_images",
    "train_config_from_args",
]

GROUPS = (train, generate, autoencoder, viz, coding, zoo, app)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__, list_models, presets

    parser = OneLineParser(
        prog=PROG,
        description="Exact-likelihood autoregressive image models: PixelCNN, Gated / Conditional PixelCNN, "
        "PixelRNN (Row LSTM, Diagonal BiLSTM, multi-scale), PixelCNN auto-encoder.",
        epilog="models: "
        + ", ".join(list_models())
        + "\npresets: "
        + ", ".join(sorted(presets))
        + "\n\nstart with: pixelcnn demo     (see pixelcnn COMMAND --help)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pixelcnn {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def subcommand_parsers(parser: argparse.ArgumentParser | None = None, prefix: tuple = ()) -> dict:
    """Every (sub)command's parser by its words, e.g. ("viz", "animate") -> parser (for the tests and --help)."""
    parser = parser or build_parser()
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[prefix + (name,)] = child
                found.update(subcommand_parsers(child, prefix + (name,)))
    return found


def main(argv: list[str] | None = None) -> int:
    """Run ``pixelcnn ARGS``; returns the exit status (argparse exits with 2 on a bad command line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    name = " ".join(filter(None, [args.command, getattr(args, "viz_command", None)]))
    try:
        with terminate_on_sigterm():
            report = args.handler(args)
    except KeyboardInterrupt as interrupt:
        print(f"{PROG} {name}: aborted (the last checkpoint saved, if any, is intact)", file=sys.stderr)
        return exit_status(interrupt)
    except REPORTED as error:
        print(f"{PROG} {name}: error: {one_line(error)}", file=sys.stderr)
        return exit_status(error)
    if report:
        print(report)
    return 0
