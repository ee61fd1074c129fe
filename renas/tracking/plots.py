"""PNG plots of a search: fitness per generation, controller reward per generation, and every
child (fitness and reward per evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from renas.tracking.history import read_history  # noqa: E402


def plot_generations(generations: list[dict[str, Any]], out_dir: Path, title: str = "",
                     reward: str = "child - parent fitness") -> list[Path]:
    """Write ``fitness.png`` (max / mean / min of the population and best so far per
    generation) and ``controller_reward.png`` (mean controller reward per generation; a note
    when the algorithm has no controller). Returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gens = [g["generation"] for g in generations]
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, style in (("fitness/max", "-"), ("fitness/mean", "--"), ("fitness/min", ":"), ("fitness/best_so_far", "-")):
        xs = [g for g, row in zip(gens, generations) if row.get(key) is not None]
        ys = [row[key] for row in generations if row.get(key) is not None]
        if ys:
            ax.plot(xs, ys, style, marker="o", ms=3, label=key.split("/")[1],
                    lw=2.5 if key.endswith("best_so_far") else 1.2)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title or "fitness per generation")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # an empty search has nothing to label
        ax.legend()
    fig.tight_layout()
    paths.append(out_dir / "fitness.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [g for g, row in zip(gens, generations) if row.get("controller/reward_mean") is not None]
    ys = [row["controller/reward_mean"] for row in generations if row.get("controller/reward_mean") is not None]
    if ys:
        ax.plot(xs, ys, marker="o", ms=3, label="reward mean")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.legend()
    else:
        ax.text(0.5, 0.5, "this algorithm has no controller", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("generation")
    ax.set_ylabel(f"controller reward ({reward})")
    ax.set_title(title or "controller reward per generation")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(out_dir / "controller_reward.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def _origin_group(record: dict[str, Any]) -> str:
    """How a child was made, for the plot legend: ``random`` (no parent: the initial population
    and random proposals), ``controller`` (an edit chosen by RENAS's controller) or the strategy's
    own word (``mutation``, ``crossover+mutation``, ...)."""
    origin = str(record.get("origin") or ("random" if record.get("parent") is None else "mutation"))
    if "controller" in origin:
        return "controller"
    return origin


_STYLE = {"random": ("o", "tab:grey"), "controller": ("^", "tab:red"), "mutation": ("s", "tab:blue")}
_MORE_COLOURS = ("tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def _running_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_children(history: list[dict[str, Any]] | str | Path, out_dir: Path, title: str = "",
                  reward: str = "child - parent fitness") -> Path:
    """Write ``children.png``: every child's fitness against its evaluation number, marked by
    how it was made (random / controller / mutation / ...), with the best-so-far line; below it,
    every controller reward (child - parent fitness) with its running mean.

    Unlike the per-generation plots this says something even for a short run: a 40-child run
    is 40 points, and the controller's children can be told from the random ones.

    Args:
        history: the records of ``history.jsonl`` (or the file's path).
        out_dir: where to write it (created).
        title: the figure's title.
        reward: what a reward is, for the axis (the REINFORCE sampler's is the child's fitness).
    Returns the written path.
    """
    if isinstance(history, (str, Path)):
        history = read_history(Path(history))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = sorted(history, key=lambda r: r["step"])
    fig, (ax, ax_r) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(_origin_group(r), []).append(r)
    extra = iter(_MORE_COLOURS)
    for name, rows in groups.items():
        marker, colour = _STYLE.get(name) or ("D", next(extra, "black"))
        ok = [r for r in rows if r.get("status", "ok") == "ok" and r.get("fitness") is not None]
        if ok:
            ax.scatter([r["step"] for r in ok], [r["fitness"] for r in ok], marker=marker, color=colour, s=22,
                       alpha=0.8, label=f"{name} ({len(ok)})")
        ok_ids = {id(r) for r in ok}
        failed = [r for r in rows if id(r) not in ok_ids]
        if failed:
            ax.scatter([r["step"] for r in failed], [r["fitness"] if r.get("fitness") is not None else 0.0
                                                    for r in failed], marker="x", color=colour, s=30,
                       label=f"{name}, failed ({len(failed)})")
    best, xs, ys = None, [], []
    for r in records:
        if r.get("status", "ok") == "ok" and r.get("fitness") is not None:
            best = r["fitness"] if best is None else max(best, r["fitness"])
        if best is not None:
            xs.append(r["step"])
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="black", lw=1.8, label="best so far")
    ax.set_ylabel("fitness (validation accuracy)")
    ax.set_title(title or "every child")
    ax.grid(alpha=0.3)
    if records:
        ax.legend(fontsize=8, loc="lower right")

    rewarded = [r for r in records if r.get("reward") is not None]
    if rewarded:
        steps = [r["step"] for r in rewarded]
        rewards = [float(r["reward"]) for r in rewarded]
        ax_r.scatter(steps, rewards, marker="^", color="tab:red", s=18, alpha=0.7, label="reward of a child")
        window = max(3, min(10, len(rewards) // 4))
        ax_r.plot(steps, _running_mean(rewards, window), color="black", lw=1.5, label=f"running mean ({window})")
        ax_r.axhline(0.0, color="grey", lw=0.8)
        ax_r.legend(fontsize=8, loc="lower right")
    else:
        ax_r.text(0.5, 0.5, "no controller rewards (random children, or no controller)", ha="center",
                  va="center", transform=ax_r.transAxes)
    ax_r.set_xlabel("evaluation (step)")
    ax_r.set_ylabel(f"reward ({reward})")
    ax_r.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / "children.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
