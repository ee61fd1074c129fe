"""Weight inheritance: does a child that starts from its parent's weights reach the parent's
validation accuracy in fewer epochs than the same child trained from scratch?

A parent (the RENASNet genotype, proxy-sized: N=1, F=16) is trained on digits for
``--parent-epochs``; a child that changes one op of one block (most of the network unchanged)
is then trained for 1..``--epochs`` epochs twice: from its parent's weights (by op, as
``evaluator.inherit_weights=true`` does: the changed op starts fresh, see
``renas/train/inherit.py``) and from scratch.
Prints the validation accuracy after each number of epochs, the share of parameters
inherited, and the epochs each needed to reach the parent's accuracy.

Usage::

    python benchmarks/bench_inherit.py
    python benchmarks/bench_inherit.py --epochs 4 --threads 2 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def compose(overrides):
    from renas.config import compose as renas_compose  # checked as search.py checks it

    return renas_compose("search", overrides)


def train(cfg, net, dm, epochs: int, seed: int) -> float:
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from renas.train.module import build_module

    pl.seed_everything(seed, verbose=False)
    module = build_module(net, dm.num_classes, cfg.optim)
    trainer = instantiate(cfg.trainer, max_epochs=epochs, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=epochs)
    trainer.fit(module, datamodule=dm)
    return float(trainer.callback_metrics["val/acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="child budgets 1..epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--channels", type=int, default=16, help="F of the network (default 16)")
    parser.add_argument("--op", default="conv_3x3", help="the child's op at block 0, first position "
                        "(the parent's is sep_conv_5x5; default conv_3x3)")
    args = parser.parse_args()
    for option, value in (("--parent-epochs", args.parent_epochs), ("--epochs", args.epochs), ("--threads", args.threads)):
        if value < 1:
            parser.error(f"{option}={value} must be at least 1")
    for seed in args.seeds:  # seed and seed + 1 seed the trainings (Lightning takes 0 .. 2**32 - 1)
        if not 0 <= seed <= 2**32 - 2:
            parser.error(f"--seeds: {seed} is out of range: each seed must be in [0, {2**32 - 2}]")
    if len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds {' '.join(map(str, args.seeds))}: a seed is named twice")
    from renas.space.renas_cell import OP_NAMES

    if args.op not in OP_NAMES or args.op == "sep_conv_5x5":
        others = [op for op in OP_NAMES if op != "sep_conv_5x5"]
        why = "is the parent's op" if args.op == "sep_conv_5x5" else "is not an op of the space"
        parser.error(f"--op={args.op!r} {why}: give another than the parent's sep_conv_5x5, one of {', '.join(others)}")
    from renas.errors import ConfigError

    try:
        cfg = compose([f"search_space.channels={args.channels}"])
    except ConfigError as e:
        parser.error(f"--channels: {e}")
    import torch

    from renas.build import build_datamodule, build_space
    from renas.cli import quiet_lightning
    from renas.train.inherit import inherit, module_signatures

    quiet_lightning()
    torch.set_num_threads(args.threads)
    space = build_space(cfg.search_space)
    dm = build_datamodule(cfg.dataset)
    dm.prepare_data()
    dm.setup("fit")
    parent_g = space.reference()
    values = list(parent_g.values)
    values[0 * 2] = OP_NAMES.index(args.op)  # block 0, first op: sep_conv_5x5 -> --op (one op of one block)
    child_g = space.from_values(values)
    print(f"parent {space.format(parent_g)}\nchild  {space.format(child_g)}")
    for seed in args.seeds:
        parent = space.build(parent_g, dm.in_channels, dm.num_classes)
        parent_acc = train(cfg, parent, dm, args.parent_epochs, seed)
        state = copy.deepcopy(parent.state_dict())
        rows = []
        for epochs in range(1, args.epochs + 1):
            warm = space.build(child_g, dm.in_channels, dm.num_classes)
            share = inherit(warm, state, module_signatures(parent)).fraction
            by_name = inherit(space.build(child_g, dm.in_channels, dm.num_classes), state, None).fraction
            rows.append((epochs, train(cfg, warm, dm, epochs, seed + 1),
                         train(cfg, space.build(child_g, dm.in_channels, dm.num_classes), dm, epochs, seed + 1)))
        print(f"seed {seed}: parent val acc {parent_acc:.4f} after {args.parent_epochs} epochs; "
              f"child inherits {100 * share:.1f} % of its parameters by op "
              f"({100 * by_name:.1f} % would match by name and shape alone)")
        print("  epochs  inherited  scratch")
        for e, w, s in rows:
            print(f"  {e:6d}  {w:9.4f}  {s:7.4f}")
        need = lambda col: next((e for e, *acc in rows if acc[col] >= parent_acc), None)  # noqa: E731
        print(f"  epochs to reach the parent's accuracy: inherited {need(0)}, scratch {need(1)} "
              f"(None = not within {args.epochs})")


if __name__ == "__main__":
    main()
