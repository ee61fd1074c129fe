"""Parameter and FLOP counts from the library (torch.utils.flop_counter), not hand arithmetic;
the torch threads a run trains with."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from renas.errors import RenasError
from renas.space.base import lazy_modules

log = logging.getLogger("renas.train")


def count_params(net: nn.Module) -> int:
    """Trainable parameters (the auxiliary head, if any, included)."""
    if lazy := lazy_modules(net):
        raise RenasError(f"the network has lazy modules ({', '.join(lazy)}), whose parameters do not exist before a "
                         f"forward pass: give their sizes (nn.Linear(in_features, out_features), ...)")
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
    the count the run had (``saved``). With torch's own count on a busy machine, when training
    runs in this process on the CPU (``trains_here``), a warning says so (:func:`busy_machine`)."""
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
    or ``None``: other work keeps more of this process's CPUs busy than the ``threads`` leave
    free (with half a CPU to spare), measured over a quarter of a second
    (:func:`other_busy_cpus`). On a 2-core machine with one core busy, a proxy child took 7 s
    with 2 threads against 1.9 s with 1 (minutes, seen under heavier load)."""
    if threads <= 1:
        return None
    measured = other_busy_cpus()
    if measured is None:
        return None
    other, cpus = measured
    if other <= cpus - threads + 0.5:
        return None
    return f"the machine is busy (other work keeps {other:.1f} of its {cpus} CPUs busy) and torch trains with {threads} threads"


def other_busy_cpus(seconds: float = 0.25) -> tuple[float, int] | None:
    """How many of the CPUs this process may run on (its affinity) other work kept busy over
    ``seconds``, and how many there are: their busy time in ``/proc/stat`` less this process's
    own. ``None`` where there is no ``/proc/stat`` (not Linux)."""
    try:
        cpus = os.sched_getaffinity(0)
        tick = os.sysconf("SC_CLK_TCK")

        def sample() -> tuple[float, float, float]:
            busy = 0
            with open("/proc/stat") as f:
                for line in f:
                    name, *fields = line.split()
                    if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                        times = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                        busy += sum(times) - times[3] - times[4]
            own = os.times()
            return busy / tick, own.user + own.system, time.monotonic()

        busy0, own0, t0 = sample()
        time.sleep(seconds)
        busy1, own1, t1 = sample()
    except (OSError, AttributeError, ValueError):
        return None
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-3), len(cpus)


def trains_on_cpu(trainer: Any) -> bool:
    """Whether a ``trainer`` config trains on the CPU (where torch's threads matter): its
    ``accelerator`` is ``cpu``, or ``auto`` without CUDA or MPS."""
    accelerator = str(trainer.get("accelerator", "auto"))
    mps = getattr(torch.backends, "mps", None)
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()
                                    and not (mps is not None and mps.is_available()))
