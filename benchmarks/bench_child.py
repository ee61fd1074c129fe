"""Per-child speed on CPU: do torch threads, channels_last or torch.compile make a proxy child
faster?

A "child" is what the search pays per evaluation: :meth:`TrainEvaluator.evaluate` on a random
``renas_cell`` architecture with the search's default settings (or ``--set`` overrides):
building the network, counting its FLOPs, training it for the proxy and validating it. Every
child is a new architecture, so anything compiled is compiled again for each child, and that
time counts.

Variants (each run on the same ``--children`` architectures, in interleaved rounds so that a
change of machine load hits them alike; the median seconds per child is reported):

    1 thread        torch.set_num_threads(1)
    2 threads       torch.set_num_threads(2)
    channels_last   1 thread, network and batches in channels_last memory format
    compile         1 thread, the network wrapped in torch.compile (inductor, default mode)
    classic         1 thread, the child of experiment=digits_classic (F = 16, 3 epochs, no BN
                    recalibration: the default before issue 13) on the same architectures

Usage::

    python benchmarks/bench_child.py                                  # default proxy child, 6 architectures
    python benchmarks/bench_child.py --variants "1 thread" "2 threads" --children 10
    python benchmarks/bench_child.py --set search_space.channels=16 --set trainer.max_epochs=3   # the classic child

Run it on an idle machine: with other work on the cores, more threads than free cores is
much slower, which says more about the load than about the setting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("1 thread", "2 threads", "channels_last", "compile", "classic")
#: the old default child (experiment=digits_classic: F = 16, 3 epochs, no BN recalibration), 1 thread
CLASSIC = ["experiment=digits_classic"]


def compose(overrides: list[str]):
    from renas.config import compose as renas_compose  # checked as search.py checks it

    return renas_compose("search", overrides)


class ChannelsLast:
    """Context: networks built by the space and the data module's batches in channels_last."""

    def __init__(self, evaluator) -> None:
        self.evaluator = evaluator

    def __enter__(self):
        import torch

        space, dm = self.evaluator.space, self.evaluator.datamodule
        self._build, self._transform = space.build, dm.transform
        space.build = lambda *a, **k: self._build(*a, **k).to(memory_format=torch.channels_last)
        dm.transform = lambda x, train: self._transform(x, train).contiguous(memory_format=torch.channels_last)
        return self

    def __exit__(self, *exc) -> None:
        del self.evaluator.space.build, self.evaluator.datamodule.transform


class Compiled:
    """Context: every child's network is trained through ``torch.compile``."""

    def __init__(self, evaluator) -> None:
        self.evaluator = evaluator

    def __enter__(self):
        import renas.train.module as train_module

        self._build_module = train_module.build_module

        def build_module(net, *args, **kwargs):
            import torch

            module = self._build_module(net, *args, **kwargs)
            module.net = torch.compile(net)
            return module

        train_module.build_module = build_module
        return self

    def __exit__(self, *exc) -> None:
        import renas.train.module as train_module

        train_module.build_module = self._build_module


class TimeLimit(Exception):
    """A child ran past ``--limit`` seconds."""


def _timed_out(error: BaseException) -> bool:
    """Whether ``error`` is, or wraps, a :class:`TimeLimit` (inductor wraps what interrupts it)."""
    while error is not None:
        if isinstance(error, TimeLimit):
            return True
        error = error.__cause__ or error.__context__
    return False


def child_seconds(evaluator, space, values, seed: int, limit: int = 0) -> tuple[float, float]:
    """Seconds and fitness of one child; :class:`TimeLimit` after ``limit`` seconds (0: none)."""
    import signal

    from renas.evaluate.base import Task

    def stop(signum, frame):
        raise TimeLimit()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(limit)
    start = time.perf_counter()
    try:
        out = evaluator.evaluate(Task(seed, space.format(space.from_values(values)), values, seed))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return time.perf_counter() - start, float(out.fitness)


def checked_configs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The configs the run composes (with the ``--set`` overrides), a bad override refused with
    one line (``parser.error``) before anything runs: ``{"search": ..., "classic": ...}``."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from renas.errors import RenasError, one_line

    overrides = {"search": ["logger=none", *args.set]}
    if "classic" in args.variants:
        overrides["classic"] = ["logger=none", *args.set, *CLASSIC]
    configs = {}
    for name, over in overrides.items():
        try:
            configs[name] = compose(over)
        except (RenasError, HydraException, OmegaConfBaseException) as e:
            parser.error(f"--set {' '.join(args.set)}: {one_line(e)}" if args.set else one_line(e))
        missing = sorted(OmegaConf.missing_keys(configs[name]))
        if missing:
            parser.error(f"--set: the config needs {missing[0]} (--set {missing[0]}=...)")
    return configs


def built_evaluators(parser: argparse.ArgumentParser, args: argparse.Namespace, configs: dict, tmp: Path) -> tuple:
    """The space, the evaluator and the classic variant's (or ``None``), built before any child
    is timed. Building an evaluator reads its data set (as the search does before its first
    child), so data that is not there (``--set dataset=cifar10_subset`` without
    ``$RENAS_SHARED/data``), or anything else the evaluator refuses, is one line
    (``parser.error``) instead of a traceback."""
    from renas.build import build_evaluator, build_space
    from renas.errors import RenasError, one_line

    try:
        cfg = configs["search"]
        space = build_space(cfg.search_space)
        evaluator = build_evaluator(cfg, space, tmp)
        classic = None
        if "classic" in configs:  # its own network size: the same genotypes, built by its own space
            classic_cfg = configs["classic"]
            classic = build_evaluator(classic_cfg, build_space(classic_cfg.search_space), tmp)
    except RenasError as e:
        parser.error(f"--set {' '.join(args.set)}: {one_line(e)}" if args.set else one_line(e))
    return space, evaluator, classic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=6, help="architectures (default 6)")
    parser.add_argument("--rounds", type=int, default=2, help="times each variant trains each architecture (default 2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Hydra override (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=300,
                        help="seconds after which a variant's child is abandoned and the variant dropped "
                             "(default 300; 0: no limit)")
    args = parser.parse_args(argv)
    for option, value in (("--children", args.children), ("--rounds", args.rounds)):
        if value < 1:
            parser.error(f"{option}={value} must be at least 1")
    if args.seed < 0:
        parser.error(f"--seed={args.seed} must be at least 0")
    if args.limit < 0:
        parser.error(f"--limit={args.limit} must be at least 0 (seconds; 0: no limit)")
    if len(set(args.variants)) < len(args.variants):
        parser.error(f"--variants {' '.join(map(repr, args.variants))}: a variant is named twice")
    for item in args.set:
        if "=" not in item and not item.startswith("~"):
            parser.error(f"--set {item!r} must be KEY=VALUE (a Hydra override, e.g. search_space.channels=16)")
    sys.path.insert(0, str(REPO))
    configs = checked_configs(parser, args)
    import contextlib

    import numpy as np
    import torch

    from renas.cli import quiet_lightning

    quiet_lightning()
    with tempfile.TemporaryDirectory() as tmp:
        space, evaluator, classic = built_evaluators(parser, args, configs, Path(tmp))
        rng = np.random.default_rng(args.seed)
        archs = [space.sample(rng).values for _ in range(args.children)]
        setups = {
            "1 thread": (1, contextlib.nullcontext),
            "2 threads": (2, contextlib.nullcontext),
            "channels_last": (1, lambda: ChannelsLast(evaluator)),
            "compile": (1, lambda: Compiled(evaluator)),
            "classic": (1, contextlib.nullcontext),
        }
        times: dict[str, list[float]] = {v: [] for v in args.variants}
        accs: dict[str, list[float]] = {v: [] for v in args.variants}
        dropped: dict[str, str] = {}
        child_seconds(evaluator, space, archs[0], 0)  # warm-up: lazy imports, allocator
        for r in range(args.rounds):
            for i, values in enumerate(archs):
                for variant in args.variants:
                    if variant in dropped:
                        continue
                    threads, context = setups[variant]
                    torch.set_num_threads(threads)
                    try:
                        with context():
                            sec, acc = child_seconds(classic if variant == "classic" else evaluator, space, values,
                                                     1000 * r + i, args.limit)
                    except Exception as e:
                        if not _timed_out(e):
                            raise
                        dropped[variant] = f"one child took over {args.limit} s"
                        print(f"round {r + 1}, child {i + 1}: {variant} over {args.limit} s: dropped", flush=True)
                        continue
                    times[variant].append(sec)
                    accs[variant].append(acc)
                    print(f"round {r + 1}, child {i + 1}: {variant} {sec:.2f} s (val acc {acc:.3f})", flush=True)
    base = statistics.median(times[args.variants[0]]) if times[args.variants[0]] else float("nan")
    load = os.getloadavg()
    print(f"\nproxy child: {' '.join(args.set) or 'search defaults'}; {args.children} architectures x "
          f"{args.rounds} rounds; torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end\n")
    print("| variant | median s / child | speed-up vs " + args.variants[0] + " | mean val acc |")
    print("|---|---:|---:|---:|")
    for v in args.variants:
        if v in dropped:
            print(f"| {v} | > {args.limit} ({dropped[v]}) | < {base / args.limit:.3f}x | - |")
            continue
        med = statistics.median(times[v])
        print(f"| {v} | {med:.2f} | {base / med:.2f}x | {statistics.mean(accs[v]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
