"""Convert the official NATS-Bench / NAS-Bench-201 topology results into the CSV that
``evaluator=nasbench201`` reads.

    pip install -e '.[nats]'
    python -m renas.tools.nb201_to_csv $TORCH_HOME/NATS-tss-v1_0-3ffb9-simple -o nb201.csv
    python -m renas.tools.nb201_to_csv NATS-tss-v1_0-3ffb9-simple -o nb201_all.csv \\
        --datasets cifar10 cifar100 ImageNet16-120 --hp 12 200 --costs
    python search.py search_space=nasbench201 evaluator=nasbench201 evaluator.table=nb201_all.csv \\
        evaluator.metric=c100_valid_12ep 'evaluator.report=[c100_test_200ep]'

Sources (``--source auto`` picks by the path):

- a NATS-Bench topology archive directory (``NATS-tss-v1_0-3ffb9-simple``): the ``nats_bench``
  package, ``create(path, 'tss', fast_mode=True)``, one file read per architecture;
- a NATS-Bench topology file (``NATS-tss-v1_0-3ffb9.pickle.pbz2``): ``fast_mode=False``
  (loads everything: much memory);
- a NAS-Bench-201 file (``NAS-Bench-201-v1_0-e61699.pth``, ``NAS-Bench-201-v1_1-096897.pth``):
  the ``nas_201_api`` package (``pip install nas-bench-201``).

Columns: ``index`` (the official architecture index), ``arch_str``, ``op_codes`` (one digit
per edge: 0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3), then one
accuracy column (percent) per data set, schedule and split, named
``<ds>_<split>_<hp>ep`` with ``ds`` = ``c10`` (cifar10), ``c100`` (cifar100), ``in16``
(ImageNet16-120), then op counts (``n_conv3x3`` ...) and ``unique_str`` (the benchmark's
isomorphism-canonical string), as in ``../shared/data/nasbench201/nb201_cifar10.csv``:

- ``valid``: the search signal. CIFAR-10: trained on the 25k train split, accuracy on the 25k
  valid split (data set ``cifar10-valid``, set ``x-valid``). CIFAR-100 / ImageNet16-120:
  trained on train, accuracy on the proposed validation half of the test set (``x-valid``).
- ``test``: what you report. CIFAR-10: trained on train+valid, original test set (``cifar10``,
  ``ori-test``). CIFAR-100 / ImageNet16-120: the other half of the test set (``x-test``).
- ``--costs`` adds ``<ds>_flops_M``, ``<ds>_params_MB``, ``<ds>_latency_ms`` (``get_cost_info``).

``--hp`` is the training schedule (``12`` or ``200`` epochs). Values are averaged over the
trained seeds (``is_random=False``, as the shipped table); ``--trial 777`` takes one seed's
result instead. A value the benchmark does not have is written as ``nan`` (the evaluator then
records that architecture as failed) and counted in the summary.
"""

from __future__ import annotations

import argparse
import csv
import functools
import inspect
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from renas.errors import ConfigError, GenotypeError

#: data set name -> column prefix
DATASETS: dict[str, str] = {"cifar10": "c10", "cifar100": "c100", "ImageNet16-120": "in16"}
SPLITS = ("valid", "test")
HPS = ("12", "200")
OP_CODES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
COUNT_COLUMNS = ("n_conv3x3", "n_conv1x1", "n_avgpool", "n_skip", "n_none")
_COUNTED_OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none")
INSTALL_NATS = "pip install -e '.[nats]'"
INSTALL_NB201 = "pip install nas-bench-201"


# --- columns (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One value column: ``kind`` is ``accuracy`` (``split`` valid / test) or a cost
    (``flops``, ``params``, ``latency``)."""

    name: str
    dataset: str
    kind: str
    split: str | None = None
    hp: str | None = None

    @property
    def query_dataset(self) -> str:
        """The benchmark's data set key for this column (CIFAR-10 validation lives in ``cifar10-valid``)."""
        if self.kind == "accuracy" and self.split == "valid" and self.dataset == "cifar10":
            return "cifar10-valid"
        return self.dataset

    @property
    def info_key(self) -> str:
        """The key of ``get_more_info``'s answer that holds the value."""
        return f"{self.split}-accuracy"


def column_name(dataset: str, split: str, hp: str | int) -> str:
    """``column_name('cifar10', 'valid', 12) == 'c10_valid_12ep'``."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return f"{DATASETS[dataset]}_{split}_{int(hp)}ep"


def plan_columns(datasets: Sequence[str], hps: Sequence[str | int], splits: Sequence[str] = SPLITS, costs: bool = False) -> list[Column]:
    """Value columns in file order: per data set, per schedule, per split (then costs)."""
    if not datasets or not hps or not splits:
        raise ConfigError("choose at least one data set, one --hp and one --split")
    for option, values in (("--datasets", datasets), ("--hp", [str(h) for h in hps]), ("--splits", splits)):
        if len(set(values)) < len(values):
            raise ConfigError(f"{option} {' '.join(values)}: a value is named twice")
    cols: list[Column] = []
    for ds in datasets:
        for hp in hps:
            if str(hp) not in HPS:
                raise ConfigError(f"unknown --hp {hp!r}; the topology benchmark has {', '.join(HPS)}")
            for split in splits:
                cols.append(Column(column_name(ds, split, hp), ds, "accuracy", split, str(hp)))
        if costs:
            p = DATASETS[ds]
            cols += [Column(f"{p}_flops_M", ds, "flops"), Column(f"{p}_params_MB", ds, "params"),
                     Column(f"{p}_latency_ms", ds, "latency")]
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        raise ConfigError(f"a column is asked for twice: {names}")
    return cols


@functools.lru_cache(maxsize=1)
def _space():
    # deferred: renas.space pulls torch (~3 s); bad arguments fail before it
    from renas.space.nasbench201 import NASBench201Space

    return NASBench201Space()


def derived_columns(arch_str: str) -> dict[str, Any]:
    """``op_codes``, op counts and ``unique_str`` of a NAS-Bench-201 arch string."""
    # deferred: renas.space pulls torch (~3 s), as in _space
    from renas.space.nasbench201 import OP_NAMES, canonical_form

    genotype = _space().parse(arch_str)
    names = [OP_NAMES[o] for o in genotype.ops]
    out: dict[str, Any] = {"op_codes": "".join(str(OP_CODES.index(n)) for n in names)}
    for col, op in zip(COUNT_COLUMNS, _COUNTED_OPS):
        out[col] = names.count(op)
    out["unique_str"] = canonical_form(names)
    return out


def csv_columns(value_columns: Sequence[str]) -> list[str]:
    return ["index", "arch_str", "op_codes", *value_columns, *COUNT_COLUMNS, "unique_str"]


def build_rows(records: Iterable[tuple[int, str, dict[str, float]]], value_columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for :func:`write_csv` from ``(index, arch_str, {column: value})``, sorted by index.

    Every record must carry every value column (``nan`` for a missing value); arch strings
    must parse; an index or arch string may appear once.
    """
    rows: dict[int, dict[str, Any]] = {}
    seen: set[str] = set()
    for index, arch, values in records:
        if int(index) in rows:
            raise ConfigError(f"architecture index {index} appears twice")
        try:
            derived = derived_columns(arch)
        except GenotypeError as e:
            raise ConfigError(f"architecture {index}: {e}") from None
        if arch in seen:
            raise ConfigError(f"arch string {arch} appears twice")
        seen.add(arch)
        missing = [c for c in value_columns if c not in values]
        if missing:
            raise ConfigError(f"architecture {index} has no value for {', '.join(missing)}")
        row: dict[str, Any] = {"index": int(index), "arch_str": arch, "op_codes": derived.pop("op_codes")}
        row.update({c: float(values[c]) for c in value_columns})
        row.update(derived)
        rows[int(index)] = row
    return [rows[i] for i in sorted(rows)]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def check_output(path: str | Path) -> None:
    """``-o`` must name a file this process can write: not a folder, under a folder that is one
    (or can be made)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"-o {path}: is a folder; give the CSV file to write")
    parent = next((q for q in (path.parent, *path.parent.parents) if q.exists()), Path("."))
    if not parent.is_dir():
        raise ConfigError(f"-o {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"-o {path}: {parent} cannot be written to")


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], value_columns: Sequence[str]) -> Path:
    """Write the rows (a temporary file renamed into place: never a half-written table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    columns = csv_columns(value_columns)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([_cell(row[c]) for c in columns])
    os.replace(tmp, path)
    return path


# --- the official APIs ---------------------------------------------------------------------
def detect_source(path: str | Path) -> str:
    """``nats`` (NATS-Bench archive directory or .pickle.pbz2 file) or ``nb201`` (.pth)."""
    p = Path(path)
    if p.suffix == ".pth":
        return "nb201"
    return "nats"


def open_api(path: str | Path, source: str = "auto"):
    """The official API object for ``path`` (quiet)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"{p} not found: give a NATS-Bench topology archive directory (NATS-tss-v1_0-3ffb9-simple), "
                          f"a NATS-tss-*.pickle.pbz2 file or a NAS-Bench-201 .pth file")
    source = detect_source(p) if source == "auto" else source
    if source == "nats":
        try:
            # deferred: optional dependency (nats extra)
            from nats_bench import create
        except ImportError:
            raise ConfigError(f"reading NATS-Bench files needs the nats_bench package: {INSTALL_NATS}") from None
        return create(str(p), "tss", fast_mode=p.is_dir(), verbose=False)
    if source == "nb201":
        try:
            # deferred: optional dependency (nas_201_api, not installed by renas)
            from nas_201_api import NASBench201API
        except ImportError:
            raise ConfigError(f"reading NAS-Bench-201 .pth files needs the nas_201_api package: {INSTALL_NB201} "
                              f"(or convert the NATS-Bench files instead: {INSTALL_NATS})") from None
        return NASBench201API(str(p), verbose=False)
    raise ConfigError(f"--source {source!r} is not one of: auto, nats, nb201")


def _arch_strings(api) -> list[str]:
    archs = getattr(api, "meta_archs", None)
    if archs is None:
        archs = [api.arch(i) for i in range(len(api))]
    return [a if isinstance(a, str) else a.tostr() for a in archs]


def _more_info(api, index: int, dataset: str, hp: str, trial: bool | int) -> dict[str, Any]:
    """``get_more_info`` for either API generation (``hp=`` in NATS-Bench and nas_201_api
    >= 2.0, ``use_12epochs_result=`` before)."""
    if "use_12epochs_result" in inspect.signature(api.get_more_info).parameters:
        return api.get_more_info(index, dataset, use_12epochs_result=(hp == "12"), is_random=trial)
    return api.get_more_info(index, dataset, hp=hp, is_random=trial)


def query(api, index: int, column: Column, trial: bool | int = False) -> float:
    """One value; ``nan`` if the benchmark does not have it."""
    try:
        if column.kind == "accuracy":
            info = _more_info(api, index, column.query_dataset, column.hp or "12", trial)
            value = info.get(column.info_key)
        else:
            cost = api.get_cost_info(index, column.dataset)
            value = cost.get(column.kind)
            if column.kind == "latency" and value is not None:
                value = value * 1000.0
    except (KeyError, ValueError, IndexError):  # this benchmark file does not have it
        return math.nan
    return math.nan if value is None else float(value)


def _forget(api, index: int) -> None:
    """Drop what fast mode cached for ``index`` (keeps memory flat over 15,625 architectures)."""
    infos = getattr(api, "arch2infos_dict", None)
    if getattr(api, "fast_mode", False) and isinstance(infos, dict):
        infos.pop(index, None)


def extract(
    api,
    columns: Sequence[Column],
    trial: bool | int = False,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, str, dict[str, float]]]:
    """``(index, arch_str, {column: value})`` for every architecture of ``api``."""
    archs = _arch_strings(api)
    n = len(archs) if limit is None else min(limit, len(archs))
    for i in range(n):
        values = {c.name: query(api, i, c, trial) for c in columns}
        _forget(api, i)
        if progress:
            progress(i + 1, n)
        yield i, archs[i], values


# --- command line --------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m renas.tools.nb201_to_csv",
        description="Convert NATS-Bench (topology, 'tss') or NAS-Bench-201 results into the CSV table of "
        "evaluator=nasbench201 (columns index, arch_str, op_codes, <ds>_<split>_<hp>ep ..., unique_str).",
        epilog=f"Needs the nats_bench package ({INSTALL_NATS}) or, for .pth files, nas_201_api ({INSTALL_NB201}).",
    )
    p.add_argument("path", help="NATS-tss-v1_0-3ffb9-simple directory, NATS-tss-*.pickle.pbz2 file or NAS-Bench-201-*.pth file")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--source", choices=("auto", "nats", "nb201"), default="auto",
                   help="which API reads PATH (auto: .pth -> nb201, else nats)")
    p.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=["cifar10"],
                   help="data sets (column prefixes c10, c100, in16); default cifar10")
    p.add_argument("--hp", nargs="+", choices=HPS, default=list(HPS), help="training schedules in epochs; default 12 200")
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS),
                   help="valid (search signal) and/or test (to report); default both")
    p.add_argument("--costs", action="store_true", help="also write <ds>_flops_M, <ds>_params_MB, <ds>_latency_ms")
    p.add_argument("--trial", default="mean",
                   help="'mean' (average over trained seeds, default) or one seed's result, e.g. 777")
    p.add_argument("--limit", type=int, default=None, help="only the first N architectures (a quick try; "
                   "the evaluator needs all 15,625)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


def parse_trial(text: str) -> bool | int:
    if text == "mean":
        return False
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--trial {text!r} must be 'mean' or a seed such as 777") from None


def convert(args: argparse.Namespace, out: Callable[[str], None] = print) -> Path:
    trial = parse_trial(args.trial)
    columns = plan_columns(args.datasets, args.hp, args.splits, args.costs)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit} must be >= 1")
    check_output(args.output)  # before the conversion, which takes minutes
    api = open_api(args.path, args.source)
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not args.quiet and (done == total or done % 500 == 0):
            out(f"{done}/{total} architectures, {time.perf_counter() - start:.0f} s")

    names = [c.name for c in columns]
    rows = build_rows(extract(api, columns, trial, args.limit, progress), names)
    try:
        path = write_csv(args.output, rows, names)
    except OSError as e:  # a full disk, a folder removed meanwhile: one line, not a traceback
        raise ConfigError(f"-o {args.output}: could not write it ({e.strerror or e})") from None
    missing = {c: sum(1 for r in rows if math.isnan(r[c])) for c in names}
    out(f"wrote {len(rows)} architectures x {len(names)} value columns to {path}")
    for c, m in missing.items():
        if m == len(rows):
            out(f"  warning: {c}: every value is missing (does this benchmark file have that data set and --hp?)")
        elif m:
            out(f"  {c}: {m} values missing (written as nan)")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        convert(args)
    except ConfigError as e:
        if os.environ.get("RENAS_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
