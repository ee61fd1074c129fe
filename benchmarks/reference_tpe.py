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


def main() -> None:
    shared = Path(os.environ.get("RENAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(shared / "data/nasbench201/nb201_cifar10.csv"))
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 200])
    p.add_argument("--seeds", type=int, default=100, help="seeds 0..n-1 (with --first-seed)")
    p.add_argument("--first-seed", type=int, default=0)
    args = p.parse_args()
    if not Path(args.table).is_file():
        raise SystemExit(f"error: table {args.table} not found (set RENAS_SHARED or --table)")

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = {r["arch_str"]: (float(r["c10_valid_12ep"]), float(r["c10_test_200ep"])) for r in csv.DictReader(open(args.table))}
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
