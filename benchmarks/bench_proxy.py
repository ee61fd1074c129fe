"""Proxy fidelity: do cheap proxies rank architectures the way a longer training does?

The search only ever sees the proxy's fitness, so the rank correlation between a proxy and a
longer training decides whether any search here finds good networks. This script samples
``--n`` architectures of ``renas_cell`` (fixed ``--seed``), trains each under every proxy and
under a longer reference training (``--reference-epochs`` from scratch, the whole training
split, BatchNorm as trained), and prints per proxy the Spearman and Kendall rank correlation of
its validation accuracy with the reference's, and the seconds per child (the evaluator's whole
``evaluate`` call: building, FLOP count, training, validation; children per hour = 3600 / it).

Proxies (``--proxies`` picks some; all run through :class:`TrainEvaluator`, the search's code):

    e3            3 epochs from scratch: the proxy of experiment=digits_classic (the old default)
    e2, e1        2 / 1 epochs from scratch
    e1-bn, e2-bn  1 / 2 epochs, BatchNorm statistics re-estimated before validation
                  (evaluator.bn_recalibration=8)
    e2-bn-half    2 epochs + BN recalibration on half the training data (dataset.subset=0.5)
    e2-bn-small   2 epochs + BN recalibration on images of half the size (dataset.image_size)
    inherit-f1    a one-edit parent (one op changed) is trained with --parent-epochs + BN
                  recalibration, then the architecture inherits its weights by op
                  (evaluator.inherit_weights=true) and fine-tunes 1 epoch + BN recalibration;
                  seconds are the child's only (the parent was paid for when it was evaluated)

With ``--reference-seeds 2`` the reference is trained twice: the proxies are compared with the
mean of the two runs, and the correlation of one run with the other is printed as the ceiling
(the reference's own seed noise: a proxy cannot rank better than the reference repeats itself).

The network, data set and optimizer are the search's defaults (``conf/search.yaml``), changed
with ``--set key=value`` (Hydra overrides, e.g. ``--set search_space.channels=16``).

Usage::

    python benchmarks/bench_proxy.py                                # 30 architectures on digits
    python benchmarks/bench_proxy.py --n 10 --reference-epochs 8 --proxies e3 e1-bn
    python benchmarks/bench_proxy.py --dataset cifar10_subset --n 12 --set dataset.subset=0.4
    python benchmarks/bench_proxy.py --json /tmp/proxy.json          # also keep every figure
    python benchmarks/bench_proxy.py --table /tmp/proxy.json         # print the table of a saved run
    python benchmarks/bench_proxy.py --json /tmp/proxy.json --resume  # continue a stopped run

A long run can be split over processes (one core each): every architecture's sample, parent and
seeds depend only on its index, so ``--start``/``--stop`` ranges measured apart give the figures
one run would, and ``--table a.json b.json`` joins them::

    python benchmarks/bench_proxy.py --stop 15 --json a.json &
    python benchmarks/bench_proxy.py --start 15 --json b.json
    python benchmarks/bench_proxy.py --table a.json b.json

Timings depend on what else runs on the machine; the proxies of one architecture run one after
another, so a change of load hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: proxy name -> (what it is, overrides of the search config, how it is evaluated)
PROXIES: dict[str, dict[str, Any]] = {
    "e3": {"label": "3 epochs (digits_classic proxy)", "epochs": 3},
    "e2": {"label": "2 epochs", "epochs": 2},
    "e1": {"label": "1 epoch", "epochs": 1},
    "e1-bn": {"label": "1 epoch + BN recalibration", "epochs": 1, "bn": 8},
    "e2-bn": {"label": "2 epochs + BN recalibration", "epochs": 2, "bn": 8},
    "e2-bn-half": {"label": "2 epochs + BN, 50 % of the data", "epochs": 2, "bn": 8, "subset": 0.5},
    "e2-bn-small": {"label": "2 epochs + BN, half-size images", "epochs": 2, "bn": 8, "small": True},
    "inherit-f1": {"label": "inherited from a one-edit parent, 1 fine-tune epoch + BN", "epochs": 1, "bn": 8,
                   "inherit": True},
}
REFERENCE = "reference"


#: the settings that define what is measured: runs (or parts of a run) agree on these
MEASURE_KEYS = ("n", "seed", "dataset", "reference_epochs", "reference_seeds", "parent_epochs", "proxies", "threads", "set")


class Skip(Exception):
    """The benchmark cannot run here (its data is missing)."""


class Refused(Exception):
    """A saved run (``--resume``, ``--table``) does not fit this run: :func:`main` reports it
    as ``parser.error`` (one line, exit status 2)."""


def compose(overrides: list[str]):
    from renas.config import compose as renas_compose  # checked as search.py checks it

    return renas_compose("search", overrides)


def proxy_overrides(spec: dict[str, Any], args: argparse.Namespace, native_size: int) -> list[str]:
    """The search-config overrides of one proxy (or of the reference)."""
    out = [f"evaluator.bn_recalibration={spec.get('bn', 0)}"]
    if spec.get("inherit"):  # trainer.max_epochs trains the parent (from scratch), finetune_epochs the child
        out += ["evaluator.inherit_weights=true", f"evaluator.finetune_epochs={spec['epochs']}",
                f"trainer.max_epochs={args.parent_epochs}"]
    else:
        out.append(f"trainer.max_epochs={spec['epochs']}")
    if spec.get("subset"):
        out.append(f"dataset.subset={spec['subset']}")
    if spec.get("small"):
        out.append(f"dataset.image_size={max(2, native_size // 2)}")
    return out


def make_evaluator(overrides: list[str], weights_dir: Path):
    from renas.build import build_evaluator, build_space
    from renas.errors import DataError

    cfg = compose(overrides)
    space = build_space(cfg.search_space)
    try:
        return build_evaluator(cfg, space, weights_dir.parent), space
    except DataError as e:
        raise Skip(str(e)) from None


def one_edit_parent(space, values: tuple[int, ...], rng) -> tuple[int, ...]:
    """``values`` with one op gene changed to another op (the architecture is then its child)."""
    genes = space.genes
    ops = [i for i, g in enumerate(genes) if g.kind == "op"]
    i = int(rng.choice(ops))
    choices = [v for v in range(genes[i].arity) if v != values[i]]
    parent = list(values)
    parent[i] = int(rng.choice(choices))
    return tuple(parent)


def evaluate(evaluator, space, values, seed: int, task_id: int, parent: tuple[int, ...] | None = None):
    """Fitness, seconds and metrics of one child (``parent``: its weights are inherited)."""
    from renas.evaluate.base import Task

    arch = space.format(space.from_values(values))
    parent_arch = None
    if parent is not None:
        parent_arch = space.format(space.from_values(parent))
        out = evaluator.evaluate(Task(task_id, parent_arch, parent, seed + 7919))  # trains and keeps its weights
        if out.fitness is None:
            raise RuntimeError(f"parent {parent_arch} failed: {out.error}")
    start = time.perf_counter()
    out = evaluator.evaluate(Task(task_id, arch, tuple(values), seed, parent_arch))
    return float(out.fitness), time.perf_counter() - start, out.metrics


def correlations(proxy: list[float], reference: list[float]) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    return float(spearmanr(proxy, reference)[0]), float(kendalltau(proxy, reference)[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from renas.cli import quiet_lightning

    quiet_lightning()
    torch.set_num_threads(args.threads)
    base = [f"dataset={args.dataset}", "logger=none", *args.set]
    tmp = Path(tempfile.mkdtemp(prefix="bench_proxy_"))
    try:
        return measure(args, base, tmp)
    finally:  # also when a saved run is refused or the data is missing
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, base: list[str], tmp: Path) -> dict[str, Any]:
    """:func:`run`'s work, its evaluators' files under ``tmp``."""
    import numpy as np

    probe, space = make_evaluator(base, tmp / "weights")
    native = probe.datamodule.input_size
    names = [REFERENCE] + [f"{REFERENCE}-seed2"] * (args.reference_seeds > 1) + args.proxies
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng).values for _ in range(args.n)]
    parents = [one_edit_parent(space, v, rng) for v in archs]
    results: dict[str, Any] = {
        "config": run_config(args),
        "start": args.start,
        "network": {"params": [], "input_size": native},
        "archs": [space.format(space.from_values(v)) for v in archs],
        "fitness": {n: [] for n in names}, "seconds": {n: [] for n in names}, "inherited": [],
    }
    if args.resume and Path(args.json).is_file():  # checked before the proxies' evaluators load their data
        results = resumed(json.loads(Path(args.json).read_text()), results, args.json)
    specs = {REFERENCE: {"epochs": args.reference_epochs}, f"{REFERENCE}-seed2": {"epochs": args.reference_epochs}}
    specs.update({p: PROXIES[p] for p in args.proxies})
    evaluators = {}
    for name in dict.fromkeys(names):
        evaluators[name], _ = make_evaluator([*base, *proxy_overrides(specs[name], args, native)], tmp / name / "weights")
    first = results["start"] + len(results["fitness"][REFERENCE])  # the first architecture not yet measured
    stop = min(args.stop or args.n, args.n)
    # the reference trains from other seeds than the proxies: a shared initialisation or data
    # order would correlate them by luck, not by architecture
    offsets = {REFERENCE: 500_000, f"{REFERENCE}-seed2": 700_000}
    start = time.perf_counter() - results.get("wall_seconds", 0.0)
    for i in range(first, stop):
        values = archs[i]
        seed = args.seed * 100_003 + i
        for name in names:
            ev = evaluators[name]
            inherit = specs[name].get("inherit", False)
            fit, sec, metrics = evaluate(ev, space, values, seed + offsets.get(name, 0), i,
                                         parents[i] if inherit else None)
            results["fitness"][name].append(fit)
            results["seconds"][name].append(sec)
            if inherit:
                results["inherited"].append(metrics.get("inherited"))
            if name == REFERENCE:
                results["network"]["params"].append(metrics["params"])
        done = time.perf_counter() - start
        measured = i + 1 - results["start"]
        print(f"[{i + 1}/{stop}] {done:.0f} s, ~{done / measured * (stop - i - 1):.0f} s left | "
              + " ".join(f"{n} {results['fitness'][n][-1]:.3f}" for n in names), flush=True)
        results["wall_seconds"] = done
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    results["wall_seconds"] = time.perf_counter() - start
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The options a run saves as its ``config`` (what ``--resume`` and ``--table`` compare)."""
    return {k: v for k, v in vars(args).items() if k not in ("table", "resume", "stop")}


def resumed(saved: dict[str, Any], fresh: dict[str, Any], path: str) -> dict[str, Any]:
    """``saved`` (a stopped run's --json), checked to measure what this run would; else
    :class:`Refused`. Without ``fresh["archs"]`` (before the space is built) the sample is not
    compared."""
    for key in MEASURE_KEYS:
        if saved["config"].get(key) != fresh["config"].get(key):
            raise Refused(f"--resume: {path} was made with {key}={saved['config'].get(key)!r}, "
                          f"this run has {fresh['config'].get(key)!r}")
    if saved.get("start", 0) != fresh["start"] or ("archs" in fresh and saved.get("archs") != fresh["archs"]):
        raise Refused(f"--resume: {path} measured other architectures (start or sample differs)")
    saved["start"] = saved.get("start", 0)  # files from before --start measured from 0
    return saved


def joined(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Parts of one run (``--start``/``--stop`` ranges, each its own --json) as one result."""
    parts = sorted(parts, key=lambda r: r.get("start", 0))
    out = json.loads(json.dumps(parts[0]))
    for part in parts[1:]:
        bad = [k for k in MEASURE_KEYS if part["config"].get(k) != out["config"].get(k)]
        if bad:
            raise Refused(f"--table: the files measure different things ({', '.join(bad)} differ)")
        end = out.get("start", 0) + len(out["fitness"][REFERENCE])
        if part.get("start", 0) > end:
            raise Refused(f"--table: architectures {end}..{part.get('start', 0) - 1} are in no file")
        if part.get("start", 0) < end:
            raise Refused(f"--table: two files both measured architecture {part.get('start', 0)}")
        for key in ("fitness", "seconds"):
            for name, values in part[key].items():
                out[key][name].extend(values)
        out["inherited"].extend(part.get("inherited", []))
        out["network"]["params"].extend(part["network"]["params"])
        out["wall_seconds"] = out.get("wall_seconds", 0.0) + part.get("wall_seconds", 0.0)
    return out


def table(results: dict[str, Any]) -> str:
    """The per-proxy table (markdown), with the throughput relative to the e3 proxy."""
    fit, sec = results["fitness"], results["seconds"]
    seeds = [fit[k] for k in (REFERENCE, f"{REFERENCE}-seed2") if fit.get(k)]
    n = min(len(s) for s in seeds)
    ref = [sum(s[i] for s in seeds) / len(seeds) for i in range(n)]  # two seeds: their mean, less noisy
    fit = {k: v[:n] for k, v in fit.items()}
    cfg = results["config"]
    base_rate = 3600 / statistics.median(sec["e3"]) if "e3" in sec and sec["e3"] else None
    lines = [
        f"{n} architectures, reference: {cfg['reference_epochs']} epochs from scratch"
        f"{', mean of 2 seeds' if len(seeds) == 2 else ''} "
        f"(val acc {min(ref):.3f}..{max(ref):.3f}, median {statistics.median(sec[REFERENCE]):.1f} s); "
        f"data {cfg['dataset']} {results['network']['input_size']}x{results['network']['input_size']}, "
        f"params {min(results['network']['params']):,}..{max(results['network']['params']):,}, "
        f"{cfg['threads']} thread(s), overrides {cfg['set'] or 'none'}",
        "",
        "| proxy | Spearman | Kendall | val acc range | s / child | children / h | vs e3 |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name in fit:
        if name == REFERENCE:
            continue
        # the ceiling: one reference seed against the other (the reference's own seed noise)
        rho, tau = correlations(fit[name], fit[REFERENCE] if name.endswith("seed2") else ref)
        s = statistics.median(sec[name])
        label = PROXIES[name]["label"] if name in PROXIES else "reference seed 2 against seed 1 (the ceiling)"
        rate = 3600 / s
        vs = f"{rate / base_rate:.2f}x" if base_rate else "-"
        lines.append(f"| `{name}` {label} | {rho:.2f} | {tau:.2f} | {min(fit[name]):.3f}..{max(fit[name]):.3f} | "
                     f"{s:.2f} | {rate:.0f} | {vs} |")
    if results.get("inherited"):
        share = [x for x in results["inherited"] if x is not None]
        if share:
            lines.append(f"\ninherit-f1: {100 * statistics.mean(share):.1f} % of the parameters inherited on average "
                         f"({100 * min(share):.1f}..{100 * max(share):.1f} %)")
    if "wall_seconds" in results:
        lines.append(f"measuring time {results['wall_seconds'] / 60:.1f} min (all parts together)")
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="architectures sampled (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of the trainings (default 0)")
    parser.add_argument("--dataset", default="digits", help="conf/dataset name (default digits: no download)")
    parser.add_argument("--reference-epochs", type=int, default=10, help="epochs of the reference training (default 10)")
    parser.add_argument("--reference-seeds", type=int, default=1, choices=(1, 2),
                        help="2: train the reference twice and print its own seed-to-seed correlation")
    parser.add_argument("--parent-epochs", type=int, default=2, help="epochs of the inherit proxy's parent (default 2)")
    parser.add_argument("--proxies", nargs="+", default=list(PROXIES), help=f"some of: {', '.join(PROXIES)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one child per core)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override of the search config (repeatable)")
    parser.add_argument("--json", help="write every fitness and time to this file (after each architecture)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --json where it stopped")
    parser.add_argument("--start", type=int, default=0, help="first architecture (index) to measure (default 0)")
    parser.add_argument("--stop", type=int, default=None, help="measure architectures below this index (default --n)")
    parser.add_argument("--table", metavar="JSON", nargs="+",
                        help="only print the table of saved --json files (parts of one run are joined)")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The options, each checked (a bad one: ``parser.error``, one line, exit status 2)."""
    args = parser.parse_args(argv)
    for key in ("n", "reference_epochs", "parent_epochs", "threads"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')}={getattr(args, key)} must be at least 1")
    if args.resume and not args.json:
        parser.error("--resume needs --json (the file of the run to continue)")
    if not 0 <= args.start < (args.stop or args.n) <= args.n:
        parser.error(f"--start={args.start} --stop={args.stop}: need 0 <= start < stop <= --n ({args.n})")
    if args.n < 3 and not args.table:
        parser.error(f"--n={args.n}: rank correlations need at least 3 architectures")
    unknown = [p for p in args.proxies if p not in PROXIES]
    if unknown:
        parser.error(f"--proxies: unknown {', '.join(unknown)}; choose from {', '.join(PROXIES)}")
    if len(set(args.proxies)) < len(args.proxies):  # its figures would be appended twice per architecture
        parser.error(f"--proxies {' '.join(args.proxies)}: a proxy is named twice")
    if args.table:
        check_tables(parser, args.table)
        return args
    # the trainings' seeds are seed * 100003 + index (+ 700000 for the reference's second seed):
    # Lightning takes 0 .. 2**32 - 1
    top = (2**32 - 1 - 700_000 - (args.n - 1)) // 100_003
    if not 0 <= args.seed <= top:
        parser.error(f"--seed={args.seed} is out of range: must be in [0, {top}] with --n={args.n}")
    datasets = sorted(p.stem for p in (REPO / "conf" / "dataset").glob("*.yaml"))
    if args.dataset not in datasets:
        parser.error(f"--dataset={args.dataset!r} is not one of {', '.join(datasets)} (conf/dataset)")
    for item in args.set:
        if "=" not in item and not item.startswith("~"):
            parser.error(f"--set {item!r} must be KEY=VALUE (a Hydra override, e.g. search_space.channels=16)")
    check_config(parser, args)
    if args.json:
        path = Path(args.json)
        if path.is_dir() or not path.parent.is_dir():
            parser.error(f"--json {args.json}: {'is a folder' if path.is_dir() else 'its folder does not exist'}; "
                         f"it must name a file")
        if args.resume and not path.is_file():  # it would start a new run and write over nothing saved
            parser.error(f"--resume: --json {args.json} does not exist (leave out --resume to start a new run)")
        if not args.resume and path.exists():  # a new run would write over hours of measurements
            parser.error(f"--json {args.json} already exists; add --resume to continue the run in it, or give "
                         f"another file (a new run would write over it)")
        if args.resume:
            saved = read_json(parser, "--json", args.json)
            if not isinstance(saved.get("config"), dict):
                parser.error(f"--json {args.json}: not a saved run of this script (no config); cannot --resume it")
            try:  # the options now, before anything is built (the sample: once the space is)
                resumed(saved, {"config": run_config(args), "start": args.start}, args.json)
            except Refused as e:
                parser.error(str(e))
    return args


def read_json(parser: argparse.ArgumentParser, option: str, path: str) -> dict[str, Any]:
    """The JSON object in ``path``; a missing file or other content is refused (``parser.error``)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        parser.error(f"{option} {path}: cannot be read ({e.strerror or e})")
    except ValueError as e:
        parser.error(f"{option} {path}: not JSON ({e})")
    if not isinstance(data, dict):
        parser.error(f"{option} {path}: not a saved run of this script (not a JSON object)")
    return data


def check_tables(parser: argparse.ArgumentParser, paths: list[str]) -> None:
    """``--table`` files: each a saved ``--json`` of this script, with at least 3 architectures
    measured in all (rank correlations)."""
    measured = 0
    for path in paths:
        saved = read_json(parser, "--table", path)
        missing = [k for k in ("config", "fitness", "seconds", "network") if not isinstance(saved.get(k), dict)]
        if not missing and not isinstance(saved["fitness"].get(REFERENCE), list):
            missing = [f"fitness.{REFERENCE}"]
        if missing:
            parser.error(f"--table {path}: not a saved run of this script (no {', '.join(missing)})")
        measured += len(saved["fitness"][REFERENCE])
    if measured < 3:
        parser.error(f"--table {' '.join(paths)}: {measured} architecture(s) measured; "
                     f"rank correlations need at least 3")


def check_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The run's config (``--dataset``, ``--set``), composed and checked as the search checks it;
    a bad one is refused with one line before anything is built."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from renas.errors import RenasError, one_line

    try:
        cfg = compose([f"dataset={args.dataset}", "logger=none", *args.set])
    except (RenasError, HydraException, OmegaConfBaseException) as e:
        parser.error(f"--set {' '.join(args.set)}: {one_line(e)}" if args.set else f"--dataset={args.dataset}: {one_line(e)}")
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        parser.error(f"--dataset={args.dataset}: needs {missing[0]} (--set {missing[0]}=...)")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parse_args(parser, argv)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("RENAS_SHARED", str(REPO.parent / "shared"))
    if args.table:
        try:
            results = joined([json.loads(Path(f).read_text()) for f in args.table])
        except Refused as e:
            parser.error(str(e))
        print(table(results))
        return 0
    from renas.errors import RenasError

    try:
        results = run(args)
    except Refused as e:  # the saved run of --resume measured other architectures: nothing was written
        parser.error(str(e))
    except Skip as e:
        print(f"bench_proxy: skipped, the data is not here: {e}", file=sys.stderr)
        return 0
    except RenasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
