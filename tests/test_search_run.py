"""search.py end to end: run folder, reproducibility, W&B, sweeps, bad input, train.py arch_from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import read_jsonl, run_entry, wandb_run, without_times
from renas.tracking.versions import versions

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
@pytest.mark.parametrize("algorithm", ["random", "local"])
def test_every_algorithm_logs_the_children_table_under_a_name_with_its_choices(tmp_path, algorithm):
    """The ``children`` table (W&B's parallel coordinates of ``gene/*`` against fitness) was
    logged only beside a final population, so random search, local search, TPE and REINFORCE had
    none; runs had no name (W&B makes one up) and their config no data set or space by name."""
    run_dir, _ = _search(tmp_path, *TABLE, f"algorithm={algorithm}", "ga.budget=12", "seed=3")
    run = wandb_run(run_dir)
    assert run["summary"]["children/_type"] == "table-file" and run["summary"]["children/nrows"] == 12
    assert run["name"] == f"{algorithm}-s3"
    choices = run["config"]["choices"]
    choices = choices.get("value", choices)
    assert choices["algorithm"] == algorithm and choices["search_space"] == "nasbench201"
    assert not any(key.startswith("hydra/") for key in choices)
    recorded = run["config"]["versions"]
    assert recorded.get("value", recorded) == versions()  # a dashboard can filter on them


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


MY_STRATEGY = '''
from renas.search.strategies import Proposal, Strategy


class Climber(Strategy):
    """The best architecture so far with one gene changed at random."""

    initial = None

    def __init__(self, space, ga, controller, seed, name=None, n_init=5):
        super().__init__(space, ga, controller, seed, name)
        self.n_init, self.told, self.best = int(n_init), 0, None

    def ask(self):
        if self.told < self.n_init or self.best is None:
            return self.random_proposal()
        values = list(self.best[1])
        i = int(self.rng.integers(len(values)))
        values[i] = int(self.rng.integers(len(self.genes[i].choices)))
        return Proposal(tuple(values), "mutation")

    def tell(self, proposal, fitness, step):
        self.told += 1
        if fitness is not None and (self.best is None or fitness > self.best[0]):
            self.best = (fitness, proposal.values)
'''


@pytest.mark.needs_shared("data/nasbench201")
def test_an_algorithm_of_the_users_own_runs_as_the_readme_says(tmp_path, monkeypatch):
    """README "Your own algorithm": a Strategy subclass in a module of the folder the command
    runs in (not on the Python path before: ``python search.py`` puts its own folder there, not
    the working one), named by a bundle in the user's config folder; its settings reach
    ``__init__``, a typo in its ``_target_`` is one line, and the benchmark runs it."""
    (tmp_path / "my_conf" / "algorithm").mkdir(parents=True)
    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "__init__.py").write_text("")
    (tmp_path / "my_project" / "climber.py").write_text(MY_STRATEGY)
    (tmp_path / "my_conf" / "algorithm" / "climber.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /controller: none\n"
        "algorithm:\n  name: climber\n  _target_: my_project.climber.Climber\n  n_init: 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    args = ["hydra.searchpath=[file://my_conf]", "algorithm=climber", *TABLE, "ga.budget=20", "logger=none"]
    proc = run_entry("search.py", *args, "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = read_jsonl(tmp_path / "run" / "history.jsonl")
    assert [r["origin"] for r in history[:8]] == ["random"] * 7 + ["mutation"]  # n_init: 7 from the bundle
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["algorithm"] == "climber"
    proc = run_entry("search.py", *args, "algorithm._target_=my_project.climber.Climbr", "hydra.run.dir=bad")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: algorithm._target_=my_project.climber.Climbr: my_project.climber has no 'Climbr'"), proc.stderr
    assert not (tmp_path / "bad").exists()
    # an error inside the class is the class's: its traceback, not a line about the config
    with pytest.raises(ValueError, match="invalid literal for int"):
        run_entry("search.py", *args, "algorithm.n_init=abc", "hydra.run.dir=buggy")
    proc = run_entry("renas.benchmark", "hydra.searchpath=[file://my_conf]", "algorithms=[renas,climber]", "seeds=2",
                     "budget=20", "hydra.run.dir=bench")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(json.loads((tmp_path / "bench" / "benchmark.json").read_text())["results"]) == ["climber", "renas"]


def test_torch_threads_on_a_busy_machine_are_warned_about(tmp_path, monkeypatch, caplog):
    """``threads=null`` (torch's own count) on a machine whose other work keeps CPUs busy: torch's
    threads wait for each other (a proxy child took 7 s with 2 threads against 1.9 s with 1, one
    core of 2 busy), so a search that trains its children here says so and how to avoid it; with
    ``threads=`` given, an idle machine, one thread, a resume (it keeps its count) or no
    training in this process, it does not."""
    import torch

    from renas.train import profile

    measured = profile.other_busy_cpus(0.05)  # this machine's own reading: a count of CPUs
    assert measured is None or (measured[0] >= 0 and measured[1] >= 1)
    monkeypatch.setattr(profile, "other_busy_cpus", lambda seconds=0.25: (1.0, 2))
    assert profile.busy_machine(2) == "the machine is busy (other work keeps 1.0 of its 2 CPUs busy) and torch trains with 2 threads"
    assert profile.busy_machine(1) is None
    monkeypatch.setattr(profile, "other_busy_cpus", lambda seconds=0.25: (0.3, 2))  # the odd background task
    assert profile.busy_machine(2) is None
    monkeypatch.setattr(profile, "other_busy_cpus", lambda seconds=0.25: (1.0, 2))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with caplog.at_level("WARNING", logger="renas.train"):
            for wanted, saved, here in ((None, None, False), (None, 2, True), (2, None, True)):
                assert profile.torch_threads(wanted, saved, trains_here=here) == 2
        assert "busy" not in caplog.text
        tiny = [a for a in TINY_TRAIN if a != "threads=1"] + ["ga.budget=3", "logger=none", "progress=none"]
        warned, _ = _search(tmp_path, *tiny, name="null")  # (threads= given: the third case above)
    finally:
        torch.set_num_threads(before)
    line = "the machine is busy (other work keeps 1.0 of its 2 CPUs busy) and torch trains with 2 threads: training may be"
    assert line in (warned / "search.log").read_text()
    assert json.loads((warned / "summary.json").read_text())["threads"] == 2


def test_a_search_that_runs_out_of_new_architectures_says_why_it_stopped(tmp_path):
    """Only repeats proposed (here a canonical hook that keys every architecture alike): the
    search ended after one evaluation with ``finished: false`` and ``stopped: null``, no reason
    on record."""
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", "experiment=toy_table", "algorithm=random", "ga.budget=20", "loop.dedup=isomorphic",
                     "+search_space.canonical={_target_: helpers.constant_key}", "logger=none", "progress=none",
                     "threads=1", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["evaluations"], summary["finished"], summary["stopped"]) == (1, False, "exhausted")
