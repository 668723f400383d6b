"""The fields of the config dataclasses (each model's config, ``TrainConfig``) and the checks of their values.

A field is declared with its help text, which becomes the --help of its flag (``cli.flags.add_dataclass_flags``):

    lr: float = option(1e-3, "peak learning rate, reached after warm-up")

Every check here reads ``check(name, value, ...)`` and returns None when the value is fine, else the one
message style of the library and the command line, ``NAME must be REQUIREMENT, got VALUE``:

    problems = [positive_int("batch_size", 0), fraction("beta1", 0.5)]    # ["batch_size must be ...", None]
    raise_problems(problems)          # ValueError("batch_size must be a positive integer, got 0")

A config collects the problems of all its fields and raises them together; the command line names its
flags (``--n must be a positive integer, got 0``) and argparse types leave the name out (argparse says
which flag). This module imports nothing of pixelcnn: every layer may use it.
"""

from __future__ import annotations

import dataclasses
import math

SEED_MAX = 2**64 - 1  # torch.manual_seed and torch.Generator.manual_seed take 64 bits

# A field's declared type (its annotation, without "| None") -> the Python types it accepts, in words.
FIELD_KINDS = {
    "int": ((int,), "an int"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "a string"),
    "dict": ((dict,), "a dict"),
    "tuple": ((tuple, list), "a list"),
}


# ------------------------------------------------------------------------------------- declaring a field
def option(default=dataclasses.MISSING, help: str = "", *, default_factory=dataclasses.MISSING):
    """A dataclass field with its ``help`` text (the --help of its flag, and documentation in the source)."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"help": help})


def field_help(field: dataclasses.Field) -> str:
    """The help text of a field declared with ``option`` ("" for a plain field)."""
    return field.metadata.get("help", "")


def annotation(field: dataclasses.Field) -> tuple[str, bool]:
    """(the field's declared type without "| None", whether None is allowed): ``float | None`` -> ("float", True).
    The annotation is a string under ``from __future__ import annotations``, else a type."""
    text = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return text.split(" | ")[0].strip(), "None" in text


# ------------------------------------------------------------------------------------- the message
def short(value, limit: int = 60) -> str:
    """repr(value), cut to ``limit`` characters: a config file may hold a megabyte in one field."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def must(name: str | None, requirement: str, value) -> str:
    """``NAME must be REQUIREMENT, got VALUE`` (without a name for argparse, which names the flag itself)."""
    return f"{name + ' ' if name else ''}must be {requirement}, got {short(value)}"


def raise_problems(problems, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` with the problems found (the None entries are fields that passed), joined by "; "."""
    found = [problem for problem in problems if problem]
    if found:
        raise error("; ".join(found))


# ------------------------------------------------------------------------------------- the checks
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """An int or float, not a bool and not NaN (``value == value``: math.isnan overflows on a huge int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def positive_int(name, value, *, optional: bool = False) -> str | None:
    """An integer >= 1 (or None when ``optional``)."""
    if (optional and value is None) or (_is_int(value) and value >= 1):
        return None
    return must(name, "a positive integer" + (" or None" if optional else ""), value)


def at_least(name, value, low: int) -> str | None:
    """An integer >= ``low``."""
    return None if _is_int(value) and value >= low else must(name, f"an integer >= {low}", value)


def odd_positive(name, value, *, optional: bool = False) -> str | None:
    """An odd integer >= 1: a centred kernel's size (or None when ``optional``)."""
    if (optional and value is None) or (_is_int(value) and value >= 1 and value % 2 == 1):
        return None
    return must(name, "odd and positive" + (" or None" if optional else ""), value)


def positive_number(name, value, *, optional: bool = False) -> str | None:
    """A finite number > 0 (or None when ``optional``)."""
    if (optional and value is None) or (_is_number(value) and 0 < value < math.inf):
        return None
    return must(name, "positive or None" if optional else "a positive number", value)


def non_negative(name, value, *, optional: bool = False) -> str | None:
    """A finite number >= 0 (or None when ``optional``)."""
    if (optional and value is None) or (_is_number(value) and 0 <= value < math.inf):
        return None
    return must(name, ">= 0" + (" or None" if optional else ""), value)


def fraction(name, value, *, zero: bool = True, one: bool = False, optional: bool = False) -> str | None:
    """A number in [0, 1) (``zero`` / ``one``: whether 0 and 1 are allowed), or None when ``optional``."""
    if optional and value is None:
        return None
    if _is_number(value) and (0 < value or (zero and value == 0)) and (value < 1 or (one and value == 1)):
        return None
    interval = f"{'[' if zero else '('}0, 1{']' if one else ')'}"
    return must(name, f"in {interval}" + (" or None" if optional else ""), value)


def one_of(name, value, choices) -> str | None:
    """One of ``choices`` (None may be one of them)."""
    return None if value in choices else must(name, f"one of {', '.join(map(str, choices))}", value)


def seed(name, value) -> str | None:
    """A random seed: an integer in 0..2**64-1."""
    return None if _is_int(value) and 0 <= value <= SEED_MAX else must(name, "an integer in 0..2**64-1", value)


def check_types(config) -> None:
    """Each field of the dataclass ``config`` holds its declared type (``int``, ``float | None``, ...), or a
    ValueError names the field, what it must be and what it holds. A config read from JSON may hold
    anything (a string, a list, NaN, 1e999 where an int belongs); this runs before any range check, so
    those compare numbers only. bool is not an int here, and an int is a float."""
    for f in dataclasses.fields(config):
        base, optional = annotation(f)
        value = getattr(config, f.name)
        if (value is None and optional) or base not in FIELD_KINDS:
            continue
        kinds, words = FIELD_KINDS[base]
        if not isinstance(value, kinds) or (base != "bool" and isinstance(value, bool)):
            raise ValueError(must(f.name, words + (" or None" if optional else ""), value))
