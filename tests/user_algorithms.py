"""A user's own algorithms, some of them wrong (tests/test_algorithms.py: what renas says of each).

No ``from __future__ import annotations`` here: the annotations are objects (``list[int]``,
``float | None``), as in a user's module without it; :class:`Quoted` has them as strings.
"""

from renas.search.strategies import Proposal, Strategy


class Typed(Strategy):
    """A user's algorithm with a setting of its own, annotated."""

    initial = None

    def __init__(self, space, ga, controller, seed, name=None, n_init: int = 2, rate: float | None = None,
                 widths: list[int] = (1,), weights: dict[str, float] | None = None, cap: int = None) -> None:
        super().__init__(space, ga, controller, seed, name)
        self.n_init, self.rate, self.widths, self.weights, self.cap = n_init, rate, widths, weights, cap

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


class Quoted(Typed):
    """Annotations as strings (``from __future__ import annotations`` makes them so)."""

    def __init__(self, space, ga, controller, seed, name=None, n_init: "int" = 2, widths: "list[int]" = (1,)) -> None:
        super().__init__(space, ga, controller, seed, name, n_init=n_init, widths=widths)


def canonical_without_return(arch: dict) -> None:
    """A search space's ``canonical`` hook that forgot its ``return``."""
