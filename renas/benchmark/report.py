"""The benchmark's outputs: ``benchmark.md`` (tables to read) and ``regret.png``."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from renas.benchmark.stats import budget_check


def jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def fmt_z(pair: dict[str, Any]) -> str:
    """A paired z: ``inf`` (every difference equal, SE 0) is null in ``benchmark.json``; its sign
    is the mean difference's."""
    if pair.get("z") is None and pair.get("sem") == 0 and pair.get("mean_diff"):
        return "+inf" if pair["mean_diff"] > 0 else "-inf"
    return fmt(pair.get("z"), 1)


def by_budget(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    if isinstance(data["budget"], list):
        return [(int(b), data["results"][str(b)]) for b in data["budget"] if data["results"].get(str(b))]
    return [(int(data["budget"]), data["results"])]


def _p(p: Any) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def _extra_digits(data: dict[str, Any]) -> int:
    """Accuracies in [0, 1] (trained children) need two more decimals than percentages (tables)."""
    means = [r["fitness_mean"] for _, results in by_budget(data) for r in results.values()
             if r.get("fitness_mean") is not None]
    return 2 if means and max(abs(m) for m in means) <= 1.5 else 0


def markdown(data: dict[str, Any]) -> str:
    report, metric = data["report"], data["metric"]
    sign = -1 if data.get("direction") == "min" else 1
    fitness = metric if sign > 0 else f"−{metric}"  # what the search maximised
    x = _extra_digits(data)
    opt = data["report_optimum"]
    seeds = data["seeds"]
    seed_text = f"seeds {seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[0] + len(seeds))) else f"seeds {seeds}"
    lines = [
        f"# Search algorithms on {data.get('source') or Path(data['table']).name}",
        "",
        f"Search on `{metric}` (fitness{'' if sign > 0 else f' = −{metric}: lower is better'}), report `{report}` of the "
        f"best-fitness architecture each search found. "
        f"{len(seeds)} {seed_text}; budget {data['budget']} evaluations. "
        + (f"Table optimum: `{report}` {fmt(opt['value'], 2)}, `{fitness}` {fmt(data['fitness_optimum']['value'], 2)}. "
           f"Regret = {'optimum − mean' if sign > 0 else 'mean − optimum'}. Hit rate: searches that found the table's best-`{metric}` architecture."
           if opt["value"] is not None else "Children are trained: no known optimum, no regret or hit rate."),
        "",
    ]
    if data.get("optuna"):
        lines += [f"TPE ran with Optuna {data['optuna']}.", ""]
    if data.get("versions"):  # (a benchmark.json of before records none)
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items() if v) + ".", ""]
    if not data.get("finished", True):
        lines += ["**Partial results: the benchmark is still running or was interrupted.**", ""]
    if data.get("overrides"):
        lines += [f"Overrides: `{' '.join(data['overrides'])}`", ""]
    lines += [
        f"| algorithm | budget | runs | {fitness} mean ± sem | {report} mean ± std | sem | regret | hit rate | ms/eval | duplicates/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for budget, results in by_budget(data):
        for name, r in results.items():
            regret = sign * (opt["value"] - r["report_mean"]) if r["report_mean"] is not None and opt["value"] is not None else None
            lines.append(
                f"| {name} | {budget} | {r['runs']} | {fmt(r['fitness_mean'], 2 + x)} ± {fmt(r.get('fitness_sem'), 3 + x)} "
                f"| {fmt(r['report_mean'], 2 + x)} ± {fmt(r['report_std'], 2 + x)} "
                f"| {fmt(r['report_sem'], 3 + x)} | {fmt(regret, 3)} | {fmt(r['hit_rate'])} | {fmt(r['overhead_ms_per_eval'], 2)} "
                f"| {fmt(r['duplicates_mean'], 1)} |"
            )
    ref = data.get("reference")
    if ref and data.get("paired"):
        lines += [
            "",
            f"## {ref} against each algorithm, paired over the same seeds",
            "",
            f"Δ = {ref} − other (mean over seeds) ± its standard error; z = Δ / SE; W/L/T = seeds where {ref} is "
            f"better / worse / equal; p = two-sided Wilcoxon signed-rank test.",
            "",
            f"| budget | other | Δ {fitness} ± SE | z | W/L/T | p | Δ {report}{'' if sign > 0 else ' (other − ' + ref + ')'} ± SE | z | p |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for budget, _ in by_budget(data):
            pairs = data["paired"].get(str(budget), {})
            for name, pr in pairs.items():
                f, t = pr["fitness"], pr["report"]
                lines.append(
                    f"| {budget} | {name} | {fmt(f['mean_diff'], 3 + x)} ± {fmt(f['sem'], 3 + x)} | {fmt_z(f)} "
                    f"| {f['wins']}/{f['losses']}/{f['ties']} | {_p(f['wilcoxon_p'])} "
                    f"| {fmt(t['mean_diff'], 3 + x)} ± {fmt(t['sem'], 3 + x)} | {fmt_z(t)} | {_p(t['wilcoxon_p'])} |"
                )
        rows = budget_check(by_budget(data), ref)
        if rows:
            lines += ["", f"## {ref} at a budget against the best other algorithm at the next budget", "",
                      f"| {ref} budget | {ref} {fitness} mean | next budget | best other there | its mean | reached |",
                      "|---:|---:|---:|---|---:|---|"]
            for row in rows:
                lines.append(f"| {row['budget']} | {fmt(row['reference'], 3 + x)} | {row['next_budget']} | {row['best_other']} "
                             f"| {fmt(row['best_other_mean'], 3 + x)} | {'yes' if row['reached'] else 'no'} |")
    load = data.get("load_average") or {}
    lines += [
        "",
        f"Wall time {fmt(data['seconds'], 1)} s on {os.cpu_count()} CPU(s), torch threads {data.get('threads')}; "
        f"load average at start {load.get('start')}, at end {load.get('end')}. "
        "ms/eval = an algorithm's wall time / its evaluations (table look-ups are nearly free).",
        "",
    ]
    return "\n".join(lines)


def plot_regret(data: dict[str, Any], path: Path) -> None:
    """Mean regret per evaluation with a 95 % band (± 1.96 standard errors over seeds): top
    row the search signal (fitness optimum − best fitness so far), bottom row the report
    column of the architecture the search would return; one column per budget."""
    # deferred: matplotlib (~0.6 s) only when the plot is drawn
    import matplotlib

    matplotlib.use("Agg")
    # deferred: pyplot after matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = by_budget(data)
    sign = -1 if data.get("direction") == "min" else 1  # the report column is minimised: regret = value - optimum
    rows = (("fitness_curve", "fitness_curve_sem", data["fitness_optimum"]["value"], data["metric"], 1),
            ("curve", "curve_sem", data["report_optimum"]["value"], data["report"], sign))
    if rows[0][2] is None:  # trained children (accuracy in [0, 1]): no optimum; plot the error 1 - accuracy
        rows = tuple((k, sk, 1.0, f"1 − {label}", 1) for k, sk, _, label, _ in rows)
    fig, axes = plt.subplots(2, len(panels), figsize=(6.5 * len(panels), 9), squeeze=False)
    floor = 1e-3
    for col, (budget, results) in enumerate(panels):
        for row, (key, sem_key, optimum, label, sign) in enumerate(rows):
            ax = axes[row][col]
            for name, r in results.items():
                mean_ = np.array([np.nan if v is None else sign * (optimum - v) for v in r[key]], dtype=float)
                sem = np.array([np.nan if v is None else v for v in r.get(sem_key) or [None] * len(mean_)], dtype=float)
                xs = np.arange(1, len(mean_) + 1)
                ys = np.where(np.isfinite(mean_), np.maximum(mean_, floor), np.nan)
                (line,) = ax.plot(xs, ys, label=f"{name} ({fmt(sign * (optimum - r[key][-1]) if r[key] and r[key][-1] is not None else None, 3)})", lw=1.5)
                if np.isfinite(sem).any():
                    lo = np.maximum(mean_ - 1.96 * sem, floor)
                    hi = np.maximum(mean_ + 1.96 * sem, floor)
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
            ax.set_yscale("log")
            ax.set_xlabel("evaluations")
            ax.set_ylabel(f"regret of {label}")
            ax.set_title(f"budget {budget}, {len(data['seeds'])} seeds: {'search signal' if row == 0 else 'reported'}")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
    fig.suptitle(f"search on {data['metric']}, report {data['report']}; bands: 95 % (±1.96 SE)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
