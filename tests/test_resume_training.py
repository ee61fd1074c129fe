"""Durable searches with real training: a kill inside a child's training and Ctrl-C both end in
a search that resumes to the same evaluations. (A module of its own so that pytest-xdist can run
it beside ``test_resume.py``: ``--dist loadfile`` keeps a module on one worker.)"""

from __future__ import annotations

import json
import re
import signal

import pytest

from helpers import drive, read_jsonl, run_entry, signal_at, without_times

@pytest.mark.slow
def test_kill_during_a_childs_training_and_resume(tmp_path):
    # the digits CNN space (a space from config with a build hook): children of a fraction of a second
    args = ["search_space=digits_cnn", "dataset.subset=0.3", "trainer.max_epochs=1", "ga.population_size=3",
            "ga.sample_size=2", "ga.budget=6", "threads=1", "progress=none"]
    reference = tmp_path / "reference"
    assert run_entry("search.py", *args, "logger=none", f"hydra.run.dir={reference}").returncode == 0
    run_dir = tmp_path / "killed"
    # the 20th training step overall lies inside the 3rd or 4th child; the W&B run continues
    proc = drive("train", 20, *args, f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL
    done_before = len(read_jsonl(run_dir / "history.jsonl"))
    assert 0 < done_before < 6
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")  # W&B in this process
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = read_jsonl(run_dir / "history.jsonl")
    assert [r["step"] for r in history] == list(range(6))
    reference_history = read_jsonl(reference / "history.jsonl")
    assert {r["arch"] for r in history} == {r["arch"] for r in reference_history}
    assert without_times(history) == without_times(reference_history)
    # the same W&B run: the resumed file holds the whole search, the killed one's is kept aside
    (run,), (earlier,) = run_dir.glob("wandb/offline-run-*"), run_dir.glob("wandb/superseded/offline-run-*")
    assert run.name.split("-")[-1] == earlier.name.split("-")[-1]


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, sig=signal.SIGINT, status=130, stopped="interrupted"):
    run_dir = tmp_path / "run"
    # children of a second or two (the digits CNN space, 3 epochs on all of digits), so that the
    # interrupt, sent as soon as the first child is recorded, lands inside the second child's training
    args = ["search_space=digits_cnn", "trainer.max_epochs=3", "ga.population_size=3",
            "ga.sample_size=2", "ga.budget=3", "threads=1", "logger=none", f"hydra.run.dir={run_dir}"]
    # Ctrl-C as from a terminal, at the first child's progress line: the second child is training now
    proc = signal_at("search.py", args, sig, line="| eval 1/3 |")
    err = proc.stderr
    assert proc.returncode == status, err[-2000:]
    assert f"resume={run_dir}" in err and "Traceback" not in err
    assert (proc.stdout + err).count(f"resume={run_dir}") == 1  # the command once, on stderr
    assert re.search(rf"{stopped} after \d+ evaluations?; nothing is lost \(run folder {re.escape(str(run_dir))}\)",
                     proc.stdout)  # the log's record
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["stopped"] == stopped
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["step"] for r in read_jsonl(run_dir / "history.jsonl")] == list(range(3))
    assert json.loads((run_dir / "summary.json").read_text())["finished"] is True


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
def test_sigterm_stops_a_search_like_ctrl_c_with_status_143(tmp_path):
    """What SLURM sends at a job's time limit. A long table search (RENAS, 10 ms an evaluation)
    gets SIGTERM at its first progress line: summary written, resume command, status 143.
    (SIGTERM inside a child's Lightning training takes the Ctrl-C path above; train.py's SIGTERM
    test sends it during training.)"""
    run_dir = tmp_path / "run"
    proc = signal_at("search.py", ["search_space=nasbench201", "evaluator=nasbench201", "ga.budget=10000", "logger=none",
                                   "threads=1", f"hydra.run.dir={run_dir}"], signal.SIGTERM, line="| eval 1/10000 |")
    err = proc.stderr
    assert proc.returncode == 143, err[-2000:]
    assert f"terminated (SIGTERM); continue with: python search.py resume={run_dir}" in err and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == "terminated" and 0 < summary["evaluations"] < 10000


@pytest.mark.slow
def test_submitits_time_limit_signal_stops_the_search_not_the_child(tmp_path, monkeypatch):
    """Hydra's submitit launchers: submitit has SLURM send SIGUSR2 before a job's time limit, and
    its own handler raised inside the child's training (a child recorded as failed, the search
    going on). In a submitit job (``SUBMITIT_EXECUTOR`` set) the signal stops the search as SIGTERM does."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")  # the forked copy inherits it
    run_dir = tmp_path / "run"
    args = ["search_space=digits_cnn", "trainer.max_epochs=3", "ga.population_size=3",
            "ga.sample_size=2", "ga.budget=3", "threads=1", "logger=none", f"hydra.run.dir={run_dir}"]
    proc = signal_at("search.py", args, signal.SIGUSR2, line="| eval 1/3 |")  # inside the second child's training
    err = proc.stderr
    assert proc.returncode == 143, err[-2000:]
    assert f"terminated (SIGUSR2); continue with: python search.py resume={run_dir}" in err and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == "terminated" and summary["failures"] == 0
    assert all(r["status"] == "ok" for r in read_jsonl(run_dir / "history.jsonl"))
