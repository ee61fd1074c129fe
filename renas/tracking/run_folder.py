"""What a run folder holds: the names that mark a search's folder (search.py) and a training's
(train.py), so that neither command writes into the other's, or into an earlier run of its own."""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = "checkpoints"  # a training's <run>/checkpoints/last.ckpt and best.ckpt (renas.train.final)
TRAIN_STATE = ".train_state.json"  # a training's W&B run id, for its resume (renas.train.final)
#: what marks a folder as a training's run folder (train.py), and as a search's (search.py)
TRAINING_FILES = ("result.json", "model.ckpt", TRAIN_STATE, CHECKPOINTS)
SEARCH_FILES = ("state.pt", "history.jsonl")
BENCHMARK_FILES = ("benchmark.json",)  # python -m renas.benchmark


def run_folder_kind(run_dir: Path) -> str | None:
    """``"search"``, ``"training"`` or ``"benchmark"`` when ``run_dir`` holds one, else ``None``."""
    run_dir = Path(run_dir)
    if any((run_dir / name).exists() for name in SEARCH_FILES):
        return "search"
    if any((run_dir / name).exists() for name in TRAINING_FILES):
        return "training"
    if any((run_dir / name).exists() for name in BENCHMARK_FILES):
        return "benchmark"
    return None
