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
- ``persistence``: the cost of writing state.pt after every evaluation (atomic write + fsync),
  as the ratio of a table search's wall time with and without it.

Usage::

    python benchmarks/bench_search.py                     # all parts
    python benchmarks/bench_search.py persistence ray     # some parts
    python benchmarks/bench_search.py workers --budget 16

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
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="search", overrides=overrides)


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
    print(f"default search (RENAS, digits, budget {s['budget']}, {args.threads} threads): {seconds:.0f} s, "
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
    t2, s2 = timed_search([*common, "evaluator.workers=2", "evaluator.threads_per_worker=1"])
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
    timed_search([*common, "evaluator.executor=ray", "ga.budget=10"])  # workers start, build the table once
    ray_t, _ = timed_search([*common, "evaluator.executor=ray"])
    ray.shutdown()
    n = args.table_budget
    print(f"Ray: start-up {startup:.1f} s; per child {1000 * ray_t / n:.1f} ms with the Ray executor vs "
          f"{1000 * inline / n:.2f} ms in-process: overhead {1000 * (ray_t - inline) / n:.1f} ms per child "
          f"(budget {n}, warm workers)")


def part_persistence(args) -> None:
    import torch

    from renas.search import loop
    from renas.tracking import state

    torch.set_num_threads(1)
    common = [*TABLE, "ga.population_size=10", "ga.sample_size=3", f"ga.budget={args.table_budget}", f"algorithm={args.algorithm}"]
    with_state = min(timed_search(common)[0] for _ in range(args.repeats))
    real_save, real_state = state.save_state, loop.Search.state_dict
    state.save_state = lambda *a, **k: None  # neither build nor write the state
    loop.Search.state_dict = lambda self: {}
    try:
        without = min(timed_search(common)[0] for _ in range(args.repeats))
    finally:
        state.save_state, loop.Search.state_dict = real_save, real_state
    print(f"persistence ({args.algorithm}, table, budget {args.table_budget}): {with_state:.2f} s with state.pt after "
          f"every evaluation vs {without:.2f} s without: ratio {with_state / without:.2f}, "
          f"{1000 * (with_state - without) / args.table_budget:.2f} ms per evaluation")


PARTS = {"default": part_default, "workers": part_workers, "ray": part_ray, "persistence": part_persistence}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", choices=[*PARTS, []], default=list(PARTS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the default search")
    parser.add_argument("--budget", type=int, default=16, help="budget of the digits worker comparison")
    parser.add_argument("--table-budget", type=int, default=500, help="budget of the table searches")
    parser.add_argument("--algorithm", default="renas", help="algorithm of the persistence measurement")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the persistence measurement (min taken)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("WANDB_MODE", "disabled")
    from renas.cli import quiet_lightning

    quiet_lightning()
    for part in args.parts or list(PARTS):
        PARTS[part](args)


if __name__ == "__main__":
    main()
