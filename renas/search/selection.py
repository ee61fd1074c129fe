"""Parent selection: tournament (RENAS, aging evolution) and roulette wheel (classic GA)."""

from __future__ import annotations

import numpy as np

from renas.search.population import Member, Population


def tournament(population: Population, sample_size: int, rng: np.random.Generator) -> tuple[Member, list[Member]]:
    """Draw ``sample_size`` members uniformly without replacement; the fittest is the parent.

    Returns the parent and the sample (worst-removal removes the worst of that sample).
    Ties go to the younger member, so a fresh child with equal fitness is preferred.
    """
    members = population.members
    k = min(sample_size, len(members))
    idx = rng.choice(len(members), size=k, replace=False)
    sample = [members[i] for i in sorted(idx)]
    parent = max(sample, key=lambda m: (m.fitness, m.born))
    return parent, sample


def roulette(population: Population, rng: np.random.Generator) -> Member:
    """Fitness-proportional selection over fitness shifted so that the worst has a small share.

    Shifting by the minimum keeps selection meaningful when fitnesses are close together (as
    accuracies are); the worst member keeps 1 % of the mean share instead of none.
    """
    f = np.asarray(population.fitnesses(), dtype=float)
    w = f - f.min()
    w = w + (w.mean() * 0.01 if w.mean() > 0 else 1.0)
    i = int(rng.choice(len(f), p=w / w.sum()))
    return population.members[i]
