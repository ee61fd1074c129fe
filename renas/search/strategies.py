"""Search strategies: what to evaluate next and what to learn from a result.

All algorithms go through the same ask / tell interface and the same :class:`~renas.search.loop.Search`
loop, evaluator, history and logging, so they compare fairly:

- :class:`Evolution`: steady-state evolution. ``renas`` (controller mutation, worst removal),
  ``rea`` (random mutation, oldest removal), ``ga`` (crossover + random mutation).
- :class:`ReinforceSearch`: an LSTM sampling whole architectures, trained with REINFORCE.
- :class:`RandomSearch`: uniform random architectures.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from renas.config import check_bool, check_choice, check_number
from renas.errors import ConfigError
from renas.search.controller import ArchitectureSampler, Experience, MutationController, Reinforce
from renas.search.mutation import Edit, mutable_genes, random_mutation, uniform_crossover
from renas.search.population import Member, Population
from renas.search.selection import roulette, tournament
from renas.space.base import SearchSpace


@dataclass
class Proposal:
    """An architecture the strategy wants evaluated, and what it needs to learn from it.

    Attributes:
        values: gene values of the child.
        origin: how it was made (``random``, ``mutation``, ``controller``, ``crossover+...``,
            ``sampler``, ``tpe``).
        parent: the parent member (selection winner) or ``None``.
        mate: the second parent of a crossover, or ``None``.
        edits: the gene changes that made the child from ``base`` (the parent or crossover).
        base: the genotype the edits were applied to.
        sample_born: birth ids of the tournament sample (worst-removal removes its worst).
        info: strategy-specific data (e.g. an Optuna trial number).
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


class Strategy:
    """Base of the algorithms. Subclasses implement :meth:`ask` and may override :meth:`tell`.

    Args:
        space: the search space.
        ga: the ``ga`` config (population size, selection, rates ...).
        controller: the ``controller`` config.
        seed: the run's seed (the strategy's own generators derive from it).
    """

    name = "strategy"
    #: True if the strategy keeps a population (logged as fitness/max|mean|min)
    has_population = False
    #: True if a learned controller produces ``controller/*`` statistics
    has_controller = False

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None) -> None:
        self.space = space
        self.genes = space.genes
        self.rng = np.random.default_rng([int(seed), 1])
        self.population_size = int(ga.population_size)
        #: set by the search loop: is this genotype evaluated or in evaluation already?
        self.is_known: Callable[[tuple[int, ...]], bool] | None = None
        if name:
            self.name = name

    def random_values(self) -> tuple[int, ...]:
        return tuple(int(self.rng.integers(g.arity)) for g in self.genes)

    def random_proposal(self) -> Proposal:
        return Proposal(self.random_values(), "random")

    def ask(self) -> Proposal | None:
        """The next architecture to evaluate, or ``None`` to wait for results in flight."""
        raise NotImplementedError

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> dict[str, float] | None:
        """Learn from a result (``fitness=None``: the evaluation failed and is skipped).

        ``step`` is the history step of the evaluation that produced the fitness. Returns
        controller statistics when the controller was updated.
        """
        return None

    def reward(self, proposal: Proposal, fitness: float | None) -> float | None:
        """The controller's reward for a result (``None``: the strategy learns nothing from it)."""
        return None

    def population_members(self) -> list[Member] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def _torch_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed) * 7919 + 17)
    return g


def _reinforce(policy, controller: Any) -> Reinforce:
    return Reinforce(
        policy,
        lr=check_number("controller.lr", controller.lr, 0.0, 10.0, low_open=True),
        batch=check_number("controller.batch", controller.batch, 1, 100000, integer=True),
        entropy_weight=check_number("controller.entropy_weight", controller.entropy_weight, 0.0, 100.0),
        baseline_decay=check_number("controller.baseline_decay", controller.baseline_decay, 0.0, 1.0),
        normalize=check_bool("controller.normalize", controller.normalize),
    )


class RandomSearch(Strategy):
    """Uniform random architectures (duplicates are not re-evaluated, so none is wasted)."""

    name = "random"

    def ask(self) -> Proposal:
        return self.random_proposal()


class Evolution(Strategy):
    """Steady-state evolution with tournament or roulette selection, optional uniform
    crossover, random or controller-chosen mutation, and worst- or oldest-removal.

    1. ``population_size`` random architectures are evaluated.
    2. A parent is selected (tournament over ``sample_size`` or roulette); with probability
       ``crossover_rate`` it is crossed with a second selected parent, gene by gene.
    3. It is mutated: at random (each gene changes with probability ``mutation_rate``, at
       least one), or by the RENAS mutation controller, which chooses which genes change and
       to what; the number of genes it changes is drawn as for random mutation,
       ``max(1, Binomial(genes, mutation_rate))``.
    4. The child is evaluated and joins the population; the worst of the tournament sample
       (``removal=worst``, RENAS) or the oldest member (``removal=oldest``, aging evolution)
       leaves it.
    5. The controller's reward is fitness(child) - fitness(parent); it is updated with
       REINFORCE every ``controller.batch`` rewards.
    """

    name = "evolution"
    has_population = True

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None,
                 mutation: str = "random") -> None:
        super().__init__(space, ga, controller, seed, name)
        self.sample_size = int(ga.sample_size)
        self.selection = ga.selection
        self.removal = ga.removal
        self.mutation_rate = float(ga.mutation_rate)
        self.crossover_rate = float(ga.crossover_rate)
        self.mutation = check_choice("algorithm.mutation", mutation, ("random", "controller"))
        self.population = Population()
        self.initial_proposed = 0
        self.learner: Reinforce | None = None
        if self.mutation == "controller":
            if controller is None or controller.get("name") != "lstm":
                raise ConfigError("algorithm mutation=controller needs controller=lstm")
            self.has_controller = True
            with torch.random.fork_rng():
                torch.manual_seed(int(seed))
                policy = MutationController(self.genes, embed=int(controller.embed), hidden=int(controller.hidden))
            self.learner = _reinforce(policy, controller)
            self.generator = _torch_generator(seed)
            self.replay = int(check_number("controller.replay", controller.get("replay", 0), 0, len(self.genes), integer=True))
            self.replay_pairs = int(check_number("controller.replay_pairs", controller.get("replay_pairs", 32), 1, None, integer=True))
        #: every evaluated genotype and its fitness (the controller learns from neighbouring pairs)
        self.archive: dict[tuple[int, ...], float] = {}

    # --- the algorithm -------------------------------------------------------------------
    def select(self) -> tuple[Member, list[Member] | None]:
        if self.selection == "tournament":
            return tournament(self.population, self.sample_size, self.rng)
        return roulette(self.population, self.rng), None

    def mutate(self, base: tuple[int, ...]) -> tuple[tuple[int, ...], list[Edit]]:
        if self.mutation == "random":
            return random_mutation(base, self.genes, self.mutation_rate, self.rng)
        n = len(mutable_genes(self.genes))
        k = max(1, int(self.rng.binomial(n, self.mutation_rate)))
        edits = None
        while edits is None and k <= n:
            # a parent whose every k-edit child is known already: change one gene more
            edits = self.learner.policy.propose(base, k, self.generator, known=self.is_known)
            k += 1
        if edits is None:
            return random_mutation(base, self.genes, self.mutation_rate, self.rng)
        child = list(base)
        for i, _, new in edits:
            child[i] = new
        return tuple(child), edits

    def ask(self) -> Proposal | None:
        if self.initial_proposed < self.population_size:
            self.initial_proposed += 1
            return self.random_proposal()
        if len(self.population) < self.population_size:
            return None  # the initial population is still being evaluated
        parent, sample = self.select()
        base, mate, origin = parent.values, None, "controller" if self.mutation == "controller" else "mutation"
        if self.crossover_rate > 0 and self.rng.random() < self.crossover_rate:
            mate, _ = self.select()
            base = uniform_crossover(parent.values, mate.values, self.rng)
            origin = "crossover+" + origin
        child, edits = self.mutate(base)
        return Proposal(child, origin, parent, mate, edits, base, None if sample is None else [m.born for m in sample])

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> dict[str, float] | None:
        if fitness is None:  # failed and skipped
            if proposal.parent is None:
                self.initial_proposed -= 1  # draw another random member instead
            return None
        self.population.add(step, proposal.values, fitness)
        if proposal.parent is not None and len(self.population) > self.population_size:
            if self.removal == "oldest":
                self.population.remove_oldest()
            else:
                born = set(proposal.sample_born or [])
                sample = [m for m in self.population.members if m.born in born]
                self.population.remove_worst(sample or None)
        reward = self.reward(proposal, fitness)
        if self.learner is None:
            return None
        experiences = []
        if reward is not None:
            experiences.append(
                Experience(reward, proposal.base, tuple(e[0] for e in proposal.edits), tuple(e[2] for e in proposal.edits))
            )
        if self.replay and proposal.values not in self.archive:
            experiences += self._replay(proposal.values, fitness)
        self.archive[proposal.values] = fitness
        return self.learner.observe_many(experiences)

    def _replay(self, child: tuple[int, ...], fitness: float) -> list[Experience]:
        """Hindsight experiences from the history: every evaluated genotype within
        ``controller.replay`` genes of the new child gives the edit towards the child
        (reward = its fitness gain) and the edit back (the opposite reward)."""
        if not self.archive:
            return []
        known = list(self.archive)
        arr = np.asarray(known, dtype=np.int64)
        c = np.asarray(child, dtype=np.int64)
        dist = (arr != c).sum(1)
        out = []
        near = np.flatnonzero((dist > 0) & (dist <= self.replay))
        if len(near) > self.replay_pairs:  # the closest pairs first, ties broken at random
            order = np.lexsort((self.rng.random(len(near)), dist[near]))
            near = np.sort(near[order[: self.replay_pairs]])
        for j in near:
            other = known[j]
            pos = tuple(int(i) for i in np.flatnonzero(arr[j] != c))
            gain = fitness - self.archive[other]
            out.append(Experience(gain, other, pos, tuple(child[i] for i in pos)))
            out.append(Experience(-gain, child, pos, tuple(other[i] for i in pos)))
        return out

    def reward(self, proposal: Proposal, fitness: float | None) -> float | None:
        """RENAS: fitness(child) - fitness(parent)."""
        if self.learner is None or proposal.parent is None or fitness is None:
            return None
        return fitness - proposal.parent.fitness

    def population_members(self) -> list[Member]:
        return self.population.members

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            population=self.population.state_dict(),
            initial_proposed=self.initial_proposed,
            archive=[[list(v), f] for v, f in self.archive.items()],
        )
        if self.learner is not None:
            state.update(learner=self.learner.state_dict(), generator=self.generator.get_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = Population.from_state(state["population"])
        self.initial_proposed = int(state["initial_proposed"])
        self.archive = {tuple(v): float(f) for v, f in state["archive"]}
        if self.learner is not None:
            self.learner.load_state_dict(state["learner"])
            self.generator.set_state(state["generator"])


class ReinforceSearch(Strategy):
    """REINFORCE over whole architectures: an LSTM samples every gene; reward = fitness,
    advantage against an exponential moving-average baseline (as the NAS-Bench-201 baseline)."""

    name = "reinforce"
    has_controller = True

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None) -> None:
        super().__init__(space, ga, controller, seed, name)
        if controller is None or controller.get("name") != "sampler":
            raise ConfigError("algorithm=reinforce needs controller=sampler")
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            policy = ArchitectureSampler(self.genes, embed=int(controller.embed), hidden=int(controller.hidden))
        self.learner = _reinforce(policy, controller)
        self.generator = _torch_generator(seed)

        # Sampling without replacement: a converged sampler would otherwise propose known
        # architectures thousands of times per new one (the budget counts distinct ones).
        # completions[i] = how many architectures share a prefix of i genes.
        arities = [g.arity for g in self.genes]
        self.completions = [math.prod(arities[i:]) for i in range(len(arities) + 1)]
        self.known_prefixes: dict[tuple[int, ...], int] = {}
        self.seen: set[tuple[int, ...]] = set()

    def _blocked(self, prefix: tuple[int, ...]) -> bool:
        return self.known_prefixes.get(prefix, 0) >= self.completions[len(prefix)]

    def _remember(self, values: tuple[int, ...]) -> None:
        if values in self.seen:
            return
        self.seen.add(values)
        for i in range(1, len(values) + 1):
            self.known_prefixes[values[:i]] = self.known_prefixes.get(values[:i], 0) + 1

    def ask(self) -> Proposal:
        return Proposal(self.learner.policy.sample(self.generator, self._blocked), "sampler")

    def reward(self, proposal: Proposal, fitness: float | None) -> float | None:
        return fitness

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> dict[str, float] | None:
        self._remember(tuple(int(v) for v in proposal.values))
        if fitness is None:
            return None
        return self.learner.observe(Experience(fitness, values=proposal.values))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(learner=self.learner.state_dict(), generator=self.generator.get_state(),
                     seen=[list(v) for v in sorted(self.seen)])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.learner.load_state_dict(state["learner"])
        self.generator.set_state(state["generator"])
        self.known_prefixes, self.seen = {}, set()
        for values in state.get("seen", []):
            self._remember(tuple(int(v) for v in values))
