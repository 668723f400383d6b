"""The checks of config fields and flag values (``pixelcnn.fields``), and a config dataclass as flags
(``cli.flags.add_dataclass_flags``)."""

import argparse
import math
from dataclasses import dataclass

import pytest

from pixelcnn.cli.errors import UsageError
from pixelcnn.cli.flags import add_dataclass_flags, checked_type, positive
from pixelcnn.fields import (
    at_least,
    check_types,
    field_help,
    fraction,
    non_negative,
    odd_positive,
    one_of,
    option,
    positive_int,
    positive_number,
    raise_problems,
    seed,
)


@pytest.mark.parametrize(
    "problem, message",
    [
        (positive_int("n", 0), "n must be a positive integer, got 0"),
        (positive_int("n", True), "n must be a positive integer, got True"),
        (positive_int("n", "3"), "n must be a positive integer, got '3'"),
        (positive_int("n", None, optional=True), None),
        (at_least("levels", 1, 2), "levels must be an integer >= 2, got 1"),
        (odd_positive("k", 4), "k must be odd and positive, got 4"),
        (odd_positive("k", None, optional=True), None),
        (positive_number("lr", math.inf), "lr must be a positive number, got inf"),
        (positive_number("epochs", math.nan, optional=True), "epochs must be positive or None, got nan"),
        (positive_number("epochs", 10**400, optional=True), None),
        (non_negative("grad_clip", -1.0, optional=True), "grad_clip must be >= 0 or None, got -1.0"),
        (fraction("beta1", 1.0), "beta1 must be in [0, 1), got 1.0"),
        (fraction("final_lr_ratio", 1.0, one=True), None),
        (fraction("decay_rate", 0.0, zero=False, one=True), "decay_rate must be in (0, 1], got 0.0"),
        (one_of("optimizer", "sgd", ("adam", "rmsprop")), "optimizer must be one of adam, rmsprop, got 'sgd'"),
        (seed("seed", 2**64), f"seed must be an integer in 0..2**64-1, got {2**64}"),
        (positive_int(None, 0), "must be a positive integer, got 0"),
    ],
)
def test_each_check_says_name_requirement_and_value(problem, message):
    assert problem == message


def test_problems_are_raised_together_and_long_values_are_cut():
    with pytest.raises(ValueError, match=r"^a must be a positive integer, got 0; c must be >= 0, got -1$"):
        raise_problems([positive_int("a", 0), None, non_negative("c", -1)])
    with pytest.raises(UsageError, match="--n must be a positive integer, got -2"):
        positive("--n", -2)
    assert len(positive_int("n", "x" * 10_000)) < 120


@dataclass
class Example:
    size: int = option(3, "how many")
    rate: float | None = option(0.5, "how fast; None: not at all")
    name: str = option("a", "which one")
    fast: bool = option(False, "go fast")
    minutes: float = option(1.0, "minutes of it")
    plain: int = 0

    def __post_init__(self):
        check_types(self)


def test_types_are_checked_by_annotation():
    with pytest.raises(ValueError, match="size must be an int, got 2.5"):
        Example(size=2.5)
    with pytest.raises(ValueError, match="rate must be a number or None, got 'x'"):
        Example(rate="x")
    with pytest.raises(ValueError, match="fast must be true or false, got 1"):
        Example(fast=1)
    assert field_help(Example.__dataclass_fields__["size"]) == "how many"


def test_a_dataclass_becomes_flags_with_its_help_types_and_defaults():
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, Example, skip=("plain",), flags={"minutes": "--time"}, choices={"name": ("a", "b")})
    assert vars(parser.parse_args([])) == {}  # only the flags given reach the config
    given = parser.parse_args(["--size", "4", "--rate", "none", "--name", "b", "--fast", "--time", "2"])
    assert vars(given) == {"size": 4, "rate": None, "name": "b", "fast": True, "minutes": 2.0}
    text = " ".join(parser.format_help().split())
    assert "how many (default: 3)" in text and "'none' for None" in text and "--time TIME" in text
    assert "--plain" not in text and "--no-fast" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--name", "c"])

    defaults = argparse.ArgumentParser()
    add_dataclass_flags(defaults, Example, names=["size", "minutes"], keep_defaults=True)
    assert vars(defaults.parse_args([])) == {"size": 3, "minutes": 1.0}


def test_a_check_is_an_argparse_type():
    parse = checked_type(seed)
    assert parse("7") == 7
    for text in ("-1", "abc", str(2**64)):
        with pytest.raises(argparse.ArgumentTypeError, match="must be an integer in 0..2\\*\\*64-1"):
            parse(text)
