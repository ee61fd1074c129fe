"""PNG plots of a search: fitness per generation and controller reward per generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_generations(generations: list[dict[str, Any]], out_dir: Path, title: str = "") -> list[Path]:
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
    ax.set_ylabel("controller reward (child - parent fitness)")
    ax.set_title(title or "controller reward per generation")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(out_dir / "controller_reward.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
