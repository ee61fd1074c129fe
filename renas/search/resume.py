"""``python search.py resume=<run folder>``: continue a search exactly where it stopped.

Everything is checked before anything in the run folder is touched: the state file must be
readable, the config must be the one the search started with (only logging and progress
settings may change), and the history must agree with the state. Then the search continues
in the same folder, re-running only the evaluations that were in flight, and logs into the
same W&B run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf import open_dict as _open_dict
from omegaconf.errors import OmegaConfBaseException

from renas.config import flatten, load_saved, may_change_on_resume, resume_may_change, missing_folders_unwarned, moved_folders_hint, saved_searchpath, searchpath_override
from renas.errors import ConfigError, RenasError, command, one_line
from renas.search.run import search_identity, without_safe
from renas.tracking.history import read_history
from renas.tracking.run_folder import HISTORY_FILE, STATE_FILE, check_is_folder, run_folder_kind, saved_hydra_dir
from renas.tracking.state import load_state
from renas.tracking.versions import started_by


def first_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, Any, Any] | None:
    fa, fb = flatten(a), flatten(b)
    for key in sorted(set(fa) | set(fb)):
        if fa.get(key, "<unset>") != fb.get(key, "<unset>"):
            return key, fa.get(key, "<unset>"), fb.get(key, "<unset>")
    return None


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
    check_is_folder(run_dir, "resume", "search")
    hydra_dir = saved_hydra_dir(run_dir)
    saved_overrides = hydra_dir / "overrides.yaml"
    saved_config = hydra_dir / "config.yaml"
    if not saved_overrides.is_file() or not saved_config.is_file():
        raise ConfigError(f"resume={run_dir}: not a search run folder (no .hydra/config.yaml)")
    kind = run_folder_kind(run_dir)
    if kind == "training":
        raise ConfigError(f"resume={run_dir}: that is a training's folder (train.py); continue it with: "
                          f"{command('train')} resume={run_dir}")
    if kind == "benchmark":
        raise ConfigError(f"resume={run_dir}: that is a benchmark's folder (benchmark.json); a benchmark does not "
                          f"resume: run its command again")
    if not (run_dir / STATE_FILE).is_file() and (run_dir / HISTORY_FILE).is_file():
        records = len(read_history(run_dir / HISTORY_FILE))
        if records == 0:  # killed as it started (the state comes before the first evaluation)
            raise ConfigError(f"resume={run_dir}: the search stopped before it wrote its first state ({STATE_FILE}); "
                              f"nothing to resume: run its command again (with hydra.run.dir={run_dir}, or without)")
        raise RenasError(f"{run_dir / STATE_FILE} is missing but {HISTORY_FILE} holds {records} evaluations (deleted, or "
                         f"the folder copied without it); the run folder was left as it is")
    state = load_state(run_dir)
    version = started_by(state.get("versions"))  # " (renas 0.3.0; this is 0.4.0)", or nothing for an older state
    folders = saved_searchpath(hydra_dir)  # a user's own config folders (hydra.searchpath)
    old = [searchpath_override(folders)] if folders else []
    old += [str(o) for o in load_saved(saved_overrides, list)]
    changed = [o for o in new_overrides if not may_change_on_resume(o)]
    try:
        with missing_folders_unwarned():  # the error below names them
            original = compose(config_name="search", overrides=old)
    except (HydraException, OmegaConfBaseException) as e:  # e.g. a key of an older renas version
        mine = f"{moved_folders_hint(folders)}, and " if folders else ""
        raise ConfigError(f"resume={run_dir}: the search's saved overrides do not compose with this version "
                          f"({one_line(e)}); {mine}resume it with the renas version that started it{version}") from None
    try:
        cfg = compose(config_name="search", overrides=old + list(new_overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException):  # e.g. +evaluator.table=... where the search has one
        raise ConfigError(f"resume: {' '.join(changed or new_overrides)} cannot be given to a resumed search; "
                          f"{resume_may_change()}") from None
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    diff = first_difference(search_identity(original), search_identity(cfg))
    if diff:
        key = diff[0]
        changed = [o for o in changed if _changes(original, old, o)] or changed  # not the ones given again unchanged
        raise ConfigError(
            f"resume: {' '.join(changed) or key} would change the search ({key}: {diff[1]!r} -> {diff[2]!r}); "
            + resume_may_change()
        )
    saved = OmegaConf.to_container(load_saved(saved_config, dict), resolve=False, enum_to_str=True)
    files_changed = first_difference(without_safe(saved), without_safe(OmegaConf.to_container(original, resolve=False, enum_to_str=True)))
    if files_changed:
        key, a, b = files_changed
        mine = f" and the config folders ({', '.join(folders)})" if folders else ""
        cut = f" (or {saved_config} was cut short: it lacks {key})" if a == "<unset>" else ""
        raise ConfigError(
            f"resume: the config files changed since this search started ({key}: {a!r} then, {b!r} now); "
            f"resume it with the renas version{mine} that started it{version}{cut}"
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
