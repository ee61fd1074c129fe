"""The population of steady-state evolution: members with fitness and age."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator


@dataclass
class Member:
    """An evaluated architecture in the population.

    Attributes:
        step: evaluation index in the history (``-1`` for a cache hit that was not evaluated).
        values: gene values of the genotype.
        fitness: its fitness (validation accuracy or the table's validation column).
        born: when it joined the population (a counter; smaller = older).
    """

    step: int
    values: tuple[int, ...]
    fitness: float
    born: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = list(self.values)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Member":
        return cls(int(d["step"]), tuple(int(v) for v in d["values"]), float(d["fitness"]), int(d["born"]))


class Population:
    """An ordered list of members (oldest first) with the two removal rules."""

    def __init__(self, members: list[Member] | None = None) -> None:
        self.members: list[Member] = list(members or [])
        self._born = max((m.born for m in self.members), default=-1) + 1

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def add(self, step: int, values: tuple[int, ...], fitness: float) -> Member:
        member = Member(step, tuple(values), float(fitness), self._born)
        self._born += 1
        self.members.append(member)
        return member

    def clear(self) -> None:
        """Every member leaves; birth ids keep counting (a restart of the population)."""
        self.members.clear()

    def remove_oldest(self) -> Member:
        """Regularized (aging) evolution: the oldest member dies (Real et al., 2019)."""
        oldest = min(self.members, key=lambda m: m.born)
        self.members.remove(oldest)
        return oldest

    def remove_worst(self, among: list[Member] | None = None) -> Member:
        """The least fit member of ``among`` (the tournament sample) dies; ties: the oldest."""
        pool = among if among else self.members
        pool = [m for m in pool if m in self.members] or self.members
        worst = min(pool, key=lambda m: (m.fitness, m.born))
        self.members.remove(worst)
        return worst

    def fitnesses(self) -> list[float]:
        return [m.fitness for m in self.members]

    def state_dict(self) -> dict[str, Any]:
        return {"members": [m.to_dict() for m in self.members], "born": self._born}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Population":
        pop = cls([Member.from_dict(d) for d in state["members"]])
        pop._born = int(state["born"])
        return pop
