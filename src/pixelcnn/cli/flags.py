"""The flags the commands share, declared once each: RUN, --out, --force, --device, --precision, the data
flags and the draw flags (--seed among them), and the checks of their values.

Each command module adds its own parsers (``add_command``) and calls these for the flags it shares with
others, so one flag reads the same in every command's --help.
"""

from __future__ import annotations

import argparse
import dataclasses

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
    return subparsers.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# ------------------------------------------------------------------------------------- what a command reads and writes
def add_run_argument(
    parser, *, models: str | None = None, help_text: str = RUN_HELP, optional: bool = False, option: str | None = None
) -> None:
    """RUN, the saved model a command reads (``runs.open_run`` opens it): a positional argument, or the required
    flag ``option`` (``--run``); ``models`` names the models the command takes, ``optional`` lets RUN be left out."""
    help_text = help_text if models is None else f"{models}: {help_text}"
    if option is not None:
        parser.add_argument(option, metavar="RUN", required=True, help=help_text)
    else:
        parser.add_argument("run", metavar="RUN", nargs="?" if optional else None, help=help_text)


def add_out_flag(
    parser, what: str = "PNG file to write", *, default: str | None = None, required: bool | None = None
) -> None:
    """--out, what the command writes (``paths.output_path`` checks it before anything is written); required
    unless it has a ``default`` (or ``required=False``: another flag may name the output instead)."""
    parser.add_argument(
        "--out",
        default=default,
        required=default is None if required is None else required,
        help=what if default is None else f"{what} (default: {default})",
    )


def add_force_flag(parser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="replace an existing output file that pixelcnn did not write"
    )


# ------------------------------------------------------------------------------------- how and on what it runs
def add_device_flag(parser) -> None:
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_precision_flag(parser, default: str = "auto") -> None:
    """--precision: what the network runs in (the head always scores and draws in float32 or better)."""
    from ..hardware import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=default,
        help=f"network precision: auto (bf16 on a GPU or a CPU with bf16 units, else fp32), fp32, "
        f"bf16, fp16 (CUDA); the head is float32 (default: {default})",
    )


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
        parser.add_argument(
            "--method",
            default="auto",
            choices=["auto", "fast", "naive"],
            help="sampler: auto, fast or naive (default: auto)",
        )
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
            value = text  # not even a number: the check says what it must be
        problem = check(None, value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = check.__name__
    return parse


seed = checked_type(fields.seed)  # larger seeds overflowed inside torch
positive_int = checked_type(fields.positive_int)


def positive(name: str, value) -> None:
    """A count given on the command line (--n, --batch-size, ...) is a positive integer, or a usage error."""
    fields.raise_problems([fields.positive_int(name, value)], UsageError)


def check_temperature(value: float) -> None:
    fields.raise_problems([fields.positive_number("--temperature", value)], UsageError)


# ------------------------------------------------------------------------------------- a config dataclass as flags
def _none_or(convert):
    """An argparse type: ``convert``, or None for the words none / null (a field typed ``X | None``)."""

    def parse(text: str):
        return None if text.lower() in ("none", "null") else convert(text)

    parse.__name__ = convert.__name__
    return parse


def add_field_flag(
    parser,
    field: dataclasses.Field,
    help_text: str,
    *,
    flag: str | None = None,
    choices=None,
    default=argparse.SUPPRESS,
) -> None:
    """One flag for a dataclass field: ``flag`` (default: ``batch_size`` -> ``--batch-size``), typed by the field's
    annotation (``int``, ``float``, ``str``, each ``| None`` with 'none' for None; ``bool`` as --x / --no-x), its
    value stored under the field's name. ``default`` SUPPRESS leaves a flag that was not given out of the namespace."""
    kind, optional = fields.annotation(field)
    flag = flag or "--" + field.name.replace("_", "-")
    help_text = help_text.replace("%", "%%")
    if kind == "bool":
        parser.add_argument(
            flag, dest=field.name, action=argparse.BooleanOptionalAction, default=default, help=help_text
        )
        return
    convert = {"int": int, "float": float}.get(kind, str)
    if optional:
        convert, help_text = _none_or(convert), help_text + "; 'none' for None"
    parser.add_argument(
        flag,
        dest=field.name,
        type=convert,
        default=default,
        choices=choices,
        metavar="{" + ",".join(map(str, choices)) + "}" if choices else flag[2:].replace("-", "_").upper(),
        help=help_text,
    )


def add_dataclass_flags(
    parser,
    cls,
    *,
    names=None,
    skip=(),
    flags: dict | None = None,
    choices: dict | None = None,
    keep_defaults: bool = False,
) -> None:
    """A flag for each field of the dataclass ``cls``, with the help of its ``fields.option`` and its default:
    ``lr: float = option(1e-3, "peak learning rate")`` -> ``--lr LR  peak learning rate (default: 0.001)``.

    ``names``: only these fields, in this order (default: every field of ``cls`` but those in ``skip``);
    ``flags``: field -> its flag where that is not the field's name (``{"decoder_minutes": "--minutes"}``);
    ``choices``: field -> the values it takes; ``keep_defaults``: a flag not given parses to the field's default
    (else it is left out of the namespace, so that only the flags given reach the config).
    """
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    flags, choices = flags or {}, choices or {}
    for name in names if names is not None else [name for name in by_name if name not in skip]:
        field = by_name[name]
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        add_field_flag(
            parser,
            field,
            f"{fields.field_help(field)} (default: {default!r})",
            flag=flags.get(name),
            choices=choices.get(name),
            default=default if keep_defaults else argparse.SUPPRESS,
        )


def add_image_file_flags(parser) -> None:
    """--resize and --convert: what may happen to an image file that does not fit the model as it is."""
    parser.add_argument(
        "--resize",
        action="store_true",
        help="scale and centre-crop image files to the model's size instead of refusing them",
    )
    parser.add_argument(
        "--convert",
        action="store_true",
        help="accept image files whose pixels change when read for this model (a grey image "
        "thresholded for a binary model, colour to grey, 16 bits to 8), instead of refusing "
        "them; each conversion is reported",
    )
