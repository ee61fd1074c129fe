"""Local search (White, Zela, Ru, Liu, Hutter, ICLR 2021 / UAI 2021: "local search is state
of the art for NAS benchmarks"): hill-climbing over single-gene changes with random restarts."""

from __future__ import annotations

from typing import Any

from renas.search.population import Member
from renas.search.strategies import Feedback, Proposal, Strategy
from renas.space.base import SearchSpace


class LocalSearch(Strategy):
    """Hill-climbing with random restarts.

    1. ``n_init`` random architectures are evaluated; the best is the centre.
    2. The centre's neighbours (every single-gene change to another legal value) are
       evaluated in random order; one evaluated before is answered from the loop's cache at no
       cost, and moves the centre like any other (skipping it left a restart's centre where an
       evaluated neighbour was better).
       ``move=first``: the first neighbour better than the centre becomes the centre at once.
       ``move=best``: the whole neighbourhood is evaluated, then the best neighbour becomes
       the centre if it is better (NASLib's variant).
    3. When no neighbour of the centre is better (a local optimum), search restarts from a
       new random architecture, which becomes the centre.

    Args:
        space, ga, controller, seed, name: as for every strategy (``ga`` and ``controller``
            are not used).
        n_init: random architectures before the first climb.
        move: ``first`` or ``best`` improvement.
    """

    name = "local"
    initial = "algorithm.n_init"  # the random architectures before the first climb

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None,
                 n_init: int = 10, move: str = "first") -> None:
        super().__init__(space, ga, controller, seed, name)
        self.n_init = int(n_init)
        self.move = move
        self.initial_proposed = 0
        self.initial_told = 0
        self.in_flight = 0
        self.centre: Member | None = None
        self.candidate: Member | None = None  # move=best: the best neighbour so far
        self.queue: list[tuple[int, ...]] = []

    def _neighbours(self, values: tuple[int, ...]) -> list[tuple[int, ...]]:
        out = []
        for i, g in enumerate(self.genes):
            for v in range(g.arity):
                if v != values[i]:
                    child = list(values)
                    child[i] = v
                    if self.space.is_valid(child):
                        out.append(tuple(child))
        order = self.rng.permutation(len(out))
        return [out[j] for j in order]

    def _centre_on(self, member: Member) -> None:
        self.centre, self.candidate = member, None
        self.queue = self._neighbours(member.values)

    def ask(self) -> Proposal | None:
        if self.initial_proposed < self.n_init:
            self.initial_proposed += 1
            self.in_flight += 1
            return self.random_proposal()
        if self.centre is None:
            return None  # the initial architectures are still being evaluated
        if self.queue:
            self.in_flight += 1
            return Proposal(self.queue.pop(), "local", parent=self.centre)
        if self.in_flight:
            return None  # a neighbour in evaluation may still move the centre
        if self.candidate is not None and self.candidate.fitness > self.centre.fitness:
            self._centre_on(self.candidate)
            return self.ask()
        self.in_flight += 1
        return Proposal(self.random_values(), "restart")

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        if proposal.origin != "fallback":
            self.in_flight -= 1
        if fitness is None:  # failed and skipped
            if proposal.origin == "random":
                self.initial_proposed -= 1
            return None
        member = Member(step, tuple(proposal.values), float(fitness), step)
        if proposal.origin == "random":
            self.initial_told += 1
            if self.candidate is None or fitness > self.candidate.fitness:
                self.candidate = member
            if self.initial_told == self.n_init:
                self._centre_on(self.candidate)
        elif proposal.origin == "restart":
            self._centre_on(member)
        elif self.centre is not None and fitness > self.centre.fitness:
            if self.move == "first" or proposal.origin == "fallback":
                self._centre_on(member)
            elif self.candidate is None or fitness > self.candidate.fitness:
                self.candidate = member
        return None

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            initial_proposed=self.initial_proposed, initial_told=self.initial_told, in_flight=self.in_flight,
            centre=None if self.centre is None else self.centre.to_dict(),
            candidate=None if self.candidate is None else self.candidate.to_dict(),
            queue=[list(v) for v in self.queue],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.initial_proposed = int(state["initial_proposed"])
        self.initial_told = int(state["initial_told"])
        self.in_flight = int(state["in_flight"])
        self.centre = None if state["centre"] is None else Member.from_dict(state["centre"])
        self.candidate = None if state["candidate"] is None else Member.from_dict(state["candidate"])
        self.queue = [tuple(int(x) for x in v) for v in state["queue"]]
