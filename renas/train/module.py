"""One LightningModule that trains any built network: proxy training of children and final
training of a found architecture use the same code."""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from renas.errors import ConfigError


def rng_state() -> dict[str, Any]:
    """torch's (CPU and CUDA), NumPy's and Python's global random states, in types that
    ``torch.load(weights_only=True)`` reads (tensors, lists, tuples, numbers)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` saved (CUDA's only on as many devices as were saved)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class ClassifierModule(pl.LightningModule):
    """Cross-entropy classification with TorchMetrics accuracy.

    Args:
        net: the network (returns logits, or ``(logits, aux_logits)`` in training).
        num_classes: number of classes.
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_`` of e.g. ``torch.optim.SGD``).
        scheduler: ``cosine`` (per step, to 0 over the whole run) or ``none``.
        label_smoothing: label smoothing of the loss.
        aux_weight: weight of the auxiliary head's loss when the network has one.
        meta: anything to keep in the checkpoint's hyperparameters (arch, space, data set).
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: str = "cosine",
        label_smoothing: float = 0.0,
        aux_weight: float = 0.4,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # kept in the checkpoint, not logged: the W&B run's config is the resolved Hydra config alone
        self.save_hyperparameters(ignore=["net", "optimizer"], logger=False)
        self.net = net
        self.optimizer_factory = optimizer or (
            lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=3e-4)
        )
        if scheduler not in ("cosine", "none"):
            raise ConfigError(f"optim.scheduler={scheduler!r} is not one of: cosine, none")
        self.scheduler = scheduler
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.aux_weight = aux_weight
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, tuple) else out

    #: training seconds of earlier sessions of a resumed training (from its checkpoint), and
    #: when this session's fit started
    seconds_before: float = 0.0
    session_start: float | None = None

    def on_fit_start(self) -> None:
        self.session_start = time.perf_counter()

    def training_seconds(self) -> float:
        """The fit's seconds over every session of a resumed training (this one's since its start)."""
        now = 0.0 if self.session_start is None else time.perf_counter() - self.session_start
        return self.seconds_before + now

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the random streams (the loader's shuffle, augmentation, drop path): a training resumed
        # from an epoch's end draws the same batches as one that was never stopped
        checkpoint["renas_rng"] = rng_state()
        checkpoint["renas_seconds"] = self.training_seconds()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "renas_rng" in checkpoint:
            set_rng_state(checkpoint["renas_rng"])
        self.seconds_before = float(checkpoint.get("renas_seconds", 0.0))

    def on_train_epoch_start(self) -> None:
        # drop path ramps up linearly over training, as in NASNet / DARTS
        if hasattr(self.net, "set_drop_path") and getattr(self.net, "drop_path_max", 0) > 0:
            epochs = max(1, self.trainer.max_epochs or 1)
            self.net.set_drop_path(self.net.drop_path_max * self.current_epoch / epochs)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        if isinstance(out, tuple):
            logits, aux = out
            loss = self.loss(logits, y) + self.aux_weight * self.loss(aux, y)
        else:
            logits, loss = out, self.loss(out, y)
        if not torch.isfinite(loss):
            raise DivergedError(f"training loss is {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}")
        self.train_acc(logits.detach(), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def _eval_step(self, batch, split: str, metric: MulticlassAccuracy) -> None:
        x, y = batch
        logits = self(x)
        metric(logits, y)
        self.log(f"{split}/loss", self.loss(logits, y), on_epoch=True, batch_size=len(y), sync_dist=True)
        self.log(f"{split}/acc", metric, on_epoch=True, batch_size=len(y))

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler == "none":
            return optimizer
        total = self.trainer.estimated_stepping_batches
        total = int(total) if total and math.isfinite(total) else 1
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def build_module(net: nn.Module, num_classes: int, cfg_optim: Any, meta: dict[str, Any] | None = None) -> ClassifierModule:
    """The :class:`ClassifierModule` for ``net`` with the ``optim`` config's optimizer and
    schedule (children's proxy training and train.py's final training alike)."""
    return ClassifierModule(
        net,
        num_classes,
        optimizer=instantiate(cfg_optim.optimizer),
        scheduler=str(cfg_optim.get("scheduler", "cosine")),  # a plain str: hyper-parameters go into the checkpoint
        label_smoothing=float(cfg_optim.get("label_smoothing", 0.0)),
        aux_weight=float(cfg_optim.get("aux_weight", 0.4)),
        meta=meta,
    )
