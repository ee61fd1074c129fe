"""Ranges of the optimisation and trainer settings, checked before any work (no Lightning import)."""

from __future__ import annotations

from omegaconf import DictConfig


def check_optim(optim: DictConfig) -> None:
    """Ranges of the optimisation settings (the optimizer itself is built per child)."""
    from renas.config import check_choice, check_number

    opt = optim.optimizer
    check_number("optim.optimizer.lr", opt.get("lr"), 0.0, None, low_open=True)
    if "weight_decay" in opt:
        check_number("optim.optimizer.weight_decay", opt.weight_decay, 0.0, None)
    if "momentum" in opt:
        check_number("optim.optimizer.momentum", opt.momentum, 0.0, 1.0)
    check_choice("optim.scheduler", optim.get("scheduler", "cosine"), ("cosine", "none"))
    check_number("optim.label_smoothing", optim.get("label_smoothing", 0.0), 0.0, 1.0)
    check_number("optim.aux_weight", optim.get("aux_weight", 0.4), 0.0, None)


def check_trainer(cfg_trainer: DictConfig) -> None:
    """The trainer settings renas itself relies on (Lightning checks the rest when it starts)."""
    from renas.config import check_number

    check_number("trainer.max_epochs", cfg_trainer.get("max_epochs"), 1, None, integer=True)
