"""search.py end to end: run folder, reproducibility, W&B, sweeps, bad input, train.py arch_from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import read_jsonl, run_entry, wandb_run, without_times

TINY_TRAIN = [
    "search_space=digits_cnn",  # a space from config with a build hook: real networks, trained in a second
    "dataset.subset=0.3",
    "trainer.max_epochs=1",
    "ga.population_size=3",
    "ga.sample_size=2",
    "ga.budget=6",
    "threads=1",
]
TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "progress=generation"]


def _search(tmp: Path, *args: str, name: str = "run") -> tuple[Path, object]:
    """``python search.py`` in this process (see run_entry)."""
    run_dir = tmp / name
    proc = run_entry("search.py", f"hydra.run.dir={run_dir}", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc


@pytest.mark.slow
def test_real_training_search_is_reproducible_and_writes_the_run_folder(tmp_path):
    a, proc = _search(tmp_path, *TINY_TRAIN, name="a")  # W&B in this process
    b, _ = _search(tmp_path, *TINY_TRAIN, "logger=none", name="b")  # in this one: the same history

    history = read_jsonl(a / "history.jsonl")
    assert without_times(history) == without_times(read_jsonl(b / "history.jsonl"))
    assert [r["step"] for r in history] == list(range(6))
    fields = {"step", "generation", "arch", "fitness", "metrics", "parent", "mutation", "reward", "status", "seconds"}
    for r in history:
        assert fields <= r.keys() and r["status"] == "ok"
        assert {"params", "flops", "train_seconds"} <= r["metrics"].keys()
        assert 0.0 <= r["fitness"] <= 1.0
    assert len({r["arch"] for r in history}) == 6  # distinct evaluations = budget
    children = history[3:]
    assert all(r["parent"] is not None and r["mutation"] and r["reward"] is not None for r in children)
    for r in children:  # reward = child fitness - parent fitness
        assert r["reward"] == pytest.approx(r["fitness"] - history[r["parent"]]["fitness"])

    summary = json.loads((a / "summary.json").read_text())
    best = max(history, key=lambda r: r["fitness"])
    assert summary["best"]["fitness"] == best["fitness"] and summary["best"]["arch"] == best["arch"]
    assert summary["evaluations"] == 6 and summary["finished"] is True
    assert summary["algorithm"] == "renas" and summary["search_space"] == "digits_cnn" and summary["seed"] == 0
    assert (a / "plots" / "fitness.png").stat().st_size > 1000
    assert (a / "plots" / "controller_reward.png").stat().st_size > 1000
    assert "best" in proc.stderr + proc.stdout and "remaining" in proc.stderr + proc.stdout
    assert not (a / "lightning_logs").exists() and not (Path.cwd() / "lightning_logs").exists()

    run = wandb_run(a)  # one run for the search, none for the children
    assert summary["wandb_run_id"] == run["id"]  # train.py arch_from= links to search-<this id>
    generations = [row for row in run["history"] if "generation" in row]
    assert [row["generation"] for row in generations] == [0, 1]
    for row in generations:
        for key in ("fitness/max", "fitness/mean", "fitness/min", "fitness/best_so_far", "evaluations"):
            assert key in row, key
    for key in ("controller/reward_mean", "controller/loss", "controller/entropy"):
        assert key in generations[1], key  # generation 0 is the random initial population
    assert generations[-1]["evaluations"] == 6
    # a row per evaluation as it finishes, against the evaluation count
    evaluations = [row for row in run["history"] if "evaluation" in row]
    assert [row["evaluation"] for row in evaluations] == list(range(1, 7))
    assert [row["eval/fitness"] for row in evaluations] == pytest.approx([r["fitness"] for r in history])
    assert [row["eval/best_so_far"] for row in evaluations] == pytest.approx(
        [max(r["fitness"] for r in history[: i + 1]) for i in range(6)])
    assert [row.get("eval/reward") for row in evaluations[3:]] == pytest.approx([r["reward"] for r in children])
    assert run["metrics"]["eval/*"] == "evaluation" and run["metrics"]["eval/best_so_far"] == "evaluation"
    assert run["summary"]["best/arch"] == best["arch"]
    assert run["summary"]["best/fitness"] == pytest.approx(best["fitness"])
    assert run["config"]["ga"]["value"]["budget"] == 6 if "value" in run["config"].get("ga", {}) else run["config"]["ga"]["budget"] == 6
    # charts against the generation; every child in a table with one column per gene; the results as an artifact
    assert run["metrics"]["fitness/*"] == "generation" and run["metrics"]["controller/*"] == "generation"
    assert run["summary"]["children/_type"] == "table-file" and run["summary"]["children/nrows"] == 6
    table = json.loads(next((a / "wandb").glob("offline-run-*/files/" + run["summary"]["children/path"])).read_text())
    genes = ["depth", "width1", "width2", "width3", "act1", "act2", "act3"]
    assert table["columns"][:8] == ["step", "generation", "arch", "fitness", "status", "origin", "parent", "reward"]
    assert table["columns"][8:15] == [f"gene/{g}" for g in genes] and "metric/params" in table["columns"]
    for row, r in zip(table["data"], history):
        assert row[2] == r["arch"] and row[3] == pytest.approx(r["fitness"])
        assert "|".join(f"{g}:{v}" for g, v in zip(genes, row[8:15])) == r["arch"]
    (artifact,) = [x for x in run["artifacts"] if x["type"] == "search"]  # (W&B keeps tables as artifacts too)
    assert artifact["name"] == f"search-{run['id']}" and artifact["metadata"]["best_arch"] == best["arch"]
    assert set(artifact["files"]) == {"summary.json", "history.jsonl", "generations.jsonl"}


@pytest.mark.needs_shared("data/nasbench201")
def test_table_search_history_and_summary_agree(tmp_path):
    run_dir, proc = _search(tmp_path, *TABLE, "algorithm=rea", "ga.population_size=10", "ga.sample_size=3", "ga.budget=50",
                            "logger=none")
    history = read_jsonl(run_dir / "history.jsonl")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(history) == 50 and len({r["arch"] for r in history}) == 50
    best = max(history, key=lambda r: r["fitness"])
    assert summary["best"]["arch"] == best["arch"] and summary["best"]["step"] == best["step"]
    assert "c10_test_200ep" in summary["best"]["metrics"]
    gens = read_jsonl(run_dir / "generations.jsonl")
    assert [g["evaluations"] for g in gens] == [10, 20, 30, 40, 50]
    assert gens[-1]["fitness/best_so_far"] == best["fitness"]
    # the last line: the best architecture and where the results are
    assert proc.stdout.strip().splitlines()[-1].endswith(f"{best['fitness']:.4f}: {best['arch']}; results in {run_dir}")


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
def test_train_py_trains_the_best_architecture_of_a_search(tmp_path):
    search_dir, _ = _search(tmp_path, *TABLE, "ga.population_size=10", "ga.sample_size=3", "ga.budget=20", "logger=none", name="search")
    best = json.loads((search_dir / "summary.json").read_text())["best"]["arch"]
    train_dir = tmp_path / "train"
    proc = run_entry("train.py", f"arch_from={search_dir}", "search_space=nasbench201", "search_space.channels=4",
                     "search_space.cells_per_stage=1", "trainer.max_epochs=1", "logger=none", "threads=1",
                     "trainer.enable_progress_bar=false", f"hydra.run.dir={train_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((train_dir / "result.json").read_text())
    assert result["arch"] == best and result["search_space"] == "nasbench201"
    wrong = run_entry("train.py", f"arch_from={search_dir}", "logger=none", f"hydra.run.dir={tmp_path / 'wrong'}")
    assert wrong.returncode != 0 and "search_space=nasbench201" in wrong.stderr
