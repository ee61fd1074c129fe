"""Steady-state evolution with random mutation: regularized (aging) evolution and a classic GA.

One loop (RENAS.md): a random initial population; then select a parent, optionally cross it
with a second one, mutate, evaluate the child, and let one member leave. RENAS
(:mod:`renas.search.renas`) is this class with the mutation chosen by its controller.
"""

from __future__ import annotations

from typing import Any

from renas.search.mutation import Edit, random_mutation, uniform_crossover
from renas.search.population import Member, Population
from renas.search.selection import roulette, tournament
from renas.search.strategies import Feedback, Proposal, Strategy
from renas.space.base import SearchSpace


#: variations (crossover and mutation) tried per child before a space's `valid` hook is given up on
MAX_VARIATIONS = 100

class Evolution(Strategy):
    """Steady-state evolution: tournament or roulette selection, optional uniform crossover,
    random mutation, worst- or oldest-removal.

    1. ``ga.population_size`` (P) random architectures are evaluated.
    2. A parent is selected: the fittest of ``ga.sample_size`` (S) members drawn at random
       (``selection=tournament``) or fitness-proportionally (``roulette``). With probability
       ``ga.crossover_rate`` it is crossed gene by gene with a second selected parent.
    3. :meth:`mutate`: each gene changes with probability ``ga.mutation_rate`` to another legal
       value (at least one gene changes).
    4. The child joins the population; then the worst of the tournament sample
       (``removal=worst``) or the oldest member (``removal=oldest``) leaves it.
    """

    name = "evolution"
    origin = "mutation"

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None) -> None:
        super().__init__(space, ga, controller, seed, name)
        self.sample_size = int(ga.sample_size)
        self.selection = ga.selection
        self.removal = ga.removal
        self.mutation_rate = float(ga.mutation_rate)
        self.crossover_rate = float(ga.crossover_rate)
        self.population = Population()
        self.initial_proposed = 0

    # --- the algorithm -------------------------------------------------------------------
    def select(self, among: Population | None = None) -> tuple[Member, list[Member] | None]:
        """The parent, and the tournament sample it won (``None`` for roulette); from
        ``among`` (default: the population)."""
        among = self.population if among is None else among
        if self.selection == "tournament":
            return tournament(among, self.sample_size, self.rng)
        return roulette(among, self.rng), None

    def select_mate(self, parent: Member) -> Member:
        """Crossover's second parent, selected as the first among the members of another
        architecture: the parent as its own mate made the crossover a copy (29 % of the ``ga``
        bundle's crossovers on the NAS-Bench-201 table); none: the parent (a population of one
        architecture)."""
        others = [m for m in self.population.members if m.values != parent.values]
        return self.select(Population(others))[0] if others else parent

    def mutate(self, base: tuple[int, ...], proposal: Proposal) -> tuple[tuple[int, ...], list[Edit]]:
        """The child of ``base`` and its edits (RENAS overrides this with its controller)."""
        return random_mutation(base, self.genes, self.mutation_rate, self.rng)

    def ask(self) -> Proposal | None:
        if self.initial_proposed < self.population_size:
            self.initial_proposed += 1
            return self.random_proposal()
        if self.waiting():
            return None  # the initial population is still being evaluated
        parent, sample = self.select()
        proposal = Proposal((), self.origin, parent, sample_born=None if sample is None else [m.born for m in sample])
        for _ in range(MAX_VARIATIONS):  # a space with a `valid` hook: vary again until allowed
            base, proposal.mate, proposal.origin, proposal.info = parent.values, None, self.origin, {}
            if self.crossover_rate > 0 and self.rng.random() < self.crossover_rate:
                proposal.mate = self.select_mate(parent)
                base = uniform_crossover(parent.values, proposal.mate.values, self.rng)
                proposal.origin = "crossover+" + proposal.origin
            proposal.base = base
            proposal.values, proposal.edits = self.mutate(base, proposal)
            if self.space.is_valid(proposal.values):
                break
        else:  # no allowed child found: the parent again (a repeat, answered from the cache)
            proposal.mate, proposal.origin, proposal.info = None, self.origin, {}
            proposal.base, proposal.values, proposal.edits = parent.values, parent.values, []
        return proposal

    def waiting(self) -> bool:
        """True while the initial population is not complete (children wait for it)."""
        return len(self.population) < self.population_size

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        if fitness is None:  # failed and skipped
            if proposal.parent is None and proposal.origin == "random":
                self.initial_proposed -= 1  # draw another random member instead
            return None
        self.population.add(step, proposal.values, fitness)
        if len(self.population) > self.population_size:
            self.replace(proposal)
        return None

    def replace(self, proposal: Proposal) -> Member:
        """One member leaves: the oldest, or the worst of the child's tournament sample (of the
        whole population for a child without one: roulette, or the loop's fallback)."""
        if self.removal == "oldest":
            return self.population.remove_oldest()
        born = set(proposal.sample_born or [])
        sample = [m for m in self.population.members if m.born in born]
        return self.population.remove_worst(sample or None)

    def population_members(self) -> list[Member]:
        return self.population.members

    # --- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(population=self.population.state_dict(), initial_proposed=self.initial_proposed)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = Population.from_state(state["population"])
        self.initial_proposed = int(state["initial_proposed"])


class RegularizedEvolution(Evolution):
    """Regularized (aging) evolution, Real et al., AAAI 2019: tournament of S out of P, the
    winner mutated in one gene (``ga.mutation_rate=0``), the oldest member removed. The
    ``rea`` bundle uses NAS-Bench-201's P = 10, S = 3; ``rea_tuned`` the P and S chosen by the
    README's tuning protocol."""

    name = "rea"


class GeneticAlgorithm(Evolution):
    """The textbook genetic algorithm: roulette-wheel (or tournament) selection, uniform
    crossover with probability ``ga.crossover_rate``, per-gene random mutation, the worst
    member removed."""

    name = "ga"
