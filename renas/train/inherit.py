"""Weight inheritance by op: a child copies its parent's trained weights only where it computes
the same thing.

Matching parameters by name and shape alone inherits by coincidence: after ``sep_conv_3x3``
becomes ``sep_conv_5x5`` at a position, the new op's pointwise convolutions and BatchNorms
have the old op's names and shapes, so they would get weights trained for another op. Here
every module that owns weights has a *signature* (what it computes and what it reads), and a
tensor is copied only when the owning module's signature is the same in parent and child (and
the name and shape match).

Signatures come from the network when it knows them (``net.inheritance_signatures()``, e.g.
:class:`renas.space.renas_cell.RenasNetwork`: the op name of each op position, and for the
cells' input convolutions and the classifier the layout of the cell output they read). An op
keeps its weights when only its input changes, by design (the README's weight inheritance):
its kernels are the same function of the same channels, even where the change moves it, in a
reduction cell, between a stride-2 position (reading the cell's inputs) and a stride-1 one
(reading a block's output). Other
networks get a generic rule: each element of an ``nn.ModuleList`` is an op chosen by the
genotype and its ``repr`` (type, kernel sizes, strides, channels) is its signature; modules
outside any ``ModuleList`` (stem, classifier) match by name and shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def module_signatures(net: nn.Module) -> dict[str, str]:
    """Module path -> signature for the modules whose weights depend on the genotype."""
    own = getattr(net, "inheritance_signatures", None)
    if callable(own):
        return dict(own())
    signatures: dict[str, str] = {}
    for name, module in net.named_modules():
        if isinstance(module, nn.ModuleList):
            for i, child in enumerate(module):
                signatures[f"{name}.{i}" if name else str(i)] = repr(child)
    return signatures


def owner(key: str, signatures: dict[str, str]) -> str | None:
    """The innermost module path of ``signatures`` that ``key`` (a state-dict key) lives under."""
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in signatures:
            return prefix
    return None


@dataclass
class Inheritance:
    """What a child took from its parent.

    Attributes:
        keys: the state-dict keys copied (parameters and buffers).
        fraction: inherited parameters / all parameters of the child (by element count).
        parameters: number of parameter elements copied.
    """

    keys: list[str]
    fraction: float
    parameters: int


def inherit(
    net: nn.Module,
    parent_state: dict[str, torch.Tensor],
    parent_signatures: dict[str, str] | None = None,
) -> Inheritance:
    """Copy into ``net`` the parent's tensors whose owning module computes the same thing.

    A tensor is copied when its name and shape match and its owning module (see
    :func:`owner`) has the same signature in ``parent_signatures`` as in ``net``. With
    ``parent_signatures=None`` signatures are not compared (name and shape only: the old,
    coincidental rule, kept for comparisons).
    """
    own_state = net.state_dict()
    own_sigs = module_signatures(net)
    taken: dict[str, torch.Tensor] = {}
    for key, value in parent_state.items():
        mine = own_state.get(key)
        if mine is None or mine.shape != value.shape:
            continue
        if parent_signatures is not None:
            where = owner(key, own_sigs)
            if where is not None and parent_signatures.get(where) != own_sigs[where]:
                continue
        taken[key] = value
    net.load_state_dict(taken, strict=False)
    params = dict(net.named_parameters())
    total = sum(p.numel() for p in params.values())
    got = sum(params[k].numel() for k in taken if k in params)
    return Inheritance(sorted(taken), got / total if total else 0.0, got)
