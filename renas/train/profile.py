"""Parameter and FLOP counts from the library (torch.utils.flop_counter), not hand arithmetic;
the torch threads a run trains with."""

from __future__ import annotations

import logging
import os

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


def torch_threads(wanted: int | None, saved: int | None, trains_here: bool = True) -> int:
    """The torch threads this process trains with, for the record (a search's ``summary.json``
    and ``state.pt``, a training's ``result.json``): ``threads=null`` is torch's own count, which
    depends on the machine and ``OMP_NUM_THREADS`` (a joblib sweep job gets 1), and the count
    changes the floating-point sums of training; a resume without ``threads=`` (``wanted``) takes
    the count the run had (``saved``). With torch's own count on a busy machine, when children
    train in this process (``trains_here``), a warning says so (:func:`busy_machine`)."""
    if wanted is None and saved and int(saved) != torch.get_num_threads():
        log.info("threads=%d, as the run had when it started (give threads= to change it)", int(saved))
        torch.set_num_threads(int(saved))
    threads = torch.get_num_threads()
    if trains_here and wanted is None and not saved:
        busy = busy_machine(threads)
        if busy:
            log.warning("%s: training may be several times slower, as torch's threads wait for each "
                        "other; threads=1 avoids it (and is then part of what fixes the run)", busy)
    return threads


def busy_machine(threads: int) -> str | None:
    """Why ``threads`` torch threads (torch's own count, ``threads=null``) will likely stall here,
    or ``None``: other work keeps cores busy (the 1-minute load average is above the cores left
    over, with 0.75 for this process's own start-up). On a 2-core machine with one core busy, a
    proxy child took 7 s with 2 threads against 1.9 s with 1 (minutes, seen under heavier load)."""
    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        return None
    if threads <= 1 or load <= cores - threads + 0.75:
        return None
    return f"the machine is busy (load average {load:.1f} on {cores} cores) and torch trains with {threads} threads"
