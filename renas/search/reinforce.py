"""REINFORCE over whole architectures (Williams 1992; the NAS-Bench-201 baseline, after Zoph &
Le 2017): an LSTM samples every gene, reward = fitness, moving-average baseline."""

from __future__ import annotations

import math
from typing import Any

import torch

from renas.errors import ConfigError
from renas.search.controller import ArchitectureSampler, Experience, make_learner, torch_generator
from renas.search.strategies import Feedback, Proposal, Strategy
from renas.space.base import MAX_REJECTIONS, SearchSpace, no_valid_genotype


class ReinforceSearch(Strategy):
    """REINFORCE over whole architectures: an LSTM samples every gene; reward = fitness,
    advantage against an exponential moving-average baseline (as the NAS-Bench-201 baseline)."""

    name = "reinforce"
    #: what its reward is (the plots' axis): the sampled architecture's fitness, not a gain over a parent
    reward_meaning = "the child's fitness"
    initial = None  # no population: the sampler proposes from the first evaluation on
    has_controller = True

    def __init__(self, space: SearchSpace, ga: Any, controller: Any, seed: int, name: str | None = None) -> None:
        super().__init__(space, ga, controller, seed, name)
        if controller is None or controller.get("name") != "sampler":
            raise ConfigError("algorithm=reinforce needs controller=sampler")
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            policy = ArchitectureSampler(self.genes, embed=int(controller.embed), hidden=int(controller.hidden))
        self.learner = make_learner(policy, controller, seed)
        # train on the log-probability under the mask the architecture was drawn with
        # (mask_logprob=false: the unmasked policy, as renas 0.3.0 did, for comparison)
        self.mask_logprob = bool(controller.get("mask_logprob", True))
        self.generator = torch_generator(seed)

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
        for _ in range(MAX_REJECTIONS):
            values, masked = self.learner.policy.sample(self.generator, self._blocked)
            if self.space.is_valid(values):
                return Proposal(values, "sampler", info={"masked": masked})
            # not allowed by the space: never sampled again (blocked like a known architecture)
            self._remember(values)
        raise no_valid_genotype(self.space)

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        """Reward = fitness (a repeat answered from the cache is a sample like any other)."""
        self._remember(tuple(int(v) for v in proposal.values))
        if fitness is None:
            return None
        # the slots masked while drawing it (none for a proposal saved by renas 0.3.0)
        masked = list(proposal.info.get("masked", [])) if self.mask_logprob else []
        return Feedback(fitness, self.learner.observe(Experience(fitness, values=proposal.values, masked=masked)))

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
