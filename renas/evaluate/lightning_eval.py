"""Evaluator ``train``: proxy-train each child with Lightning, fitness = validation accuracy."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from renas.evaluate.base import Outcome, Task
from renas.tracking.files import atomic_write_bytes

log = logging.getLogger("renas.evaluate")


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


def weights_name(arch: str) -> str:
    return hashlib.sha1(arch.encode()).hexdigest()[:16] + ".pt"


def inherit(net: torch.nn.Module, parent_state: dict[str, torch.Tensor]) -> float:
    """Copy every parameter and buffer whose name and shape match the parent's.

    Returns the fraction of the child's parameters (by count) that were inherited.
    """
    own = net.state_dict()
    matched = {k: v for k, v in parent_state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(matched, strict=False)
    names = dict(net.named_parameters())
    total = sum(p.numel() for p in names.values())
    got = sum(names[k].numel() for k in matched if k in names)
    return got / total if total else 0.0


class TrainEvaluator:
    """Trains each child on the train split for the proxy budget; fitness = validation accuracy.

    Args:
        space: the search space (builds the network from the genotype string).
        dataset: the ``dataset`` config (a LightningDataModule, set up once per process).
        trainer: the ``trainer`` config (proxy budget: ``max_epochs`` etc.).
        optim: the ``optim`` config.
        weights_dir: where children's trained weights are kept for inheritance.
        inherit_weights: start each child from its parent's weights where names and shapes
            match, and fine-tune (RENAS's efficiency trick).
        report_test: also measure test accuracy into ``metrics`` (never used by the search;
            off by default so the test split stays out of the search entirely).
    """

    name = "train"

    def __init__(
        self,
        space,
        dataset: DictConfig,
        trainer: DictConfig,
        optim: DictConfig,
        weights_dir: Path | None = None,
        inherit_weights: bool = False,
        report_test: bool = False,
    ) -> None:
        self.space = space
        self.dataset_cfg = dataset
        self.trainer_cfg = trainer
        self.optim_cfg = optim
        self.weights_dir = Path(weights_dir) if weights_dir else None
        self.inherit_weights = inherit_weights
        self.report_test = report_test
        self._dm = None
        from renas.config import check_bool

        check_bool("evaluator.inherit_weights", inherit_weights)
        check_bool("evaluator.report_test", report_test)
        check_optim(optim)
        self._check_trainer()
        _ = self.datamodule  # missing data is an error before the search starts, not at its first child

    def _check_trainer(self) -> None:
        """Build one Trainer now, so that a bad trainer.* value is reported before any work."""
        from renas.build import build

        build(self.trainer_cfg, "trainer", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False)

    @property
    def datamodule(self):
        if self._dm is None:
            from renas.build import build_datamodule

            dm = build_datamodule(self.dataset_cfg)
            dm.prepare_data()
            dm.setup("fit")
            if self.report_test:
                dm.setup("test")
            self._dm = dm
        return self._dm

    def _weights_path(self, arch: str) -> Path | None:
        return self.weights_dir / weights_name(arch) if self.weights_dir else None

    def evaluate(self, task: Task) -> Outcome:
        import lightning.pytorch as pl
        from hydra.utils import instantiate

        from renas.train.final import build_module
        from renas.train.profile import count_flops, count_params

        dm = self.datamodule
        pl.seed_everything(task.seed, workers=True, verbose=False)
        genotype = self.space.parse(task.arch)
        net = self.space.build(genotype, dm.in_channels, dm.num_classes)
        metrics: dict[str, Any] = {"params": count_params(net), "flops": count_flops(net, dm.in_channels, dm.input_size)}
        if self.inherit_weights:
            metrics["inherited"] = 0.0
            parent = self._weights_path(task.parent_arch) if task.parent_arch else None
            if parent is not None and parent.is_file():
                state = torch.load(parent, map_location="cpu", weights_only=True)
                metrics["inherited"] = round(inherit(net, state), 4)
        module = build_module(net, dm.num_classes, self.optim_cfg)
        epochs = int(self.trainer_cfg.max_epochs)
        trainer = instantiate(
            self.trainer_cfg,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            check_val_every_n_epoch=epochs,
        )
        start = time.perf_counter()
        try:
            trainer.fit(module, datamodule=dm)
        except SystemExit:
            # Lightning turns Ctrl-C into "graceful shutdown" + sys.exit(1) and ignores further
            # Ctrl-C; the search must see an interrupt (state saved, resume command printed)
            import signal

            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        metrics["train_seconds"] = round(time.perf_counter() - start, 3)
        fitness = float(trainer.callback_metrics["val/acc"])
        if self.report_test:
            metrics["test_acc"] = float(trainer.test(module, datamodule=dm, verbose=False)[0]["test/acc"])
        if self.inherit_weights and self.weights_dir is not None:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buf)
            atomic_write_bytes(self._weights_path(task.arch), buf.getvalue())
        return Outcome(fitness, metrics)

    def retain(self, archs: set[str]) -> None:
        """Delete stored weights of architectures no longer needed as parents."""
        if not (self.inherit_weights and self.weights_dir and self.weights_dir.is_dir()):
            return
        keep = {weights_name(a) for a in archs}
        for f in self.weights_dir.glob("*.pt"):
            if f.name not in keep:
                f.unlink(missing_ok=True)
