"""User-facing errors: one clear line, no traceback, non-zero exit."""

from __future__ import annotations

import contextlib
import difflib
import errno
import importlib
import os
import re
import shlex
import signal
import sys
import traceback
from collections.abc import Iterator
from typing import Any, Callable

#: errno values that mean "no room left": the disk is full or the user's quota is used up
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def command(job: str, source: str | None = None) -> str:
    """How the user started ``job`` (``search``, ``train``, ``compare``), for the commands
    messages suggest: ``renas-<job>`` when the console script runs, ``python <path>/<job>.py``
    when the script was started by a path from another folder, else the source checkout's
    command (``source``, default ``python <job>.py``)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    prog = os.path.basename(argv0)
    if prog == f"renas-{job}":
        return prog
    if source is None and prog == f"{job}.py" and os.path.dirname(os.path.abspath(argv0)) != os.getcwd():
        return f"python {shlex.quote(argv0)}"
    return source or f"python {job}.py"


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


def error_line(error: BaseException, limit: int = 500) -> str:
    """``<Type>: <first line of the message> (at <file>:<line>)``: an exception in one line, where it
    was raised; for an error raised from another (a search space's hook that failed), the place
    of the original one, in the user's code rather than renas's."""
    text = f"{type(error).__name__}: {error}".strip().splitlines()[0][:limit]
    source = error.__cause__ if error.__cause__ is not None and error.__cause__.__traceback__ else error
    tb = traceback.extract_tb(source.__traceback__)
    return text + (f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else "")


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


_terminated: str | None = None  # the signal's name


def stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` in the main thread. Lightning turns any
    KeyboardInterrupt inside ``fit`` into its own shutdown, so :func:`was_terminated` keeps the
    fact even when the exception's type is lost on the way. In a job submitit started (Hydra's
    submitit launchers: ``SUBMITIT_EXECUTOR`` is set) SIGUSR2 too: submitit asks SLURM for it
    before the time limit, and its own handler would raise inside a child's training (a child
    recorded as failed) or requeue a job that cannot start again in its own folder.

    Returns what puts the handlers before back, for when the job is done: a process that runs
    further jobs (a sweep's joblib worker) must stop on SIGTERM as it did, not raise where no
    job is there to handle it."""
    def handler(signum, frame):
        global _terminated
        _terminated = signal.Signals(signum).name
        raise Terminated

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler)}
    if os.environ.get("SUBMITIT_EXECUTOR") and hasattr(signal, "SIGUSR2"):
        previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, handler)

    def restore() -> None:
        for signum, before in previous.items():
            if before is not None:  # (None: a handler not set from Python, which cannot be put back)
                signal.signal(signum, before)

    return restore


@contextlib.contextmanager
def signals_held(said: Callable[[list[str]], None] | None = None) -> Iterator[list[str]]:
    """Hold the first Ctrl-C or SIGTERM while the last files are written (the summary, the
    plots, the W&B run's summary and artifact): a signal then would leave them half-written where
    no resume repairs them. A second signal acts at once (a W&B upload that hangs can still be
    stopped). Yields the names of the signals held; ``said`` is called with them at the end (also
    when the block raises), and the caller acts on them afterwards (:func:`act_on_held`). Off the
    main thread (where handlers cannot be set) nothing is held."""
    got: list[str] = []
    previous: dict[int, Any] = {}

    def hold(signum, frame):
        got.append(signal.Signals(signum).name)
        for s, handler in previous.items():  # the next one goes through
            signal.signal(s, handler)

    try:
        previous.update({s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)})
    except ValueError:
        yield got
        return
    try:
        yield got
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if got and said is not None:
            said(got)


def act_on_held(held: list[str]) -> None:
    """Raise what a held signal would have raised: :class:`Terminated` for SIGTERM (status 143),
    else ``KeyboardInterrupt`` (130), so the command stops as the user or the scheduler asked
    (a sweep's next job does not start)."""
    global _terminated
    if "SIGTERM" in held:
        _terminated = "SIGTERM"
        raise Terminated
    if held:
        raise KeyboardInterrupt


def was_terminated() -> bool:
    return _terminated is not None


def terminated_by() -> str:
    """The signal that stopped the command (``SIGTERM``; ``SIGUSR2`` in a submitit job)."""
    return _terminated or "SIGTERM"


def stop_status() -> tuple[str, int]:
    """How a stopped command says it stopped, and its exit status: ``interrupted`` (Ctrl-C,
    130) or ``terminated (<signal>)`` (143)."""
    return (f"terminated ({terminated_by()})", 143) if was_terminated() else ("interrupted", 130)


def one_line(error: BaseException, key: str | None = None, prefix: str = "") -> str:
    """Hydra's and OmegaConf's multi-line messages (and their cause) as one line. A value
    outside a choice (:func:`renas.schema.choice`) reads ``<key>=<value> is not one of: <choices>``,
    with the key from OmegaConf's ``full_key`` (``prefix`` put before it: a config merged onto its
    schema on its own) unless ``key`` names it."""
    parts = []
    for e in (error, error.__cause__):
        if e is None:
            continue
        lines, full_key = [], None
        for line in (x.strip() for x in str(e).splitlines()):
            if line.startswith("full_key:"):
                full_key = key or prefix + line.split(":", 1)[1].strip()
            if not line or line.startswith(("full_key:", "object_type=", "reference_type=", "provider=")):
                continue
            if line.startswith("Config search path"):
                break
            lines.append(line)
        text = re.sub(r"^In '\w+': ", "", " ".join(lines))
        if full_key:  # a value outside a Choice type (renas.schema.choice): the key, the value, the choices
            text = re.sub(r"(ValidationError raised while composing config: )?Invalid value '(.*)', expected one of \[(.*)\]",
                          lambda m: f"{full_key}='{m.group(2)}' is not one of: {m.group(3)}", text)
            text = re.sub(r"(ValidationError raised while composing config: )?Value (.*) \((\w+)\) is not a valid input for "
                          r"<enum '(\w+)'>", lambda m: f"{full_key}={m.group(2)} is not one of: {_choices(m.group(4))}", text)
        text = re.sub(r"Available options in '[^']+': (.*)$", lambda m: "(options: " + ", ".join(m.group(1).split()) + ")", text)
        text = re.sub(r"Could not override '([^']+)'\. To append to your config use (.+)$",
                      r"Could not override '\1' (to add a new key: \2)", text)
        if text and text not in parts:
            parts.append(text)
    text = ": ".join(parts) or type(error).__name__
    text = re.sub(r"^Error merging override \S+: (\S+=.* is not one of: )", r"\1", text)
    override = getattr(error, "override", None)  # Hydra's OverrideParseException: some messages omit the override
    if type(error).__name__ == "OverrideParseException" and isinstance(override, str) and override not in text:
        text = f"Error parsing override '{override}': {text}"
    moved = re.match(r"Could not override '(evaluator\.(?:ray\.)?\w+)'", text)
    if moved and moved_key(moved.group(1)) and "EvaluatorSchema" in text:  # a key of renas 0.1: where it lives now
        return f"Could not override '{moved.group(1)}': it is {moved_key(moved.group(1))} since renas 0.2 (README: Changes)"
    unknown = re.match(r"Could not override '([^']+)' \(to add a new key: [^)]*\): Key '([^']+)' not in '(\w+)'", text)
    schema = getattr(sys.modules.get("renas.schema"), unknown.group(3), None) if unknown else None
    if schema is not None:
        settings = [f for f in schema.__dataclass_fields__ if f != "_target_"]
        if len(settings) == len(schema.__dataclass_fields__):  # a closed schema: "+key" would not help
            # the unknown part may be a group above the setting (train.py ga.budget=5: no `ga` at all)
            parts, missing = unknown.group(1).split("."), unknown.group(2)
            key = ".".join(parts[: parts.index(missing) + 1]) if missing in parts else unknown.group(1)
            return unknown_setting(key, settings, PRIMARY_CONFIGS.get(unknown.group(3)))
        # a class's own settings: a new key may be meant, so Hydra's advice stays
        text = text.replace(" (to add a new key:", f" ({_did_you_mean(unknown.group(1), settings)}to add a new key:", 1)
    return text


def _did_you_mean(key: str, settings: list[str]) -> str:
    """``"did you mean <group>.<closest setting>? "``, or ``""`` when none is close."""
    group, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, settings, n=1)
    return f"did you mean {group + '.' if group else ''}{close[0]}? " if close else ""


#: the primary configs' schemas (renas.schema) and the command each belongs to
#: the Hydra commands by job name, as messages name them
JOB_NAMES = {"search": "search.py", "train": "train.py", "benchmark": "renas.benchmark"}
#: a primary config's schema -> its command
PRIMARY_CONFIGS = {f"{job.title()}Schema": name for job, name in JOB_NAMES.items()}


def unknown_setting(key: str, settings: list[str], app: str | None = None) -> str:
    """``key`` is not one of ``settings`` (its group's, or, for a key without a group, those of
    the config of ``app``, e.g. ``train.py``): the closest one suggested."""
    group = key.rpartition(".")[0]
    where = group or (f"{app}'s config" if app else "this config")
    return f"{key} is not a setting of {where} ({_did_you_mean(key, settings)}settings: {', '.join(settings)})"


def _choices(enum_name: str) -> str:
    """A Choice type's values, by its name (``renas.schema`` defines it; it is imported when
    the config that refused the value was made)."""
    choice = getattr(sys.modules.get("renas.schema"), enum_name, None)
    return ", ".join(m.value for m in choice) if choice is not None else f"the values of {enum_name}"


#: evaluator keys that became keys of their own groups in renas 0.2 (loop and executor settings)
MOVED_KEYS = {"dedup": "loop.dedup", "on_failure": "loop.on_failure", "max_failures": "loop.max_failures",
              "workers": "executor.workers", "threads_per_worker": "executor.threads_per_worker",
              "executor": "executor=local|ray", "ray": "executor=ray executor.<key>"}


def moved_key(key: str) -> str | None:
    """Where an old ``evaluator.<key>`` lives now (``None``: it did not move)."""
    parts = key.split(".")
    if len(parts) == 3 and parts[1] == "ray":
        return f"executor=ray executor.{parts[2]}"
    return MOVED_KEYS.get(parts[1]) if len(parts) == 2 else None


def missing_module(e: ModuleNotFoundError, target: str) -> bool:
    """Whether ``e`` is about a module on ``target``'s own dotted path (``pkg`` or ``pkg.mod`` of
    ``pkg.mod.Name``), not about one that an existing module imports."""
    return e.name is not None and (target == e.name or target.startswith(e.name + "."))


def why_not_importable(target: str) -> str | None:
    """Why ``target`` (``pkg.mod.Name``) names nothing, in words (Hydra's own message names the
    whole target as a missing module); ``None`` if it imports."""
    parts = str(target).split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if missing_module(e, module):
                continue  # not a module: a shorter prefix, with attributes after it
            return f"importing {module} failed: {type(e).__name__}: {e}"  # a module it imports is missing
        except Exception as e:
            return f"importing {module} failed: {type(e).__name__}: {e}"
        where = module
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return f"{where} has no {attr!r}"
            obj, where = getattr(obj, attr), f"{where}.{attr}"
        return None
    return f"no module named {parts[0]!r} (not on the Python path)"
