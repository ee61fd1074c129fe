"""The RENAS search space: a NASNet-style cell of B blocks, stacked into a network.

A block takes two inputs, applies one op to each and adds the results. Inputs of block ``b``
are ``0`` = h[i-1] (the output of the cell before the previous one), ``1`` = h[i] (the previous
cell's output) or ``2 + j`` = block ``j < b`` of the same cell. The cell concatenates the
outputs of blocks that nothing in the cell consumes (optionally also h[i-1] in normal cells, as
the released RENASNet code does: ``concat_prev``). The genotype is the RENAS encoding: 2B ``(op, input)`` pairs.

Genotype string (canonical): blocks joined by ``+``, each ``|op~input|op~input|``, e.g. RENASNet::

    |sep_conv_5x5~0|sep_conv_3x3~1|+|identity~1|sep_conv_3x3~1|+|sep_conv_3x3~0|avg_pool_3x3~0|+|sep_conv_5x5~1|sep_conv_3x3~0|+|identity~2|sep_conv_3x3~2|

With separate normal and reduction cells the string is ``<normal cell>;<reduction cell>``.
:meth:`RenasCellSpace.parse` also reads the paper's list form ``[[1,0],[0,1],...]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from omegaconf import OmegaConf
from torch import nn

from renas.errors import GenotypeError
from renas.space.base import Gene, SearchSpace
from renas.space.ops import RENAS_OPS, FactorizedReduce, ReLUConvBN

OP_NAMES: tuple[str, ...] = tuple(RENAS_OPS)

#: RENASNet in the RENAS encoding (op index, input index); normal = reduction cell.
RENASNET = ((1, 0), (0, 1), (7, 1), (0, 1), (0, 0), (3, 0), (1, 1), (0, 0), (7, 2), (0, 2))

Cell = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CellGenotype:
    """A RENAS cell genotype: ``normal`` (and ``reduce`` when the cells are separate).

    Each cell is a tuple of 2B ``(op index, input index)`` pairs; ``reduce`` is ``None`` when
    the reduction cells share the normal cell's genotype.
    """

    normal: Cell
    reduce: Cell | None = None

    @property
    def values(self) -> tuple[int, ...]:
        cells = [self.normal] if self.reduce is None else [self.normal, self.reduce]
        return tuple(v for cell in cells for pair in cell for v in pair)

    @property
    def reduction_cell(self) -> Cell:
        return self.normal if self.reduce is None else self.reduce


class RenasCellSpace(SearchSpace):
    """The RENAS / NASNet cell space and the network it stacks.

    Args:
        blocks: B, blocks per cell (5 in the paper).
        shared_reduction: one genotype for normal and reduction cells (the released RENASNet
            code and the default, which halves the genes to search), or separate cells.
        cells_per_stage: N, normal cells per stage (3 stages, reduction cells between them).
        channels: F, channels of the first stage; doubled at each reduction.
        stem: ``cifar`` (3x3 conv at stride 1) or ``imagenet`` (3x3 conv at stride 2 and two
            reduction cells, the paper's ImageNet mobile layout).
        stem_channels: stem width; ``None`` means 3F for ``cifar`` and 32 for ``imagenet``.
        auxiliary: add the auxiliary head after stage 2 (its loss is weighted in training).
        drop_path: maximum drop-path probability (ramped linearly over training).
        dropout: dropout before the classifier.
        concat_prev: normal cells also concatenate h[i-1], as the released MXNet code does.
            Off by default: the cell then outputs exactly its unused blocks (the rule RENAS and
            NASNet describe), which matches the paper's 5.36M params / 580M mult-adds for
            RENASNet in the ImageNet mobile setting (5.24M / 572M here); the released layout
            gives 5.68M / 608M (see README, "Fidelity").
    """

    name = "renas_cell"

    def __init__(
        self,
        blocks: int = 5,
        shared_reduction: bool = True,
        cells_per_stage: int = 1,
        channels: int = 16,
        stem: str = "cifar",
        stem_channels: int | None = None,
        auxiliary: bool = False,
        drop_path: float = 0.0,
        dropout: float = 0.0,
        concat_prev: bool = False,
    ) -> None:
        self.blocks = int(blocks)
        self.shared_reduction = bool(shared_reduction)
        self.cells_per_stage = int(cells_per_stage)
        self.channels = int(channels)
        self.stem = stem
        self.stem_channels = stem_channels
        self.auxiliary = bool(auxiliary)
        self.drop_path = float(drop_path)
        self.dropout = float(dropout)
        self.concat_prev = bool(concat_prev)
        genes = []
        for cell in ("normal",) if self.shared_reduction else ("normal", "reduce"):
            for b in range(self.blocks):
                for side in (0, 1):
                    genes.append(Gene(f"{cell}.b{b}.op{side}", "op", OP_NAMES))
                    genes.append(
                        Gene(f"{cell}.b{b}.in{side}", "input", tuple(str(i) for i in range(b + 2)))
                    )
        self._genes = tuple(genes)

    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    # --- values --------------------------------------------------------------------------
    def from_values(self, values: Sequence[int]) -> CellGenotype:
        v = self.validate_values(values)
        n = 4 * self.blocks
        normal = tuple((v[i], v[i + 1]) for i in range(0, n, 2))
        reduce = None
        if not self.shared_reduction:
            reduce = tuple((v[i], v[i + 1]) for i in range(n, 2 * n, 2))
        return CellGenotype(normal, reduce)

    def reference(self) -> CellGenotype:
        """RENASNet, the architecture the paper found (normal = reduction cell)."""
        if self.blocks != 5:
            raise GenotypeError("the RENASNet reference needs search_space.blocks=5")
        return CellGenotype(RENASNET, None if self.shared_reduction else RENASNET)

    # --- strings -------------------------------------------------------------------------
    def _format_cell(self, cell: Cell) -> str:
        blocks = []
        for b in range(self.blocks):
            (o0, i0), (o1, i1) = cell[2 * b], cell[2 * b + 1]
            blocks.append(f"|{OP_NAMES[o0]}~{i0}|{OP_NAMES[o1]}~{i1}|")
        return "+".join(blocks)

    def format(self, genotype: CellGenotype) -> str:
        if genotype.reduce is None:
            return self._format_cell(genotype.normal)
        return self._format_cell(genotype.normal) + ";" + self._format_cell(genotype.reduce)

    def _parse_cell(self, text: str, what: str) -> Cell:
        blocks = text.strip().split("+")
        cell = []
        for b, block in enumerate(blocks[: self.blocks]):  # (blocks past the count: the count's error below)
            m = re.fullmatch(r"\|([^|~]*)~([^|]*)\|([^|~]*)~([^|]*)\|", block.strip())
            if not m:
                raise GenotypeError(
                    f"{what}: block {b} {block.strip()!r} is not '|op~input|op~input|'"
                )
            for op, inp in ((m.group(1), m.group(2)), (m.group(3), m.group(4))):
                if op not in OP_NAMES:
                    raise GenotypeError(
                        f"{what}: unknown op {op!r} in block {b}; ops are {', '.join(OP_NAMES)}"
                    )
                if not re.fullmatch(r"[0-9]+", inp):  # (not \d: other scripts' digits are not indices)
                    raise GenotypeError(f"{what}: input {inp!r} of block {b} is not an integer 0..{b + 1}")
                if int(inp) >= b + 2:
                    raise GenotypeError(
                        f"{what}: input {inp} of block {b} is out of range; block {b} may take "
                        f"0..{b + 1} (0 = h[i-1], 1 = h[i], 2.. = earlier blocks)"
                    )
                cell.append((OP_NAMES.index(op), int(inp)))
        if len(blocks) != self.blocks:
            raise GenotypeError(f"{what}: expected {self.blocks} blocks joined by '+', got {len(blocks)}")
        return self._check_cell(cell, what)

    def _check_cell(self, cell: Sequence[Sequence[Any]], what: str) -> Cell:
        if len(cell) != 2 * self.blocks:
            raise GenotypeError(
                f"{what}: expected {2 * self.blocks} [op, input] pairs ({self.blocks} blocks), "
                f"got {len(cell)}"
            )
        out = []
        for k, pair in enumerate(cell):
            b = k // 2
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise GenotypeError(f"{what}: entry {k} {pair!r} is not an [op, input] pair")
            op, inp = pair
            if isinstance(op, str) and op in OP_NAMES:
                op = OP_NAMES.index(op)
            if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < len(OP_NAMES):
                raise GenotypeError(
                    f"{what}: op {op!r} in block {b} is not an op index 0..{len(OP_NAMES) - 1} "
                    f"or name"
                )
            if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp < b + 2:
                raise GenotypeError(
                    f"{what}: input {inp!r} of block {b} is out of range; block {b} may take "
                    f"0..{b + 1} (0 = h[i-1], 1 = h[i], 2.. = earlier blocks)"
                )
            out.append((op, inp))
        return tuple(out)

    def parse(self, text: Any) -> CellGenotype:
        """Parse the canonical string, the paper's ``[[op, input], ...]`` list (as a string
        or a list) or a ``{normal: ..., reduce: ...}`` mapping."""
        if hasattr(text, "_content"):  # OmegaConf containers from Hydra overrides
            text = OmegaConf.to_container(text)
        if isinstance(text, str) and text.strip()[:1] in ("[", "{"):  # not "" (empty string)
            try:
                text = json.loads(text)
            except json.JSONDecodeError as e:
                raise GenotypeError(f"renas_cell genotype: cannot read {text!r} as a list: {e}") from None
        if isinstance(text, dict):
            if set(text) - {"normal", "reduce"} or "normal" not in text:
                raise GenotypeError("renas_cell genotype mapping needs keys 'normal' (and 'reduce')")
            cells = [text["normal"]] + ([text["reduce"]] if text.get("reduce") is not None else [])
            cells = [self._check_cell(c, name) for c, name in zip(cells, ("normal cell", "reduction cell"))]
        elif isinstance(text, (list, tuple)):
            cells = [self._check_cell(text, "renas_cell genotype")]
        elif isinstance(text, str):
            parts = text.strip().split(";")
            if not text.strip() or len(parts) > 2 or "|" not in text:
                raise GenotypeError(
                    f"cannot parse {text!r} as a renas_cell genotype: expected "
                    f"'|op~input|op~input|+...' with {self.blocks} blocks, optionally "
                    f"';' and a reduction cell"
                )
            names = ("normal cell", "reduction cell")
            cells = [self._parse_cell(p, names[i]) for i, p in enumerate(parts)]
        else:
            raise GenotypeError(f"cannot parse {text!r} as a renas_cell genotype")
        if self.shared_reduction:
            if len(cells) == 2 and cells[0] != cells[1]:
                raise GenotypeError(
                    "this renas_cell space uses one cell for normal and reduction "
                    "(search_space.shared_reduction=true) but the genotype has two different cells"
                )
            return CellGenotype(cells[0], None)
        return CellGenotype(cells[0], cells[1] if len(cells) == 2 else cells[0])

    # --- networks ------------------------------------------------------------------------
    def build(self, genotype: CellGenotype, in_channels: int, num_classes: int) -> nn.Module:
        return RenasNetwork(
            genotype,
            in_channels=in_channels,
            num_classes=num_classes,
            cells_per_stage=self.cells_per_stage,
            channels=self.channels,
            stem=self.stem,
            stem_channels=self.stem_channels,
            auxiliary=self.auxiliary,
            drop_path=self.drop_path,
            dropout=self.dropout,
            concat_prev=self.concat_prev,
        )


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples of an op's output with probability ``prob`` (scaled to keep the mean)."""
    keep = 1.0 - prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class RenasCell(nn.Module):
    """One normal or reduction cell.

    Args:
        code: 2B ``(op, input)`` pairs.
        c_prev_prev / c_prev: channels of h[i-1] / h[i]; ``c_prev_prev=None`` when there is no
            h[i-1] yet (the first cell after a CIFAR stem), so h[i] stands in for it.
        prev_prev_double: h[i-1] has twice the resolution of h[i] (after a reduction).
    """

    def __init__(
        self,
        code: Cell,
        c_prev_prev: int | None,
        c_prev: int,
        c: int,
        reduction: bool,
        prev_prev_double: bool,
        concat_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.code = code
        self.use_cur_for_prev = c_prev_prev is None
        if c_prev_prev is None:
            self.pre0 = nn.Identity() if c_prev == c else ReLUConvBN(c_prev, c, 1)
        elif prev_prev_double:
            self.pre0 = FactorizedReduce(c_prev_prev, c)
        else:
            self.pre0 = ReLUConvBN(c_prev_prev, c, 1)
        self.pre1 = ReLUConvBN(c_prev, c, 1)
        self.ops = nn.ModuleList()
        self.identity = []
        self.op_names = [OP_NAMES[op] for op, _ in code]
        for op, inp in code:
            stride = 2 if reduction and inp < 2 else 1
            self.ops.append(RENAS_OPS[OP_NAMES[op]](c, stride))
            self.identity.append(OP_NAMES[op] == "identity" and stride == 1)
        used = {inp for _, inp in code}
        self.concat = [2 + b for b in range(len(code) // 2) if 2 + b not in used]
        if concat_prev and not reduction:
            self.concat.append(0)
        self.out_channels = c * len(self.concat)
        self.drop_path_prob = 0.0

    def forward(self, h_prev_prev: torch.Tensor | None, h_prev: torch.Tensor) -> torch.Tensor:
        s0 = self.pre0(h_prev if self.use_cur_for_prev else h_prev_prev)
        states = [s0, self.pre1(h_prev)]
        for b in range(len(self.code) // 2):
            out = 0
            for k in (2 * b, 2 * b + 1):
                y = self.ops[k](states[self.code[k][1]])
                if self.training and self.drop_path_prob > 0 and not self.identity[k]:
                    y = drop_path(y, self.drop_path_prob)
                out = out + y
            states.append(out)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """NASNet auxiliary classifier (pooled to 2x2 so that any input size works)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class RenasNetwork(nn.Module):
    """Stem, 3 stages of N normal cells with reduction cells between them, classifier.

    In training with ``auxiliary=True`` the forward pass returns ``(logits, aux_logits)``.
    """

    def __init__(
        self,
        genotype: CellGenotype,
        in_channels: int,
        num_classes: int,
        cells_per_stage: int,
        channels: int,
        stem: str = "cifar",
        stem_channels: int | None = None,
        auxiliary: bool = False,
        drop_path: float = 0.0,
        dropout: float = 0.0,
        concat_prev: bool = False,
    ) -> None:
        super().__init__()
        self.drop_path_max = drop_path
        normal, reduce = genotype.normal, genotype.reduction_cell
        cells: list[RenasCell] = []
        if stem == "cifar":
            c_stem = stem_channels or 3 * channels
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
            )
            c_pp, c_p, pp_double = None, c_stem, False
        elif stem == "imagenet":
            c_stem = stem_channels or 32
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c_stem, 3, stride=2, bias=False), nn.BatchNorm2d(c_stem)
            )
            c_pp, c_p, pp_double = None, c_stem, False
            for scale in (4, 2):  # two reduction cells at F/4 and F/2, as in NASNet mobile
                cell = RenasCell(reduce, c_pp, c_p, channels // scale, True, pp_double, concat_prev)
                cells.append(cell)
                c_pp, c_p, pp_double = c_p, cell.out_channels, True
        else:
            raise ValueError(f"unknown stem {stem!r}")
        self.aux_index = -1
        for stage in range(3):
            c = channels * 2**stage
            if stage > 0:
                cell = RenasCell(reduce, c_pp, c_p, c, True, pp_double, concat_prev)
                cells.append(cell)
                c_pp, c_p, pp_double = c_p, cell.out_channels, True
            for _ in range(cells_per_stage):
                cell = RenasCell(normal, c_pp, c_p, c, False, pp_double, concat_prev)
                cells.append(cell)
                c_pp, c_p, pp_double = c_p, cell.out_channels, False
            if stage == 1:
                self.aux_index = len(cells) - 1
                c_aux = c_p
        self.cells = nn.ModuleList(cells)
        self.aux_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.head = nn.Sequential(nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(c_p, num_classes)

    def set_drop_path(self, prob: float) -> None:
        for cell in self.cells:
            cell.drop_path_prob = prob

    def inheritance_signatures(self) -> dict[str, str]:
        """What each genotype-dependent module computes, for weight inheritance by op
        (:mod:`renas.train.inherit`): a child copies a module's weights from its parent only
        where the signatures agree.

        - ``cells.<i>.ops.<k>``: the op name at position k (an input change keeps the op, and
          its weights; an op change starts it fresh);
        - ``cells.<i>.pre0`` / ``pre1``, ``classifier``, ``aux_head``: the layout of the cell
          output they read (which blocks are concatenated in which order), since their weights
          map those channels; the stem reads the image and always matches.
        """

        def output(j: int) -> str:  # what h = output of cell j (-1: the stem) holds, channel by channel
            return "stem" if j < 0 else f"cell{j}:concat{self.cells[j].concat}"

        signatures = {"stem": "stem"}
        for i, cell in enumerate(self.cells):
            prev_prev = i - 1 if cell.use_cur_for_prev else i - 2
            signatures[f"cells.{i}.pre0"] = f"{type(cell.pre0).__name__}<-{output(prev_prev)}"
            signatures[f"cells.{i}.pre1"] = f"{type(cell.pre1).__name__}<-{output(i - 1)}"
            for k, name in enumerate(cell.op_names):
                signatures[f"cells.{i}.ops.{k}"] = name
        signatures["classifier"] = f"linear<-{output(len(self.cells) - 1)}"
        if self.aux_head is not None:
            signatures["aux_head"] = f"aux<-{output(self.aux_index)}"
        return signatures

    def forward(self, x: torch.Tensor):
        s0, s1 = None, self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_index and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
        logits = self.classifier(self.dropout(self.head(s1)))
        return (logits, aux) if aux is not None else logits
