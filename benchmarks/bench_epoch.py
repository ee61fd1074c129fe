"""Seconds per training epoch of a small RENAS network, with the real training code.

What it measures: a proxy-sized ``renas_cell`` network (N=1 cell per stage, F=16, the RENASNet
genotype; ``--channels`` and ``--cells-per-stage`` change it) trained by the project's own
``ClassifierModule`` (``renas.train.module.build_module``, SGD + cosine from ``conf/optim``) and a
Lightning ``Trainer`` built from ``conf/trainer/<trainer>.yaml``, on the data modules of
``conf/dataset`` (batch sizes as configured there: 64 for digits, 128 for the CIFAR-10 subset).

An epoch's time is the training part only (first batch to the start of validation); validation
time is reported beside it. The first epoch includes warm-up (allocations, lazy init), so the
table shows it apart from the mean of the following epochs.

Usage (from the repository root, or anywhere: paths are resolved from this file)::

    python benchmarks/bench_epoch.py                      # digits and the CIFAR-10 subset, 2 threads
    python benchmarks/bench_epoch.py --threads 1 --epochs 4 --datasets digits
    python benchmarks/bench_epoch.py --channels 32 --cells-per-stage 2

The CIFAR-10 subset is read from ``$RENAS_SHARED/data/cifar10_subset`` (default: ``../shared``
beside the repository). Timings depend on the machine and on what else runs on it: on a busy
machine, more threads than free cores can be far slower than one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def compose_config(dataset: str, args: argparse.Namespace):
    from renas.config import compose

    overrides = [
        f"dataset={dataset}",
        f"trainer={args.trainer}",
        f"trainer.max_epochs={args.epochs}",
        "trainer.enable_progress_bar=false",
        "search_space=renas_cell",
        f"search_space.channels={args.channels}",
        f"search_space.cells_per_stage={args.cells_per_stage}",
        f"seed={args.seed}",
    ]
    return compose("train", overrides)  # checked as train.py checks it


def make_timer():
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        """Wall time of each epoch's training part and of its validation."""

        def __init__(self) -> None:
            self.train: list[float] = []
            self.val: list[float] = []
            self._t0 = self._v0 = 0.0
            self._in_epoch = False

        def on_train_epoch_start(self, trainer, module) -> None:
            self._t0, self._in_epoch = time.perf_counter(), True

        def on_validation_epoch_start(self, trainer, module) -> None:
            now = time.perf_counter()
            if self._in_epoch:
                self.train.append(now - self._t0)
                self._in_epoch = False
            self._v0 = now

        def on_validation_epoch_end(self, trainer, module) -> None:
            self.val.append(time.perf_counter() - self._v0)

        def on_train_epoch_end(self, trainer, module) -> None:
            if self._in_epoch:  # no validation this epoch
                self.train.append(time.perf_counter() - self._t0)
                self._in_epoch = False

    return EpochTimer()


def bench(dataset: str, args: argparse.Namespace) -> dict:
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from renas.build import build_datamodule, build_space
    from renas.train.module import build_module
    from renas.train.profile import count_flops, count_params

    cfg = compose_config(dataset, args)
    space = build_space(cfg.search_space)
    genotype = space.reference()
    dm = build_datamodule(cfg.dataset)
    dm.prepare_data()
    dm.setup("fit")
    pl.seed_everything(args.seed, verbose=False)
    net = space.build(genotype, dm.in_channels, dm.num_classes)
    module = build_module(net, dm.num_classes, cfg.optim)
    timer = make_timer()
    trainer = instantiate(
        cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[timer], default_root_dir=args.tmp
    )
    trainer.fit(module, datamodule=dm)
    later = timer.train[1:] or timer.train
    return {
        "dataset": dataset,
        "input": f"{dm.in_channels}x{dm.input_size}x{dm.input_size}",
        "train_images": len(dm.train_split),
        "batch": dm.batch_size,
        "params": count_params(net),
        "mult_adds": count_flops(net, dm.in_channels, dm.input_size) / 2,
        "first_epoch_s": timer.train[0],
        "epoch_s": statistics.mean(later),
        "val_s": statistics.mean(timer.val) if timer.val else float("nan"),
        "images_per_s": len(dm.train_split) / statistics.mean(later),
        "val_acc": float(trainer.callback_metrics.get("val/acc", float("nan"))),
    }


def conf_names(group: str) -> list[str]:
    """The options of a config group: ``conf/<group>/*.yaml``."""
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


#: the config keys these options set (a value the schema refuses is reported as its option)
OPTION_OF_KEY = {"trainer.max_epochs": "--epochs", "search_space.channels": "--channels",
                 "search_space.cells_per_stage": "--cells-per-stage", "seed": "--seed"}


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a bad option with one line (``parser.error``: exit status 2) before anything runs."""
    for option, value in (("--threads", args.threads), ("--epochs", args.epochs)):
        if value < 1:
            parser.error(f"{option}={value} must be at least 1")
    datasets, trainers = conf_names("dataset"), conf_names("trainer")
    for name in args.datasets:
        if name not in datasets:
            parser.error(f"--datasets: unknown data set {name!r}; choose from {', '.join(datasets)} (conf/dataset)")
    if len(set(args.datasets)) < len(args.datasets):
        parser.error(f"--datasets {' '.join(args.datasets)}: a data set is named twice")
    if args.trainer not in trainers:
        parser.error(f"--trainer={args.trainer!r} is not one of {', '.join(trainers)} (conf/trainer)")
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from renas.errors import RenasError, one_line

    for name in args.datasets:  # the configs bench() composes, checked as the search checks them
        try:
            cfg = compose_config(name, args)
        except (RenasError, HydraException, OmegaConfBaseException) as e:
            text = one_line(e)
            option = next((o for k, o in OPTION_OF_KEY.items() if text.startswith(f"{k}=")), f"--datasets {name}")
            parser.error(f"{option}: {text}")
        missing = OmegaConf.missing_keys(cfg.dataset)
        if missing:
            parser.error(f"--datasets {name}: needs {min(missing)}, which this script does not set")
        path = cfg.dataset.get("path")
        if path and not Path(path).is_file():
            parser.error(f"--datasets {name}: its data {path} is not there "
                         f"(set RENAS_SHARED to the folder that holds data/)")
    for name in args.datasets:  # data to download (cifar10 offline) or missing files (download=false):
        # refused before any data set is timed
        # deferred: the data modules import torch; the options above fail without it
        from renas.build import build_datamodule

        try:
            dm = build_datamodule(compose_config(name, args).dataset)
            dm.prepare_data()
            dm.setup("fit")  # reads the files: a missing or unreadable one is found here, not after timing
        except RenasError as e:
            parser.error(f"--datasets {name}: {one_line(e)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "cifar10_subset"],
                        help="conf/dataset names (default: digits cifar10_subset)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per data set; >= 2 to see a warm epoch")
    parser.add_argument("--channels", type=int, default=16, help="F, channels of the first stage (default 16)")
    parser.add_argument("--cells-per-stage", type=int, default=1, help="N, normal cells per stage (default 1)")
    parser.add_argument("--trainer", default="proxy", help="conf/trainer name (default proxy, as in a search)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("RENAS_SHARED", str(REPO.parent / "shared"))
    check_args(parser, args)

    import tempfile

    import torch

    from renas.cli import quiet_lightning

    torch.set_num_threads(args.threads)
    quiet_lightning()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        for dataset in args.datasets:
            rows.append(bench(dataset, args))

    print(
        f"\nRENASNet cell, N={args.cells_per_stage}, F={args.channels}, torch threads={args.threads}, "
        f"{args.epochs} epochs, torch {torch.__version__}, {os.cpu_count()} CPUs\n"
    )
    header = ("data set", "input", "train imgs", "batch", "params", "mult-adds", "1st epoch s",
              "epoch s", "imgs/s", "val s", "val acc")
    table = [header] + [
        (r["dataset"], r["input"], str(r["train_images"]), str(r["batch"]), f"{r['params']:,}",
         f"{r['mult_adds'] / 1e6:.1f}M", f"{r['first_epoch_s']:.2f}", f"{r['epoch_s']:.2f}",
         f"{r['images_per_s']:.0f}", f"{r['val_s']:.2f}", f"{r['val_acc']:.3f}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        print("  ".join(cell.rjust(w) if k and i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
