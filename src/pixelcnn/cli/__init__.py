"""The ``pixelcnn`` command. One module per group of commands, each adding its parsers with a handler:

    train.py        train, eval, demo, models, data
    generate.py     sample, complete
    autoencoder.py  interpolate, reconstruct, identity, identity-sample
    viz.py          viz receptive-field / softmax / nll-map / animate
    coding.py       compress, decompress, score
    app.py          app (the models in a browser)
    zoo.py          zoo (the trained models shipped with the package)
    common.py       the error types and exit rule, ``open_run`` (RUN -> model, config, data), shared flags

The modules import ``common`` and nothing else of each other (``demo`` borrows
``generate.complete_images``). Every subcommand's --help ends with examples,
and the tests run every one of them. Exit status: 0, 2 for a usage error, 1
for a failure at run time, 130 on Ctrl-C, 143 on SIGTERM; errors are one line on stderr.
"""
from __future__ import annotations

import argparse
import sys

from . import app, autoencoder, coding, generate, train, viz, zoo
from .common import (PROG, REPORTED, CommandError, OneLineParser, UsageError, exit_status, one_line, open_run,
                     pick_images, terminate_on_sigterm)
from .generate import complete_images
from .train import train_config_from_args

__all__ = ["CommandError", "UsageError", "build_parser", "complete_images", "main", "open_run", "pick_images",
           "train_config_from_args"]

GROUPS = (train, generate, autoencoder, viz, coding, zoo, app)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__, list_models, presets

    parser = OneLineParser(
        prog=PROG,
        description="Exact-likelihood autoregressive image models: PixelCNN, Gated / Conditional PixelCNN, "
                    "PixelRNN (Row LSTM, Diagonal BiLSTM, multi-scale), PixelCNN auto-encoder.",
        epilog="models: " + ", ".join(list_models()) + "\npresets: " + ", ".join(sorted(presets))
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
