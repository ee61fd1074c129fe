"""Parameter and FLOP counts from the library (torch.utils.flop_counter), not hand arithmetic;
the torch threads a run trains with."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

log = logging.getLogger("renas.train")


def count_params(net: nn.Module) -> int:
    """Trainable parameters (the auxiliary head, if any, included)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@torch.no_grad()
def count_flops(net: nn.Module, in_channels: int, size: int) -> int:
    """FLOPs of one inference forward pass on a single image (1 mult-add = 2 FLOPs).

    Counted by ``torch.utils.flop_counter`` on convolutions and matrix products; pooling,
    additions and activations are not counted (the usual convention for "mult-adds").
    The network runs in eval mode without gradients, which changes none of its weights or
    BatchNorm statistics, and gets its train / eval mode back (no copy: a copy cost half the
    time of the count for a proxy child).
    """
    was_training = net.training
    net.eval()
    try:
        x = torch.zeros(1, in_channels, size, size, device=next(net.parameters()).device)
        with FlopCounterMode(display=False) as counter:
            net(x)
    finally:
        net.train(was_training)
    return int(counter.get_total_flops())


def torch_threads(wanted: int | None, saved: int | None) -> int:
    """The torch threads this process trains with, for the record (a search's ``summary.json``
    and ``state.pt``, a training's ``result.json``): ``threads=null`` is torch's own count, which
    depends on the machine and ``OMP_NUM_THREADS`` (a joblib sweep job gets 1), and the count
    changes the floating-point sums of training; a resume without ``threads=`` (``wanted``) takes
    the count the run had (``saved``)."""
    if wanted is None and saved and int(saved) != torch.get_num_threads():
        log.info("threads=%d, as the run had when it started (give threads= to change it)", int(saved))
        torch.set_num_threads(int(saved))
    return torch.get_num_threads()
