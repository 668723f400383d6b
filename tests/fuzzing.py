"""What the fuzz tests share: hostile values, corrupted files, and the one rule for their outcomes.

The rule (issue "Nothing lost, nobody let in", item 7): a fuzzed call of the
public API ends in a correct result or a one-line ``ValueError``; a fuzzed
command ends with exit status 0, or 2 and exactly one line on stderr,
``pixelcnn COMMAND: error: ...`` (argparse's own usage errors are one line
too). Anything else (another exception, a traceback, a second line, a hang on
a huge allocation) fails the test. A clear error is allowed for hostile input
only: a call marked ``valid=True`` (the test drew a valid input) must give a
result, so that a change which wrongly refuses valid input fails too.

Every checked call is counted in ``OUTCOMES`` (target -> Counter of outcome),
which ``benchmarks/faults.py`` prints after running the same tests with more
examples. ``EXAMPLES`` is the quick suite's budget per test (seconds in all).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import io
import json
import math
import os
import struct
import zlib

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("PIXELCNN_FUZZ_EXAMPLES", "15"))
RANDOM = bool(os.environ.get("PIXELCNN_FUZZ_RANDOM"))  # fresh examples each run (the harness), not the fixed ones

# The quick suite: reproducible (derandomized), no example database written into the tree, no deadline
# (the shared CPU may be busy). benchmarks/faults.py sets PIXELCNN_FUZZ_EXAMPLES and PIXELCNN_FUZZ_RANDOM.
quick = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
RESULT, CLEAR_ERROR = "result", "clear error"


def _write_report() -> None:
    """At exit, ``summary()`` as JSON to $PIXELCNN_FUZZ_REPORT (how the harness reads the counts)."""
    with open(os.environ["PIXELCNN_FUZZ_REPORT"], "w") as f:
        json.dump(summary(), f)


if os.environ.get("PIXELCNN_FUZZ_REPORT"):
    atexit.register(_write_report)


class UnclearOutcome(AssertionError):
    """A fuzzed call ended in something other than a result or a clear error."""


# ----------------------------------------------------------------------------------- outcomes
def refused_valid_input(target: str, what: str) -> UnclearOutcome:
    """Count and describe a clear error given to a valid input: as wrong as a traceback."""
    OUTCOMES[target]["unclear: valid input refused"] += 1
    return UnclearOutcome(f"{target}: a valid input was refused: {what}")


def api_call(target: str, call, *, check=None, errors: tuple = (ValueError,), valid: bool = False):
    """Run ``call()``; a result (checked by ``check(result)`` when given) or a one-line ValueError is allowed.

    ``errors`` widens the allowed errors where the input names a file that is not there
    (``FileNotFoundError``, naming it). ``valid``: the input is valid, only a result is allowed.
    Returns the result, or None after a clear error. Anything else is counted as unclear and raised.
    """
    try:
        result = call()
    except errors as err:
        message = str(err)
        if not message.strip() or "\n" in message.strip():
            OUTCOMES[target][f"unclear: {type(err).__name__} of {message.count(chr(10)) + 1} lines"] += 1
            raise UnclearOutcome(f"{target}: a {type(err).__name__} that is not one line: {message!r}") from err
        if valid:
            raise refused_valid_input(target, f"{type(err).__name__}: {message}") from err
        OUTCOMES[target][CLEAR_ERROR] += 1
        return None
    except Exception as err:
        OUTCOMES[target][f"unclear: {type(err).__name__}"] += 1
        raise UnclearOutcome(f"{target}: {type(err).__name__}: {err}") from err
    if check is not None:
        try:
            check(result)
        except AssertionError:
            OUTCOMES[target]["unclear: wrong result"] += 1
            raise
    OUTCOMES[target][RESULT] += 1
    return result


def cli_call(target: str, argv: list[str], *, check=None, valid: bool = False) -> int:
    """Run ``pixelcnn ARGV`` in this process; exit 0 (then ``check()``) or exit 2 with one error line is allowed
    (``valid``: the command line is valid, only exit 0 is)."""
    from pixelcnn import cli

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main([str(a) for a in argv])
            except SystemExit as exit_:  # argparse: --help, or a bad command line
                status = exit_.code if isinstance(exit_.code, int) else 2
    except Exception as error:  # a traceback: never allowed
        OUTCOMES[target][f"unclear: {type(error).__name__}"] += 1
        raise UnclearOutcome(
            f"{target}: pixelcnn {' '.join(map(str, argv))} raised {type(error).__name__}: {error}"
        ) from error
    lines = err.getvalue().strip().splitlines()
    if status == 0:
        if check is not None:
            try:
                check()
            except AssertionError:
                OUTCOMES[target]["unclear: wrong result"] += 1
                raise
        OUTCOMES[target][RESULT] += 1
        return 0
    errors = [line for line in lines if "error:" in line]
    if valid:
        raise refused_valid_input(
            target, f"pixelcnn {' '.join(map(str, argv))} exited with {status}: {err.getvalue()[-600:]!r}"
        )
    if status == 2 and len(errors) == 1 and errors[0] == lines[-1] and "Traceback" not in err.getvalue():
        OUTCOMES[target][CLEAR_ERROR] += 1
        return 2
    OUTCOMES[target][f"unclear: exit {status}"] += 1
    raise UnclearOutcome(
        f"{target}: pixelcnn {' '.join(map(str, argv))} exited with {status} and stderr {err.getvalue()[-600:]!r}"
    )


def summary() -> list[dict]:
    """Per target: cases tried, clear errors, results, unclear outcomes (for the harness's table)."""
    rows = []
    for target, counts in sorted(OUTCOMES.items()):
        if target.startswith("self-test") or target.endswith("(set-up)"):  # not fuzzed inputs
            continue
        tried = sum(counts.values())
        unclear = {k: v for k, v in counts.items() if k.startswith("unclear")}
        rows.append(
            {
                "target": target,
                "tried": tried,
                "results": counts[RESULT],
                "clear_errors": counts[CLEAR_ERROR],
                "unclear": unclear,
                "allowed_rate": (tried - sum(unclear.values())) / tried if tried else 1.0,
            }
        )
    return rows


# ----------------------------------------------------------------------------------- hostile values
HUGE_INTS = [2**31, 2**32 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]
NON_FINITE = [math.nan, math.inf, -math.inf]

hostile_number = st.one_of(
    st.integers(-3, 12),
    st.sampled_from(HUGE_INTS),
    st.sampled_from(NON_FINITE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1e-300, 1e300, -0.0]),
)
# Anything a JSON file or a careless caller might hand over in place of a number.
hostile_value = st.one_of(
    hostile_number,
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.lists(st.integers(-2, 9), max_size=4).map(tuple),
    st.lists(st.integers(-2, 9), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
# What a command line may hold where a number is expected.
hostile_arg = st.one_of(
    st.integers(-3, 12).map(str),
    st.sampled_from([str(v) for v in HUGE_INTS]),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e400",
            "-1e400",
            "0",
            "-0",
            "0.0",
            "1e-320",
            "",
            " ",
            "1_000",
            "0x10",
            "abc",
            "--",
            "1.5",
            "٣",
            "None",
            "null",
            "[]",
            "{}",
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
)


def json_values(max_leaves: int = 12):
    """Arbitrary JSON values: wrong types, huge and non-finite numbers, nesting."""
    leaves = st.one_of(st.none(), st.booleans(), hostile_number, st.text(max_size=10))
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=max_leaves,
    )


def deeply_nested(depth: int) -> str:
    """JSON text nested ``depth`` levels (Python's json raises RecursionError past about a thousand)."""
    return "[" * depth + "]" * depth


@st.composite
def hostile_json_text(draw, valid: dict | None = None) -> str:
    """A config file's text: ``valid`` with one field replaced, a random JSON value, deep nesting,
    huge numbers, or bytes that are not JSON at all."""
    kind = draw(st.sampled_from(["field", "field", "field", "value", "deep", "huge", "garbage", "truncated"]))
    if kind == "field" and valid:
        path = draw(st.sampled_from(sorted(_paths(valid))))
        changed = json.loads(json.dumps(valid))
        _set(changed, path, draw(st.one_of(hostile_value, json_values(4))))
        return json.dumps(changed)
    if kind == "deep":
        return deeply_nested(draw(st.sampled_from([1_000, 10_000, 100_000])))
    if kind == "huge":
        return draw(
            st.sampled_from(
                [
                    "1" * 5000,
                    "1e999999",
                    "-1e999999",
                    '{"a": ' + "9" * 100_000 + "}",
                    "[" + ",".join(["1"] * 1000) + "]",
                    "NaN",
                    "Infinity",
                ]
            )
        )
    if kind == "garbage":
        return draw(st.binary(max_size=64)).decode("latin-1")
    if kind == "truncated" and valid:
        text = json.dumps(valid)
        return text[: draw(st.integers(0, len(text) - 1))]
    return json.dumps(draw(json_values()), allow_nan=True)


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix + (key,)
            yield from _paths(inner, prefix + (key,))


def _set(value, path, new):
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


# ----------------------------------------------------------------------------------- corrupted files
@st.composite
def corrupted_bytes(draw, original: bytes) -> bytes:
    """``original`` truncated, with bytes flipped, cut, or replaced by other bytes, or empty."""
    kind = draw(st.sampled_from(["truncate", "flip", "flip", "extend", "replace", "empty", "header"]))
    if kind == "truncate":
        return original[: draw(st.integers(0, max(0, len(original) - 1)))]
    if kind == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "extend":
        return original + draw(st.binary(min_size=1, max_size=32))
    if kind == "replace":
        return draw(st.binary(max_size=256))
    if kind == "header":  # a safetensors-style length prefix that lies (huge, zero or past the end)
        length = draw(st.sampled_from([0, 1, 2**31, 2**63 - 1, 2**64 - 1, len(original)]))
        return struct.pack("<Q", length) + original[8:]
    return b""


def png_bytes(width: int, height: int, *, grey: bool = True, body: bytes | None = None) -> bytes:
    """A PNG file of ``width`` x ``height``; ``body`` replaces the compressed pixels (a lie about the size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels = 1 if grey else 3
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if grey else 2, 0, 0, 0)
    if body is None:
        raw = b"".join(b"\x00" + bytes((x * 37 + y * 11) % 256 for x in range(width * channels)) for y in range(height))
        body = zlib.compress(raw)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
