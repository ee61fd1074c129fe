"""Durable searches: a search killed at any point and resumed ends exactly as one that was
never interrupted, and no completed evaluation is lost or counted twice."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import pytest

from helpers import drive, read_jsonl, run_entry, without_times

TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "ga.population_size=10", "ga.sample_size=3", "ga.budget=60",
         "progress=none", "logger=none", "threads=1", "snapshot.every=4"]


def comparable_summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    s.pop("seconds")
    return s


def resume_until_done(run_dir: Path, faults: list[tuple[str, int]], *extra: str) -> int:
    """Run (or resume) with each fault in turn, then resume without one. Returns the kills."""
    kills = 0
    for i, (fault, n) in enumerate(faults):
        args = [f"hydra.run.dir={run_dir}", *extra] if i == 0 else [f"resume={run_dir}", f"hydra.run.dir={run_dir}_r{i}"]
        proc = drive(fault, n, *args)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={run_dir}_final")  # in this process
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not Path(f"{run_dir}_final").exists()  # a resume runs in the search's own folder
    return kills


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
@pytest.mark.parametrize("algorithm", ["renas"])  # every algorithm (TPE too): tests/test_journal.py, in-process
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path, algorithm):
    reference = tmp_path / "reference"
    proc = run_entry("search.py", *TABLE, f"algorithm={algorithm}", f"hydra.run.dir={reference}")
    assert proc.returncode == 0, proc.stderr[-2000:]

    rng = random.Random(algorithm)
    kinds = ["eval", "state", "history", "generation"]
    rng.shuffle(kinds)
    faults = []
    for kind in kinds:  # every kind of kill point, at random places spread over the run
        n = {"generation": 1, "state": rng.randint(2, 5)}.get(kind) or rng.randint(3, 14)  # a state every 4 evaluations
        faults.append((kind, n))
    run_dir = tmp_path / "killed"
    kills = resume_until_done(run_dir, faults, *TABLE, f"algorithm={algorithm}")
    assert kills == len(faults)

    history = read_jsonl(run_dir / "history.jsonl")
    assert [r["step"] for r in history] == list(range(60))  # none lost, none twice
    assert without_times(history) == without_times(read_jsonl(reference / "history.jsonl"))
    assert comparable_summary(run_dir) == comparable_summary(reference)
    assert read_jsonl(run_dir / "generations.jsonl") == read_jsonl(reference / "generations.jsonl")
