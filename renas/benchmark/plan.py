"""The benchmark's plan: its own keys checked, every algorithm's config composed, the table
evaluator built once, and search.py's checks run for every algorithm and budget, all before
any search starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from renas.build import build_evaluator, build_space, build_strategy
from renas.config import check_schema, compose, group_options, plain
from renas.errors import ConfigError, RenasError, one_line
from renas.search.run import check_strategy, initial_need, initial_phase

#: RENAS, its ablation, and the baselines it must beat (README: "Search algorithms compared")
DEFAULT_ALGORITHMS = ("renas", "evolution", "rea", "rea_tuned", "local", "tpe", "reinforce", "random")
#: keys of conf/benchmark.yaml that are the benchmark's own (not passed to the searches)
BENCHMARK_KEYS = ("algorithms", "seeds", "budget", "max_duplicates", "reference")


def known_algorithms(hydra_overrides: Sequence[str] | None = None) -> list[str]:
    """The ``algorithm`` options: the package's and those of a user's ``hydra.searchpath``."""
    return group_options("algorithm", "benchmark", hydra_overrides)


def _plain(value: Any) -> Any:
    if isinstance(value, (ListConfig, DictConfig)):
        return plain(value)
    return value


def is_int(x: Any) -> bool:
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
    """``seeds=N`` (seeds 0..N-1), ``seeds=[3,7]``, or ``seeds="100..199"`` (a range)."""
    value = _plain(value)
    if isinstance(value, str) and ".." in value:
        first, _, last = value.partition("..")
        try:
            a, b = int(first), int(last)
        except ValueError:
            a, b = -1, -2
        if 0 <= a <= b <= 2**31 - 1:
            return list(range(a, b + 1))
    if is_int(value):
        if value < 1:
            raise ConfigError(f"seeds={value} must be a number of seeds >= 1 (seeds 0..n-1), a range such as seeds=100..199 or a list such as seeds=[3,7]")
        return list(range(value))
    if isinstance(value, list) and value and all(is_int(s) and 0 <= s <= 2**31 - 1 for s in value):
        if len(set(value)) != len(value):
            raise ConfigError(f"seeds={value} lists a seed twice")
        return list(value)
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)  # (as given)
    raise ConfigError(f"seeds={shown} must be a number of seeds >= 1 (seeds 0..n-1), a range such as seeds=100..199, or a non-empty list of seeds >= 0, e.g. seeds=[3,7]")


def parse_budgets(value: Any) -> tuple[list[int], bool]:
    """``(budgets, is_list)``."""
    value = _plain(value)
    if is_int(value):
        values, is_list = [value], False
    elif isinstance(value, list) and value and all(is_int(b) for b in value):
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


def algorithm_overrides(argv: Sequence[str]) -> list[str]:
    """``algorithm.<key>=<value>`` on the command line as ``++algorithm.<key>=<value>``.

    The benchmark's own config has no ``algorithm`` (each entry of ``algorithms`` brings its
    bundle), so Hydra would refuse the plain form there and its advice (``+``) would then clash
    with the bundle's key; ``++`` adds it to the benchmark's config and overrides it in every
    bundle. An algorithm without that setting refuses it in one line when it is built."""
    return [f"++{a}" if i and re.match(r"algorithm\.[A-Za-z_]", a) else a for i, a in enumerate(argv)]


def search_overrides(task_overrides: Sequence[str]) -> list[str]:
    """The job's overrides that concern the searches (the benchmark's own keys removed)."""
    out = []
    for o in task_overrides:
        key = _override_key(o)
        if key in BENCHMARK_KEYS:
            continue
        if key == "algorithm":
            raise ConfigError(f"{o}: the benchmark runs every algorithm in `algorithms`; use algorithms=[...]")
        if key == "algorithm.name":
            raise ConfigError(f"{o}: each algorithm's bundle names it (its entry in `algorithms`); use algorithms=[...]")
        if key == "seed":
            raise ConfigError(f"{o}: the benchmark runs every seed in `seeds`; use seeds=N or seeds=[...]")
        if key == "ga.budget":
            raise ConfigError(f"{o}: the benchmark sets ga.budget from `budget`; use budget=N or budget=[...]")
        out.append(o)
    return out


def compose_algorithm(name: str, overrides: Sequence[str]) -> DictConfig:
    """``conf/benchmark.yaml`` composed with ``algorithm=<name>`` and the user's overrides."""
    try:
        return compose("benchmark", [f"algorithm={name}", *overrides], check=False)  # checked in plan()
    except RenasError:
        raise
    except Exception as e:
        msg = one_line(e)  # with its cause: OmegaConf's reason (a wrong type, a value outside the choices)
        raise ConfigError(f"algorithm={name} with overrides {list(overrides)}: {msg}") from None


@dataclass
class Plan:
    algorithms: list[str]
    configs: dict[str, DictConfig]
    seeds: list[int]
    budgets: list[int]
    budget_is_list: bool
    max_duplicates: int | None
    overrides: list[str]
    reference: str | None


def check_keys(cfg: DictConfig, hydra_overrides: Sequence[str] | None = None) -> tuple[list[str], list[int], tuple[list[int], bool]]:
    """The benchmark's own keys (``algorithms``, ``seeds``, ``budget``), parsed and checked; also
    each job's before a sweep starts (:class:`renas.cli.CheckFirst`, which gives the command
    line's ``hydra_overrides``: a ``hydra.searchpath`` brings algorithms)."""
    return (parse_algorithms(cfg.get("algorithms", list(DEFAULT_ALGORITHMS)), known_algorithms(hydra_overrides)),
            parse_seeds(cfg.get("seeds", 100)), parse_budgets(cfg.get("budget", 100)))


def plan(cfg: DictConfig, task_overrides: Sequence[str]) -> Plan:
    """Check the benchmark's own keys and compose every algorithm's config (no work yet)."""
    algorithms, seeds, (budgets, is_list) = check_keys(cfg)
    max_dup = cfg.get("max_duplicates")  # its range: the schema's rule, checked with every algorithm's config below
    reference = cfg.get("reference", "renas")
    if reference is not None and reference not in algorithms:
        if "reference" in [_override_key(o) for o in task_overrides]:
            raise ConfigError(f"reference={reference!r} is not in algorithms={algorithms}; the paired statistics compare it with every other algorithm")
        reference = None  # the default reference (renas) is not run: no paired statistics
    overrides = search_overrides(task_overrides)
    configs = {a: compose_algorithm(a, overrides) for a in algorithms}
    for c in configs.values():
        check_schema(c)  # every value, before any space, table or evaluator is built
    b = min(budgets)
    initial = {a: initial_phase(c) for a, c in configs.items()}  # (key, n), None: no initial random phase
    too_big = {a: i for a, i in initial.items() if i is not None and b < i[1]}
    if too_big:
        a, (key, n) = max(too_big.items(), key=lambda item: item[1][1])
        rest = [x for x in algorithms if x not in too_big]
        way_out = f", or leave {', '.join(too_big)} out: algorithms=[{','.join(rest)}]" if rest else ""
        raise ConfigError(f"budget={b} is smaller than {key}={n} (algorithm {a}): {initial_need(key, n)}; use budget>={n}{way_out}")
    return Plan(algorithms, configs, seeds, budgets, is_list, max_dup, overrides, reference)


def table_parts(configs: dict[str, DictConfig], run_dir: Path) -> dict[str, tuple[Any, Any]]:
    """Space and evaluator per algorithm, built once per distinct (search_space, evaluator): a
    results table, or ``evaluator=train`` (children trained with Lightning, data loaded once)."""
    cache: dict[str, tuple[Any, Any]] = {}
    parts = {}
    for a, c in configs.items():
        key = "\n---\n".join(OmegaConf.to_yaml(c[k]) for k in ("search_space", "evaluator", "dataset", "trainer", "optim"))
        if key not in cache:
            not_a_table = ConfigError(
                f"evaluator={c.evaluator.get('name')} is neither a results table nor evaluator=train "
                f"(the benchmark runs many searches in this process)"
            )
            try:
                cls = get_class(c.evaluator._target_)
            except Exception:
                cls = None
            trained = c.evaluator.get("name") == "train"
            if cls is not None and not hasattr(cls, "optimum") and not trained:
                raise not_a_table  # before building it
            space = build_space(c.search_space)
            evaluator = build_evaluator(c, space, run_dir)
            if not trained and not (hasattr(evaluator, "optimum") and hasattr(evaluator, "table")):
                raise not_a_table
            cache[key] = (space, evaluator)
        parts[a] = cache[key]
    return parts


def check(plan_: Plan, parts: dict[str, tuple[Any, Any]]) -> None:
    """search.py's checks for every algorithm and budget, and one strategy built for each."""
    # deferred: renas.search.run pulls torch (~3 s); the benchmark's own checks fail before it
    from renas.search.run import check_between

    for a, c in plan_.configs.items():
        space, _ = parts[a]
        if c.executor.name != "local" or c.executor.workers != 1:
            raise ConfigError(
                f"executor={c.executor.name} executor.workers={c.executor.workers}: the benchmark evaluates one "
                f"child at a time in this process (table look-ups need no workers); leave executor=local executor.workers=1"
            )
        for b in plan_.budgets:
            c2 = c.copy()
            with open_dict(c2):
                c2.seed = plan_.seeds[0]
                c2.ga.budget = b
            try:
                check_between(c2, space)  # (every value passed its schema rule in plan())
            except ConfigError as e:
                raise ConfigError(f"algorithm {a}: {str(e).replace(f'ga.budget={b}', f'budget={b}')}") from None
        c2 = c.copy()
        with open_dict(c2):
            c2.seed = plan_.seeds[0]
        try:
            check_strategy(build_strategy(c2, space), str(c2.algorithm._target_))
        except ConfigError as e:  # e.g. an algorithm.* key another algorithm does not take
            text, hint = str(e), " (a key of another algorithm option?)"
            if text.endswith(hint):  # say why here: the override reaches every algorithm
                text = text.removesuffix(hint) + (" (algorithm.* overrides apply to every algorithm in `algorithms`; "
                                                  "give one algorithm's own settings with that algorithm alone)")
            raise ConfigError(f"algorithm {a}: {text}") from None
