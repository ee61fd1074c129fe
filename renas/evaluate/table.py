"""Evaluator ``nasbench201``: look architectures up in a table of published results.

The table is a CSV with an ``arch_str`` column (the NAS-Bench-201 arch string) and numeric
metric columns. Fitness is ``metric`` (search on a validation column); ``report`` columns are
copied into the history's ``metrics`` (e.g. the 200-epoch test accuracy to report). Column
names are configuration, so any such table works: other data sets, other columns.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from renas.errors import ConfigError, GenotypeError
from renas.evaluate.base import Outcome, Task

HOW_TO_GET = (
    "no table ships with renas: use ../shared/data/nasbench201/nb201_cifar10.csv beside the project, "
    "or convert the official NATS-Bench / NAS-Bench-201 files with "
    "`python -m renas.tools.nb201_to_csv --help`"
)


class Table:
    """A loaded results table: arch string -> row of floats."""

    def __init__(self, path: str | Path, columns: list[str], space) -> None:
        self.path = Path(str(path)).expanduser()
        if not str(path) or str(path) in ("None", "???"):
            raise ConfigError(f"evaluator.table is not set; {HOW_TO_GET}")
        if not self.path.is_file():
            raise ConfigError(f"evaluator.table={self.path} not found; {HOW_TO_GET}")
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                header = reader.fieldnames or []
                if "arch_str" not in header:
                    raise ConfigError(f"{self.path} has no 'arch_str' column; columns are: {', '.join(header) or '(none)'}")
                for c in columns:
                    if c not in header:
                        raise ConfigError(f"column {c!r} is not in {self.path}; columns are: {', '.join(header)}")
                self.rows: dict[str, tuple[float, ...]] = {}
                for n, row in enumerate(reader, start=2):
                    try:
                        key = space.format(space.parse(row["arch_str"]))
                    except GenotypeError as e:
                        raise ConfigError(f"{self.path} line {n}: {e}") from None
                    try:
                        self.rows[key] = tuple(float(row[c]) for c in columns)
                    except (TypeError, ValueError):
                        raise ConfigError(f"{self.path} line {n}: a value of {', '.join(columns)} is not a number") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path} is not a text CSV file") from None
        except csv.Error as e:
            raise ConfigError(f"{self.path} is not a valid CSV file: {e}") from None
        self.columns = list(columns)
        if len(self.rows) < space.size:
            raise ConfigError(
                f"{self.path} covers {len(self.rows)} of the {space.size} architectures of the "
                f"{space.name} space; a search needs them all"
            )

    def lookup(self, arch: str) -> dict[str, float]:
        return dict(zip(self.columns, self.rows[arch]))


class TableEvaluator:
    """Looks each architecture up in a CSV table (see module docstring).

    Args:
        space: the search space (the table's ``arch_str`` values are parsed with it).
        table: path of the CSV file.
        metric: the column used as fitness (a validation column: never a test column you report).
        report: columns copied into ``metrics``.
    """

    name = "nasbench201"

    def __init__(self, space, table: str | None, metric: str = "c10_valid_12ep", report: list[str] | None = None) -> None:
        self.space = space
        self.metric = metric
        self.report = list(report or [])
        if metric in self.report:
            pass  # reporting the search column itself is harmless
        self.table = Table(table or "", [metric] + [c for c in self.report if c != metric], space)

    def evaluate(self, task: Task) -> Outcome:
        row = self.table.lookup(task.arch)
        fitness = row[self.metric]
        if not math.isfinite(fitness):
            return Outcome.failed(f"table value {fitness} for {task.arch}")
        return Outcome(fitness, {c: row[c] for c in self.report}, seconds=0.0)

    def optimum(self, column: str | None = None) -> tuple[str, float]:
        """The architecture with the highest ``column`` (default: the fitness metric)."""
        i = self.table.columns.index(column or self.metric)
        arch = max(self.table.rows, key=lambda a: self.table.rows[a][i])
        return arch, self.table.rows[arch][i]

    def value(self, arch: str, column: str) -> float:
        return self.table.rows[arch][self.table.columns.index(column)]
