"""Search-level figures: default search wall time, executors, Ray overhead, persistence cost.

Each part runs real searches through ``renas.search.run.run_search`` (the code search.py runs)
in temporary folders and prints what it measured:

- ``default``: ``python search.py`` as shipped (RENAS on digits): wall time, evaluations per
  minute, best fitness found against the best of the random initial population.
- ``workers``: the digits proxy search with K = 1 and K = 2 local workers at equal total
  threads (K = 1: 2 threads; K = 2: 1 thread each): evaluations per minute.
- ``ray``: Ray start-up time, and the per-child overhead of the Ray executor against in-process
  evaluation, measured with the NAS-Bench-201 table (a look-up costs microseconds, so the
  difference is the executor's own cost).
- ``persistence``: what writing the run folder (state.pt snapshots, atomic + fsync, and the
  history journal) adds per evaluation, in milliseconds and bytes, against the same table search
  with neither (RENAS and REA at budgets 500, 3,000 and 10,000; ``--snapshot-every 1`` gives the
  old behaviour, a state.pt after every evaluation).
- ``overhead``: a strategy's own cost per evaluation (table evaluator, no persistence), over the
  whole search and over its last 10 %.

Usage::

    python benchmarks/bench_search.py                     # all parts
    python benchmarks/bench_search.py persistence ray     # some parts
    python benchmarks/bench_search.py workers --budget 16
    python benchmarks/bench_search.py persistence overhead --budgets 500 3000 10000 --algorithms renas rea
    python benchmarks/bench_search.py persistence --snapshot-every 1 --budgets 500 3000    # before

Timings depend on what else runs on the machine; run it on an idle one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "logger=none", "progress=none"]


def compose(overrides: list[str]):
    from renas.config import compose as renas_compose  # checked as search.py checks it

    return renas_compose("search", overrides)


def timed_search(overrides: list[str]) -> tuple[float, dict]:
    from renas.search.run import run_search

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run_search(compose(overrides), Path(tmp) / "run")
        return time.perf_counter() - start, summary


def part_default(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    seconds, s = timed_search(["logger=none", "progress=none"])
    print(f"default search (RENAS, digits, budget {s['budget']}, {args.threads} thread{'' if args.threads == 1 else 's'}): {seconds:.0f} s, "
          f"{60 * s['evaluations'] / seconds:.1f} evaluations/min; best fitness {s['best']['fitness']:.4f} "
          f"vs best of the initial population {s['best_initial_fitness']:.4f}")
    print(f"  best architecture: {s['best']['arch']}")


def part_workers(args) -> None:
    import torch

    common = ["logger=none", "progress=none", f"ga.budget={args.budget}", f"ga.population_size={min(8, args.budget)}",
              "ga.sample_size=3"]
    torch.set_num_threads(2)
    t1, s1 = timed_search([*common, "threads=2"])
    torch.set_num_threads(1)
    t2, s2 = timed_search([*common, "executor.workers=2", "executor.threads_per_worker=1"])
    print(f"digits proxy search, budget {args.budget}: K=1 (2 threads) {60 * s1['evaluations'] / t1:.2f} eval/min "
          f"({t1:.0f} s); K=2 local workers (1 thread each) {60 * s2['evaluations'] / t2:.2f} eval/min ({t2:.0f} s); "
          f"speed-up {t1 / t2:.2f}x")


def part_ray(args) -> None:
    import ray
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    startup = time.perf_counter() - start
    common = [*TABLE, "ga.population_size=10", "ga.sample_size=3", f"ga.budget={args.table_budget}", "algorithm=rea"]
    inline, _ = timed_search(common)
    timed_search([*common, "executor=ray", "ga.budget=10"])  # workers start, build the table once
    ray_t, _ = timed_search([*common, "executor=ray"])
    ray.shutdown()
    n = args.table_budget
    print(f"Ray: start-up {startup:.1f} s; per child {1000 * ray_t / n:.1f} ms with the Ray executor vs "
          f"{1000 * inline / n:.2f} ms in-process: overhead {1000 * (ray_t - inline) / n:.1f} ms per child "
          f"(budget {n}, warm workers)")


class _Counter:
    """Counts the bytes given to the run folder's files (renas.tracking.files.write_data)."""

    def __init__(self) -> None:
        from renas.tracking import files

        self.files, self.real, self.bytes = files, files.write_data, 0

    def __enter__(self) -> "_Counter":
        def counted(f, data, _real=self.real):
            self.bytes += len(data.encode() if isinstance(data, str) else data)
            return _real(f, data)

        self.files.write_data = counted
        return self

    def __exit__(self, *exc) -> None:
        self.files.write_data = self.real


def _table_search(args, algorithm: str, budget: int, extra: list[str]) -> tuple[float, dict, int]:
    overrides = [*TABLE, f"ga.budget={budget}", f"algorithm={algorithm}", *extra]
    with _Counter() as counter:
        seconds, summary = timed_search(overrides)
    return seconds, summary, counter.bytes


def part_persistence(args) -> None:
    """What persistence (state.pt snapshots: the state built, saved atomically with fsync; and
    the history journal) costs per evaluation: the time spent inside those writes (timed where
    they happen, so the figure does not drown in the noise of two whole-search timings) and the
    bytes given to the run folder's files, per evaluation. ``--snapshot-every 1`` is the old
    behaviour (state.pt after every evaluation)."""
    import torch

    from renas.search import loop
    from renas.tracking import history, state

    torch.set_num_threads(1)
    snap = [f"snapshot.every={args.snapshot_every}"] if args.snapshot_every else []
    spent = {"s": 0.0, "snapshots": 0}

    def timed(fn, count=False):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent["s"] += time.perf_counter() - start
                spent["snapshots"] += count
        return wrapper

    real = state.save_state, loop.Search.state_dict, history.HistoryWriter.append
    state.save_state = timed(real[0], count=True)
    loop.Search.state_dict = timed(real[1])
    history.HistoryWriter.append = timed(real[2])
    try:
        for algorithm in args.algorithms:  # warm up: imports, table load, first compose
            _table_search(args, algorithm, 20, ["ga.population_size=10"])
        for algorithm in args.algorithms:
            for budget in args.budgets:
                spent.update(s=0.0, snapshots=0)
                seconds, _, written = _table_search(args, algorithm, budget, snap)
                print(f"persistence {algorithm:6s} budget {budget:6d} ({'snapshot.every=' + str(args.snapshot_every) if snap else 'default snapshots'}): "
                      f"{1000 * spent['s'] / budget:7.2f} ms and {written / budget / 1024:7.2f} KiB written per evaluation "
                      f"({spent['snapshots']} snapshots; search {seconds:.1f} s in all)", flush=True)
    finally:
        state.save_state, loop.Search.state_dict, history.HistoryWriter.append = real


def part_overhead(args) -> None:
    """A strategy's own cost per evaluation (everything but persistence; a table look-up is
    nearly free), in-process, per budget: milliseconds per evaluation over the whole search and
    over its last 10 %."""
    import torch

    from renas.search import loop
    from renas.tracking import state

    torch.set_num_threads(1)
    real = state.save_state, loop.Search.state_dict
    state.save_state = lambda *a, **k: None
    loop.Search.state_dict = lambda self: {}
    try:
        for algorithm in args.algorithms:  # warm up: imports, table load, first compose
            _table_search(args, algorithm, 20, ["ga.population_size=10"])
        for algorithm in args.algorithms:
            for budget in args.budgets:
                marks: list[float] = []
                original = loop.Search._record

                def _record(self, task, outcome, write=True, _original=original):
                    _original(self, task, outcome, write)
                    marks.append(time.perf_counter())

                loop.Search._record = _record
                try:
                    _table_search(args, algorithm, budget, [])
                finally:
                    loop.Search._record = original
                tail = max(1, budget // 10)
                whole = (marks[-1] - marks[0]) / (len(marks) - 1)
                last = (marks[-1] - marks[-1 - tail]) / tail
                print(f"overhead {algorithm:6s} budget {budget:6d}: {1000 * whole:6.2f} ms per evaluation "
                      f"(last 10 %: {1000 * last:6.2f} ms)", flush=True)
    finally:
        state.save_state, loop.Search.state_dict = real


PARTS = {"default": part_default, "workers": part_workers, "ray": part_ray, "persistence": part_persistence,
         "overhead": part_overhead}


def _check_table_search(parser: argparse.ArgumentParser, option: str, overrides: list[str]) -> None:
    """A table search's config, checked as ``run_search`` checks it before it runs (the schema's
    rules, then those between keys: the budget against the population and the space's size); a
    bad one is refused naming ``option``."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from renas.build import build_space
    from renas.errors import RenasError, one_line
    from renas.search.run import check_between

    try:
        cfg = compose(overrides)  # the values' rules checked
        check_between(cfg, build_space(cfg.search_space))
    except (RenasError, HydraException, OmegaConfBaseException) as e:
        parser.error(f"{option}: {one_line(e)}")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a bad option with one line (``parser.error``: exit status 2) before any part runs."""
    parts = args.parts or list(PARTS)
    for part in parts:  # checked here, not by argparse's choices: no part named means all of them
        if part not in PARTS:
            parser.error(f"parts: unknown part {part!r}; choose from {', '.join(PARTS)} (none: all of them)")
    if len(set(parts)) < len(parts):
        parser.error(f"parts {' '.join(parts)}: a part is named twice")
    if args.threads < 1:
        parser.error(f"--threads={args.threads} must be at least 1")
    if args.budget < 3:  # the worker comparison's tournament samples 3 of min(8, budget)
        parser.error(f"--budget={args.budget} must be at least 3 (the worker comparison's ga.sample_size)")
    if args.snapshot_every < 0:
        parser.error(f"--snapshot-every={args.snapshot_every} must be at least 0 (0: the default snapshots)")
    from renas.benchmark.plan import known_algorithms

    algorithms = known_algorithms()
    for name in args.algorithms:
        if name not in algorithms:
            parser.error(f"--algorithms: unknown algorithm {name!r}; choose from {', '.join(algorithms)} (conf/algorithm)")
    for option, values in (("--algorithms", args.algorithms), ("--budgets", args.budgets)):
        if len(set(values)) < len(values):
            parser.error(f"{option} {' '.join(map(str, values))}: a value is named twice")
    if "ray" in parts:
        _check_table_search(parser, f"--table-budget={args.table_budget}",
                            [*TABLE, "ga.population_size=10", "ga.sample_size=3", f"ga.budget={args.table_budget}",
                             "algorithm=rea"])
    if {"persistence", "overhead"} & set(parts):
        snap = [f"snapshot.every={args.snapshot_every}"] if args.snapshot_every else []
        for algorithm in args.algorithms:
            _check_table_search(parser, f"--algorithms {algorithm} (its warm-up search, P = 10)",
                                [*TABLE, "ga.budget=20", f"algorithm={algorithm}", "ga.population_size=10"])
            for budget in args.budgets:
                _check_table_search(parser, f"--budgets {budget} (--algorithms {algorithm})",
                                    [*TABLE, f"ga.budget={budget}", f"algorithm={algorithm}", *snap])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=[], metavar="PART",
                        help=f"what to measure, some of: {', '.join(PARTS)} (default: all of them)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the default search")
    parser.add_argument("--budget", type=int, default=16, help="budget of the digits worker comparison")
    parser.add_argument("--table-budget", type=int, default=500, help="budget of the Ray table search")
    parser.add_argument("--budgets", type=int, nargs="+", default=[500, 3000, 10000],
                        help="budgets of the persistence and overhead table searches")
    parser.add_argument("--algorithms", nargs="+", default=["renas", "rea"], help="algorithms of persistence / overhead")
    parser.add_argument("--snapshot-every", type=int, default=0,
                        help="persistence: snapshot.every for the search (0: the default; 1: state.pt after every evaluation)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    check_args(parser, args)
    os.environ.setdefault("WANDB_MODE", "disabled")
    from renas.cli import quiet_lightning

    quiet_lightning()
    for part in args.parts or list(PARTS):
        PARTS[part](args)


if __name__ == "__main__":
    main()
