"""The flags the commands share, declared once each: RUN, --out, --force, --device, --precision, the data
flags and the draw flags (--seed among them), and the checks of their values.

Each command module adds its own parsers (``add_command``) and calls these for the flags it shares with
others, so one flag reads the same in every command's --help.
"""
from __future__ import annotations

import argparse

from .. import fields
from .errors import UsageError

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (default: auto)"
RUN_HELP = "run folder (pixelcnn train --out), model folder (pixelcnn.save) or zoo:NAME"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line: the problem and where to find help (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_command(subparsers, name: str, help_text: str, examples: str, *, description: str | None = None):
    """A subcommand whose --help ends with ``examples`` (lines of ``pixelcnn ...``, comments allowed)."""
    return subparsers.add_parser(name, help=help_text, description=description or help_text,
                                 epilog="examples:\n" + examples.strip("\n"),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


# ------------------------------------------------------------------------------------- what a command reads and writes
def add_run_argument(parser, *, models: str | None = None, help_text: str = RUN_HELP, optional: bool = False,
                     option: str | None = None) -> None:
    """RUN, the saved model a command reads (``runs.open_run`` opens it): a positional argument, or the required
    flag ``option`` (``--run``); ``models`` names the models the command takes, ``optional`` lets RUN be left out."""
    help_text = help_text if models is None else f"{models}: {help_text}"
    if option is not None:
        parser.add_argument(option, metavar="RUN", required=True, help=help_text)
    else:
        parser.add_argument("run", metavar="RUN", nargs="?" if optional else None, help=help_text)


def add_out_flag(parser, what: str = "PNG file to write", *, default: str | None = None,
                 required: bool | None = None) -> None:
    """--out, what the command writes (``paths.output_path`` checks it before anything is written); required
    unless it has a ``default`` (or ``required=False``: another flag may name the output instead)."""
    parser.add_argument("--out", default=default, required=default is None if required is None else required,
                        help=what if default is None else f"{what} (default: {default})")


def add_force_flag(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output file that pixelcnn did not write")


# ------------------------------------------------------------------------------------- how and on what it runs
def add_device_flag(parser) -> None:
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_precision_flag(parser, default: str = "auto") -> None:
    """--precision: what the network runs in (the head always scores and draws in float32 or better)."""
    from ..hardware import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help=f"network precision: auto (bf16 on a GPU or a CPU with bf16 units, else fp32), fp32, "
                             f"bf16, fp16 (CUDA); the head is float32 (default: {default})")


def add_data_flags(parser, *, split: bool = True) -> None:
    """--data, --binarize (and --split): which images a command reads (default: those the run trained on)."""
    parser.add_argument("--data", help="data set (default: the run's); needed for a bare model folder")
    parser.add_argument("--binarize", choices=["dynamic", "threshold"], help="binarization (default: the run's)")
    if split:
        parser.add_argument("--split", choices=["test", "train"], default="test", help="split (default: test)")


def add_draw_flags(parser, *, sampler: bool = True, scale: bool = True, seeds: str = "the draws") -> None:
    """--seed (of ``seeds``), and with ``sampler`` --temperature and --method (and with ``scale`` --scale): the
    flags of the commands that draw samples; the one declaration of --seed."""
    parser.add_argument("--seed", type=seed, default=0, help=f"random seed of {seeds}, 0..2**64-1 (default: 0)")
    if sampler:
        parser.add_argument("--temperature", type=float, default=1.0, help="divides the logits (default: 1.0)")
        parser.add_argument("--method", default="auto", choices=["auto", "fast", "naive"],
                            help="sampler: auto, fast or naive (default: auto)")
    if scale:
        parser.add_argument("--scale", type=int, help="screen pixels per image pixel (default: about 56 px an image)")


# ------------------------------------------------------------------------------------- checks of flag values
def checked_type(check, convert=int):
    """An argparse type: the text ``convert``-ed, then checked by one of ``pixelcnn.fields``' checks; a problem
    is argparse's one-line error (``argument --seed: must be an integer in 0..2**64-1, got -1``)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = text                        # not even a number: the check says what it must be
        problem = check(None, value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = check.__name__
    return parse


seed = checked_type(fields.seed)                # larger seeds overflowed inside torch
positive_int = checked_type(fields.positive_int)


def positive(name: str, value) -> None:
    """A count given on the command line (--n, --batch-size, ...) is a positive integer, or a usage error."""
    fields.raise_problems([fields.positive_int(name, value)], UsageError)


def check_temperature(value: float) -> None:
    fields.raise_problems([fields.positive_number("--temperature", value)], UsageError)
