"""search.py's work: build the parts from the config, run the loop, write the run folder.

Run folder (one per search): ``history.jsonl`` (one line per evaluation), ``generations.jsonl``
(one line per generation), ``summary.json``, ``plots/``, ``wandb/`` (W&B logger on).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from omegaconf import DictConfig, OmegaConf

from renas.build import build, build_evaluator, build_space, build_strategy, locate_class, run_name
from renas.config import SAFE_KEYS, SAFE_SETTINGS, check_schema, group_choices, plain
from renas.errors import (ConfigError, DiskFullError, RenasError, act_on_held, command, signals_held, was_terminated,
                          why_not_importable)
from renas.evaluate.executors import executor_settings
from renas.search.loop import JournalMismatch, LoopSettings, Search, SearchCallback, SearchStopped
from renas.search.strategies import Strategy
from renas.tracking.files import atomic_write_json
from renas.tracking.history import HistoryWriter, read_history, rewrite_history
from renas.tracking.versions import versions
from renas.train.checks import check_trainer
from renas.train.profile import torch_threads, trains_on_cpu

log = logging.getLogger("renas.search")


def initial_phase(cfg: DictConfig) -> tuple[str, int] | None:
    """``(key, evaluations)`` of the algorithm's initial random phase (``Strategy.initial``:
    ``ga.population_size`` for the population-based ones, ``algorithm.n_init`` for local search),
    or ``None`` for an algorithm without one (random search, TPE, REINFORCE)."""
    # the class only, not built (what else is wrong with it is reported when the strategy is built)
    target = cfg.get("algorithm", {}).get("_target_")
    cls = locate_class(target)
    if cls is None and target and (reason := why_not_importable(str(target))):  # said first, not the budget's rule
        raise ConfigError(f"algorithm._target_={target}: {reason}")
    key = getattr(cls, "initial", "ga.population_size") if cls is not None else "ga.population_size"
    if key is None:
        return None
    value = OmegaConf.select(cfg, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{getattr(cls, '__name__', target)}.initial = {key!r}: the config has no whole number there "
                          f"({value!r}); initial names the setting that counts the random architectures the search "
                          f"starts with, or is None")
    return key, value


def initial_need(key: str, n: int) -> str:
    """What the initial phase ``(key, n)`` of :func:`initial_phase` needs, in words."""
    what = "the initial population alone needs" if key == "ga.population_size" else \
        "the random architectures before the first climb alone need"
    return f"{what} {n} evaluations"


def validate(cfg: DictConfig, space) -> None:
    """Check every search setting before any work starts; one message per problem: each value
    against its schema's rule (:func:`renas.config.check_schema`), then the rules between keys."""
    check_schema(cfg)
    check_between(cfg, space)


def check_between(cfg: DictConfig, space) -> None:
    """The rules between keys (and with the space), on values that passed their schema rules."""
    ga = cfg.ga
    p, s, b = int(ga.population_size), int(ga.sample_size), int(ga.budget)
    if s > p:
        raise ConfigError(
            f"ga.sample_size={s} is larger than ga.population_size={p}: the tournament draws its "
            f"sample from the population"
        )
    initial = initial_phase(cfg)
    if initial is not None and b < initial[1]:
        raise ConfigError(f"ga.budget={b} is smaller than {initial[0]}={initial[1]}: {initial_need(*initial)}")
    if cfg.loop.dedup == "exact" and b > space.size:
        raise ConfigError(f"ga.budget={b} is larger than the search space ({space.size} architectures)")
    if space.constrained:
        check_allowed(space, b if cfg.loop.dedup == "exact" else None)
    if cfg.loop.dedup == "isomorphic":  # a space's canonical hook that fails: said now, not at the first child
        space.canonical(space.sample(np.random.default_rng(0)))
    executor_settings(cfg.executor)  # before the run folder gets any file
    if cfg.evaluator.get("name") == "train":
        check_trainer(cfg.trainer)
        devices = cfg.trainer.get("devices", 1)
        if str(devices) != "1":  # several devices per child would re-launch the search per process (DDP)
            raise ConfigError(
                f"trainer.devices={devices} is not supported in a search: each child trains on one device; "
                f"evaluate children in parallel with executor.workers=<n> (or executor=ray) instead"
            )


def check_allowed(space, budget: int | None) -> None:
    """A space whose ``valid`` hook allows nothing, or (``budget`` given: exact dedup) fewer
    architectures than the budget, refused before the search starts. A small space is counted
    (:meth:`~renas.space.base.SearchSpace.allowed`, only as far as the budget: the hook may be
    slow); a large one is only sampled."""
    allowed = space.allowed(at_most=budget or 1)  # the hook is called until the budget is covered
    if allowed is None:
        space.sample(np.random.default_rng(0))  # raises if none of many random draws is allowed
        return
    if allowed == 0:
        raise ConfigError(f"search_space.valid allows none of the {space.size:,} architectures of the "
                          f"{space.name} space; check the hook")
    if budget is not None and budget > allowed:
        raise ConfigError(f"ga.budget={budget} is larger than the search space ({allowed:,} of its "
                          f"{space.size:,} architectures are allowed by search_space.valid)")


def prepare_search(cfg: DictConfig, run_dir: Path) -> tuple[Any, Any, Any]:
    """Everything a search does before its run folder gets a file: check every value (the schema
    rules, before anything is built), build the space, check the rules between keys
    (:func:`check_between`), build the strategy and the evaluator. Bad input fails here, as a
    :class:`~renas.errors.RenasError` with one line. Returns ``(space, strategy, evaluator)``."""
    check_schema(cfg)
    space = build_space(cfg.search_space)
    check_between(cfg, space)
    strategy = build_strategy(cfg, space)
    check_strategy(strategy, str(cfg.algorithm._target_))
    return space, strategy, build_evaluator(cfg, space, run_dir)


def check_strategy(strategy: Any, target: str) -> None:
    """A user's algorithm is a :class:`~renas.search.strategies.Strategy` with its own ``ask``
    (the README's "Your own algorithm"): anything else failed after the run folder was made, with
    a traceback."""
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"algorithm._target_={target}: {type(strategy).__name__} is not a subclass of "
                          f"renas.search.strategies.Strategy (an algorithm subclasses it: see the README's 'Your own "
                          f"algorithm')")
    if type(strategy).ask is Strategy.ask:
        raise ConfigError(f"algorithm._target_={target}: {type(strategy).__name__} has no ask() of its own (it "
                          f"returns the next Proposal, or None to wait for results in flight)")


def snapshot_settings(cfg: DictConfig) -> tuple[int, float]:
    """``snapshot.every`` (evaluations) and ``snapshot.seconds``: state.pt is written when either
    has passed since the last snapshot."""
    return int(cfg.snapshot.every), float(cfg.snapshot.seconds)


class Snapshots(SearchCallback):
    """Writes state.pt (atomically) every ``every`` evaluations or ``seconds`` seconds,
    whichever comes first, and when asked to (start, end). Between snapshots history.jsonl is
    the journal: a resumed search replays it from the last snapshot."""

    def __init__(self, write: Callable[[Search], None], every: int, seconds: float) -> None:
        self.write, self.every, self.seconds = write, every, seconds
        self.steps, self.time = 0, time.monotonic()

    def now(self, search: Search) -> None:
        self.write(search)
        self.steps, self.time = search.steps, time.monotonic()

    def on_step(self, search: Search, record: dict[str, Any]) -> None:
        if (search.steps - self.steps >= self.every or time.monotonic() - self.time >= self.seconds
                or search.finished):
            self.now(search)


class RunFiles(SearchCallback):
    """The run folder's journal and logs: ``history.jsonl`` (every new evaluation),
    ``generations.jsonl`` and the metric sink (every generation not logged before a resume),
    and the progress lines."""

    def __init__(self, history: HistoryWriter, generations: HistoryWriter, sink: Any, progress: "Progress",
                 logged: int = 0) -> None:
        self.history, self.generations, self.sink, self.progress, self.logged = history, generations, sink, progress, logged

    def on_evaluation(self, search: Search, record: dict[str, Any]) -> None:
        self.history.append(record)
        self.sink.log_evaluation(record, search.best["fitness"] if search.best else None)
        self.progress.step(search, record)

    def on_generation(self, search: Search, row: dict[str, Any]) -> None:
        if row["generation"] < self.logged:  # written before the crash; replayed now
            return
        self.generations.append(row)
        self.sink.log_generation(row)
        self.progress.generation(row)


class KeepAlive(SearchCallback):
    """Tells the evaluator which architectures are alive (it deletes inherited weights of the others)."""

    needs_alive = True

    def __init__(self, retain: Callable[[set[str]], None]) -> None:
        self.retain = retain

    def on_alive(self, search: Search, alive: set[str]) -> None:
        self.retain(alive)


def _first_error(run_dir: Path) -> str:
    """The first failed evaluation's error in the run's history (what a failed search reports)."""
    try:
        return next((r.get("error") or "?") for r in read_history(run_dir / "history.jsonl") if r.get("status") != "ok")
    except Exception:  # a summary line must not fail on the history it summarises
        return "?"


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class Progress:
    """Prints generation, evaluations, fitness, best so far, elapsed and remaining time."""

    def __init__(self, budget: int, mode: str, workers: int = 1) -> None:
        self.budget, self.mode, self.workers = budget, mode, max(1, int(workers))
        self.start = time.perf_counter()
        self.start_steps = 0
        self.first: tuple[float, int] | None = None  # (elapsed, steps) when the first wave ended

    def step(self, search: Search, record: dict[str, Any]) -> None:
        if self.mode != "eval":
            return
        done = search.steps
        elapsed = time.perf_counter() - self.start
        # the first evaluation of each worker also paid the start-up (data, the first fit): once
        # every worker has finished one, the rate leaves that first wave out
        if self.first is None or done <= self.first[1]:
            if self.first is None and done - self.start_steps >= self.workers:
                self.first = (elapsed, done)
            rate = elapsed / max(1, done - self.start_steps)
        else:
            rate = (elapsed - self.first[0]) / (done - self.first[1])
        fit = record["fitness"]
        status = f"{fit:.4f}" if record["status"] == "ok" else f"FAILED ({record.get('error', '')[:80]})"
        best = f"{search.best['fitness']:.4f}" if search.best else "-"  # (every child so far failed)
        log.info(
            "gen %d | eval %d/%d | fitness %s | best %s | %s | elapsed %s, remaining ~%s",
            record["generation"], done, self.budget, status, best, record["origin"],
            _fmt_time(elapsed), _fmt_time(rate * (self.budget - done)),
        )

    def generation(self, row: dict[str, Any]) -> None:
        if self.mode == "none":
            return
        extra = ""
        if "controller/reward_mean" in row:
            extra = f" | controller reward {row['controller/reward_mean']:+.4f}"
        def f(value: float | None) -> str:
            return "-" if value is None else f"{value:.4f}"  # (no fitness yet: every child so far failed)

        log.info(
            "generation %d done: %d evaluations | population max %s mean %s | best so far %s%s",
            row["generation"], row["evaluations"], f(row.get("fitness/max")), f(row.get("fitness/mean")),
            f(row["fitness/best_so_far"]), extra,
        )


def without_safe(data: dict[str, Any]) -> dict[str, Any]:
    """A plain config without the keys (:data:`SAFE_KEYS`) and settings (:data:`SAFE_SETTINGS`)
    a resume may change."""
    out = {k: v for k, v in data.items() if k not in SAFE_KEYS}
    for key in SAFE_SETTINGS:
        group, name = key.split(".")
        if isinstance(out.get(group), dict) and name in out[group]:
            out[group] = {k: v for k, v in out[group].items() if k != name}
    return out


def search_identity(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without the keys a resume may change."""
    return without_safe(plain(cfg))


def run_search(
    cfg: DictConfig,
    run_dir: Path,
    choices: dict[str, str] | None = None,
    group: str | None = None,
    resume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the search the config describes in ``run_dir``; returns the summary.

    ``resume`` is what :func:`renas.search.resume.prepare_resume` read from the run folder
    (state, history, generations); the search then continues exactly where it stopped. Without
    it, a ``run_dir`` that already holds a search is refused (its history is not appended to).
    """
    # deferred: looked up per call: benchmarks/bench_search.py swaps it
    from renas.tracking.run_folder import refuse_existing_search
    from renas.tracking.state import save_state

    if resume is None:
        refuse_existing_search(Path(run_dir))
    choices = choices or {}
    space, strategy, evaluator = prepare_search(cfg, run_dir)
    data = evaluator.identity() if hasattr(evaluator, "identity") else None  # (a table's rows)
    if resume:
        check_same_results(resume["state"].get("evaluator_data"), data)
    budget = int(cfg.ga.budget)
    progress = Progress(budget, cfg.get("progress", "eval"), executor_settings(cfg.executor)["workers"])
    identity = search_identity(cfg)

    from renas.evaluate.executors import make_executor  # looked up here: test_executors swaps it

    # before the run folder gets a file: Ray that cannot start or connect is bad input like any other
    executor = make_executor(cfg, evaluator, run_dir)
    sink = None
    try:  # until the search's own try: whatever fails on the way closes the executor
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume:  # the torn last line of a crash, if any, is cut before appending
            read_history(run_dir / "history.jsonl", repair=True)
            read_history(run_dir / "generations.jsonl", repair=True)
            restore_generations(run_dir, resume)
        logged = len(resume["generations"]) if resume else 0
        history = HistoryWriter(run_dir / "history.jsonl")
        generations_file = HistoryWriter(run_dir / "generations.jsonl")
        sink = build(cfg.logger, "logger")
        saved = resume["state"] if resume else {}
        # (children train in this process on the CPU with one local worker: the busy-machine warning is theirs)
        threads = torch_threads(cfg.get("threads"), saved.get("threads"), trains_here=cfg.evaluator.get("name") == "train"
                                and cfg.executor.name == "local" and int(cfg.executor.workers) == 1 and trains_on_cpu(cfg.trainer))
        # a resumed search keeps its W&B run: its id, and the group and name a sweep job gave it
        group = saved.get("group", group)
        name = saved.get("name") or run_name(choices.get("algorithm") or strategy.name, f"s{cfg.seed}")
        # the thread count the children train with (threads=null: torch's default, resolved) and the table's rows read
        config = {**plain(cfg), "threads": threads, "choices": group_choices(choices), "versions": versions(),
                  **({"evaluator_data": data} if data else {})}
        sink.start(run_dir, config, name=name, job_type="search", group=group, resume_id=saved.get("run_id"))
        if resume:
            sink.replay(resume["history"], resume["generations"])

        earlier = 0.0
        if resume:  # the wall time up to the snapshot, and the replayed evaluations' own time
            earlier = float(resume["state"].get("seconds", 0.0)) + sum(
                float(r.get("seconds") or 0.0) for r in resume["history"][int(resume["state"]["search"]["steps"]):])
        start = progress.start = time.perf_counter()  # the progress lines' elapsed time is the summary's, from here

        def write_state(search: Search) -> None:
            seconds = earlier + time.perf_counter() - start
            save_state(run_dir, {"config": identity, "evaluator_data": data, "run_id": sink.run_id, "group": group, "name": name, "seconds": seconds,
                                 "threads": threads, "versions": versions(), "search": search.state_dict()})

        snapshots = Snapshots(write_state, *snapshot_settings(cfg))
        callbacks: list[SearchCallback] = [RunFiles(history, generations_file, sink, progress, logged)]
        if getattr(evaluator, "retain", None) is not None:
            callbacks.append(KeepAlive(evaluator.retain))
        callbacks.append(snapshots)  # last: a snapshot follows everything else of its evaluation
        search = Search(space, strategy, executor, budget=budget, generation_size=int(cfg.ga.population_size),
                        seed=int(cfg.seed), settings=LoopSettings.from_config(cfg, evaluator), callbacks=callbacks)
    except BaseException:
        executor.close()
        if sink is not None:  # started (W&B's run): ended now, not at exit; a new search's folder is then discarded
            with contextlib.suppress(Exception):
                sink.finish(1)
        raise

    exit_code, stopped, failed, ran, refused = 1, None, False, False, False
    try:
        if resume:
            search.load_state_dict(resume["state"]["search"])
            journal = resume["history"][search.steps :]
            search.expect(journal)
            snapshots.steps = search.steps
            progress.start_steps = search.steps + len(journal)
            log.info("resuming %s in %s after %d of %d evaluations (%d from the history since the last snapshot)",
                     strategy.name, run_dir, search.steps + len(journal), budget, len(journal))
        else:
            snapshots.now(search)  # a state to resume from even before the first evaluation ends
            initial = initial_phase(cfg)
            first = "no population" if initial is None else \
                f"population {initial[1]}" if initial[0] == "ga.population_size" else f"{initial[1]} random first"
            log.info("searching %s with %s (%s evaluator, budget %d, %s, seed %d) in %s",
                     space.name, strategy.name, getattr(evaluator, "name", "?"), budget, first, cfg.seed, run_dir)
        search.run()
        ran = True  # every evaluation recorded, with its history line, generation and W&B row
        if snapshots.steps != search.steps:
            snapshots.now(search)  # the end (also when the space ran out): nothing to replay on resume
        if search.best is None and search.steps:  # the budget spent on failures only: no result to report
            raise SearchStopped(
                f"every one of the {search.steps} children failed (the first error: {_first_error(run_dir)}); "
                f"no result (the errors are in {run_dir / 'history.jsonl'})")
        exit_code = 0
    except SearchStopped as e:
        stopped = str(e)
        snapshots.now(search)  # stopped after a complete evaluation: the state is whole
        if search.steps < budget and (run_dir / ".hydra").is_dir():  # (a command's search: it has a resume=)
            raise SearchStopped(f"{e}; when the cause is fixed, go on with: {command('search')} resume={run_dir} "
                                f"(it tries the next child)") from None
        raise
    except KeyboardInterrupt:
        how = "terminated" if was_terminated() else "interrupted"
        if ran:  # after the last evaluation's records: the search is complete, only the command stops
            if snapshots.steps != search.steps:
                snapshots.now(search)
            log.warning("%s as the search finished: its last files are written first", how)
            exit_code = 0
            raise
        stopped = how
        # the resume command is the entry point's last line (stderr), printed once
        log.warning("%s after %d evaluation%s; nothing is lost (run folder %s)", stopped, search.steps,
                    "" if search.steps == 1 else "s", run_dir)
        raise
    except DiskFullError:
        stopped, failed = "disk full", True
        raise
    except JournalMismatch:  # a resume refused: no summary or plots of a search that did not go on
        refused = True
        raise
    except BaseException as e:
        failed = True
        stopped = f"error ({type(e).__name__})"  # a crash: the summary says the search ended short, and why
        raise
    finally:
        def said(held: list[str]) -> None:
            log.warning("%s while the search's last files were written: they were finished first (%s)",
                        " and ".join(dict.fromkeys(held)), "the search is complete" if stopped is None and not failed
                        else f"stopped: {stopped or 'failed'}")

        with signals_held(said) as held:  # a Ctrl-C now must not leave these half-written; a second one goes through
            if refused:  # a resume refused as it replayed: no summary or plots of a search that did not go on
                executor.close()
                history.close()
                generations_file.close()
                sink.finish(1)
            else:
                seconds = earlier + time.perf_counter() - start
                summary = summarize(search, cfg, choices, seconds, stopped, threads)
                summary["wandb_run_id"] = sink.run_id  # its artifact search-<id>: what train.py arch_from= links to
                if data:  # which table (its path as read, and a digest of its rows): a rerun elsewhere can check it
                    summary["evaluator_data"] = data
                executor.close()

                _write_results(run_dir, search, strategy, space, summary, exit_code, failed,
                               (history, generations_file), sink)
    log.info(
        "done: %d evaluations in %s; best fitness %.4f: %s; results in %s", search.steps, _fmt_time(seconds),
        summary["best"]["fitness"] if summary["best"] else float("nan"),
        summary["best"]["arch"] if summary["best"] else "-", run_dir,
    )
    act_on_held(held)  # the search is complete; the command still stops as asked (130 / 143; a sweep goes no further)
    return summary


def _write_results(run_dir: Path, search: Search, strategy, space, summary: dict[str, Any], exit_code: int,
                   failed: bool, writers: tuple[HistoryWriter, ...], sink) -> None:
    """A search's last files, in order: its records closed, the plots, ``summary.json``, the sink.

    After a failure (``failed``) a full disk is only warned about: the first error is the one the
    command reports.
    """
    def write(*steps: Callable[[], Any]) -> None:
        try:
            for step in steps:
                step()
        except DiskFullError as e:
            if not failed:
                raise
            log.warning("could not write %s either (disk full)", e.path)

    write(*(w.close for w in writers))
    try:  # before summary.json: a search killed now has no summary, and its resume draws them again
        # deferred: matplotlib (~0.6 s) only at the end; in the try, a broken install costs only the plots
        from renas.tracking.plots import plot_children, plot_generations

        reward = getattr(strategy, "reward_meaning", "child - parent fitness")
        plot_generations(search.generations, run_dir / "plots", title=f"{strategy.name} on {space.name}", reward=reward)
        plot_children(run_dir / "history.jsonl", run_dir / "plots",
                      title=f"{strategy.name} on {space.name}: every child", reward=reward)
    except Exception as e:  # a plot must never cost the results
        log.warning("could not write plots: %s", e)
    write(lambda: atomic_write_json(run_dir / "summary.json", summary))
    _finish_sink(sink, search, summary, exit_code)  # (its artifact holds summary.json)


def restore_generations(run_dir: Path, resume: dict[str, Any]) -> None:
    """A ``generations.jsonl`` cut or deleted since the last snapshot is written again from it
    (the snapshot holds every generation up to it)."""
    kept = list(resume["state"]["search"].get("generations", []))
    if len(resume["generations"]) < len(kept):
        log.warning("%s held %d of the %d generations the last snapshot records (cut or deleted); "
                    "written again from the snapshot", run_dir / "generations.jsonl", len(resume["generations"]), len(kept))
        rewrite_history(run_dir / "generations.jsonl", kept)
        resume["generations"] = kept


def check_same_results(then: dict[str, str] | None, now: dict[str, str] | None) -> None:
    """A resumed table search must read the rows it started with: a relative ``evaluator.table``
    is found from the folder the command runs in, and a file can be edited in place. (A state
    written before this change holds no digest: not checked.)"""
    if not then or not now or then.get("digest") == now.get("digest"):
        return
    moved = "" if then.get("table") == now.get("table") else \
        f" (it read {then.get('table')}; a relative evaluator.table is found from the folder the command runs in)"
    raise RenasError(f"evaluator.table={now.get('table')} holds other results than the table this search started "
                     f"with{moved}; resume it with that table; the run folder was left as it is")


def summarize(search: Search, cfg: DictConfig, choices: dict[str, str], seconds: float, stopped: str | None,
              threads: int | None = None) -> dict[str, Any]:
    p = int(cfg.ga.population_size)
    initial = [f for f in search.best_so_far[:p]]
    return {
        "best": search.best,
        "evaluations": search.steps,
        "generations": len(search.generations),
        "algorithm": cfg.algorithm.get("name"),
        "search_space": search.space.name,
        "evaluator": cfg.evaluator.get("name"),
        "dataset": choices.get("dataset") if cfg.evaluator.get("name") == "train" else None,
        "seed": int(cfg.seed),
        "budget": int(cfg.ga.budget),
        # a signal in the last evaluation's records stops a search at its budget: the resume completes them
        "finished": search.finished and stopped not in ("interrupted", "terminated"),
        "stopped": stopped or (None if search.finished else search.ended_short),
        "best_initial_fitness": initial[-1] if initial else None,
        "duplicates": search.duplicates,
        "failures": search.failures,
        "seconds": round(seconds, 3),
        "threads": threads,
        "versions": versions(),
    }


def children_table(space, history: Path) -> tuple[list[str], list[list[Any]]]:
    """Every evaluation of ``history.jsonl`` as a row: step, generation, arch, fitness, status,
    origin, parent, reward, one column per gene (its choice: W&B's parallel-coordinates chart
    reads them) and the numeric metrics (params, FLOPs, a reported test column ...)."""
    records = read_history(history)
    genes = [g.name for g in space.genes]
    metrics = sorted({k for r in records for k, v in (r.get("metrics") or {}).items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)})
    columns = ["step", "generation", "arch", "fitness", "status", "origin", "parent", "reward"] + \
        [f"gene/{g}" for g in genes] + [f"metric/{m}" for m in metrics]
    rows = []
    for r in records:
        try:
            values = space.values(space.parse(r["arch"]))
            choices = [space.genes[i].choices[v] for i, v in enumerate(values)]
        except Exception:  # an architecture the space no longer reads: the row without its genes
            choices = [None] * len(genes)
        rows.append([r.get("step"), r.get("generation"), r.get("arch"), r.get("fitness"), r.get("status"), r.get("origin"),
                     r.get("parent"), r.get("reward"), *choices, *[(r.get("metrics") or {}).get(m) for m in metrics]])
    return columns, rows


def _finish_sink(sink, search: Search, summary: dict[str, Any], exit_code: int) -> None:
    try:
        best = summary["best"]
        values: dict[str, Any] = {"evaluations": summary["evaluations"], "finished": summary["finished"]}
        if best:
            values.update({"best/arch": best["arch"], "best/fitness": best["fitness"], "best/step": best["step"]})
            values.update({f"best/{k}": v for k, v in best["metrics"].items() if isinstance(v, (int, float, str))})
        sink.summary(values)
        rows = search.final_population()  # (none for an algorithm without a population: random, local, TPE, REINFORCE)
        step = search.generations[-1]["generation"] if search.generations else 0
        if rows:
            sink.table(
                "final_population",
                ["step", "arch", "fitness", "born"],
                [[r["step"], r["arch"], r["fitness"], r["born"]] for r in rows],
                step=step,
            )
        if sink.keeps_tables and search.steps:  # (reading the whole history back is only worth it for a sink that keeps it)
            sink.table("children", *children_table(search.space, sink.run_dir / "history.jsonl"), step=step)
        if best:
            files = [sink.run_dir / name for name in ("summary.json", "history.jsonl", "generations.jsonl")]
            sink.artifact(f"search-{sink.run_id or 'run'}", "search", files,
                          {"best_arch": best["arch"], "best_fitness": best["fitness"], "evaluations": summary["evaluations"],
                           "search_space": summary["search_space"], "algorithm": summary["algorithm"]})
    except Exception as e:
        log.warning("could not write the W&B summary: %s", e)
    finally:
        sink.finish(exit_code)
