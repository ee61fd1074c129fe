"""Durable searches: a search killed at any point and resumed ends exactly as one that was
never interrupted, and no completed evaluation is lost or counted twice."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, read_jsonl, run_cli, run_entry, without_times

TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "ga.population_size=10", "ga.sample_size=3", "ga.budget=60",
         "progress=none", "logger=none", "threads=1"]


def drive(fault: str, n: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "tests" / "fault_driver.py"), fault, str(n), "--", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


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
@pytest.mark.parametrize("algorithm", ["renas", "rea", "tpe"])
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path, algorithm):
    reference = tmp_path / "reference"
    proc = run_entry("search.py", *TABLE, f"algorithm={algorithm}", f"hydra.run.dir={reference}")
    assert proc.returncode == 0, proc.stderr[-2000:]

    rng = random.Random(algorithm)
    kinds = ["eval", "state", "history", "generation"]
    rng.shuffle(kinds)
    faults = []
    for kind in kinds:  # every kind of kill point, at random places spread over the run
        n = rng.randint(3, 14) if kind != "generation" else 1
        faults.append((kind, n))
    run_dir = tmp_path / "killed"
    kills = resume_until_done(run_dir, faults, *TABLE, f"algorithm={algorithm}")
    assert kills == len(faults)

    history = read_jsonl(run_dir / "history.jsonl")
    assert [r["step"] for r in history] == list(range(60))  # none lost, none twice
    assert without_times(history) == without_times(read_jsonl(reference / "history.jsonl"))
    assert comparable_summary(run_dir) == comparable_summary(reference)
    assert read_jsonl(run_dir / "generations.jsonl") == read_jsonl(reference / "generations.jsonl")


@pytest.mark.slow
def test_kill_during_a_childs_training_and_resume(tmp_path):
    args = ["search_space.channels=4", "dataset.subset=0.3", "trainer.max_epochs=1", "ga.population_size=3",
            "ga.sample_size=2", "ga.budget=6", "threads=1", "progress=none"]
    reference = tmp_path / "reference"
    assert run_entry("search.py", *args, "logger=none", f"hydra.run.dir={reference}").returncode == 0
    run_dir = tmp_path / "killed"
    # the 20th training step overall lies inside the 3rd or 4th child; the W&B run continues
    proc = drive("train", 20, *args, f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL
    done_before = len(read_jsonl(run_dir / "history.jsonl"))
    assert 0 < done_before < 6
    proc = run_cli("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = read_jsonl(run_dir / "history.jsonl")
    assert [r["step"] for r in history] == list(range(6))
    reference_history = read_jsonl(reference / "history.jsonl")
    assert {r["arch"] for r in history} == {r["arch"] for r in reference_history}
    assert without_times(history) == without_times(reference_history)
    runs = sorted(run_dir.glob("wandb/offline-run-*"))
    assert len(runs) == 2 and runs[0].name.split("-")[-1] == runs[1].name.split("-")[-1]  # same run id


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    # children of several seconds each (3 epochs on all of digits), so that the interrupt, 1 s after
    # the first child is recorded, lands inside the search and not after its end
    args = ["search_space.channels=4", "trainer.max_epochs=3", "ga.population_size=3",
            "ga.sample_size=2", "ga.budget=4", "threads=1", "logger=none", f"hydra.run.dir={run_dir}"]
    # Ctrl-C as from a terminal: SIGINT at its default disposition in the child, whatever this test
    # process inherited or set (a pytest-xdist worker can have SIGINT ignored, and a child inherits that)
    proc = subprocess.Popen([sys.executable, "search.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "history.jsonl").exists() or (
        (run_dir / "history.jsonl").exists() and not (run_dir / "history.jsonl").read_text().strip()
    ):
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert f"resume={run_dir}" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["stopped"] == "interrupted"
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["step"] for r in read_jsonl(run_dir / "history.jsonl")] == list(range(4))
    assert json.loads((run_dir / "summary.json").read_text())["finished"] is True
