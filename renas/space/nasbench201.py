"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020).

A cell is a DAG of 4 nodes; each of the 6 edges ``j -> i`` (j < i) carries one of 5 ops. The
genotype string is the benchmark's ``arch_str`` exactly, edges in the order
``|e(1<-0)|+|e(2<-0)|e(2<-1)|+|e(3<-0)|e(3<-1)|e(3<-2)|``, e.g.::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|

The network is the benchmark's: 3x3 stem conv with C channels, 3 stages of N cells with
residual reduction blocks between them (C, 2C, 4C), BN + ReLU, global pooling, classifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from renas.errors import GenotypeError
from renas.space.base import Gene, SearchSpace
from renas.space.ops import NB201_OPS, ReLUConvBN

OP_NAMES: tuple[str, ...] = tuple(NB201_OPS)
#: (target node, source node) of each edge, in arch_str order
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NODES = 4


@dataclass(frozen=True)
class NB201Genotype:
    """Op index (into :data:`OP_NAMES`) of each of the 6 edges, in arch_str order."""

    ops: tuple[int, ...]

    @property
    def values(self) -> tuple[int, ...]:
        return self.ops


def canonical_form(ops: Sequence[str]) -> str:
    """Isomorphism-canonical string of a cell given its 6 edge op names.

    Exactly NAS-Bench-201 / NATS-Bench's ``Structure.to_unique_str(consider_zero=True)``: each
    node is the sorted ``+``-join of its incoming terms, where ``skip_connect`` passes the
    source's string through, ``none`` (or a source that is exactly zero, ``'#'``) gives ``'#'``,
    and any other op gives ``(source)@op``. Cells that differ only in the order of a sum, or
    through skip connections, share the string: 15,625 cells fall into 6,466 groups, as in the
    benchmark's own ``unique_str``. Zero terms are kept as ``'#'`` (as the benchmark does), so a
    few cells that are equal as functions still keep different strings.
    """
    nodes = {0: "0"}
    k = 0
    for i in range(1, NODES):
        terms = []
        for j in range(i):
            op, src = ops[k], nodes[j]
            k += 1
            if op == "none" or src == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(src)
            else:
                terms.append(f"({src})@{op}")
        nodes[i] = "+".join(sorted(terms))
    return nodes[NODES - 1]


class NASBench201Space(SearchSpace):
    """NAS-Bench-201 cells (5^6 = 15,625) and the benchmark's macro network.

    Args:
        channels: C, channels of the first stage (16 in the benchmark).
        cells_per_stage: N, cells per stage (5 in the benchmark).
    """

    name = "nasbench201"

    def __init__(self, channels: int = 16, cells_per_stage: int = 5) -> None:
        self.channels = int(channels)
        self.cells_per_stage = int(cells_per_stage)
        self._genes = tuple(Gene(f"edge({i}<-{j})", "op", OP_NAMES) for i, j in EDGES)

    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    def from_values(self, values: Sequence[int]) -> NB201Genotype:
        return NB201Genotype(self.validate_values(values))

    def reference(self) -> NB201Genotype:
        """The best cell of NAS-Bench-201 on CIFAR-10 (94.37 % test after 200 epochs)."""
        return self.parse(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        )

    def format(self, genotype: NB201Genotype) -> str:
        names = [OP_NAMES[o] for o in genotype.ops]
        nodes, k = [], 0
        for i in range(1, NODES):
            nodes.append("|" + "|".join(f"{names[k + j]}~{j}" for j in range(i)) + "|")
            k += i
        return "+".join(nodes)

    def parse(self, text: Any) -> NB201Genotype:
        if not isinstance(text, str):
            raise GenotypeError(f"a nasbench201 genotype is an arch string, got {text!r}")
        s = text.strip()
        nodes = s.split("+")
        if len(nodes) != NODES - 1 or not s:
            raise GenotypeError(
                f"cannot parse {text!r} as a NAS-Bench-201 arch string: expected 3 nodes joined "
                f"by '+', like '|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...~0|...~1|...~2|'"
            )
        ops = []
        for i, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise GenotypeError(f"node {i} {node!r} of {text!r} is not '|op~input|...|'")
            edges = node[1:-1].split("|")
            if len(edges) != i:
                raise GenotypeError(f"node {i} of {text!r} must have {i} edges, got {len(edges)}")
            for j, edge in enumerate(edges):
                m = re.fullmatch(r"([^~]*)~(.*)", edge)
                if not m:
                    raise GenotypeError(f"edge {edge!r} of node {i} is not 'op~input'")
                op, src = m.groups()
                if op not in OP_NAMES:
                    raise GenotypeError(
                        f"unknown op {op!r} on edge {i}<-{j}; ops are {', '.join(OP_NAMES)}"
                    )
                if src != str(j):
                    raise GenotypeError(
                        f"edge {j + 1} of node {i} must read from node {j}, got input {src!r}"
                    )
                ops.append(OP_NAMES.index(op))
        return NB201Genotype(tuple(ops))

    def canonical(self, genotype: NB201Genotype) -> str:
        """The isomorphism-canonical form (:func:`canonical_form`)."""
        return canonical_form([OP_NAMES[o] for o in genotype.ops])

    def build(self, genotype: NB201Genotype, in_channels: int, num_classes: int) -> nn.Module:
        return NB201Network(genotype, in_channels, num_classes, self.channels, self.cells_per_stage)


class NB201Cell(nn.Module):
    def __init__(self, genotype: NB201Genotype, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(NB201_OPS[OP_NAMES[o]](c, 1) for o in genotype.ops)
        self.none = [OP_NAMES[o] == "none" for o in genotype.ops]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes, k = [x], 0
        for i in range(1, NODES):
            out = None
            for j in range(i):
                if not self.none[k]:
                    y = self.edges[k](nodes[j])
                    out = y if out is None else out + y
                k += 1
            nodes.append(out if out is not None else torch.zeros_like(x))
        return nodes[-1]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction block: a stride-2 residual basic block."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, padding=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(
        self, genotype: NB201Genotype, in_channels: int, num_classes: int, channels: int, cells_per_stage: int
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(genotype, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.pool(x).flatten(1))
