"""An independent Optuna TPE on the NAS-Bench-201 table, written without renas, to check the
TPE comparator of ``python -m renas.benchmark`` against plain Optuna.

For each seed: ``TPESampler(seed=s)``, one categorical parameter per edge (the five op names),
ask -> look the cell up -> tell, repeats told as trials with their known value, until
``budget`` distinct cells are evaluated. Prints the mean best ``c10_valid_12ep`` (and the
``c10_test_200ep`` of that cell), with its standard error, per budget::

    python benchmarks/reference_tpe.py --budgets 100 200 --seeds 100
    PYTHONPATH=/path/to/optuna5 python benchmarks/reference_tpe.py    # another Optuna

The result line names the Optuna version that ran.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import time
from pathlib import Path

import numpy as np

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")


def arch_str(ops: list[str]) -> str:
    e = [f"{op}~{edge.split('<-')[1]}" for op, edge in zip(ops, EDGES)]
    return f"|{e[0]}|+|{e[1]}|{e[2]}|+|{e[3]}|{e[4]}|{e[5]}|"


def read_table(p: argparse.ArgumentParser, path: str) -> dict[str, tuple[float, float]]:
    """``arch_str -> (c10_valid_12ep, c10_test_200ep)`` of every cell; a table without those
    columns, with a value that is not a number or without some cell is refused (``p.error``)."""
    need = ("arch_str", "c10_valid_12ep", "c10_test_200ep")
    with open(path) as f:
        reader = csv.DictReader(f)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            p.error(f"--table {path}: no column {', '.join(missing)} (it needs {', '.join(need)})")
        rows = {}
        for line, r in enumerate(reader, start=2):
            try:
                rows[r["arch_str"]] = (float(r["c10_valid_12ep"]), float(r["c10_test_200ep"]))
            except (TypeError, ValueError):
                p.error(f"--table {path}, line {line}: c10_valid_12ep={r['c10_valid_12ep']!r}, "
                        f"c10_test_200ep={r['c10_test_200ep']!r}: both must be numbers")
    absent = [a for a in map(arch_str, itertools.product(OPS, repeat=len(EDGES))) if a not in rows]
    if absent:
        p.error(f"--table {path}: {len(absent)} of the {len(OPS) ** len(EDGES)} cells are not in it "
                f"(e.g. {absent[0]}); TPE may ask for any of them")
    return rows


def main() -> None:
    shared = Path(os.environ.get("RENAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", default=str(shared / "data/nasbench201/nb201_cifar10.csv"))
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 200])
    p.add_argument("--seeds", type=int, default=100, help="seeds 0..n-1 (with --first-seed)")
    p.add_argument("--first-seed", type=int, default=0)
    args = p.parse_args()
    cells = len(OPS) ** len(EDGES)
    for budget in args.budgets:  # distinct cells: more than the space holds would never end
        if not 1 <= budget <= cells:
            p.error(f"--budgets: {budget} is out of range: each budget must be in [1, {cells}] (distinct cells)")
    if len(set(args.budgets)) < len(args.budgets):
        p.error(f"--budgets {' '.join(map(str, args.budgets))}: a budget is named twice")
    if args.seeds < 2:
        p.error(f"--seeds={args.seeds} must be at least 2 (the standard error of the mean needs two)")
    if args.first_seed < 0 or args.first_seed + args.seeds - 1 > 2**32 - 1:
        p.error(f"--first-seed={args.first_seed} --seeds={args.seeds}: the seeds must lie in [0, {2**32 - 1}] (TPESampler)")
    if not Path(args.table).is_file():
        p.error(f"--table {args.table} not found (set RENAS_SHARED or --table)")
    rows = read_table(p, args.table)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {e: optuna.distributions.CategoricalDistribution(list(OPS)) for e in EDGES}
    for budget in args.budgets:
        best_valid, best_test, start = [], [], time.perf_counter()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
            seen: set[str] = set()
            best = (-math.inf, math.nan)
            while len(seen) < budget:
                trial = study.ask(dists)
                arch = arch_str([trial.params[e] for e in EDGES])
                valid, test = rows[arch]
                study.tell(trial, valid)
                seen.add(arch)
                if valid > best[0]:
                    best = (valid, test)
            best_valid.append(best[0])
            best_test.append(best[1])
        v, t = np.array(best_valid), np.array(best_test)
        n = len(v)
        print(f"optuna {optuna.__version__} TPE, budget {budget}, seeds {args.first_seed}..{args.first_seed + n - 1}: "
              f"best valid {v.mean():.3f} ± {v.std(ddof=1) / math.sqrt(n):.3f} (sem), test {t.mean():.3f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
