"""Compare search algorithms on a results table: ``python -m renas.benchmark [overrides]``.

Every algorithm in ``algorithms`` searches ``budget`` evaluations for every seed in ``seeds``,
in this process, against the same table evaluator (NAS-Bench-201 by default). Nothing is
written per search; the benchmark's Hydra run folder (``outputs/benchmark/<date>/<time>``) gets:

- ``benchmark.json``: settings and, per algorithm, ``runs``, ``report_mean`` / ``report_std``
  / ``report_sem`` (the ``report`` column, i.e. the first ``evaluator.report`` column, of the
  architecture with the best fitness each search found), ``fitness_mean``, ``hit_rate``
  (fraction of searches whose best-fitness architecture is the table's best-fitness
  architecture, or ties with it), ``curve`` (mean over seeds, after each evaluation, of the
  report value of the best-fitness architecture so far: length ``budget``), ``fitness_curve``
  (mean best-so-far fitness), ``seconds`` (wall time of all its searches) and
  ``overhead_ms_per_eval`` (that time per evaluation: table look-ups cost next to nothing,
  so it is the algorithm's own cost, controller included). The table optima are under
  ``report_optimum`` and ``fitness_optimum``.
  With one budget, ``results`` is keyed by algorithm; with a list (``budget=[50,100,200]``)
  ``budget`` is that list and ``results`` is keyed by budget (as a string), then algorithm.
  Each budget is a separate set of searches (never a prefix of a longer one).
  ``finished`` is false while the benchmark runs: both files are rewritten after each
  algorithm, so an interrupted benchmark keeps what it finished.
- ``benchmark.md``: the same as a table to read.
- ``regret.png``: mean regret (table optimum of the report column minus ``curve``) against
  evaluations, one line per algorithm, log scale; one panel per budget.

``curve`` follows the honest protocol (search on validation, report the test value of what
the search would return), so it is *not* monotone: a fitter architecture can test worse.
``fitness_curve`` is monotone.

How each algorithm gets its settings: ``conf/benchmark.yaml`` composes the same groups as
``search.yaml``; for each algorithm the app composes that primary config again with Hydra's
compose API, ``compose("benchmark", [f"algorithm={name}", *your_overrides])``, your overrides
being the job's own (``HydraConfig.get().overrides.task``) minus the benchmark's keys. That
is exactly what ``python search.py algorithm=<name> <overrides>`` composes: the bundle's
defaults list (``override /controller: ...``) is applied by Hydra itself, and your overrides
come after the bundle, so ``ga.mutation_rate=0.2`` applies to every algorithm and
``controller.lr=...`` to every algorithm that has a controller (the bundle chooses which
controller). Settings that exist for one algorithm only (``algorithm.n_startup_trials`` of
``tpe``) can be given when that algorithm runs alone:
``algorithms=[tpe] ++algorithm.n_startup_trials=20``. Merging ``conf/algorithm/<name>.yaml`` by hand would have to re-implement the
defaults-list semantics and would break as bundles change.

Defaults (``conf/benchmark.yaml``): ``evaluator=nasbench201`` (search ``c10_valid_12ep``,
report ``c10_test_200ep``), ``ga.population_size=10`` with ``ga.sample_size=3`` (the
NAS-Bench-201 paper's evolution setting) unless the algorithm's bundle sets its own, ``threads=1``, ``logger=none``. ``max_duplicates``
passes through to the search loop (``null``: its default, as in ``search.py``); an algorithm
that keeps proposing known architectures costs time per repeat (each is answered from the
loop's cache and told to the algorithm), which ``duplicates/run`` and ms/eval show.

Examples::

    python -m renas.benchmark                                  # 5 algorithms x 100 seeds, budget 100
    python -m renas.benchmark algorithms=[renas,rea] seeds=20 budget=[50,100,200]
    python -m renas.benchmark ga.mutation_rate=0.3 controller.lr=1e-2 evaluator.dedup=isomorphic
    python -m renas.benchmark logger=wandb                     # plus one W&B run per search
    python -m renas.benchmark -m ga.mutation_rate=0.1,0.3      # a sweep: one benchmark folder each

``logger=wandb`` (offline unless ``logger.mode=online``) gives every search its own W&B run
(name ``<algorithm>-b<budget>-s<seed>``, all in one group named after the benchmark folder,
files under ``<folder>/runs/<name>/wandb``), logged per generation like ``search.py``'s.
It is slow and off by default (and its cost is then part of the measured times). A search is
bit-reproducible for a fixed seed: same config and seed, same history, same numbers here.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import hydra
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from renas.cli import hydra_run_dir, report_errors, set_threads
from renas.errors import ConfigError, RenasError

CONF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conf")
DEFAULT_ALGORITHMS = ("renas", "rea", "random", "reinforce", "tpe")
#: keys of conf/benchmark.yaml that are the benchmark's own (not passed to the searches)
BENCHMARK_KEYS = ("algorithms", "seeds", "budget", "max_duplicates")


# --- input ---------------------------------------------------------------------------------
def known_algorithms(conf_dir: str | Path = CONF_DIR) -> list[str]:
    return sorted(p.stem for p in Path(conf_dir, "algorithm").glob("*.yaml"))


def _plain(value: Any) -> Any:
    if isinstance(value, (ListConfig, DictConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_algorithms(value: Any, allowed: Sequence[str]) -> list[str]:
    value = _plain(value)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"algorithms={value!r} must be a list of algorithm names, e.g. algorithms=[renas,rea]; allowed: {', '.join(allowed)}")
    for n in names:
        if n not in allowed:
            raise ConfigError(f"algorithms: unknown algorithm {n!r}; allowed: {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"algorithms={names} names an algorithm twice")
    return names


def parse_seeds(value: Any) -> list[int]:
    value = _plain(value)
    if _is_int(value):
        if value < 1:
            raise ConfigError(f"seeds={value} must be a number of seeds >= 1 (seeds 0..n-1) or a list such as seeds=[3,7]")
        return list(range(value))
    if isinstance(value, list) and value and all(_is_int(s) and 0 <= s <= 2**31 - 1 for s in value):
        if len(set(value)) != len(value):
            raise ConfigError(f"seeds={value} lists a seed twice")
        return list(value)
    raise ConfigError(f"seeds={value!r} must be a number of seeds >= 1 (seeds 0..n-1) or a non-empty list of seeds >= 0, e.g. seeds=[3,7]")


def parse_budgets(value: Any) -> tuple[list[int], bool]:
    """``(budgets, is_list)``."""
    value = _plain(value)
    if _is_int(value):
        values, is_list = [value], False
    elif isinstance(value, list) and value and all(_is_int(b) for b in value):
        values, is_list = list(value), True
    else:
        raise ConfigError(f"budget={value!r} must be a number of evaluations or a list of them, e.g. budget=[50,100,200]")
    for b in values:
        if b < 1:
            raise ConfigError(f"budget={value!r}: a budget must be an integer >= 1")
    if len(set(values)) != len(values):
        raise ConfigError(f"budget={values} lists a budget twice")
    return values, is_list


def _override_key(override: str) -> str:
    key = override.split("=", 1)[0].strip()
    return key.lstrip("~+")


def search_overrides(task_overrides: Sequence[str]) -> list[str]:
    """The job's overrides that concern the searches (the benchmark's own keys removed)."""
    out = []
    for o in task_overrides:
        key = _override_key(o)
        if key in BENCHMARK_KEYS:
            continue
        if key == "algorithm":
            raise ConfigError(f"{o}: the benchmark runs every algorithm in `algorithms`; use algorithms=[...]")
        if key == "seed":
            raise ConfigError(f"{o}: the benchmark runs every seed in `seeds`; use seeds=N or seeds=[...]")
        if key == "ga.budget":
            raise ConfigError(f"{o}: the benchmark sets ga.budget from `budget`; use budget=N or budget=[...]")
        out.append(o)
    return out


def compose_algorithm(name: str, overrides: Sequence[str]) -> DictConfig:
    """``conf/benchmark.yaml`` composed with ``algorithm=<name>`` and the user's overrides."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name="benchmark", overrides=[f"algorithm={name}", *overrides])
        from hydra import initialize_config_dir

        with initialize_config_dir(config_dir=os.path.abspath(CONF_DIR), version_base="1.3"):
            return compose(config_name="benchmark", overrides=[f"algorithm={name}", *overrides])
    except RenasError:
        raise
    except Exception as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"algorithm={name} with overrides {list(overrides)}: {msg}") from None


# --- one search ------------------------------------------------------------------------------
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
    from renas.evaluate.base import InlineExecutor
    from renas.search.loop import Search
    from renas.search.run import build_strategy

    start = time.perf_counter()
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.seed = int(seed)
        cfg.ga.budget = int(budget)
    strategy = build_strategy(cfg, space)
    metric = getattr(evaluator, "metric", None)
    records: list[dict[str, Any]] = []
    curve: list[float] = []
    fitness_curve: list[float] = []
    state = {"fitness": None, "report": math.nan}

    def journal(record: dict[str, Any]) -> None:
        fit = record["fitness"]
        if record["status"] == "ok" and (state["fitness"] is None or fit > state["fitness"]):
            state["fitness"] = fit
            value = record["metrics"].get(report, fit if report == metric else math.nan)
            state["report"] = float(value)
        curve.append(state["report"])
        fitness_curve.append(math.nan if state["fitness"] is None else float(state["fitness"]))
        if keep_records:
            records.append(record)
        if heartbeat is not None:
            heartbeat(record["step"] + 1, search.duplicates)

    ev = cfg.evaluator
    kwargs: dict[str, Any] = {}
    if max_duplicates is not None:
        kwargs["max_duplicates"] = int(max_duplicates)
    on_generation = None
    if sink is not None:
        def on_generation(row: dict[str, Any]) -> None:
            sink.log({k: v for k, v in row.items() if v is not None}, step=row["generation"])
    search = Search(
        space,
        strategy,
        InlineExecutor(evaluator),
        budget=int(budget),
        generation_size=int(cfg.ga.population_size),
        seed=int(seed),
        dedup=ev.get("dedup", "exact"),
        on_failure=ev.get("on_failure", "worst"),
        failure_fitness=float(ev.get("failure_fitness", 0.0)),
        max_failures=int(ev.get("max_failures", 10)),
        journal=journal,
        on_generation=on_generation,
        **kwargs,
    )
    search.run()
    best = search.best
    assert best is None or best["fitness"] == state["fitness"], "incumbent tracking disagrees with the loop"
    return RunResult(
        seed=int(seed),
        budget=int(budget),
        best_arch=None if best is None else best["arch"],
        best_fitness=math.nan if best is None else float(best["fitness"]),
        best_report=state["report"],
        curve=curve,
        fitness_curve=fitness_curve,
        evaluations=search.steps,
        duplicates=search.duplicates,
        failures=search.failures,
        seconds=time.perf_counter() - start,
        records=records,
    )


# --- statistics --------------------------------------------------------------------------
def _mean(xs) -> float:
    a = np.asarray(xs, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _std(xs) -> float:
    a = np.asarray(xs, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.std(ddof=1)) if a.size > 1 else 0.0 if a.size == 1 else math.nan


def _mean_curve(curves: list[list[float]], length: int) -> list[float]:
    out = []
    for i in range(length):
        out.append(_mean([c[i] if i < len(c) else math.nan for c in curves]))
    return out


def summarize_runs(runs: list[RunResult], budget: int, optimum_arch: str, optimum_fitness: float, seconds: float) -> dict[str, Any]:
    reports = [r.best_report for r in runs]
    n = len(runs)
    std = _std(reports)
    finite = int(np.isfinite(np.asarray(reports, dtype=float)).sum())
    hits = [r.best_arch is not None and (r.best_arch == optimum_arch or r.best_fitness >= optimum_fitness) for r in runs]
    evaluations = sum(r.evaluations for r in runs)
    return {
        "runs": n,
        "report_mean": _mean(reports),
        "report_std": std,
        "report_sem": std / math.sqrt(finite) if finite else math.nan,
        "report_median": float(np.median(reports)) if finite == n and n else math.nan,
        "fitness_mean": _mean([r.best_fitness for r in runs]),
        "fitness_std": _std([r.best_fitness for r in runs]),
        "hit_rate": float(np.mean(hits)) if n else math.nan,
        "curve": _mean_curve([r.curve for r in runs], budget),
        "fitness_curve": _mean_curve([r.fitness_curve for r in runs], budget),
        "seconds": seconds,
        "overhead_ms_per_eval": 1000.0 * seconds / evaluations if evaluations else math.nan,
        "evaluations": evaluations,
        "duplicates_mean": _mean([r.duplicates for r in runs]),
        "duplicates_max": max((r.duplicates for r in runs), default=0),
        "failures": sum(r.failures for r in runs),
        "slowest_run_seconds": max((r.seconds for r in runs), default=math.nan),
        "report_values": reports,
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


# --- output --------------------------------------------------------------------------------
def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def markdown(data: dict[str, Any]) -> str:
    report, metric = data["report"], data["metric"]
    opt = data["report_optimum"]
    seeds = data["seeds"]
    seed_text = f"seeds {seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[0] + len(seeds))) else f"seeds {seeds}"
    lines = [
        f"# Search algorithms on {Path(data['table']).name}",
        "",
        f"Search on `{metric}` (fitness), report `{report}` of the best-fitness architecture each search found. "
        f"{len(seeds)} {seed_text}; budget {data['budget']} evaluations. "
        f"Table optimum: `{report}` {_fmt(opt['value'], 2)}, `{metric}` {_fmt(data['fitness_optimum']['value'], 2)}. "
        f"Regret = optimum − mean. Hit rate: searches that found the table's best-`{metric}` architecture.",
        "",
    ]
    if not data.get("finished", True):
        lines += ["**Partial results: the benchmark is still running or was interrupted.**", ""]
    if data.get("overrides"):
        lines += [f"Overrides: `{' '.join(data['overrides'])}`", ""]
    lines += [
        f"| algorithm | budget | runs | {metric} mean | {report} mean ± std | sem | regret | hit rate | ms/eval | duplicates/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for budget, results in _by_budget(data):
        for name, r in results.items():
            regret = opt["value"] - r["report_mean"] if r["report_mean"] is not None else None
            lines.append(
                f"| {name} | {budget} | {r['runs']} | {_fmt(r['fitness_mean'])} | {_fmt(r['report_mean'])} ± {_fmt(r['report_std'])} "
                f"| {_fmt(r['report_sem'], 3)} | {_fmt(regret, 3)} | {_fmt(r['hit_rate'])} | {_fmt(r['overhead_ms_per_eval'], 2)} "
                f"| {_fmt(r['duplicates_mean'], 1)} |"
            )
    load = data.get("load_average") or {}
    lines += [
        "",
        f"Wall time {_fmt(data['seconds'], 1)} s on {os.cpu_count()} CPU(s), torch threads {data.get('threads')}; "
        f"load average at start {load.get('start')}, at end {load.get('end')}. "
        "ms/eval = an algorithm's wall time / its evaluations (table look-ups are nearly free).",
        "",
    ]
    return "\n".join(lines)


def _by_budget(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    if isinstance(data["budget"], list):
        return [(int(b), data["results"][str(b)]) for b in data["budget"] if data["results"].get(str(b))]
    return [(int(data["budget"]), data["results"])]


def plot_regret(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _by_budget(data)
    optimum = data["report_optimum"]["value"]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    floor = 1e-3
    for ax, (budget, results) in zip(axes[0], panels):
        for name, r in results.items():
            ys = np.array([np.nan if v is None else optimum - v for v in r["curve"]], dtype=float)
            ys = np.where(np.isfinite(ys), np.maximum(ys, floor), np.nan)
            ax.plot(np.arange(1, len(ys) + 1), ys, label=f"{name} ({_fmt(r['report_mean'])})", lw=1.6)
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel(f"regret of {data['report']} (optimum − mean)")
        ax.set_title(f"budget {budget}, {len(data['seeds'])} seeds")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"search on {data['metric']}, report {data['report']} (optimum {_fmt(optimum)})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the benchmark ---------------------------------------------------------------------------
@dataclass
class Plan:
    algorithms: list[str]
    configs: dict[str, DictConfig]
    seeds: list[int]
    budgets: list[int]
    budget_is_list: bool
    max_duplicates: int | None
    overrides: list[str]


def plan(cfg: DictConfig, task_overrides: Sequence[str]) -> Plan:
    """Check the benchmark's own keys and compose every algorithm's config (no work yet)."""
    from renas.config import check_number

    algorithms = parse_algorithms(cfg.get("algorithms", list(DEFAULT_ALGORITHMS)), known_algorithms())
    seeds = parse_seeds(cfg.get("seeds", 100))
    budgets, is_list = parse_budgets(cfg.get("budget", 100))
    max_dup = cfg.get("max_duplicates")
    if max_dup is not None:
        max_dup = int(check_number("max_duplicates", max_dup, 1, None, integer=True))
    overrides = search_overrides(task_overrides)
    configs = {a: compose_algorithm(a, overrides) for a in algorithms}
    for a, c in configs.items():
        p = c.ga.population_size
        for b in budgets:
            if _is_int(p) and b < p:
                raise ConfigError(
                    f"budget={b} is smaller than ga.population_size={p} (algorithm {a}): the initial population alone needs {p} evaluations"
                )
    return Plan(algorithms, configs, seeds, budgets, is_list, max_dup, overrides)


def _table_parts(configs: dict[str, DictConfig], run_dir: Path):
    """Space and evaluator per algorithm, built once per distinct (search_space, evaluator)."""
    from hydra.utils import get_class

    from renas.build import build_evaluator, build_space

    cache: dict[str, tuple[Any, Any]] = {}
    parts = {}
    for a, c in configs.items():
        key = OmegaConf.to_yaml(c.search_space) + "\n---\n" + OmegaConf.to_yaml(c.evaluator)
        if key not in cache:
            not_a_table = ConfigError(
                f"evaluator={c.evaluator.get('name')} is not a results table: the benchmark runs hundreds of searches "
                f"and needs a table evaluator (evaluator=nasbench201)"
            )
            try:
                cls = get_class(c.evaluator._target_)
            except Exception:
                cls = None
            if cls is not None and not hasattr(cls, "optimum"):
                raise not_a_table  # before building it (a training evaluator sets up Lightning)
            space = build_space(c.search_space)
            evaluator = build_evaluator(c, space, run_dir)
            if not (hasattr(evaluator, "optimum") and hasattr(evaluator, "table")):
                raise not_a_table
            cache[key] = (space, evaluator)
        parts[a] = cache[key]
    return parts


def _check(plan_: Plan, parts) -> None:
    """search.py's checks for every algorithm and budget, and one strategy built for each."""
    from renas.search.run import build_strategy, validate

    for a, c in plan_.configs.items():
        space, _ = parts[a]
        workers = c.evaluator.get("workers", 1)
        if workers != 1:
            raise ConfigError(
                f"evaluator.workers={workers}: the benchmark evaluates one child at a time in this process "
                f"(table look-ups need no workers); leave evaluator.workers=1"
            )
        for b in plan_.budgets:
            c2 = c.copy()
            with open_dict(c2):
                c2.seed = plan_.seeds[0]
                c2.ga.budget = b
            try:
                validate(c2, space)
            except ConfigError as e:
                raise ConfigError(f"algorithm {a}: {str(e).replace(f'ga.budget={b}', f'budget={b}')}") from None
        c2 = c.copy()
        with open_dict(c2):
            c2.seed = plan_.seeds[0]
        try:
            build_strategy(c2, space)
        except TypeError as e:  # e.g. an algorithm.* key another algorithm does not take
            raise ConfigError(
                f"algorithm {a}: {e} (algorithm.* overrides apply to every algorithm in `algorithms`; "
                f"give one algorithm's own settings with that algorithm alone)"
            ) from None


def _report_column(evaluator) -> str:
    report = list(getattr(evaluator, "report", []) or [])
    return report[0] if report else evaluator.metric


def _make_sink(cfg: DictConfig, run_dir: Path, name: str, group: str):
    from hydra.utils import get_class, instantiate

    from renas.tracking.loggers import Sink

    if get_class(cfg.logger._target_) is Sink:
        return None
    sink = instantiate(cfg.logger)
    folder = run_dir / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    sink.start(folder, OmegaConf.to_container(cfg, resolve=True), name=name, job_type="benchmark", group=group)
    return sink


def run_benchmark(
    cfg: DictConfig,
    run_dir: Path,
    task_overrides: Sequence[str] = (),
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Plan, check, run every (budget, algorithm, seed) and write the run folder; returns the JSON data."""
    plan_ = plan(cfg, task_overrides)
    parts = _table_parts(plan_.configs, run_dir)
    _check(plan_, parts)
    first = parts[plan_.algorithms[0]][1]
    for a in plan_.algorithms[1:]:
        ev = parts[a][1]
        if (ev.table.path, ev.metric, _report_column(ev)) != (first.table.path, first.metric, _report_column(first)):
            raise ConfigError("every algorithm must search the same table, metric and report column")
    evaluator = first
    report = _report_column(evaluator)
    opt_arch, opt_fit = evaluator.optimum()
    rep_arch, rep_opt = evaluator.optimum(report) if report in evaluator.table.columns else (opt_arch, opt_fit)

    run_dir.mkdir(parents=True, exist_ok=True)
    group = "benchmark-" + "-".join(run_dir.parts[-2:])
    load_start = [round(x, 2) for x in os.getloadavg()]
    n = len(plan_.seeds)
    out(
        f"benchmark: {', '.join(plan_.algorithms)} x {n} seeds x budget {plan_.budgets if plan_.budget_is_list else plan_.budgets[0]} "
        f"on {evaluator.table.path.name} (search {evaluator.metric}, report {report}, optimum {rep_opt:.4f}); "
        f"load average {load_start}; output {run_dir}"
    )
    t0 = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}

    def write(results: dict[int, dict[str, Any]], finished: bool) -> dict[str, Any]:
        from renas.tracking.files import atomic_write_bytes, atomic_write_json

        data: dict[str, Any] = {
            "table": str(evaluator.table.path.resolve()),
            "metric": evaluator.metric,
            "report": report,
            "budget": plan_.budgets if plan_.budget_is_list else plan_.budgets[0],
            "seeds": plan_.seeds,
            "algorithms": plan_.algorithms,
            "report_optimum": {"arch": rep_arch, "value": rep_opt},
            "fitness_optimum": {"arch": opt_arch, "value": opt_fit},
            "results": {str(b): r for b, r in results.items()} if plan_.budget_is_list else results[plan_.budgets[0]],
            "finished": finished,
            "overrides": plan_.overrides,
            "max_duplicates": plan_.max_duplicates,
            "threads": cfg.get("threads"),
            "seconds": time.perf_counter() - t0,
            "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        }
        data = _jsonable(data)
        atomic_write_json(run_dir / "benchmark.json", data)
        atomic_write_bytes(run_dir / "benchmark.md", markdown(data).encode())
        return data

    for budget in plan_.budgets:
        results[budget] = {}
        for a in plan_.algorithms:
            space, ev = parts[a]
            runs: list[RunResult] = []
            start = last_print = time.perf_counter()
            every = max(1, n // 10)
            for i, seed in enumerate(plan_.seeds, start=1):
                sink = _make_sink(plan_.configs[a], run_dir, f"{a}-b{budget}-s{seed}", group)
                r = None
                run_start = time.perf_counter()

                def heartbeat(done: int, duplicates: int) -> None:  # a slow search says where it is
                    nonlocal last_print
                    now = time.perf_counter()
                    if now - last_print > 30:
                        last_print = now
                        out(f"  {a:<10} budget {budget}: seed {seed} at {done}/{budget} evaluations, "
                            f"{duplicates} duplicate proposals, {now - run_start:.0f} s in this search")

                try:
                    r = run_search_once(plan_.configs[a], space, ev, seed, budget, report,
                                        max_duplicates=plan_.max_duplicates, sink=sink, heartbeat=heartbeat)
                finally:
                    if sink is not None:
                        _finish_sink(sink, r, seed)
                runs.append(r)
                now = time.perf_counter()
                if i == n or i % every == 0 or now - last_print > 15:
                    last_print = now
                    el = now - start
                    out(
                        f"  {a:<10} budget {budget}: {i}/{n} seeds, {el:.1f} s elapsed ({el / i:.2f} s/search), "
                        f"{report} mean {_mean([x.best_report for x in runs]):.3f}, duplicates/search {_mean([x.duplicates for x in runs]):.0f}"
                    )
            seconds = time.perf_counter() - start
            results[budget][a] = summarize_runs(runs, budget, opt_arch, opt_fit, seconds)
            write(results, finished=False)  # what is done so far survives an interrupted benchmark

    data = write(results, finished=True)
    try:
        plot_regret(data, run_dir / "regret.png")
    except Exception as e:  # a plot must never cost the results
        out(f"warning: could not write regret.png: {e}")
    md = markdown(data)
    out("")
    out(md)
    return data


def _finish_sink(sink, result: RunResult | None, seed: int) -> None:
    try:
        if result is not None:
            sink.summary({"seed": seed, "best/arch": result.best_arch, "best/fitness": result.best_fitness,
                          "best/report": result.best_report, "evaluations": result.evaluations,
                          "duplicates": result.duplicates})
    finally:
        sink.finish(0 if result is not None else 1)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="benchmark")
@report_errors
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    set_threads(cfg.get("threads"))
    overrides = list(HydraConfig.get().overrides.task)
    data = run_benchmark(cfg, hydra_run_dir(), overrides)
    return float(data["seconds"])


if __name__ == "__main__":
    from renas.cli import quote_arch_overrides

    sys.argv = quote_arch_overrides(sys.argv)
    main()
