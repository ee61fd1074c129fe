"""``python search.py resume=<run folder>``: continue a search exactly where it stopped.

Everything is checked before anything in the run folder is touched: the state file must be
readable, the config must be the one the search started with (only logging and progress
settings may change), and the history must agree with the state. Then the search continues
in the same folder, re-running only the evaluations that were in flight, and logs into the
same W&B run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf import open_dict as _open_dict
from omegaconf.errors import OmegaConfBaseException

from renas.config import flatten
from renas.errors import ConfigError, RenasError, command, one_line
from renas.search.run import SAFE_KEYS, SAFE_SETTINGS, may_change_on_resume, search_identity, without_safe
from renas.tracking.history import read_history
from renas.tracking.state import STATE_FILE, load_state


def first_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, Any, Any] | None:
    fa, fb = flatten(a), flatten(b)
    for key in sorted(set(fa) | set(fb)):
        if fa.get(key, "<unset>") != fb.get(key, "<unset>"):
            return key, fa.get(key, "<unset>"), fb.get(key, "<unset>")
    return None


HYDRA_COPY = Path(".hydra") / "search"  # the search's own copy of Hydra's files (see keep_hydra_files)


def keep_hydra_files(run_dir: Path) -> None:
    """Copy ``.hydra/*.yaml`` to ``.hydra/search/`` when a search starts: Hydra rewrites
    ``.hydra/`` whenever a command is pointed at the folder, and resume needs the original."""
    src, dst = Path(run_dir) / ".hydra", Path(run_dir) / HYDRA_COPY
    if src.is_dir():
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
    for name in ("history.jsonl", "generations.jsonl", "summary.json"):
        (run_dir / name).unlink(missing_ok=True)
    for folder in (run_dir / "plots", run_dir / HYDRA_COPY):
        shutil.rmtree(folder, ignore_errors=True)
    return True


def refuse_existing_search(run_dir: Path) -> None:
    """A new search pointed at a folder that already holds one (e.g. a re-run SLURM job with the
    same hydra.run.dir) must not append to its history: restore Hydra's files and refuse."""
    run_dir = Path(run_dir)
    if not ((run_dir / "history.jsonl").exists() or (run_dir / STATE_FILE).exists()):
        return
    copy = run_dir / HYDRA_COPY
    if copy.is_dir():
        for f in copy.glob("*.yaml"):
            shutil.copy2(f, run_dir / ".hydra" / f.name)
    raise ConfigError(
        f"{run_dir} already holds a search; continue it with: {command('search')} resume={run_dir} "
        f"(or choose another hydra.run.dir); nothing in it was changed"
    )


def _changes(original: Any, old: list[str], override: str) -> bool:
    """Whether ``override`` alone, added to the search's own overrides, changes what it searches."""
    try:
        return first_difference(search_identity(original),
                                search_identity(compose(config_name="search", overrides=[*old, override]))) is not None
    except (HydraException, OmegaConfBaseException):
        return True


def prepare_resume(run_dir: Path, new_overrides: list[str]) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """Read and check a run folder; returns ``(config, group choices, resume data)``.

    ``new_overrides`` are the command line's overrides besides ``resume=``; those that would
    change the search are refused.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise ConfigError(f"resume={run_dir}: no such folder")
    hydra_dir = run_dir / HYDRA_COPY if (run_dir / HYDRA_COPY / "overrides.yaml").is_file() else run_dir / ".hydra"
    saved_overrides = hydra_dir / "overrides.yaml"
    saved_config = hydra_dir / "config.yaml"
    if not saved_overrides.is_file() or not saved_config.is_file():
        raise ConfigError(f"resume={run_dir}: not a search run folder (no .hydra/config.yaml)")
    state = load_state(run_dir)
    old = [str(o) for o in OmegaConf.load(saved_overrides)]
    changed = [o for o in new_overrides if not may_change_on_resume(o)]
    try:
        original = compose(config_name="search", overrides=old)
    except (HydraException, OmegaConfBaseException) as e:  # e.g. a key of an older renas version
        raise ConfigError(f"resume={run_dir}: the search's saved overrides do not compose with this version "
                          f"({one_line(e)}); resume it with the renas version that started it") from None
    cfg = compose(config_name="search", overrides=old + list(new_overrides), return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    diff = first_difference(search_identity(original), search_identity(cfg))
    if diff:
        key = diff[0]
        changed = [o for o in changed if _changes(original, old, o)] or changed  # not the ones given again unchanged
        raise ConfigError(
            f"resume: {' '.join(changed) or key} would change the search ({key}: {diff[1]!r} -> {diff[2]!r}); "
            f"only {', '.join([*(k for k in SAFE_KEYS if k != 'resume'), *SAFE_SETTINGS])} may change on resume"
        )
    saved = OmegaConf.to_container(OmegaConf.load(saved_config), resolve=False, enum_to_str=True)
    files_changed = first_difference(without_safe(saved), without_safe(OmegaConf.to_container(original, resolve=False, enum_to_str=True)))
    if files_changed:
        key, a, b = files_changed
        raise ConfigError(
            f"resume: the config files changed since this search started ({key}: {a!r} then, {b!r} now); "
            f"resume it with the renas version that started it"
        )
    diff = first_difference(without_safe(state["config"]), search_identity(cfg))  # a state of before: with them
    if diff:
        raise RenasError(
            f"{run_dir / 'state.pt'} was written by a different search config ({diff[0]}: {diff[1]!r} in the "
            f"state, {diff[2]!r} in .hydra/config.yaml); the run folder was left as it is"
        )
    history = read_history(run_dir / "history.jsonl")
    steps = int(state["search"]["steps"])
    if len(history) < steps:
        raise RenasError(
            f"{run_dir / 'history.jsonl'} has {len(history)} evaluations but the state has {steps}: "
            f"the history was cut or edited; the run folder was left as it is"
        )
    # the history after the snapshot is the journal the resumed search replays
    if any(r.get("step") != steps + i for i, r in enumerate(history[steps:])):
        raise RenasError(
            f"{run_dir / 'history.jsonl'} has {len(history)} evaluations but the state has {steps}: "
            f"history and state do not belong together; the run folder was left as it is"
        )
    generations = read_history(run_dir / "generations.jsonl")
    return cfg, choices, {"state": state, "history": history, "generations": generations, "run_dir": run_dir}


def open_dict(cfg):
    return _open_dict(cfg)
