"""Pick settings from a sweep of benchmarks: ``python -m renas.benchmark.tune <sweep folder>...``.

The tuning protocol of the README: each algorithm's settings grid runs as a Hydra multirun of
the benchmark on the *tuning* seeds (100..199), e.g.::

    python -m renas.benchmark -m 'algorithms=[rea]' seeds=100..199 'budget=[50,100,200]' \\
        ga.population_size=10,20,50 ga.sample_size=3,5,10

and this command ranks the jobs of such sweeps by the mean, over the budgets, of each
algorithm's mean best fitness (the search signal, never the report column), and prints the
winner's overrides. The chosen settings then go into the algorithm's bundle
(``conf/algorithm/<name>.yaml``) and the benchmark is run on the *reporting* seeds (0..99).

A job that failed or was interrupted (no ``benchmark.json``, or one with ``finished: false``)
is listed as such, left out of the choice, and makes the exit status 1; a job whose settings
were refused before it started (e.g. S > P) leaves no folder, so a sweep with fewer job folders
than its ``multirun.yaml`` sweeps is named in a warning (an interrupted sweep's jobs that never
started leave none either). An algorithm whose jobs ran on different seeds or budgets, or
searched different results (the table's source, the column searched, its direction or its
optimum) is refused (status 2): their objectives are not comparable; so is a search's or a training's folder. Status 2 too when nothing can be chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from renas.tracking.run_folder import run_folder_kind


def _jobs(folders: list[Path]) -> list[Path]:
    """The job folders of ``folders`` (each a benchmark's folder or a sweep's), each once; a
    search's or a training's folder among them is refused."""
    out = []
    for f in folders:
        if (f / "benchmark.json").is_file() or (f / ".hydra").is_dir():
            out.append(f)
        else:
            out += sorted((p for p in f.iterdir() if p.is_dir() and (p / ".hydra").is_dir()), key=lambda p: p.name)
    unique: dict[Path, Path] = {}
    for p in out:  # a folder given twice (or beside its own sweep): once
        unique.setdefault(p.resolve(), p)
    out = list(unique.values())
    for job in out:
        kind = run_folder_kind(job)
        if kind in ("search", "training"):
            raise TuneError(f"{job} holds a {kind}, not a benchmark: give the folders of benchmarks "
                            f"(python -m renas.benchmark) or of their sweeps (-m)")
    return out


def _sweep_size(folder: Path) -> int | None:
    """How many jobs the basic sweeper's ``multirun.yaml`` in ``folder`` launches (the product
    of its sweeps' lengths), or ``None`` (no such file, another sweeper, a sweep it cannot count)."""
    path = folder / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        cfg = OmegaConf.load(path)
        if "BasicSweeper" not in str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="")):
            return None
        size = 1
        for o in OverridesParser.create().parse_overrides([str(x) for x in cfg.hydra.overrides.task]):
            if o.is_sweep_override():
                size *= len(list(o.sweep_iterator()))
        return size
    except Exception:
        return None


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []

    return [str(o) for o in OmegaConf.load(path)]


def seed_text(seeds: list[int]) -> str:
    """``[100, ..., 199]`` as ``100..199``, ``[3, 7, 100, 101, 102]`` as ``3, 7, 100..102``."""
    parts, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            run = seeds[start:i]
            parts.append(f"{run[0]}..{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)))
            start = i
    return ", ".join(parts)


class TuneError(Exception):
    """Jobs that cannot be ranked together, or a file that cannot be read: one line, status 2."""


def _unreadable(path: Path, e: Exception) -> TuneError:
    return TuneError(f"{path} cannot be read as a benchmark's results ({type(e).__name__}: {e})")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise _unreadable(path, e) from None


def _rows(job: Path, overrides: list[str], data: Any) -> list[dict[str, Any]]:
    """A finished or unfinished job's rows, one per algorithm."""
    try:
        results = data["results"] if isinstance(data["budget"], list) else {str(data["budget"]): data["results"]}
        budgets = data["budget"] if isinstance(data["budget"], list) else [data["budget"]]
        rows = []
        for algorithm in data["algorithms"]:
            per = {b: r[algorithm]["fitness_mean"] for b, r in results.items() if algorithm in r}
            values = [v for v in per.values() if v is not None]
            rows.append({"job": str(job), "algorithm": algorithm, "overrides": overrides, "budgets": per,
                         "objective": sum(values) / len(values) if values and data.get("finished") else None,
                         "seeds": seed_text(sorted(data["seeds"])), "planned": {
                             "seeds": sorted(data["seeds"]), "budgets": sorted(budgets),
                             # the same results searched the same way: the table's source, column, direction and
                             # optimum (a table read from another path, the same rows, ranks with it)
                             "results": (data.get("source"), data.get("metric"), data.get("direction", "max"),
                                         (data.get("fitness_optimum") or {}).get("value"))},
                         "note": "" if data.get("finished") else "unfinished"})
        return rows
    except (KeyError, TypeError, AttributeError) as e:
        raise _unreadable(job / "benchmark.json", e) from None


def rank(folders: list[Path]) -> list[dict[str, Any]]:
    """One row per (job, algorithm): its overrides, per-budget mean best fitness and the objective."""
    rows = []
    for job in _jobs(folders):
        overrides = [o for o in _overrides(job) if not o.startswith(("seeds=", "budget=", "algorithms="))]
        path = job / "benchmark.json"
        if not path.is_file():
            rows.append({"job": str(job), "algorithm": "?", "overrides": overrides, "objective": None, "budgets": {},
                         "note": "no benchmark.json (the job failed or was interrupted)"})
            continue
        rows += _rows(job, overrides, _read(path))
    by_algorithm: dict[str, dict[str, Any]] = {}
    for r in rows:
        if "planned" not in r:
            continue
        first = by_algorithm.setdefault(r["algorithm"], r)
        if r["planned"] != first["planned"]:
            def what(x):
                return f"{x['job']}: seeds {x['seeds']}, budget {', '.join(map(str, x['planned']['budgets']))}"

            def searched(x):
                source, metric, way, best = x["planned"]["results"]
                return f"{x['job']}: {source}, {metric} {way}imised, optimum {best}"

            if r["planned"]["results"] == first["planned"]["results"]:
                raise TuneError(f"{r['algorithm']} ran on different seeds or budgets ({what(first)}; {what(r)}): "
                                f"rank settings that ran on the same ones")
            raise TuneError(f"{r['algorithm']} searched different results ({searched(first)}; {searched(r)}): "
                            f"rank settings that searched the same table and column")
    rows.sort(key=lambda r: (r["algorithm"], -(r["objective"] if r["objective"] is not None else -1e18)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m renas.benchmark.tune", description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path, help="benchmark sweep folders (or single benchmark folders)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args(argv)
    for f in args.folders:
        if not f.is_dir():
            print(f"error: {f} is not a folder", file=sys.stderr)
            return 2
    try:
        rows = rank(args.folders)
    except TuneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no benchmark jobs under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    missing = []
    for f in args.folders:
        size, found = _sweep_size(f), len(_jobs([f]))
        if size is not None and found < size:
            missing.append(f"{f}: {found} of the sweep's {size} jobs have a folder")
    if missing:
        print(f"warning: {'; '.join(missing)} (a job whose settings were refused leaves none, and so does one an "
              f"interrupted sweep never started)", file=sys.stderr)
    unfinished = sorted({r["job"] for r in rows if r["objective"] is None})
    if unfinished:
        print(f"warning: {len(unfinished)} job(s) did not finish and are left out of the choice: "
              f"{', '.join(unfinished)}", file=sys.stderr)
    status = 1 if unfinished else 0
    if all(r["objective"] is None for r in rows):
        print("error: no job finished: nothing to choose from", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
        return status
    budgets = sorted({b for r in rows for b in r["budgets"]}, key=int)
    print("| algorithm | overrides | " + "".join(f"b{b} | " for b in budgets) + "objective | seeds |")
    print("|---|---|" + "---:|" * len(budgets) + "---:|---|")
    for r in rows:
        cells = [f"{r['budgets'][b]:.3f}" if r["budgets"].get(b) is not None else "-" for b in budgets]
        obj = f"{r['objective']:.4f}" if r["objective"] is not None else r["note"] or "-"
        print(f"| {r['algorithm']} | `{' '.join(r['overrides']) or '(bundle)'}` | " + " | ".join(cells) + f" | {obj} | {r.get('seeds', '')} |")
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["objective"] is not None and (r["algorithm"] not in best or r["objective"] > best[r["algorithm"]]["objective"]):
            best[r["algorithm"]] = r
    print()
    for algorithm, r in best.items():
        print(f"chosen for {algorithm}: {' '.join(r['overrides']) or '(the bundle as it is)'} (objective {r['objective']:.4f})")
    return status


if __name__ == "__main__":
    sys.exit(main())
