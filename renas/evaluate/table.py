"""Evaluator ``table``: look architectures up in a CSV table of results, for any search space.

Each row holds one architecture and numeric result columns. The architecture is read either
from one column holding its genotype string (``key_column``, e.g. NAS-Bench-201's ``arch_str``)
or from one column per gene (``key_columns``: a list in gene order, or ``genes`` for columns
named like the genes; numbers match numerically, so ``0.0005`` is the choice ``5e-4``).
Fitness is ``metric`` (search on a validation column); ``report`` columns are copied into the
history's ``metrics`` (e.g. a test column to report, never used by the search).

The table must cover every architecture the space allows (a search may propose any of them);
rows outside the space are an error unless ``extra_rows=skip``, and rows for the same
architecture an error unless ``duplicates=mean`` or ``first``. Every such problem is one line
naming the first bad row. ``nan`` is a number: that architecture's evaluation fails (e.g. a
run that diverged), which the search's failure policy handles.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from pathlib import Path
from typing import Any

from renas.errors import ConfigError, GenotypeError
from renas.evaluate.base import Outcome, Task

def how_to_get_nb201() -> str:
    """Where a NAS-Bench-201 table comes from (the shared data, ``$RENAS_SHARED`` when it is set)."""
    shared = os.environ.get("RENAS_SHARED")
    if shared and not Path(shared).is_dir():
        return (f"RENAS_SHARED={shared} is not a folder: set it to the shared folder (the one holding data/), or "
                f"convert the official NATS-Bench / NAS-Bench-201 files with `python -m renas.tools.nb201_to_csv --help`")
    where = (f"{Path(shared) / 'data' / 'nasbench201' / 'nb201_cifar10.csv'} (RENAS_SHARED)" if shared else
             "../shared/data/nasbench201/nb201_cifar10.csv beside the project (or set RENAS_SHARED to the shared folder)")
    return (f"no table ships with renas: use {where}, or convert the official NATS-Bench / NAS-Bench-201 files "
            f"with `python -m renas.tools.nb201_to_csv --help`")
#: spaces up to this size are enumerated to name the first architecture a table lacks
ENUMERATE_LIMIT = 5_000_000
#: tables loaded in this process, by file (path, size, modification time) and reading settings:
#: a benchmark, a sweep run in one process, or a test suite reads a large table once
_LOADED: dict[tuple, dict[str, tuple[float, ...]]] = {}
_LOADED_MAX = 4


def _names(header: list[str]) -> str:
    """A table's column names, quoted (a space or stray character in a name shows)."""
    return ", ".join(map(repr, header)) or "(none)"


class Table:
    """A loaded results table: genotype string -> row of floats (see the module docstring)."""

    def __init__(self, path: str | Path, columns: list[str], space, key_column: str | None = "arch_str",
                 key_columns: Any = None, duplicates: str = "error", extra_rows: str = "error") -> None:
        self.path = Path(str(path)).expanduser()
        hint = f"; {how_to_get_nb201()}" if space.name == "nasbench201" else ""
        if not str(path) or str(path) in ("None", "???"):
            raise ConfigError(f"evaluator.table is not set: give the path of a CSV file of results{hint}")
        if self.path.is_dir():
            raise ConfigError(f"evaluator.table={self.path} is a folder; give the CSV file of results in it{hint}")
        if not self.path.is_file():
            where = "" if self.path.is_absolute() else f" (a path relative to the folder the command runs in, {Path.cwd()})"
            raise ConfigError(f"evaluator.table={self.path} not found{where}{hint}")
        self.columns = list(columns)
        if space.constrained:  # a valid hook cannot be compared with another: read the file again
            self._load(space, key_column, key_columns, duplicates, extra_rows)
            return
        stat = self.path.stat()
        key = (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns, tuple(self.columns), key_column,
               None if key_columns is None else str(key_columns) if isinstance(key_columns, str) else tuple(key_columns),
               duplicates, extra_rows, type(space).__qualname__, space.name, tuple(space.genes))
        if key in _LOADED:
            self.rows = _LOADED[key]  # shared: nothing changes a table's rows once read
            return
        self._load(space, key_column, key_columns, duplicates, extra_rows)
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = self.rows

    def _load(self, space, key_column: str | None, key_columns: Any, duplicates: str, extra_rows: str) -> None:
        sums: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        lines: dict[str, int] = {}
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
                reader = csv.DictReader(f)
                header = reader.fieldnames or []
                keys = self._key_columns(space, header, key_column, key_columns, self.path)
                for c in dict.fromkeys(keys + self.columns):
                    if header.count(c) > 1:  # csv.DictReader would keep the last such column, silently
                        raise ConfigError(f"column {c!r} appears {header.count(c)} times in the header of {self.path}; "
                                          f"give each column its own name")
                by_gene = key_columns is not None
                for c in self.columns:
                    if c not in header:
                        raise ConfigError(f"column {c!r} is not in {self.path}; columns are: {_names(header)}")
                read_key = self._reader(space, keys, by_gene)
                for n, row in enumerate(reader, start=2):
                    where = f"{self.path} line {n}"
                    if None in row or any(row[k] is None for k in keys + self.columns):
                        raise ConfigError(f"{where} has {'more' if None in row else 'fewer'} fields than the header")
                    try:
                        key = read_key(row)
                    except GenotypeError as e:
                        if extra_rows == "skip":
                            continue
                        raise ConfigError(f"{where}: {e} (evaluator.extra_rows=skip ignores rows outside the space)") from None
                    values = []
                    for c in self.columns:
                        try:
                            values.append(float(row[c]))
                        except (TypeError, ValueError):
                            raise ConfigError(f"{where}: column {c} is {row[c]!r}, not a number") from None
                    if key in counts:
                        if duplicates == "error":
                            raise ConfigError(f"{where}: {key} is also on line {lines[key]} (evaluator.duplicates=mean "
                                              f"averages repeated rows, first keeps the first)")
                        if duplicates == "first":
                            continue
                        sums[key] = [a + b for a, b in zip(sums[key], values)]
                        counts[key] += 1
                    else:
                        sums[key], counts[key], lines[key] = values, 1, n
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path} is not a text CSV file") from None
        except csv.Error as e:
            raise ConfigError(f"{self.path} is not a valid CSV file: {e}") from None
        self.rows: dict[str, tuple[float, ...]] = {k: tuple(v / counts[k] for v in s) for k, s in sums.items()}
        self._check_coverage(space)

    @staticmethod
    def _key_columns(space, header: list[str], key_column: str | None, key_columns: Any, path: Path) -> list[str]:
        if key_columns is not None:
            genes = [g.name for g in space.genes]
            if isinstance(key_columns, str) and key_columns != "genes":
                raise ConfigError(f"evaluator.key_columns={key_columns!r} must be genes (one column per gene, named "
                                  f"like the genes) or a list of column names in gene order")
            key_columns = genes if key_columns == "genes" else [str(c) for c in key_columns]
            if len(key_columns) != len(space.genes):
                raise ConfigError(f"evaluator.key_columns needs one column per gene ({len(space.genes)}: "
                                  f"{', '.join(genes)}), got {len(key_columns)}")
            if sorted(key_columns) == sorted(genes) and key_columns != genes:  # each gene read from another's column
                raise ConfigError(f"evaluator.key_columns=[{','.join(key_columns)}] names the genes in another order than "
                                  f"the space's ({', '.join(genes)}); list the columns in gene order, or key_columns=genes")
            missing = [c for c in key_columns if c not in header]
            if missing:
                raise ConfigError(f"key column {missing[0]!r} is not in {path}; columns are: {_names(header)}")
            return key_columns
        if not key_column or key_column not in header:
            raise ConfigError(f"{path} has no {key_column!r} column (evaluator.key_column) holding genotype strings; "
                              f"columns are: {_names(header)} (evaluator.key_columns=genes reads one column per gene)")
        return [key_column]

    @staticmethod
    def _reader(space, keys: list[str], by_gene: bool):
        """row -> genotype string; raises GenotypeError for a row outside the space."""
        if not by_gene:
            column = keys[0]
            return lambda row: space.format(space.parse(row[column]))
        memo: list[dict[str, int]] = [{} for _ in keys]

        def read(row: dict[str, str]) -> str:
            values = []
            for i, c in enumerate(keys):
                token = row[c]
                v = memo[i].get(token)
                if v is None:
                    v = memo[i][token] = space.choice_index(i, token)
                values.append(v)
            if not space.is_valid(values):
                raise GenotypeError(f"{space.format(space.from_values(values))} is not allowed by search_space.valid")
            return space.format(space.from_values(values))

        return read

    def _check_coverage(self, space) -> None:
        if not space.constrained and len(self.rows) >= space.size:
            return
        if space.size > ENUMERATE_LIMIT:
            if len(self.rows) < space.size and not space.constrained:
                raise ConfigError(f"{self.path} covers {len(self.rows):,} of the {space.size:,} architectures of the "
                                  f"{space.name} space; a search needs them all")
            return  # too large to list the allowed architectures: a missing one fails when proposed
        allowed = 0
        for genotype in space.genotypes():
            allowed += 1
            arch = space.format(genotype)
            if arch not in self.rows:
                raise ConfigError(f"{self.path} has no row for {arch} (it covers {len(self.rows):,} architectures; "
                                  f"the {space.name} space allows {'more' if space.constrained else f'{space.size:,}'}); "
                                  f"a search needs them all")

    def lookup(self, arch: str) -> dict[str, float]:
        return dict(zip(self.columns, self.rows[arch]))

    def digest(self) -> str:
        """SHA-256 of the rows as read (architectures and the columns used, in order): what a
        resumed search checks its table against (the file may move, be re-saved or gain columns)."""
        h = hashlib.sha256("\x1f".join(self.columns).encode())
        for arch in sorted(self.rows):  # 12 digits: a mean of repeated rows in another order differs in its last bit
            h.update(f"\n{arch}\x1f{','.join(f'{v:.12g}' for v in self.rows[arch])}".encode())
        return h.hexdigest()


class TableEvaluator:
    """Looks each architecture up in a CSV table (see the module docstring).

    Args:
        space: the search space (the table's keys are read with it).
        table: path of the CSV file.
        metric: the column used as fitness (a validation column: never a test column you report).
        report: columns copied into ``metrics``.
        key_column: the column holding genotype strings.
        key_columns: one column per gene instead (a list in gene order, or ``genes``).
        duplicates: ``error`` | ``mean`` | ``first``: rows for the same architecture.
        extra_rows: ``error`` | ``skip``: rows for architectures outside the space.
        direction: ``max`` (accuracy: higher is better) or ``min`` (error, loss, perplexity:
            fitness is then ``-metric``, and the raw ``metric`` is also recorded in ``metrics``).
    """

    #: the name in summaries (``build_evaluator`` gives it the config's ``evaluator.name``)
    name = "table"

    def __init__(self, space, table: str | None, metric: str = "c10_valid_12ep", report: list[str] | None = None,
                 key_column: str | None = "arch_str", key_columns: Any = None, duplicates: str = "error",
                 extra_rows: str = "error", direction: str = "max") -> None:
        self.space = space
        self.direction = direction
        #: fitness = sign * metric: the search always maximises fitness
        self.sign = 1 if self.direction == "max" else -1
        if not isinstance(metric, str) or not metric or metric == "???":
            raise ConfigError("evaluator.metric is not set: name the table's column to search on (a validation column)")
        self.metric = metric
        self.report = [] if report is None else [report] if isinstance(report, str) else list(report)
        self.table = Table(table or "", [metric] + [c for c in self.report if c != metric], space, key_column,
                           key_columns, duplicates, extra_rows)
        self.recorded = self.report + ([metric] if self.sign < 0 and metric not in self.report else [])
        finite = [v[0] for v in self.table.rows.values() if math.isfinite(v[0])]
        #: the fitness of the worst architecture in the table (a failure's, with failure_fitness=null)
        self.worst_fitness = min(self.sign * v for v in finite) if finite else 0.0

    def identity(self) -> dict[str, str]:
        """Which results this search reads: the table's file and a digest of its rows (kept in the
        search's state; a resume refuses a table that reads otherwise)."""
        return {"table": str(self.table.path.resolve()), "digest": self.table.digest()}

    def evaluate(self, task: Task) -> Outcome:
        row = self.table.lookup(task.arch)
        value = row[self.metric]
        if not math.isfinite(value):
            return Outcome.failed(f"table value {value} for {task.arch}")
        return Outcome(self.sign * value, {c: row[c] for c in self.recorded}, seconds=0.0)

    def optimum(self, column: str | None = None) -> tuple[str, float]:
        """The best architecture by ``column`` (default: the fitness metric): the highest value,
        or the lowest with ``direction=min``; returns it and its value in the table."""
        i = self.table.columns.index(column or self.metric)
        rows = self.table.rows
        arch = max(rows, key=lambda a: self.sign * rows[a][i] if math.isfinite(rows[a][i]) else -math.inf)
        return arch, rows[arch][i]

    def value(self, arch: str, column: str) -> float:
        return self.table.rows[arch][self.table.columns.index(column)]
