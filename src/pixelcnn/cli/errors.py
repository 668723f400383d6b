"""The error types of the commands and the exit rule.

Exit rule (``exit_status``): 0 on success; 2 for a usage error (the command
line asks for something that cannot be done: a bad flag or value, a folder
that is not a run, a model or data set that does not fit the command); 1 for
a failure at run time (a file that cannot be read or written, a download that
fails, training that diverges); 130 when stopped with Ctrl-C, 143 with SIGTERM
(``pixelcnn train`` first saves a checkpoint when stopped during its steps). Every error is
one line on stderr, ``pixelcnn COMMAND: error: ...``, without a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading

PROG = "pixelcnn"


class CommandError(Exception):
    """A failure at run time, reported in one line; exit status 1."""

    exit_status = 1


class UsageError(CommandError, ValueError):
    """The command line asks for something that cannot be done, reported in one line; exit status 2."""

    exit_status = 2


# Exceptions reported as one line. A ValueError is the library's "the input you gave is wrong" (see
# DESIGN: bad images, an unknown name, a value out of range), so it is a usage error; the others are
# failures while doing a valid request.
REPORTED = (CommandError, ValueError, OSError, FloatingPointError, ImportError, RuntimeError)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``terminate_on_sigterm``): the command stops like on Ctrl-C; exit status 143 (128 + 15)."""


@contextlib.contextmanager
def terminate_on_sigterm():
    """While a command runs, SIGTERM raises ``Terminated`` (exit 143, one line, no traceback); ``pixelcnn train``
    installs its own handler for the steps (save a checkpoint, then stop)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(error: BaseException) -> int:
    """The exit status of a command that raised ``error`` (one of ``REPORTED`` or KeyboardInterrupt)."""
    if isinstance(error, Terminated):
        return 143
    if isinstance(error, KeyboardInterrupt):
        return 130
    if isinstance(error, CommandError):
        return error.exit_status
    return 2 if isinstance(error, ValueError) else 1


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
