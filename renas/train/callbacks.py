"""Lightning callbacks of proxy training.

:class:`RecalibrateBatchNorm` re-estimates BatchNorm running statistics right before
validation. A short proxy (a few dozen optimizer steps) leaves the running statistics far from
the features the trained weights produce (momentum 0.1 per step, and the weights keep moving),
so validation in eval mode can score a network that fits its training data at chance level. A
forward pass over some training batches in train mode, with a cumulative average instead of the
momentum, fixes that (the "BN calibration" of one-shot NAS evaluation, e.g. Guo et al. 2019,
SPOS); it costs one forward pass per batch and no gradients.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn


def batchnorm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``module`` that keep running statistics."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches, transform=None) -> int:
    """Reset the running statistics of ``model``'s BatchNorm layers and re-estimate them as the
    plain average over ``batches`` (iterable of ``(x, y)``); returns the batches used.

    ``transform`` turns a loader batch's ``x`` into the network's input (e.g. the data module's
    normalisation). The model's train / eval mode is restored afterwards.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    was_training = model.training
    model.train()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    used = 0
    try:
        for x, *_ in batches:
            x = x.to(device)
            model(transform(x) if transform is not None else x)
            used += 1
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    return used


class RecalibrateBatchNorm(pl.Callback):
    """Before each validation, re-estimate BatchNorm statistics on ``batches`` training batches.

    The batches come from the data module's training loader (shuffled, not augmented: the
    statistics should describe the data the network is validated on).
    """

    def __init__(self, batches: int) -> None:
        self.batches = int(batches)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.batches <= 0:
            return
        dm = trainer.datamodule
        loader = dm.train_dataloader() if dm is not None else trainer.train_dataloader
        transform = (lambda x: dm.transform(x, train=False)) if hasattr(dm, "transform") else None
        recalibrate_batchnorm(pl_module, _first(loader, self.batches), transform)


def _first(loader, n: int):
    for i, batch in enumerate(loader):
        if i >= n:
            return
        yield batch
