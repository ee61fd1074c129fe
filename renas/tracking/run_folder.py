"""What a run folder holds: the names that mark a search's folder (search.py) and a training's
(train.py), so that neither command writes into the other's, or into an earlier run of its own."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from filelock import FileLock, Timeout

from renas.errors import ConfigError, command

CHECKPOINTS = "checkpoints"  # a training's <run>/checkpoints/last.ckpt and best.ckpt (renas.train.final)
TRAIN_STATE = ".train_state.json"  # a training's W&B run id, for its resume (renas.train.final)
#: what marks a folder as a training's run folder (train.py), and as a search's (search.py)
TRAINING_FILES = ("result.json", "model.ckpt", TRAIN_STATE, CHECKPOINTS)
STATE_FILE, HISTORY_FILE = "state.pt", "history.jsonl"  # a search's state (renas.tracking.state) and history
SEARCH_FILES = (STATE_FILE, HISTORY_FILE)
BENCHMARK_FILES = ("benchmark.json",)  # python -m renas.benchmark
#: held (locked) by the search or training that works in the folder, for as long as it runs
LOCK_FILE = ".renas.lock"


def check_is_folder(run_dir: Path, key: str, job: str) -> None:
    """``run_dir`` (given as ``key=``) is a folder: else one line, saying whether it is missing or a file."""
    if not Path(run_dir).is_dir():
        why = f"a file, not a run folder (give the folder that holds the {job})" if Path(run_dir).exists() else \
            "no such folder"
        raise ConfigError(f"{key}={run_dir}: {why}")


def run_folder_kind(run_dir: Path) -> str | None:
    """``"search"``, ``"training"`` or ``"benchmark"`` when ``run_dir`` holds one, else ``None``."""
    run_dir = Path(run_dir)
    if any((run_dir / name).exists() for name in SEARCH_FILES):
        return "search"
    if any((run_dir / name).exists() for name in TRAINING_FILES):
        return "training"
    if any((run_dir / name).exists() for name in BENCHMARK_FILES):
        return "benchmark"
    return None


HYDRA_COPY = Path(".hydra") / "search"  # the search's own copy of Hydra's files (see keep_hydra_files)


#: the run folders this process holds (:func:`take`), by resolved path
_HELD: dict[Path, FileLock] = {}


def take(run_dir: Path, job: str, resume: bool = True, folder_key: str = "hydra.run.dir") -> None:
    """Hold ``run_dir`` for this process until :func:`release`: an exclusive lock on
    ``<run_dir>/.renas.lock`` (``filelock``: ``flock``, released by the system when the process
    ends, however it ends). A single run takes it as soon as Hydra has composed the config,
    before Hydra writes its files there (``renas.cli.CheckFirst``); a second process that would
    write there at the same time (a ``resume=`` of a search still running, two resumes at once,
    a requeued job whose first copy is alive) is refused in one line (a new run's: choose another
    ``folder_key``, ``hydra.sweep.dir`` for a sweep's job). Taken already: nothing."""
    key = Path(run_dir).resolve()
    if key in _HELD:
        return
    lock = FileLock(str(key / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"{run_dir} is in use: another process holds its {job} ({Path(run_dir) / LOCK_FILE} is locked: the "
            f"{job} still running, or another resume of it); "
            + ("wait for it to end or stop it, then resume" if resume else f"choose another {folder_key}")
            + "; nothing in it was changed") from None
    except OSError as e:  # (after Timeout, a TimeoutError: an OSError too) a read-only folder, or another user's lock file
        raise ConfigError(f"{run_dir}: cannot take its lock file {Path(run_dir) / LOCK_FILE} ({e.strerror or e}): "
                          f"a {job}'s run folder must be writable by the process that works in it") from None
    _HELD[key] = lock


def release(run_dir: Path) -> None:
    """Let go of ``run_dir`` if this process holds it (:func:`take`)."""
    lock = _HELD.pop(Path(run_dir).resolve(), None)
    if lock is not None:
        lock.release()


@contextlib.contextmanager
def holding(run_dir: Path, job: str, resume: bool = True, folder_key: str = "hydra.run.dir"):
    """:func:`take` ``run_dir`` (or keep it, taken already) for the ``with`` block, then :func:`release` it."""
    take(run_dir, job, resume, folder_key)
    try:
        yield
    finally:
        release(run_dir)


def held_elsewhere(run_dir: Path) -> bool:
    """Whether another process holds ``run_dir`` (:func:`take`): a folder that looks empty
    (Hydra's files and the lock, before the first state) may be one a search is starting in.
    This process's own hold on it is let go first (a clean-up of its own folder)."""
    release(run_dir)
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return False
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except OSError:  # Timeout (a TimeoutError); a read-only folder, another user's lock file: not ours either
        return True
    lock.release()
    return False


def restore_hydra_files(run_dir: Path) -> None:
    """Put back the search's own copy of Hydra's files (``.hydra/search/``) over ``.hydra/``,
    which a command pointed at the folder has just rewritten."""
    copy = Path(run_dir) / HYDRA_COPY
    if copy.is_dir():
        for f in copy.glob("*.yaml"):
            shutil.copy2(f, Path(run_dir) / ".hydra" / f.name)


def saved_hydra_dir(run_dir: Path) -> Path:
    """Where a search's own Hydra files are: its copy (``.hydra/search/``, see
    :func:`keep_hydra_files`), or ``.hydra/`` for a run without one."""
    copy = Path(run_dir) / HYDRA_COPY
    return copy if (copy / "overrides.yaml").is_file() else Path(run_dir) / ".hydra"


def keep_hydra_files(run_dir: Path, files: dict[str, str]) -> None:
    """Write the search's own Hydra files (``files``: name -> text, from its composed config)
    to ``.hydra/search/``, and over ``.hydra/``, when a new search starts: Hydra rewrites
    ``.hydra/`` whenever a command is pointed at the folder, and resume needs the original. They
    come from the search's own config, not from ``.hydra/``: a sweep job's files may have been
    rewritten by another sweep given the same folder before this job took its lock."""
    for folder in (Path(run_dir) / ".hydra", Path(run_dir) / HYDRA_COPY):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")


def copy_hydra_files(run_dir: Path) -> None:
    """Copy ``.hydra/*.yaml`` to ``.hydra/search/`` where the search has no copy yet (a folder
    made before the copy existed, or copied without it): called before a command Hydra is about
    to write into the folder (``resume=<run> hydra.run.dir=<run>``), so the search's files survive."""
    src, dst = Path(run_dir) / ".hydra", Path(run_dir) / HYDRA_COPY
    if src.is_dir() and not (dst / "overrides.yaml").is_file():
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.glob("*.yaml"):
            shutil.copy2(f, dst / f.name)


def discard_unstarted(run_dir: Path) -> bool:
    """A new search that stopped before its first state file was written (e.g. the disk was
    already full) has nothing to resume: remove what it made, leaving Hydra's own files (the
    entry point then removes the folder). Returns whether it did."""
    run_dir = Path(run_dir)
    if (run_dir / STATE_FILE).exists():
        return False
    history = run_dir / HISTORY_FILE
    if history.exists():  # (opened just before the W&B run started; its files, not a W&B folder's others)
        _discard_wandb_since(run_dir / "wandb", history.stat().st_mtime)
    for name in (HISTORY_FILE, "generations.jsonl", "summary.json"):
        (run_dir / name).unlink(missing_ok=True)
    for folder in (run_dir / "plots", run_dir / HYDRA_COPY):
        shutil.rmtree(folder, ignore_errors=True)
    return True


def _discard_wandb_since(folder: Path, since: float) -> None:
    """The W&B run of a search that logged nothing (a stray run to sync): its folders in
    ``folder`` made at ``since`` or later, the links W&B left to them, and ``folder`` if that
    empties it. Runs already there (``hydra.run.dir=.`` in a project's own ``wandb/``) stay."""
    if not folder.is_dir():
        return
    for run in folder.glob("*run-*"):
        if run.is_dir() and not run.is_symlink() and run.stat().st_mtime >= since - 0.01:
            shutil.rmtree(run, ignore_errors=True)
    for link in folder.iterdir():
        if link.is_symlink() and not link.exists():  # latest-run, debug.log: pointed at what went
            link.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def refuse_existing_search(run_dir: Path, folder_key: str = "hydra.run.dir") -> None:
    """A new search pointed at a folder that already holds one (e.g. a re-run SLURM job with the
    same hydra.run.dir) must not append to its history: restore Hydra's files and refuse. A
    search killed before its first state file (an empty history, no ``state.pt``: nothing to
    resume) is discarded instead, and the new one starts there."""
    run_dir = Path(run_dir)
    history = run_dir / HISTORY_FILE
    if not (history.exists() or (run_dir / STATE_FILE).exists()):
        return
    if not (run_dir / STATE_FILE).exists() and history.stat().st_size == 0:
        discard_unstarted(run_dir)
        return
    restore_hydra_files(run_dir)
    if not (run_dir / ".hydra").is_dir():  # a search of run_search's (a script's): no resume= for it
        raise ConfigError(f"{run_dir} already holds a search; choose another run folder; nothing in it was changed")
    if finished_search(run_dir):
        raise ConfigError(f"{run_dir} already holds a finished search; choose another {folder_key}; nothing in it "
                          f"was changed")
    raise ConfigError(
        f"{run_dir} already holds a search; continue it with: {command('search')} resume={run_dir} "
        f"(or choose another {folder_key}); nothing in it was changed"
    )


def finished_search(run_dir: Path) -> bool:
    """Whether ``run_dir``'s ``summary.json`` says its search finished."""
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text()).get("finished") is True
    except (OSError, ValueError, AttributeError):
        return False
