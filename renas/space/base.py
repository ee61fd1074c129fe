"""What every search space provides: genes with legal values, genotypes, strings, networks.

A genotype is a fixed-length tuple of gene values (integers). Each gene has its own, static
list of legal values, so any gene-wise combination of two genotypes (uniform crossover) and any
single-gene change to another legal value (mutation) is again a valid genotype. Mutation, the
RL controller and the baselines only act on this flat view; the space turns values into
strings and networks.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from renas.errors import GenotypeError, RenasError


#: random draws before concluding that (almost) nothing is allowed by the space's ``valid``
MAX_REJECTIONS = 10_000
#: constrained spaces up to this many combinations are enumerated to count the allowed ones
COUNT_LIMIT = 100_000


def lazy_modules(net: nn.Module) -> list[str]:
    """The class names of ``net``'s lazy modules whose sizes are not set yet (``nn.LazyLinear``):
    their parameters exist only after a forward pass, so they can be neither counted nor given
    to an optimizer when a network is built."""
    return sorted({type(m).__name__ for m in net.modules() if isinstance(m, LazyModuleMixin) and m.has_uninitialized_params()})


def no_valid_genotype(space: "SearchSpace") -> RenasError:
    return RenasError(f"{space.name}: none of {MAX_REJECTIONS:,} random architectures is allowed by "
                      f"search_space.valid; check the hook (it may reject everything)")


@dataclass(frozen=True)
class Gene:
    """One position of the genotype.

    Attributes:
        name: where it is, e.g. ``normal.b2.op1`` or ``edge(3<-1)``.
        kind: what it chooses: ``op`` or ``input``.
        choices: labels of the legal values; gene value ``v`` means ``choices[v]``.
    """

    name: str
    kind: str
    choices: tuple[str, ...]

    @property
    def arity(self) -> int:
        return len(self.choices)


class SearchSpace(ABC):
    """A space of architectures: genes, sampling, strings, canonical form and builder."""

    #: short name used in configs and summaries
    name: str = ""
    #: whether :meth:`build` makes networks (a space searched only in a table may not)
    can_build: bool = True
    #: whether some gene combinations are not allowed (:meth:`is_valid`)
    constrained: bool = False

    @property
    @abstractmethod
    def genes(self) -> tuple[Gene, ...]:
        """The genes, in genotype order."""

    # --- genotype <-> values -------------------------------------------------------------
    @abstractmethod
    def from_values(self, values: Sequence[int]) -> Any:
        """Build a genotype from gene values (validated)."""

    def choice_index(self, gene: int, token: Any) -> int:
        """The value of gene ``gene`` whose choice label is ``token`` (a table's per-gene column)."""
        g = self.genes[gene]
        text = str(token).strip()
        if text not in g.choices:
            raise GenotypeError(f"gene {g.name}: {text!r} is not one of {', '.join(g.choices)}")
        return g.choices.index(text)

    @staticmethod
    def values(genotype: Any) -> tuple[int, ...]:
        """The gene values of a genotype."""
        return tuple(genotype.values)

    # --- strings -------------------------------------------------------------------------
    @abstractmethod
    def format(self, genotype: Any) -> str:
        """The canonical genotype string (parseable back with :meth:`parse`)."""

    @abstractmethod
    def parse(self, text: Any) -> Any:
        """Parse a genotype string; raise :class:`GenotypeError` naming what is wrong."""

    def canonical(self, genotype: Any) -> str:
        """Isomorphism-canonical form: genotypes computing the same function share it.

        Spaces without such a notion return the exact string.
        """
        return self.format(genotype)

    # --- sampling and checks -------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Any:
        """A genotype drawn uniformly at random from ``rng`` among the allowed ones."""
        for _ in range(MAX_REJECTIONS):
            values = [int(rng.integers(g.arity)) for g in self.genes]
            if self.is_valid(values):
                return self.from_values(values)
        raise no_valid_genotype(self)

    def validate_values(self, values: Sequence[int]) -> tuple[int, ...]:
        genes = self.genes
        if len(values) != len(genes):
            raise GenotypeError(
                f"{self.name}: expected {len(genes)} gene values, got {len(values)}"
            )
        out = []
        for gene, v in zip(genes, values):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise GenotypeError(f"{self.name}: gene {gene.name} must be an integer, got {v!r}")
            if not 0 <= int(v) < gene.arity:
                raise GenotypeError(
                    f"{self.name}: gene {gene.name}={v} is out of range 0..{gene.arity - 1}"
                )
            out.append(int(v))
        return tuple(out)

    def is_valid(self, values: Sequence[int]) -> bool:
        """Whether the combination of gene values is allowed (in range is assumed). Every
        proposer skips combinations that are not: sampling, mutation, crossover, controllers."""
        return True

    def allowed_values(self) -> Iterator[tuple[int, ...]]:
        """The gene values of every allowed genotype, in gene-value order (for small spaces)."""
        for values in itertools.product(*(range(g.arity) for g in self.genes)):
            if self.is_valid(values):
                yield values

    def genotypes(self) -> Iterator[Any]:
        """Every allowed genotype, in gene-value order (for small spaces: tables, tests)."""
        return (self.from_values(values) for values in self.allowed_values())

    @property
    def size(self) -> int:
        """Number of gene-value combinations (product of gene arities; allowed or not)."""
        return math.prod(g.arity for g in self.genes)

    def allowed(self, at_most: int | None = None) -> int | None:
        """Number of allowed architectures, counted up to ``at_most`` (the count stops there):
        :attr:`size` for a space without rules, the count over the combinations of a
        constrained one of up to :data:`COUNT_LIMIT`, and ``None`` (not counted) for a larger one."""
        if not self.constrained:
            return self.size if at_most is None else min(self.size, at_most)
        if self.size > COUNT_LIMIT:
            return None
        return sum(1 for _ in itertools.islice(self.allowed_values(), at_most))

    # --- networks ------------------------------------------------------------------------
    @abstractmethod
    def build(self, genotype: Any, in_channels: int, num_classes: int) -> nn.Module:
        """The network of a genotype, ready to train."""

    @abstractmethod
    def reference(self) -> Any:
        """A documented reference architecture (what train.py trains without ``arch=``)."""
