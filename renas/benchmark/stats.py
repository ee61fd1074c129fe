"""Statistics of a benchmark: per algorithm (means, standard errors, hit rate, curves) and
paired over the shared seeds (each algorithm against the reference, RENAS by default)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def mean(xs) -> float:
    a = np.asarray(xs, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def std(xs) -> float:
    a = np.asarray(xs, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.std(ddof=1)) if a.size > 1 else 0.0 if a.size == 1 else math.nan


def curve_stats(curves: list[list[float]], length: int) -> tuple[list[float], list[float]]:
    """Mean and standard error over runs, per evaluation index."""
    m = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        m[i, : min(len(c), length)] = c[:length]
    means, sems = [], []
    for j in range(length):
        col = m[:, j][np.isfinite(m[:, j])]
        means.append(float(col.mean()) if col.size else math.nan)
        sems.append(float(col.std(ddof=1) / math.sqrt(col.size)) if col.size > 1 else math.nan)
    return means, sems


def summarize_runs(runs: list, budget: int, optimum_arch: str | None, optimum_fitness: float | None,
                   seconds: float) -> dict[str, Any]:
    """One algorithm's results at one budget (``runs``: :class:`~renas.benchmark.runner.RunResult`)."""
    reports = [r.best_report for r in runs]
    fitnesses = [r.best_fitness for r in runs]
    n = len(runs)
    report_std = std(reports)
    finite = int(np.isfinite(np.asarray(reports, dtype=float)).sum())
    hits = [r.best_arch is not None and (r.best_arch == optimum_arch or r.best_fitness >= optimum_fitness) for r in runs
            ] if optimum_fitness is not None else None
    evaluations = sum(r.evaluations for r in runs)
    curve, curve_sem = curve_stats([r.curve for r in runs], budget)
    fitness_curve, fitness_curve_sem = curve_stats([r.fitness_curve for r in runs], budget)
    return {
        "runs": n,
        "report_mean": mean(reports),
        "report_std": report_std,
        "report_sem": report_std / math.sqrt(finite) if finite else math.nan,
        "report_median": float(np.median(reports)) if finite == n and n else math.nan,
        "fitness_mean": mean(fitnesses),
        "fitness_std": std(fitnesses),
        "fitness_sem": std(fitnesses) / math.sqrt(n) if n else math.nan,
        "hit_rate": float(np.mean(hits)) if n and hits is not None else math.nan,
        "curve": curve,
        "curve_sem": curve_sem,
        "fitness_curve": fitness_curve,
        "fitness_curve_sem": fitness_curve_sem,
        "seconds": seconds,
        "overhead_ms_per_eval": 1000.0 * seconds / evaluations if evaluations else math.nan,
        "evaluations": evaluations,
        "duplicates_mean": mean([r.duplicates for r in runs]),
        "duplicates_max": max((r.duplicates for r in runs), default=0),
        "failures": sum(r.failures for r in runs),
        "slowest_run_seconds": max((r.seconds for r in runs), default=math.nan),
        "seeds": [r.seed for r in runs],
        "report_values": reports,
        "fitness_values": fitnesses,
    }


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``a - b`` paired over seeds: mean difference, its standard error, z = mean / SE,
    wins / losses / ties, and the two-sided Wilcoxon signed-rank test (zero differences
    dropped, as in Wilcoxon's original test; p = 1 when every pair ties)."""
    # deferred: scipy.stats (~1 s) only for the paired test
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    d[np.abs(d) < 1e-9] = 0.0
    n = int(d.size)
    if n == 0:
        return {"n": 0, "mean_diff": math.nan, "sem": math.nan, "z": math.nan, "wins": 0, "losses": 0, "ties": 0,
                "wilcoxon_p": math.nan}
    sem = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    m = float(d.mean())
    nonzero = d[d != 0]
    p = float(wilcoxon(nonzero).pvalue) if nonzero.size else 1.0
    z = m / sem if sem and sem > 0 else (0.0 if m == 0 else math.copysign(math.inf, m))
    return {"n": n, "mean_diff": m, "sem": sem, "z": z, "wins": int((d > 0).sum()), "losses": int((d < 0).sum()),
            "ties": int((d == 0).sum()), "wilcoxon_p": p}


def paired_against(results: dict[str, dict[str, Any]], reference: str, sign: int = 1) -> dict[str, dict[str, Any]]:
    """For every algorithm but ``reference``: the reference minus it, paired by seed, on the
    best fitness (validation) and on the report value (test) of what each search returned.
    ``sign=-1``: the report column is minimised, so the difference is taken the other way
    (positive still means the reference did better); fitness is always maximised."""
    ref = results[reference]
    out = {}
    for name, r in results.items():
        if name == reference:
            continue
        if r["seeds"] != ref["seeds"]:
            raise ValueError(f"{name} and {reference} ran different seeds: no paired statistics")
        out[name] = {
            "fitness": paired(ref["fitness_values"], r["fitness_values"]),
            "report": paired([sign * v for v in ref["report_values"]], [sign * v for v in r["report_values"]]),
        }
    return out


def budget_check(by_budget: list[tuple[int, dict[str, Any]]], reference: str) -> list[dict[str, Any]]:
    """For consecutive budgets b < b': the reference's mean best fitness at b against the best
    other algorithm's at b' (does the reference need fewer evaluations for the same result?)."""
    rows = []
    for (b, res), (b2, res2) in zip(by_budget, by_budget[1:]):
        if reference not in res:
            continue
        others = {k: v["fitness_mean"] for k, v in res2.items() if k != reference and v.get("fitness_mean") is not None}
        if not others:
            continue
        best = max(others, key=others.get)
        rows.append({"budget": b, "reference": res[reference]["fitness_mean"], "next_budget": b2,
                     "best_other": best, "best_other_mean": others[best],
                     "reached": res[reference]["fitness_mean"] >= others[best]})
    return rows
