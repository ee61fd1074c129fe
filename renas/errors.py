"""User-facing errors: one clear line, no traceback, non-zero exit."""

from __future__ import annotations

import errno
import os
import sys

#: errno values that mean "no room left": the disk is full or the user's quota is used up
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def command(job: str, source: str | None = None) -> str:
    """How the user started ``job`` (``search``, ``train``, ``compare``), for the commands
    messages suggest: ``renas-<job>`` when the console script runs, else the source checkout's
    command (``source``, default ``python <job>.py``)."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return prog if prog == f"renas-{job}" else (source or f"python {job}.py")


class RenasError(Exception):
    """An error caused by user input (config, genotype, data, files).

    Entry points print ``error: <message>`` on one line and exit with status 2.
    """


class ConfigError(RenasError):
    """A config value is missing, of the wrong type or out of range."""


class GenotypeError(RenasError, ValueError):
    """A genotype string or value list is malformed for its search space."""


class DataError(RenasError):
    """A data set cannot be found, read or downloaded."""


class DiskFullError(RenasError):
    """The disk (or quota) filled up while ``path`` was written.

    Entry points print one line and exit with status :attr:`exit_code` (3), not 2: the input
    was fine, the machine was not. Writes are atomic or append-only, so everything written
    before is intact; ``hint`` says how to continue (``search.py``: the resume command).
    """

    exit_code = 3

    def __init__(self, path: str, hint: str = "") -> None:
        super().__init__(str(path), hint)  # both in args: the error survives pickling (worker processes)
        self.path, self.hint = str(path), hint

    def __str__(self) -> str:
        return f"disk full while writing {self.path}" + (f"; {self.hint}" if self.hint else "")


def disk_full(error: BaseException) -> bool:
    """True for an ``OSError`` that says the disk or the quota is full."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def as_disk_full(error: BaseException, where, hint: str) -> DiskFullError | None:
    """``error`` as the entry point reports it, if it is a full disk (a :class:`DiskFullError`
    from the project's own writes, or an ``OSError`` from a library's, e.g. Lightning's
    checkpoint; ``where`` names the file when the error does not); otherwise ``None``."""
    if isinstance(error, DiskFullError):
        return DiskFullError(error.path, hint)
    if disk_full(error):
        return DiskFullError(getattr(error, "filename", None) or where, hint)
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a scheduler's time limit, ``kill``): the entry points stop as on Ctrl-C
    (nothing lost, the resume command printed) and exit with status 143."""


_terminated = False


def stop_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread. Lightning turns any
    KeyboardInterrupt inside ``fit`` into its own shutdown, so :func:`was_terminated` keeps the
    fact even when the exception's type is lost on the way."""
    import signal

    def handler(signum, frame):
        global _terminated
        _terminated = True
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


def was_terminated() -> bool:
    return _terminated
