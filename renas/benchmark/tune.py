"""Pick settings from a sweep of benchmarks: ``python -m renas.benchmark.tune <sweep folder>...``.

The tuning protocol of the README: each algorithm's settings grid runs as a Hydra multirun of
the benchmark on the *tuning* seeds (100..199), e.g.::

    python -m renas.benchmark -m 'algorithms=[rea]' seeds=100..199 'budget=[50,100,200]' \\
        ga.population_size=10,20,50 ga.sample_size=3,5,10

and this command ranks the jobs of such sweeps by the mean, over the budgets, of each
algorithm's mean best fitness (the search signal, never the report column), and prints the
winner's overrides. Jobs whose settings were refused (e.g. S > P) are listed as such. The
chosen settings then go into the algorithm's bundle (``conf/algorithm/<name>.yaml``) and the
benchmark is run on the *reporting* seeds (0..99).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def _jobs(folders: list[Path]) -> list[Path]:
    out = []
    for f in folders:
        if (f / "benchmark.json").is_file() or (f / ".hydra").is_dir():
            out.append(f)
        else:
            out += sorted((p for p in f.iterdir() if p.is_dir() and (p / ".hydra").is_dir()), key=lambda p: p.name)
    return out


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []

    return [str(o) for o in OmegaConf.load(path)]


def rank(folders: list[Path]) -> list[dict[str, Any]]:
    """One row per (job, algorithm): its overrides, per-budget mean best fitness and the objective."""
    rows = []
    for job in _jobs(folders):
        overrides = [o for o in _overrides(job) if not o.startswith(("seeds=", "budget=", "algorithms="))]
        path = job / "benchmark.json"
        if not path.is_file():
            rows.append({"job": str(job), "algorithm": "?", "overrides": overrides, "objective": None, "budgets": {},
                         "note": "no benchmark.json (settings refused or job failed)"})
            continue
        data = json.loads(path.read_text())
        results = data["results"] if isinstance(data["budget"], list) else {str(data["budget"]): data["results"]}
        for algorithm in data["algorithms"]:
            per = {b: r[algorithm]["fitness_mean"] for b, r in results.items() if algorithm in r}
            values = [v for v in per.values() if v is not None]
            rows.append({"job": str(job), "algorithm": algorithm, "overrides": overrides, "budgets": per,
                         "objective": sum(values) / len(values) if values and data.get("finished") else None,
                         "seeds": f"{data['seeds'][0]}..{data['seeds'][-1]}" if data["seeds"] else "",
                         "note": "" if data.get("finished") else "unfinished"})
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
    rows = rank(args.folders)
    if not rows:
        print(f"error: no benchmark jobs under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    budgets = sorted({b for r in rows for b in r["budgets"]}, key=int)
    print("| algorithm | overrides | " + " | ".join(f"b{b}" for b in budgets) + " | objective | seeds |")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
