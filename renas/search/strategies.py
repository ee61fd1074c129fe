"""The ask / tell interface every search algorithm implements, and what passes through it.

All algorithms go through the same :class:`~renas.search.loop.Search` loop, evaluator, history
and logging, so they compare fairly. Each algorithm is a small named class in a file of its own:

- :class:`~renas.search.renas.RENAS` (``renas.py``): evolution whose mutations a learned
  controller chooses; with ``controller=none`` its ablation (the same evolution, random edits).
- :class:`~renas.search.evolution.RegularizedEvolution` and
  :class:`~renas.search.evolution.GeneticAlgorithm` (``evolution.py``).
- :class:`~renas.search.local_search.LocalSearch` (``local_search.py``).
- :class:`~renas.search.reinforce.ReinforceSearch` (``reinforce.py``),
  :class:`~renas.search.random_search.RandomSearch` (``random_search.py``),
  :class:`~renas.search.tpe.TPESearch` (``tpe.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from renas.search.mutation import Edit
from renas.search.population import Member
from renas.space.base import SearchSpace


@dataclass
class Proposal:
    """An architecture the strategy wants evaluated, and what it needs to learn from it.

    Attributes:
        values: gene values of the child.
        origin: how it was made (``random``, ``mutation``, ``controller``, ``crossover+...``,
            ``sampler``, ``tpe``, ``local``, ``fallback``).
        parent: the parent member (selection winner) or ``None``.
        mate: the second parent of a crossover, or ``None``.
        edits: the gene changes that made the child from ``base`` (the parent or crossover).
        base: the genotype the edits were applied to.
        sample_born: birth ids of the tournament sample (worst-removal removes its worst).
        info: strategy-specific data (e.g. an Optuna trial number, the controller's mask).
    """

    values: tuple[int, ...]
    origin: str
    parent: Member | None = None
    mate: Member | None = None
    edits: list[Edit] | None = None
    base: tuple[int, ...] | None = None
    sample_born: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": list(self.values),
            "origin": self.origin,
            "parent": None if self.parent is None else self.parent.to_dict(),
            "mate": None if self.mate is None else self.mate.to_dict(),
            "edits": None if self.edits is None else [list(e) for e in self.edits],
            "base": None if self.base is None else list(self.base),
            "sample_born": self.sample_born,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Proposal":
        return cls(
            tuple(d["values"]),
            d["origin"],
            None if d["parent"] is None else Member.from_dict(d["parent"]),
            None if d["mate"] is None else Member.from_dict(d["mate"]),
            None if d["edits"] is None else [tuple(e) for e in d["edits"]],
            None if d["base"] is None else tuple(d["base"]),
            d["sample_born"],
            d["info"],
        )


@dataclass
class Feedback:
    """What a strategy learned from one result: the controller's reward (``None`` when the
    strategy has no reward for it) and the statistics of a controller update, if one ran."""

    reward: float | None = None
    update: dict[str, float] | None = None


class Strategy:
    """Base of the algorithms. Subclasses implement :meth:`ask` and may override :meth:`tell`.

    Args:
        space: the search space.
        ga: the ``ga`` config (population size, selection, rates ...).
        controller: the ``controller`` config.
        seed: the run's seed (the strategy's own generators derive from it).
    """

    name = "strategy"
    #: True if a learned controller produces ``controller/*`` statistics
    has_controller = False
    #: the config key of the evaluations the search spends before it can do anything else (the
    #: random initial population), which the budget must cover; ``None``: no such phase
    initial: str | None = "ga.population_size"

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None) -> None:
        self.space = space
        self.genes = space.genes
        self.rng = np.random.default_rng([int(seed), 1])
        self.population_size = int(ga.population_size)
        #: set by the search loop: is this genotype evaluated or in evaluation already?
        self.is_known: Callable[[tuple[int, ...]], bool] = lambda values: False
        if name:
            self.name = name

    def random_values(self) -> tuple[int, ...]:
        """Uniformly random gene values among the combinations the space allows."""
        return tuple(self.space.values(self.space.sample(self.rng)))

    def excluded(self, values: tuple[int, ...]) -> bool:
        """Not worth proposing: known already, or not allowed by the space."""
        return self.is_known(values) or not self.space.is_valid(values)

    def random_proposal(self) -> Proposal:
        return Proposal(self.random_values(), "random")

    def fallback(self) -> Proposal:
        """A random architecture the loop asks for when :meth:`ask` keeps proposing known ones
        (``max_duplicates`` in a row). Strategies that track their proposals (TPE's trials, a
        population's size) handle it in :meth:`tell` like any other proposal."""
        return Proposal(self.random_values(), "fallback")

    def ask(self) -> Proposal | None:
        """The next architecture to evaluate, or ``None`` to wait for results in flight."""
        raise NotImplementedError

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        """Learn from a result (``fitness=None``: the evaluation failed and is skipped).

        ``step`` is the history step of the evaluation that produced the fitness (a repeat
        answered from the cache gets the step of the first evaluation).
        """
        return None

    def population_members(self) -> list[Member] | None:
        """The current population (logged as ``fitness/max|mean|min``), or ``None``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

