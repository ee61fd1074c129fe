"""Failing children: an exception, a NaN loss, an out-of-memory error; failure policies."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import compose, read_jsonl
from renas.evaluate.lightning_eval import TrainEvaluator
from renas.search.loop import SearchStopped
from renas.search.run import run_search
from renas.train.module import ClassifierModule

TINY = ["search_space.channels=4", "dataset.subset=0.3", "trainer.max_epochs=1", "ga.population_size=3",
        "ga.sample_size=2", "ga.budget=5", "logger=none", "progress=none"]


@pytest.fixture
def sabotage(monkeypatch):
    """Make the children with the given task ids fail in their training step."""
    plan: dict[int, str] = {}
    current = {"mode": None}
    evaluate = TrainEvaluator.evaluate
    training_step = ClassifierModule.training_step

    def patched_evaluate(self, task):
        current["mode"] = plan.get(task.id)
        return evaluate(self, task)

    def patched_step(self, batch, batch_idx):
        mode = current["mode"]
        if mode == "raise":
            raise RuntimeError("boom in the training step")
        if mode == "oom":  # what a GPU raises when a child does not fit
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        if mode == "nan":
            x, y = batch
            batch = (x * float("nan"), y)
        return training_step(self, batch, batch_idx)

    monkeypatch.setattr(TrainEvaluator, "evaluate", patched_evaluate)
    monkeypatch.setattr(ClassifierModule, "training_step", patched_step)
    return plan


@pytest.mark.slow
def test_failed_children_are_recorded_and_the_search_completes(tmp_path, sabotage):
    sabotage.update({0: "raise", 2: "nan", 3: "oom"})
    summary = run_search(compose("search", TINY), tmp_path)
    history = read_jsonl(tmp_path / "history.jsonl")
    assert [r["status"] for r in history] == ["failed", "ok", "failed", "failed", "ok"]
    assert "RuntimeError: boom" in history[0]["error"]
    assert "DivergedError" in history[2]["error"] and "nan" in history[2]["error"]
    assert "OutOfMemoryError" in history[3]["error"]
    assert all(r["fitness"] == 0.0 for r in history if r["status"] == "failed")  # on_failure=worst
    # what a failed child is was measured before it failed, and stays in its record
    assert all(r["metrics"]["params"] > 0 and r["metrics"]["flops"] > 0 for r in history)
    assert summary["finished"] and summary["evaluations"] == 5 and summary["failures"] == 3
    assert summary["best"]["step"] in (1, 4)


@pytest.mark.slow
def test_skipped_failures_never_become_parents(tmp_path, sabotage):
    sabotage.update({1: "raise"})
    run_search(compose("search", [*TINY, "loop.on_failure=skip", "ga.budget=6"]), tmp_path)
    history = read_jsonl(tmp_path / "history.jsonl")
    assert history[1]["status"] == "failed" and history[1]["fitness"] is None
    assert len(history) == 6 and all(r["parent"] != 1 for r in history)
    # the initial population still has 3 members: a 4th random architecture replaced the failed one
    assert [r["origin"] for r in history[:4]] == ["random"] * 4


@pytest.mark.slow
def test_too_many_failures_in_a_row_stop_the_search_with_a_clear_message(tmp_path, sabotage):
    sabotage.update({i: "raise" for i in range(10)})
    with pytest.raises(SearchStopped, match="2 children failed in a row.*loop.max_failures=2"):
        run_search(compose("search", [*TINY, "loop.max_failures=2"]), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["finished"] is False and "failed in a row" in summary["stopped"]
    assert len(read_jsonl(tmp_path / "history.jsonl")) == 2


@pytest.mark.slow
def test_failures_that_end_the_budget_finish_the_search_and_a_stop_says_how_to_go_on(tmp_path, sabotage):
    """The budget's last children failing in a row ended in ``finished: true`` with a ``stopped``
    reason and status 2 (a search that had spent its budget, reported as stopped); now it is a
    finished search. A stop with budget left says how to go on."""
    sabotage.update({3: "raise", 4: "raise"})
    summary = run_search(compose("search", [*TINY, "loop.max_failures=2"]), tmp_path / "end")
    assert summary["finished"] is True and summary["stopped"] is None and summary["failures"] == 2
    assert json.loads((tmp_path / "end" / "summary.json").read_text())["stopped"] is None

    sabotage.clear()
    sabotage.update({2: "raise", 3: "raise"})
    run_dir = tmp_path / "stopped"
    (run_dir / ".hydra").mkdir(parents=True)  # a command's search (a script's has no resume=)
    with pytest.raises(SearchStopped) as stop:
        run_search(compose("search", [*TINY, "loop.max_failures=2"]), run_dir)
    assert str(stop.value).endswith(f"(loop.max_failures=2); when the cause is fixed, go on with: python search.py "
                                    f"resume={run_dir} (it tries the next child)")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["stopped"].endswith("(loop.max_failures=2)")


def test_a_non_finite_fitness_fails_the_child_and_keeps_its_metrics():
    from renas.evaluate.base import Outcome, Task, safe_evaluate

    class NanEvaluator:
        name = "nan"

        def evaluate(self, task):
            return Outcome(float("nan"), {"params": 3, "flops": 5})

    out = safe_evaluate(NanEvaluator(), Task(0, "a", (0,), seed=0))
    assert out.status == "failed" and "non-finite fitness nan" in out.error
    assert out.metrics == {"params": 3, "flops": 5}


def test_a_failure_raised_from_a_users_hook_names_the_line_in_the_hook():
    """A search space's hook that failed was reported ``(at genes.py:367)``: the line of renas's
    wrapper that re-raised it, not the line of the user's hook that failed."""
    from renas.errors import RenasError, error_line

    def users_hook():
        raise ValueError("no such width")

    try:
        try:
            users_hook()
        except ValueError as e:
            raise RenasError("search_space.build (users_hook) failed on a:1: ValueError: no such width\nmore") from e
    except RenasError as e:
        line = error_line(e)
    assert line == (f"RenasError: search_space.build (users_hook) failed on a:1: ValueError: no such width "
                    f"(at test_failures.py:{users_hook.__code__.co_firstlineno + 1})")
