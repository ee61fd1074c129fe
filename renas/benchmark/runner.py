"""Running the benchmark: every (budget, algorithm, seed) search in this process against the
table evaluator, results written after each algorithm so an interrupted benchmark keeps them."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, open_dict

from renas.benchmark.plan import BENCHMARK_KEYS, Plan, check, plan, table_parts
from renas.benchmark.report import jsonable, markdown, plot_regret
from renas.benchmark.stats import mean, paired_against, summarize_runs
from renas.build import build_strategy
from renas.config import plain
from renas.errors import ConfigError
from renas.evaluate.base import InlineExecutor
from renas.tracking.files import atomic_write_bytes, atomic_write_json
from renas.tracking.loggers import Sink
from renas.tracking.versions import versions


@dataclass
class RunResult:
    """One search's outcome. ``curve[i]``: report value of the best-fitness architecture after
    ``i + 1`` evaluations (NaN before any successful one); ``fitness_curve[i]``: its fitness."""

    seed: int
    budget: int
    best_arch: str | None
    best_fitness: float
    best_report: float
    curve: list[float]
    fitness_curve: list[float]
    evaluations: int
    duplicates: int
    failures: int
    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)


def run_search_once(
    cfg: DictConfig,
    space,
    evaluator,
    seed: int,
    budget: int,
    report: str,
    *,
    keep_records: bool = False,
    max_duplicates: int | None = None,
    sink=None,
    heartbeat: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run one search of ``cfg``'s algorithm for ``seed`` and ``budget`` in this process.

    ``heartbeat(evaluations, duplicates)`` is called after each evaluation (progress output).
    """
    # deferred: renas.search pulls torch (~3 s); bad benchmark input fails before it
    from renas.search.loop import Journal, LoopSettings, OnGeneration, Search

    start = time.perf_counter()
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.seed = int(seed)
        cfg.ga.budget = int(budget)
    strategy = build_strategy(cfg, space)
    metric = metric_name(evaluator)
    records: list[dict[str, Any]] = []
    curve: list[float] = []
    fitness_curve: list[float] = []
    best: dict[str, Any] = {"fitness": None, "report": math.nan}

    def journal(record: dict[str, Any]) -> None:
        fit = record["fitness"]
        if record["status"] == "ok" and (best["fitness"] is None or fit > best["fitness"]):
            best["fitness"] = fit
            best["report"] = float(record["metrics"].get(report, fit if report == metric else math.nan))
        curve.append(best["report"])
        fitness_curve.append(math.nan if best["fitness"] is None else float(best["fitness"]))
        if keep_records:
            records.append(record)
        if heartbeat is not None:
            heartbeat(record["step"] + 1, search.duplicates)

    overrides = {} if max_duplicates is None else {"max_duplicates": int(max_duplicates)}
    callbacks = [Journal(journal)]
    if sink is not None:
        callbacks.append(OnGeneration(sink.log_generation))
    search = Search(space, strategy, InlineExecutor(evaluator), budget=int(budget),
                    generation_size=int(cfg.ga.population_size), seed=int(seed),
                    settings=LoopSettings.from_config(cfg, evaluator, **overrides), callbacks=callbacks)
    search.run()
    found = search.best
    if found is not None and found["fitness"] != best["fitness"]:
        raise RuntimeError("incumbent tracking disagrees with the search loop")
    return RunResult(
        seed=int(seed),
        budget=int(budget),
        best_arch=None if found is None else found["arch"],
        best_fitness=math.nan if found is None else float(found["fitness"]),
        best_report=best["report"],
        curve=curve,
        fitness_curve=fitness_curve,
        evaluations=search.steps,
        duplicates=search.duplicates,
        failures=search.failures,
        seconds=time.perf_counter() - start,
        records=records,
    )


def metric_name(evaluator) -> str:
    """The fitness column: a table's ``metric``, or ``val_acc`` for trained children."""
    return getattr(evaluator, "metric", None) or "val_acc"


def report_column(evaluator) -> str:
    """What is reported of the best architecture: a table's first ``report`` column, a trained
    child's ``test_acc`` (``evaluator.report_test=true``), else the fitness itself."""
    if hasattr(evaluator, "table"):
        report = list(getattr(evaluator, "report", []) or [])
        return report[0] if report else evaluator.metric
    return "test_acc" if getattr(evaluator, "report_test", False) else metric_name(evaluator)


def source_name(evaluator) -> str:
    """The table file, or what children are trained on."""
    if hasattr(evaluator, "table"):
        return evaluator.table.path.name
    return f"children trained on {type(getattr(evaluator, 'datamodule', None)).__name__}"


def optima(evaluator, report: str) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """((arch, fitness), (arch, report value)) of the table's best; (None, None) when trained."""
    if not hasattr(evaluator, "optimum"):
        return (None, None), (None, None)
    arch, value = evaluator.optimum()
    fit = (arch, direction(evaluator) * value)  # in fitness units (-metric when minimised)
    rep = evaluator.optimum(report) if report in evaluator.table.columns else (arch, value)
    return fit, rep


def direction(evaluator) -> int:
    """+1: higher is better (accuracy); -1: the table's columns are minimised (``evaluator.direction=min``)."""
    return int(getattr(evaluator, "sign", 1))


def optuna_version() -> str | None:
    try:
        # deferred: optuna (1-3 s) only for its version; guarded, None when missing
        import optuna
    except ImportError:
        return None
    return optuna.__version__


def _make_sink(cfg: DictConfig, run_dir: Path, name: str, group: str, algorithm: str, seed: int, budget: int,
               max_duplicates: int | None):
    """One search's W&B run, its config as ``search.py``'s would be (``seed``, ``ga.budget``,
    ``choices.algorithm``), so benchmark runs and searches are filtered by the same keys: the
    benchmark's own keys (:data:`~renas.benchmark.plan.BENCHMARK_KEYS`, composed here with their
    defaults) give way to what the search ran with."""
    if get_class(cfg.logger._target_) is Sink:
        return None
    sink = instantiate(cfg.logger)
    folder = run_dir / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    config = plain(cfg)
    for key in BENCHMARK_KEYS:
        config.pop(key, None)
    config["seed"] = int(seed)
    config["ga"]["budget"] = int(budget)
    config["max_duplicates"] = max_duplicates  # (the loop's repeat limit: it changes results)
    config["choices"] = {"algorithm": algorithm}
    config["versions"] = versions()
    sink.start(folder, config, name=name, job_type="benchmark", group=group)
    return sink


def _finish_sink(sink, result: RunResult | None, seed: int, report: str) -> None:
    """Its summary under ``search.py``'s keys (``best/<report column>``, ``finished``)."""
    try:
        if result is not None:
            sink.summary({"seed": seed, "best/arch": result.best_arch, "best/fitness": result.best_fitness,
                          f"best/{report}": result.best_report, "evaluations": result.evaluations,
                          "duplicates": result.duplicates, "finished": True})
    finally:
        sink.finish(0 if result is not None else 1)


class _Progress:
    """A line every tenth of the seeds (or 15 s), and a heartbeat for a search slower than 30 s."""

    def __init__(self, out: Callable[[str], None], name: str, budget: int, seeds: int, report: str) -> None:
        self.out, self.name, self.budget, self.seeds, self.report = out, name, budget, seeds, report
        self.start = self.last = time.perf_counter()
        self.every = max(1, seeds // 10)
        self.seed, self.run_start = None, self.start

    def begin(self, seed: int) -> None:
        self.seed, self.run_start = seed, time.perf_counter()

    def heartbeat(self, done: int, duplicates: int) -> None:
        now = time.perf_counter()
        if now - self.last > 30:
            self.last = now
            self.out(f"  {self.name:<10} budget {self.budget}: seed {self.seed} at {done}/{self.budget} evaluations, "
                     f"{duplicates} duplicate proposals, {now - self.run_start:.0f} s in this search")

    def done(self, runs: list[RunResult]) -> None:
        now, i = time.perf_counter(), len(runs)
        if i == self.seeds or i % self.every == 0 or now - self.last > 15:
            self.last = now
            el = now - self.start
            self.out(f"  {self.name:<10} budget {self.budget}: {i}/{self.seeds} seeds, {el:.1f} s elapsed ({el / i:.2f} s/search), "
                     f"{self.report} mean {mean([x.best_report for x in runs]):.3f}, "
                     f"duplicates/search {mean([x.duplicates for x in runs]):.0f}")


def run_benchmark(
    cfg: DictConfig,
    run_dir: Path,
    task_overrides: Sequence[str] = (),
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Plan, check, run every (budget, algorithm, seed) and write the run folder; returns the JSON data."""
    plan_ = plan(cfg, task_overrides)
    parts = table_parts(plan_.configs, run_dir)
    check(plan_, parts)
    first = parts[plan_.algorithms[0]][1]
    for a in plan_.algorithms[1:]:
        ev = parts[a][1]
        if ev is not first and (getattr(ev, "table", None) is None or getattr(first, "table", None) is None or (
                ev.table.path, ev.metric, report_column(ev)) != (first.table.path, first.metric, report_column(first))):
            raise ConfigError("every algorithm must search the same table (or trained evaluator), metric and report column")
    evaluator = first
    report = report_column(evaluator)
    (opt_arch, opt_fit), (rep_arch, rep_opt) = optima(evaluator, report)

    run_dir.mkdir(parents=True, exist_ok=True)
    group = "benchmark-" + "-".join(run_dir.parts[-2:])
    load_start = [round(x, 2) for x in os.getloadavg()]
    n = len(plan_.seeds)
    out(
        f"benchmark: {', '.join(plan_.algorithms)} x {n} seeds x budget {plan_.budgets if plan_.budget_is_list else plan_.budgets[0]} "
        f"on {source_name(evaluator)} (search {metric_name(evaluator)}, report {report}"
        f"{'' if rep_opt is None else f', optimum {rep_opt:.4f}'}); "
        f"load average {load_start}; output {run_dir}"
    )
    t0 = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}
    common = {
        "table": str(evaluator.table.path.resolve()) if hasattr(evaluator, "table") else None,
        "source": source_name(evaluator),
        "metric": metric_name(evaluator),
        "report": report,
        "direction": "min" if direction(evaluator) < 0 else "max",
        "budget": plan_.budgets if plan_.budget_is_list else plan_.budgets[0],
        "seeds": plan_.seeds,
        "algorithms": plan_.algorithms,
        "reference": plan_.reference,
        "report_optimum": {"arch": rep_arch, "value": rep_opt},
        "fitness_optimum": {"arch": opt_arch, "value": opt_fit},
        "overrides": plan_.overrides,
        "max_duplicates": plan_.max_duplicates,
        "threads": cfg.get("threads"),
        "versions": versions(),
        "optuna": optuna_version() if "tpe" in [c.algorithm.name for c in plan_.configs.values()] else None,
        "settings": {a: plain(c.algorithm) | {"ga": plain(c.ga), "controller": plain(c.controller)}
                     for a, c in plan_.configs.items()},
    }

    for budget in plan_.budgets:
        results[budget] = {}
        for a in plan_.algorithms:
            space, ev = parts[a]
            runs: list[RunResult] = []
            progress = _Progress(out, a, budget, n, report)
            for seed in plan_.seeds:
                sink = _make_sink(plan_.configs[a], run_dir, f"{a}-b{budget}-s{seed}", group, a, seed, budget,
                                  plan_.max_duplicates)
                r = None
                progress.begin(seed)
                try:
                    r = run_search_once(plan_.configs[a], space, ev, seed, budget, report,
                                        max_duplicates=plan_.max_duplicates, sink=sink, heartbeat=progress.heartbeat)
                finally:
                    if sink is not None:
                        _finish_sink(sink, r, seed, report)
                runs.append(r)
                progress.done(runs)
            results[budget][a] = summarize_runs(runs, budget, opt_arch, opt_fit, time.perf_counter() - progress.start)
            _write(run_dir, plan_, common, results, t0, load_start, finished=False)  # survives an interruption

    data = _write(run_dir, plan_, common, results, t0, load_start, finished=True)
    try:
        plot_regret(data, run_dir / "regret.png")
    except Exception as e:  # a plot must never cost the results
        out(f"warning: could not write regret.png: {e}")
    out("")
    out(markdown(data))
    return data


def _write(run_dir: Path, plan_: Plan, common: dict[str, Any], results: dict[int, dict[str, Any]], t0: float,
           load_start: list[float], finished: bool) -> dict[str, Any]:
    pairs = {}
    if plan_.reference is not None:
        for b, res in results.items():
            if plan_.reference in res:
                pairs[str(b)] = paired_against(res, plan_.reference, -1 if common["direction"] == "min" else 1)
    data: dict[str, Any] = dict(common)
    data.update(
        results={str(b): r for b, r in results.items()} if plan_.budget_is_list else results[plan_.budgets[0]],
        paired=pairs,
        finished=finished,
        seconds=time.perf_counter() - t0,
        load_average={"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    )
    data = jsonable(data)
    atomic_write_json(run_dir / "benchmark.json", data)
    atomic_write_bytes(run_dir / "benchmark.md", markdown(data).encode())
    return data
