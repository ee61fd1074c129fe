"""Variation operators on gene values: random mutation and uniform crossover.

Every gene has a static list of legal values (see :mod:`renas.space.base`), so a gene-wise
change or mix is always a valid genotype: inputs stay among legal predecessors by construction.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from renas.space.base import Gene

#: one gene change: (gene index, old value, new value)
Edit = tuple[int, int, int]


def mutable_genes(genes: Sequence[Gene]) -> list[int]:
    """Genes with more than one legal value (the only ones a mutation can change)."""
    return [i for i, g in enumerate(genes) if g.arity > 1]


def random_mutation(
    values: Sequence[int], genes: Sequence[Gene], rate: float, rng: np.random.Generator
) -> tuple[tuple[int, ...], list[Edit]]:
    """Change each gene with probability ``rate`` to a different legal value, uniformly.

    At least one gene always changes (if none was drawn, one mutable gene is picked
    uniformly), so ``rate=0`` means "exactly one gene", as in aging evolution.
    """
    candidates = mutable_genes(genes)
    chosen = [i for i in candidates if rng.random() < rate]
    if not chosen:
        chosen = [candidates[int(rng.integers(len(candidates)))]]
    child = list(values)
    edits: list[Edit] = []
    for i in chosen:
        new = int(rng.integers(genes[i].arity - 1))
        new += new >= child[i]  # skip the current value
        edits.append((i, child[i], new))
        child[i] = new
    return tuple(child), edits


def uniform_crossover(a: Sequence[int], b: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
    """Each gene from parent ``a`` or ``b`` with probability 1/2."""
    take_b = rng.random(len(a)) < 0.5
    return tuple(int(y) if t else int(x) for x, y, t in zip(a, b, take_b))


def diff(a: Sequence[int], b: Sequence[int]) -> list[Edit]:
    """The edits that turn ``a`` into ``b``."""
    return [(i, int(x), int(y)) for i, (x, y) in enumerate(zip(a, b)) if x != y]
