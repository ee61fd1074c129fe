"""A user's own algorithms, some of them wrong (tests/test_algorithms.py: what renas says of each)."""

from __future__ import annotations

from renas.search.strategies import Proposal, Strategy


class Typed(Strategy):
    """A user's algorithm with a setting of its own, annotated."""

    initial = None

    def __init__(self, space, ga, controller, seed, name=None, n_init: int = 2, rate: float | None = None) -> None:
        super().__init__(space, ga, controller, seed, name)
        self.n_init, self.rate = n_init, rate

    def ask(self) -> Proposal | None:
        return self.random_proposal()


class NoAsk(Strategy):
    """Forgot ask()."""

    initial = None


class NotAStrategy:
    """Not a Strategy at all."""

    def __init__(self, **kwargs) -> None:
        pass


class ReturnsTuple(Typed):
    """ask() returns the values, not a Proposal."""

    def ask(self):
        return self.random_values()


class InitTypo(Typed):
    """``initial`` names a setting the config does not have."""

    initial = "algorithm.n_inti"


def not_a_class(**kwargs) -> None:
    """A function where an algorithm class belongs."""
