"""Parameter and FLOP counts from the library (torch.utils.flop_counter), not hand arithmetic."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


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
