"""Make ``table.csv``, the toy results table of ``conf/experiment/toy_table.yaml``.

    python examples/toy_table/make_table.py            # writes examples/toy_table/table.csv

A made-up "network" of four layers (``op1..op4``: conv3, conv5, sep3, pool), a ``width``
(16, 32, 64, 128) and a ``depth`` (1, 2, 3 repeats): 4^4 x 4 x 3 = 3,072 combinations, of
which the 2,916 with at most two pooling layers are allowed (``rules.valid``). Its score is a
known function of the genes (:func:`test_acc`): each op is worth something of its own at each
position, a layer gains when it differs from the one before it (so genes interact), and width
and depth help up to a point and then cost. ``test_acc`` is that function; ``valid_acc`` is it
plus fixed noise (sd 0.3, seed 0), as a validation split would measure it.

Search on ``valid_acc``, report ``test_acc``. The optimum is unique:
``op1:conv5|op2:sep3|op3:conv3|op4:pool|width:64|depth:2``, test 84.30 (valid 84.47, also the
best valid_acc). The script prints both optima.
"""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np

OPS = ("conv3", "conv5", "sep3", "pool")
WIDTHS = (16, 32, 64, 128)
DEPTHS = (1, 2, 3)
#: what each op is worth at each of the four positions
OP_VALUE = {
    "conv3": (2.0, 2.0, 2.0, 1.8),
    "conv5": (2.6, 1.7, 1.5, 1.4),  # a large receptive field pays off early
    "sep3": (2.1, 2.3, 2.2, 2.0),
    "pool": (0.5, 0.6, 0.9, 2.4),  # pooling pays off last, before the classifier
}


def test_acc(ops: tuple[str, ...], width: int, depth: int) -> float:
    score = 70.0 + sum(OP_VALUE[o][i] for i, o in enumerate(ops))
    score += sum(1.0 for a, b in zip(ops, ops[1:]) if a != b)  # variety between neighbouring layers
    w, d = math.log2(width / 16), depth - 1  # 0..3, 0..2
    score += 1.8 * w - 0.5 * w**2 + 1.2 * d - 0.5 * d**2 - 0.15 * w * d  # capacity helps, then overfits
    return round(score, 4)


def rows():
    noise = np.random.default_rng(0)
    for ops in itertools.product(OPS, repeat=4):
        for width in WIDTHS:
            for depth in DEPTHS:
                test = test_acc(ops, width, depth)
                valid = round(test + float(noise.normal(0.0, 0.3)), 4)
                if ops.count("pool") <= 2:  # the space's valid hook allows only these
                    yield (*ops, width, depth, valid, test)


def main(path: Path = Path(__file__).with_name("table.csv")) -> None:
    table = list(rows())
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["op1", "op2", "op3", "op4", "width", "depth", "valid_acc", "test_acc"])
        w.writerows(table)
    def arch(r):
        return "|".join(f"{k}:{v}" for k, v in zip(("op1", "op2", "op3", "op4", "width", "depth"), r[:6]))
    best_test = max(table, key=lambda r: r[7])
    assert sum(r[7] == best_test[7] for r in table) == 1, "the optimum must be unique"
    best_valid = max(table, key=lambda r: r[6])
    print(f"wrote {len(table)} rows to {path}")
    print(f"best test_acc:  {arch(best_test)} (test {best_test[7]}, valid {best_test[6]})")
    print(f"best valid_acc: {arch(best_valid)} (test {best_valid[7]}, valid {best_valid[6]})")


if __name__ == "__main__":
    main()
