"""What a subcommand of ``specmae`` is, and how its errors reach the user.

A :class:`Command` is a name, a one-line summary, a description for its ``--help``, a function
adding its arguments to an ``argparse`` parser and one running it on the parsed arguments.
:func:`run` runs one: a **user error** ends the process with exit status 2 and one line on
standard error (``specmae export: error: …``), no traceback; any other exception is an internal
error and propagates with its traceback.

User errors are: a bad path (``FileNotFoundError``, ``FileExistsError``, ``IsADirectoryError``,
``NotADirectoryError``, ``PermissionError``), a :class:`UsageError`, and a ``ValueError`` or
``ImportError`` raised by terratorch-specmae's own code, whose messages say what was wrong with the
input and what to do (checkpoints that are not what the command takes, unsupported image sizes,
unknown catalogue names, weights not in the cache while offline …). The same exceptions raised
inside a third-party library are internal errors. With ``SPECMAE_TRACEBACK=1`` a user error shows
its traceback too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
TRACEBACK_ENV = "SPECMAE_TRACEBACK"
PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


class UsageError(ValueError):
    """A user error a command found in its arguments: exit status 2 and this message."""


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # one line, in the list of subcommands
    description: str  # the subcommand's --help text
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]

    def parser(self, prog: str) -> argparse.ArgumentParser:
        """A stand-alone parser of this command under ``prog`` (what a deprecated command name uses)."""
        parser = argparse.ArgumentParser(
            prog=prog, description=self.description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        self.add_arguments(parser)
        return parser


def _raised_by_us(err: BaseException) -> bool:
    """Whether the innermost frame that raised ``err`` is terratorch-specmae's own code."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR)


def is_user_error(err: BaseException) -> bool:
    if isinstance(err, (*PATH_ERRORS, UsageError)):
        return True
    return isinstance(err, ValueError | ImportError) and _raised_by_us(err)


def one_line(err: BaseException) -> str:
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__


def run(command: Command, args: argparse.Namespace, prog: str) -> None:
    """``command.run(args)``; a user error exits with status 2 and ``<prog>: error: <message>`` on stderr."""
    try:
        command.run(args)
    except Exception as err:
        if not is_user_error(err) or os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0"):
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(2) from None
