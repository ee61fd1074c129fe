"""Random search: uniform random architectures (repeats are answered from the loop's cache,
so none costs an evaluation)."""

from __future__ import annotations

from renas.search.strategies import Proposal, Strategy


class RandomSearch(Strategy):
    """Uniform random architectures (Li & Talwalkar, 2019: a strong NAS baseline)."""

    name = "random"
    initial = None  # no population: every architecture is drawn at random

    def ask(self) -> Proposal:
        return self.random_proposal()
