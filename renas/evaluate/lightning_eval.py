"""Evaluator ``train``: proxy-train each child with Lightning, fitness = validation accuracy."""

from __future__ import annotations

import hashlib
import io
import logging
import signal
import time
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from renas.build import build, build_datamodule
from renas.errors import ConfigError
from renas.evaluate.base import METRICS_ATTRIBUTE, Outcome, Task
from renas.tracking.files import atomic_write_bytes
from renas.train.checks import check_optim, check_trainer
from renas.train.inherit import inherit, module_signatures
from renas.train.profile import count_flops, count_params

log = logging.getLogger("renas.evaluate")


def weights_name(arch: str) -> str:
    return hashlib.sha1(arch.encode()).hexdigest()[:16] + ".pt"


class TrainEvaluator:
    """Trains each child on the train split for the proxy budget; fitness = validation accuracy.

    Args:
        space: the search space (builds the network from the genotype string).
        dataset: the ``dataset`` config (a LightningDataModule, set up once per process).
        trainer: the ``trainer`` config (proxy budget: ``max_epochs`` etc.).
        optim: the ``optim`` config.
        weights_dir: where children's trained weights are kept for inheritance.
        inherit_weights: start each child from its parent's trained weights where it computes
            the same thing (same op at a position, same cell layout around it: see
            :mod:`renas.train.inherit`) and fine-tune (RENAS's efficiency trick).
        finetune_epochs: epochs an inherited child trains; ``None`` = ``trainer.max_epochs``.
            Children from scratch (the initial population, a child whose parent's weights are
            gone) always train ``trainer.max_epochs``.
        bn_recalibration: before validation, re-estimate BatchNorm statistics on this many
            training batches (0 = off); see :mod:`renas.train.callbacks`.
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
        finetune_epochs: int | None = None,
        bn_recalibration: int = 0,
        report_test: bool = False,
    ) -> None:
        if not space.can_build:
            raise ConfigError(f"evaluator=train needs networks, and the {space.name} space has none: set "
                              f"search_space.build (a function arch -> nn.Module), or search it with evaluator=table")
        self.space = space
        self.dataset_cfg = dataset
        self.trainer_cfg = trainer
        self.optim_cfg = optim
        self.weights_dir = Path(weights_dir) if weights_dir else None
        #: parent and child weights travel with the task and the outcome (the Ray executor sets
        #: this in its workers): this process never reads or writes the run folder's weights/
        self.weights_travel = False
        self.inherit_weights = bool(inherit_weights)
        self.finetune_epochs = None if finetune_epochs is None else int(finetune_epochs)
        self.bn_recalibration = int(bn_recalibration)
        self.report_test = bool(report_test)
        self._dm = None
        check_optim(optim)
        self._check_trainer()
        _ = self.datamodule  # missing data is an error before the search starts, not at its first child

    def _check_trainer(self) -> None:
        """Build one Trainer now, so that a bad trainer.* value is reported before any work."""
        check_trainer(self.trainer_cfg)
        build(self.trainer_cfg, "trainer", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False)

    @property
    def datamodule(self):
        if self._dm is None:
            dm = build_datamodule(self.dataset_cfg)
            dm.prepare_data()
            dm.setup("fit")
            if self.report_test:
                dm.setup("test")
            self._dm = dm
        return self._dm

    def _weights_path(self, arch: str) -> Path | None:
        return self.weights_dir / weights_name(arch) if self.weights_dir else None

    def _start_weights(self, task: Task, net: torch.nn.Module) -> tuple[bool, dict[str, Any]]:
        """Load the parent's weights into ``net`` where they carry over. Returns whether the
        child starts from its parent's weights, and what happened, as metrics.

        ``inherited`` is the fraction of the child's parameters that really came from the
        parent. A parent whose weights should be on disk but are not (deleted, another
        machine's disk, a run folder copied without ``weights/``), or cannot be read (a
        damaged file), is a warning and ``parent_weights_missing: true``; the child then trains
        from scratch, for ``trainer.max_epochs``.
        """
        if not self.inherit_weights:
            return False, {"inherited": 0.0}
        info: dict[str, Any] = {"inherited": 0.0, "parent_weights_missing": False}
        if not task.parent_arch:
            return False, info  # a random child (the initial population): nothing to inherit
        path = None if self.weights_travel else self._weights_path(task.parent_arch)
        if task.parent_weights is None and (path is None or not path.is_file()):
            info["parent_weights_missing"] = True
            where = ("not sent with the task: the driver has no weights for it" if self.weights_travel
                     else path if path is not None else "no weights folder")
            log.warning(
                "child %d: its parent's weights are missing (%s, parent %s); it trains from scratch for "
                "%d epochs", task.id, where, task.parent_arch, int(self.trainer_cfg.max_epochs),
            )
            return False, info

        source = io.BytesIO(task.parent_weights) if task.parent_weights is not None else path
        try:
            state = torch.load(source, map_location="cpu", weights_only=True)
            if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
                raise ValueError(f"a {type(state).__name__}, not a network's state dict")
        except Exception as e:  # (torch.load's errors for a damaged file are of many kinds)
            info["parent_weights_missing"] = True
            log.warning("child %d: its parent's weights cannot be read (%s: %s: %s, parent %s); it trains from "
                        "scratch for %d epochs", task.id, "sent with the task" if path is None else path,
                        type(e).__name__, " ".join(str(e).split())[:200], task.parent_arch,
                        int(self.trainer_cfg.max_epochs))
            return False, info
        with torch.device("meta"):  # the parent's structure only: no memory, no initialisation
            parent = self.space.build(self.space.parse(task.parent_arch), self.datamodule.in_channels,
                                      self.datamodule.num_classes)
        info["inherited"] = round(inherit(net, state, module_signatures(parent)).fraction, 4)
        return True, info

    def epochs_for(self, from_parent: bool) -> int:
        """Fine-tune epochs for a child that starts from its parent's weights, the full proxy
        (``trainer.max_epochs``) for a child from scratch."""
        if from_parent and self.finetune_epochs is not None:
            return self.finetune_epochs
        return int(self.trainer_cfg.max_epochs)

    def _trainer(self, epochs: int):
        callbacks = []
        if self.bn_recalibration:
            # deferred: renas.train.callbacks imports Lightning (~4 s); TrainEvaluator's checks fail before it
            from renas.train.callbacks import RecalibrateBatchNorm

            callbacks.append(RecalibrateBatchNorm(self.bn_recalibration))
        return instantiate(
            self.trainer_cfg,
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            check_val_every_n_epoch=epochs,
            callbacks=callbacks,
        )

    def evaluate(self, task: Task) -> Outcome:
        # deferred: Lightning (~4 s) stays off TrainEvaluator's bad-input checks
        import lightning.pytorch as pl

        dm = self.datamodule
        pl.seed_everything(task.seed, workers=True, verbose=False)
        genotype = self.space.parse(task.arch)
        net = self.space.build(genotype, dm.in_channels, dm.num_classes)
        metrics: dict[str, Any] = {"params": count_params(net), "flops": count_flops(net, dm.in_channels, dm.input_size)}
        try:
            return self._train(task, net, metrics)
        except Exception as e:  # the child failed: what it is (params, FLOPs) still goes into its record
            try:
                setattr(e, METRICS_ATTRIBUTE, metrics)
            except AttributeError:  # an exception type that takes no attributes
                pass
            raise

    def _train(self, task: Task, net: Any, metrics: dict[str, Any]) -> Outcome:
        """Train a built child from scratch or its parent's weights; its fitness and metrics."""
        # deferred: Lightning, as in evaluate
        from renas.train.module import build_module  # looked up per call: benchmarks/bench_child.py swaps it

        dm = self.datamodule
        from_parent, start_info = self._start_weights(task, net)
        epochs = self.epochs_for(from_parent)
        module = build_module(net, dm.num_classes, self.optim_cfg)
        trainer = self._trainer(epochs)
        start = time.perf_counter()
        try:
            trainer.fit(module, datamodule=dm)
        except SystemExit:
            # Lightning turns Ctrl-C into "graceful shutdown" + sys.exit(1) and ignores further
            # Ctrl-C; the search must see an interrupt (state saved, resume command printed)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        metrics["train_seconds"] = round(time.perf_counter() - start, 3)
        metrics["epochs"] = int(trainer.current_epoch)
        metrics.update(start_info)
        fitness = float(trainer.callback_metrics["val/acc"])
        if self.report_test:
            metrics["test_acc"] = float(trainer.test(module, datamodule=dm, verbose=False)[0]["test/acc"])
        weights = None
        if self.inherit_weights and (self.weights_dir is not None or self.weights_travel):
            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buf)
            if self.weights_travel:  # back to the driver, which keeps them in its run folder
                weights = buf.getvalue()
            else:
                self.weights_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(self._weights_path(task.arch), buf.getvalue())
        return Outcome(fitness, metrics, weights=weights)

    def retain(self, archs: set[str]) -> None:
        """Delete stored weights of architectures no longer needed as parents."""
        if not (self.inherit_weights and self.weights_dir and self.weights_dir.is_dir()):
            return
        keep = {weights_name(a) for a in archs}
        for f in self.weights_dir.glob("*.pt"):
            if f.name not in keep:
                f.unlink(missing_ok=True)
