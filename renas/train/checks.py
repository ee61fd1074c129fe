"""Ranges of the settings no schema can type, checked before any work (no Lightning import): the
optimizer's keyword arguments (any ``torch.optim`` class) and the Lightning ``Trainer``'s."""

from __future__ import annotations

from omegaconf import DictConfig

from renas.build import locate_class
from renas.config import check_number
from renas.errors import ConfigError


def check_optim(optim: DictConfig) -> None:
    """The optimizer's class (``optim.optimizer._target_``: a ``torch.optim.Optimizer``) and the
    ranges of its usual arguments (the rest of ``optim`` has schema rules)."""
    opt = optim.optimizer
    target = opt.get("_target_")
    cls = locate_class(target)
    import torch  # (imported already wherever an optimizer is about to be built)

    if not (cls is not None and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(f"optim.optimizer._target_={target!r} is not an optimizer class (e.g. torch.optim.SGD, torch.optim.AdamW)")
    check_number("optim.optimizer.lr", opt.get("lr"), 0.0, None, low_open=True)
    if "weight_decay" in opt:
        check_number("optim.optimizer.weight_decay", opt.weight_decay, 0.0, None)
    if "momentum" in opt:
        check_number("optim.optimizer.momentum", opt.momentum, 0.0, 1.0)


def check_trainer(cfg_trainer: DictConfig) -> None:
    """The trainer settings renas itself relies on (Lightning checks the rest when it starts)."""
    check_number("trainer.max_epochs", cfg_trainer.get("max_epochs"), 1, None, integer=True)
