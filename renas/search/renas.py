"""RENAS (Chen et al., CVPR 2019): evolution whose mutations a learned controller chooses.

The loop is :class:`~renas.search.evolution.Evolution`'s (tournament of S out of P, the winner
mutated, the worst of the tournament sample removed); what RENAS adds is who picks the edits.
Its mutation controller (:class:`~renas.search.controller.MutationController`) reads the parent
and draws which genes change and to what; it is trained with REINFORCE on
reward = fitness(child) - fitness(parent), computed once per child in :meth:`RENAS.tell`.
With ``controller=none`` the edits are drawn uniformly instead
(:class:`~renas.search.controller.UniformEdits`) and everything else stays the same: P, S,
selection, removal, the number of genes changed and the masking of children already
evaluated. That is RENAS's ablation (``algorithm=evolution``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from renas.config import check_number
from renas.search.controller import (
    EditPolicy,
    Experience,
    LeastSquares,
    Mutation,
    make_learner,
    make_policy,
    make_prior,
    propose,
    torch_generator,
)
from renas.search.evolution import Evolution
from renas.search.mutation import Edit, mutable_genes, random_mutation
from renas.search.strategies import Feedback, Proposal
from renas.space.base import SearchSpace


class RENAS(Evolution):
    """Reinforced evolutionary NAS: steady-state evolution with a learned mutation policy.

    Mutation: ``k = max(1, Binomial(genes, ga.mutation_rate))`` genes change (the same law as
    random mutation's), chosen with their new values by the policy; the last edit is drawn
    among edits whose child is not known yet (nor disallowed by the space's ``valid`` hook), so
    no evaluation is spent on a repeat.

    Learning (``controller=renas`` or ``lstm``): each child gives one on-policy experience (the parent,
    the edits and the reward). With ``controller.prior=least_squares`` (the bundle's) the
    controller's preferences also hold a prior refitted to the whole archive after every
    evaluation (:class:`~renas.search.controller.LeastSquares`), which REINFORCE learns on top
    of; ``controller=least_squares`` uses the fit alone. With ``controller.replay=d`` the controller also learns in
    hindsight from the search's history: every evaluated architecture within ``d`` genes of
    the new child (its own parent excepted: that pair is the on-policy experience) gives the
    edit towards the child with reward = the child's gain, and the edit back with the
    opposite reward; at most ``controller.replay_pairs`` such pairs (the closest first) per
    child, weighted by ``controller.replay_weight`` in the update (see
    :class:`~renas.search.controller.Reinforce`).

    Args:
        space, ga, controller, seed, name: as for every strategy; ``controller`` is the
            ``controller`` config (``renas``, ``lstm`` or ``none``).
        restart: start again from a random architecture at a local optimum (see :meth:`ask`).
        patience: also restart after this many children without a new best (0: off).
    """

    name = "renas"
    origin = "controller"

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None,
                 restart: bool = False, patience: int = 0) -> None:
        super().__init__(space, ga, controller, seed, name)
        self.restart = bool(restart)
        self.patience = int(patience)
        self.stale = 0  # children since the population's best last improved
        self.started = False  # the initial population was complete once
        self.restart_pending = False  # a restart architecture is in evaluation
        self.restarts = 0
        self.generator = torch_generator(seed)
        self.policy: EditPolicy = make_policy(self.genes, controller, seed)
        self.learner = None
        self.prior: LeastSquares | None = None  # a fitted prior under REINFORCE's preferences
        self.replay = 0
        if not self.policy.learnable:  # controller=none: the ablation
            self.origin = "mutation"
        else:
            self.learner = make_learner(self.policy, controller, seed)
            self.prior = make_prior(self.policy, controller)  # controller.prior=least_squares
            self.has_controller = True
            self.mask_logprob = bool(controller.get("mask_logprob", True))
            replay = controller.get("replay", 0)
            self.replay = len(self.genes) if replay == "all" else int(check_number(
                "controller.replay", replay, 0, len(self.genes), integer=True))
            self.replay_pairs = int(controller.get("replay_pairs", 32))
        self.n_mutable = len(mutable_genes(self.genes))
        #: every evaluated genotype and its fitness, as rows of an array (hindsight replay)
        self.archive = _Archive(len(self.genes))

    @property
    def fitted(self) -> bool:
        """The learner refits to the archive (``controller.learner=least_squares``) instead of
        observing experiences."""
        return isinstance(self.learner, LeastSquares)

    # --- mutation ------------------------------------------------------------------------
    def waiting(self) -> bool:
        if self.restart_pending:
            return True
        if self.started:
            return not len(self.population)
        self.started = len(self.population) >= self.population_size
        return not self.started

    def local_optimum(self) -> bool:
        """The fittest member has no single-gene child left to evaluate (and none was fitter)."""
        best = max(self.population.members, key=lambda m: (m.fitness, m.born))
        return propose(self.policy, best.values, 1, self.generator, known=self.excluded, dry=True) is None

    def ask(self) -> Proposal | None:
        if self.restart and self.started and not self.restart_pending and (
                not len(self.population) or (self.patience and self.stale >= self.patience) or self.local_optimum()):
            # a local optimum: start again from one random architecture (the controller keeps
            # what it learned); the population grows back from its children
            self.population.clear()
            self.restart_pending = True
            self.restarts += 1
            self.stale = 0
            return Proposal(self.random_values(), "restart")
        return super().ask()

    def mutate(self, base: tuple[int, ...], proposal: Proposal) -> tuple[tuple[int, ...], list[Edit]]:
        k = max(1, int(self.rng.binomial(self.n_mutable, self.mutation_rate)))
        mutation = None
        while mutation is None and k <= self.n_mutable:
            # a parent whose every k-edit child is known already: change one gene more
            mutation = propose(self.policy, base, k, self.generator, known=self.excluded)
            k += 1
        if mutation is None:  # every child of this parent is known: the loop's cache answers
            return random_mutation(base, self.genes, self.mutation_rate, self.rng)
        proposal.info["masked"] = mutation.masked
        child = list(base)
        for i, _, new in mutation.edits:
            child[i] = new
        return tuple(child), mutation.edits

    # --- learning ------------------------------------------------------------------------
    def reward(self, proposal: Proposal, fitness: float) -> float | None:
        """fitness(child) - fitness(parent), for children of the controller."""
        if proposal.parent is None or not proposal.edits:
            return None
        return fitness - proposal.parent.fitness

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        if proposal.origin == "restart":
            self.restart_pending = False
        best = max((m.fitness for m in self.population.members), default=None)
        super().tell(proposal, fitness, step)
        if fitness is not None and proposal.parent is not None:
            self.stale = 0 if best is None or fitness > best else self.stale + 1
        if fitness is None or self.learner is None:
            return None
        reward = self.reward(proposal, fitness)
        exp = None
        if reward is not None and "masked" in proposal.info:
            # the mask the edit was drawn under (mask_logprob=false: the unmasked policy, for comparison)
            masked = list(proposal.info["masked"]) if self.mask_logprob else []
            exp = Experience(reward, proposal.base, Mutation(list(proposal.edits), masked))
        replay: list[Experience] = []
        new = not self.archive.has(proposal.values)
        if new:
            if self.replay and not self.fitted:
                replay = self._replay(proposal.values, fitness, skip=proposal.base if exp is not None else None)
            self.archive.add(proposal.values, fitness)
        if self.fitted:  # controller.learner=least_squares: refit to every evaluation so far
            return Feedback(reward, self.learner.fit(*self.archive.rows(), reward=reward, parent=proposal.base))
        # REINFORCE first: the log-probability it trains on is that of the policy the edit was drawn
        # from, the prior as it was; then the prior is refitted for the next proposal
        update = self.learner.observe(exp, replay)
        if self.prior is not None and new:  # an archive that did not change gives the same fit
            self.prior.fit(*self.archive.rows())
        return Feedback(reward, update)

    def _replay(self, child: tuple[int, ...], fitness: float, skip: tuple[int, ...] | None) -> list[Experience]:
        """Hindsight experiences: evaluated genotypes within ``replay`` genes of the new child
        (``skip``, the on-policy parent, excepted), the edit towards the child (reward = its
        gain) and back (the opposite reward); the closest first, ties at random."""
        values, fits = self.archive.rows()
        if not len(values):
            return []
        c = np.asarray(child, dtype=np.int64)
        dist = (values != c).sum(1)
        near = dist <= self.replay
        if skip is not None:
            near &= (values != np.asarray(skip)).any(1)
        near = np.flatnonzero(near & (dist > 0))
        if len(near) > self.replay_pairs:
            order = np.lexsort((self.rng.random(len(near)), dist[near]))
            near = np.sort(near[order[: self.replay_pairs]])
        out = []
        for j in near:
            other = tuple(int(v) for v in values[j])
            pos = np.flatnonzero(values[j] != c)
            gain = fitness - float(fits[j])
            out.append(Experience(gain, other, Mutation([(int(i), other[i], child[i]) for i in pos])))
            out.append(Experience(-gain, child, Mutation([(int(i), child[i], other[i]) for i in pos])))
        return out

    # --- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["generator"] = self.generator.get_state()
        state.update(started=self.started, restart_pending=self.restart_pending, restarts=self.restarts, stale=self.stale)
        if self.learner is not None:
            state.update(learner=self.learner.state_dict(), archive=self.archive.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
        self.started, self.restart_pending = bool(state["started"]), bool(state["restart_pending"])
        self.restarts, self.stale = int(state["restarts"]), int(state["stale"])
        if self.learner is not None:
            self.learner.load_state_dict(state["learner"])
            self.archive.load_state_dict(state["archive"])


class _Archive:
    """Evaluated genotypes and their fitness, kept as a growing array (fast distance scans)."""

    def __init__(self, n_genes: int) -> None:
        self.values = np.zeros((64, n_genes), dtype=np.int64)
        self.fitness = np.zeros(64)
        self.size = 0
        self.index: set[tuple[int, ...]] = set()

    def has(self, values: tuple[int, ...]) -> bool:
        return tuple(values) in self.index

    def add(self, values: tuple[int, ...], fitness: float) -> None:
        if self.size == len(self.values):
            self.values = np.concatenate([self.values, np.zeros_like(self.values)])
            self.fitness = np.concatenate([self.fitness, np.zeros_like(self.fitness)])
        self.values[self.size] = values
        self.fitness[self.size] = fitness
        self.size += 1
        self.index.add(tuple(values))

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self.values[: self.size], self.fitness[: self.size]

    def state_dict(self) -> list[list[Any]]:
        return [[self.values[i].tolist(), float(self.fitness[i])] for i in range(self.size)]

    def load_state_dict(self, rows: list[list[Any]]) -> None:
        self.__init__(self.values.shape[1])
        for v, f in rows:
            self.add(tuple(int(x) for x in v), float(f))
