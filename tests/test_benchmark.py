"""Table searches are bit-reproducible for every algorithm; ``python -m renas.benchmark`` works."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import compose, run_cli, run_entry, without_times
from renas.errors import ConfigError
from renas.tracking.versions import versions

pytestmark = pytest.mark.needs_shared("data/nasbench201/nb201_cifar10.csv")

ALGORITHMS = ["renas", "evolution", "rea", "rea_tuned", "local", "ga", "reinforce", "random", "tpe"]
TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "logger=none", "progress=none"]
#: fixed small populations, whatever the algorithm bundles choose (they are being tuned)
SMALL = ["ga.population_size=10", "ga.sample_size=3"]


@pytest.fixture(scope="module")
def parts():
    """Space and table evaluator, loaded once for the module."""
    from renas.build import build_evaluator, build_space

    cfg = compose("search", TABLE)
    space = build_space(cfg.search_space)
    return space, build_evaluator(cfg, space, None)


def _history(parts, algorithm: str, seed: int, budget: int = 60) -> list[dict]:
    """One in-process search as search.py builds it; returns its history records."""
    from renas.evaluate.base import InlineExecutor
    from renas.search.loop import Journal, LoopSettings, Search
    from renas.build import build_strategy
    from renas.search.run import validate

    space, evaluator = parts
    # population 10, sample 3 whatever the bundles' own settings: this checks determinism, not tuning
    cfg = compose("search", [*TABLE, f"algorithm={algorithm}", "ga.population_size=10", "ga.sample_size=3",
                             f"ga.budget={budget}", f"seed={seed}"])
    validate(cfg, space)
    records: list[dict] = []
    Search(space, build_strategy(cfg, space), InlineExecutor(evaluator), budget=budget, generation_size=10, seed=seed,
           settings=LoopSettings(dedup=cfg.loop.dedup), callbacks=[Journal(records.append)]).run()
    assert len(records) == budget
    return records


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_table_search_is_bit_reproducible_for_a_fixed_seed(parts, algorithm):
    a = _history(parts, algorithm, seed=3)
    b = _history(parts, algorithm, seed=3)
    assert without_times(a) == without_times(b)  # everything but wall times, bit for bit
    c = _history(parts, algorithm, seed=4)
    assert [r["arch"] for r in a] != [r["arch"] for r in c]


def test_benchmark_search_matches_the_loop(parts):
    """The benchmark's own runner gives the same search as the loop, and tracks the incumbent."""
    from renas.benchmark import run_search_once

    space, evaluator = parts
    cfg = compose("benchmark", ["algorithm=rea", "ga.population_size=10", "ga.sample_size=3"])
    r = run_search_once(cfg, space, evaluator, seed=3, budget=60, report="c10_test_200ep", keep_records=True)
    assert without_times(r.records) == without_times(_history(parts, "rea", seed=3))
    best = max(r.records, key=lambda x: x["fitness"])  # first of the fittest, as the loop
    assert (r.best_arch, r.best_fitness) == (best["arch"], best["fitness"])
    assert r.best_report == best["metrics"]["c10_test_200ep"] == r.curve[-1]
    assert len(r.curve) == len(r.fitness_curve) == 60
    assert np.all(np.diff(r.fitness_curve) >= 0)


def test_benchmark_cli_writes_json_markdown_and_plot(tmp_path):
    out = tmp_path / "bench"
    proc = run_cli("renas.benchmark", "algorithms=[rea,random]", "seeds=3", "budget=30", *SMALL, f"hydra.run.dir={out}")  # a real command
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "benchmark.json").read_text())
    assert {"table", "metric", "report", "budget", "seeds", "results", "report_optimum", "fitness_optimum"} <= data.keys()
    assert data["metric"] == "c10_valid_12ep" and data["report"] == "c10_test_200ep"
    assert data["budget"] == 30 and data["seeds"] == [0, 1, 2]
    assert data["report_optimum"]["value"] == pytest.approx(94.3733, abs=1e-3)
    assert list(data["results"]) == ["rea", "random"]
    for name, r in data["results"].items():
        for key in ("runs", "report_mean", "report_std", "report_sem", "fitness_mean", "hit_rate", "curve",
                    "seconds", "overhead_ms_per_eval"):
            assert key in r, (name, key)
        assert r["runs"] == 3
        assert 0.0 <= r["hit_rate"] <= 1.0
        assert len(r["curve"]) == len(r["fitness_curve"]) == 30
        # the best-so-far fitness never drops; the report value of the incumbent may (honest protocol)
        assert np.all(np.diff(r["fitness_curve"]) >= 0)
        assert r["curve"][-1] == pytest.approx(r["report_mean"])
        assert r["report_mean"] <= data["report_optimum"]["value"]
        assert r["seconds"] > 0 and r["overhead_ms_per_eval"] > 0
    md = (out / "benchmark.md").read_text()
    assert "| rea | 30 | 3 |" in md and "| random | 30 | 3 |" in md and "hit rate" in md
    assert (out / "regret.png").stat().st_size > 5000
    assert "random" in proc.stdout and "3/3 seeds" in proc.stdout  # progress and the final table on stdout
    assert "\n  random     budget 30: 3/3 seeds" in proc.stdout  # plain lines on the console
    log = (out / "benchmark.log").read_text()  # the same lines, timed, in the run folder's log
    assert "[renas.benchmark.out][INFO] -   random     budget 30: 3/3 seeds" in log and "| rea | 30 | 3 |" in log
    assert "renas.benchmark.out" not in proc.stdout  # printed once, as they are


def test_the_benchmark_runs_with_hydras_logging_off(tmp_path):
    """``hydra/job_logging=disabled`` (no console handler, no log file): the progress lines and
    the table are printed all the same."""
    out = tmp_path / "bench"
    proc = run_entry("renas.benchmark", "algorithms=[random]", "seeds=2", "budget=10", *SMALL,
                     "hydra/job_logging=disabled", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2/2 seeds" in proc.stdout and "| random | 10 | 2 |" in proc.stdout
    assert not (out / "benchmark.log").exists() and (out / "benchmark.json").is_file()
    assert not (out / "history.jsonl").exists() and not (out / "wandb").exists()


def test_a_benchmark_logged_to_wandb_has_each_searchs_own_seed_and_budget(tmp_path):
    """``logger=wandb``: one run per search, its config as search.py's would be (the search's
    ``seed`` and ``ga.budget``, not the benchmark's defaults ``seeds: 100``, ``budget: 100``) and
    its summary under search.py's keys, charted against the generation."""
    from helpers import wandb_run

    out = tmp_path / "bench"
    proc = run_entry("renas.benchmark", "algorithms=[random]", "seeds=2", "budget=[10,12]", *SMALL, "logger=wandb",
                     "max_duplicates=50", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted((out / "runs").iterdir())
    assert [f.name for f in folders] == ["random-b10-s0", "random-b10-s1", "random-b12-s0", "random-b12-s1"]
    run = wandb_run(folders[3])
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in run["config"].items()}
    assert config["seed"] == 1 and config["ga"]["budget"] == 12 and config["choices"] == {"algorithm": "random"}
    assert config["versions"] == versions()
    assert "seeds" not in config and "budget" not in config and config["max_duplicates"] == 50
    assert run["name"] == "random-b12-s1" and run["metrics"]["fitness/*"] == "generation"
    assert run["summary"]["finished"] is True and "best/c10_test_200ep" in run["summary"]


def test_algorithm_keys_reach_each_bundle_from_the_command_line(tmp_path):
    """``algorithm.restart=false`` as README's tables write it (Hydra alone refused it: the
    benchmark's own config has no ``algorithm``); a bundle without the key refuses it in one line."""
    from renas.benchmark.plan import algorithm_overrides

    argv = ["x", "algorithm.patience=5", "++algorithm.move=best", "+algorithm.a=1", "algorithms=[renas]", "ga.algorithm.x=1"]
    assert algorithm_overrides(argv) == ["x", "++algorithm.patience=5", *argv[2:]]
    out = tmp_path / "bench"
    proc = run_entry("renas.benchmark", "algorithms=[renas]", "seeds=2", "budget=12", "algorithm.restart=false",
                     "algorithm.patience=5", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = json.loads((out / "benchmark.json").read_text())["settings"]["renas"]
    assert settings["restart"] is False and settings["patience"] == 5
    out = tmp_path / "bench2"
    proc = run_entry("renas.benchmark", "algorithms=[renas,local]", "seeds=2", "budget=12", "algorithm.patience=5",
                     f"hydra.run.dir={out}")
    assert proc.returncode == 2 and not out.exists()
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "error: algorithm local: algorithm.patience is not a setting of LocalSearch"), proc.stderr


def test_benchmark_cli_rejects_an_unknown_algorithm_in_one_line(tmp_path):
    out = tmp_path / "bench"
    proc = run_entry("renas.benchmark", "algorithms=[rea,nope]", "seeds=2", "budget=20", f"hydra.run.dir={out}")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "'nope'" in lines[0] and "rea" in lines[0] and "renas" in lines[0] and "tpe" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def _bench(tmp_path, *overrides: str):
    from renas.benchmark import run_benchmark

    cfg = compose("benchmark", list(overrides))
    return run_benchmark(cfg, tmp_path, task_overrides=list(overrides), out=lambda s: None)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["seeds=0"], "seeds=0 must be a number of seeds >= 1"),
        (["seeds=[1,1]"], "lists a seed twice"),
        (["budget=5"], "budget=5 is smaller than ga.population_size=10"),
        (["budget=[20,5]"], "budget=5 is smaller than ga.population_size=10"),
        (["budget=15", "ga.population_size=16", "ga.sample_size=3"], "budget=15 is smaller than ga.population_size=16"),
        (["algorithms=[rea,nope]"], "unknown algorithm 'nope'; allowed: evolution, ga, local, random, rea, rea_tuned, reinforce, renas, tpe"),
        (["reference=tpe"], "reference='tpe' is not in algorithms"),
        (["algorithm=rea"], "use algorithms=[...]"),
        (["ga.budget=50"], "use budget="),
        (["ga.mutation_rate=1.5"], "ga.mutation_rate=1.5 is out of range"),
        (["executor.workers=2"], "executor=local executor.workers=2: the benchmark evaluates one child at a time"),
        (["algorithms=[local]", "++algorithm.move=steepest"], "algorithm.move='steepest' is not one of: first, best"),
        # renamed, an algorithm ran as itself but was recorded (and its Optuna version looked up) under the name
        (["++algorithm.name=rea"], "each algorithm's bundle names it"),
    ],
)
def test_benchmark_input_errors(tmp_path, overrides, message):
    if overrides == ["algorithm=rea"]:
        from renas.benchmark import search_overrides

        with pytest.raises(ConfigError, match=r"use algorithms=\[\.\.\.\]"):
            search_overrides(overrides)
        return
    with pytest.raises(ConfigError) as e:
        _bench(tmp_path, "algorithms=[rea,random]", "seeds=2", *SMALL, *overrides)
    assert message in str(e.value)
    assert not (tmp_path / "benchmark.json").exists()


def test_a_budget_below_an_algorithms_population_names_the_way_out(tmp_path):
    with pytest.raises(ConfigError) as e:
        _bench(tmp_path, "algorithms=[rea,rea_tuned,random]", "seeds=2", "budget=[50,15]")
    assert str(e.value) == (
        "budget=15 is smaller than ga.population_size=20 (algorithm rea_tuned): the initial population alone needs 20"
        " evaluations; use budget>=20, or leave rea_tuned out: algorithms=[rea,random]"
    )
    with pytest.raises(ConfigError, match=r"use budget>=20$"):
        _bench(tmp_path, "algorithms=[rea_tuned]", "seeds=2", "budget=15")
    assert not (tmp_path / "benchmark.json").exists()


def test_benchmark_with_a_list_of_budgets_runs_each_budget_separately(tmp_path):
    data = _bench(tmp_path, "algorithms=[rea,random]", "seeds=2", "budget=[12,20]", *SMALL, "ga.mutation_rate=0.5")
    assert data["budget"] == [12, 20]
    assert list(data["results"]) == ["12", "20"]
    for b in (12, 20):
        for name in ("rea", "random"):
            r = data["results"][str(b)][name]
            assert r["runs"] == 2 and len(r["curve"]) == b and r["evaluations"] == 2 * b
    assert data["overrides"] == [*SMALL, "ga.mutation_rate=0.5"]
    md = (tmp_path / "benchmark.md").read_text()
    assert "| rea | 12 | 2 |" in md and "| rea | 20 | 2 |" in md
    assert (tmp_path / "regret.png").exists()
    # bit-reproducible: the same benchmark again gives the same numbers
    again = _bench(tmp_path / "again", "algorithms=[rea,random]", "seeds=2", "budget=[12,20]", *SMALL, "ga.mutation_rate=0.5")
    for b in ("12", "20"):
        for name in ("rea", "random"):
            assert again["results"][b][name]["curve"] == data["results"][b][name]["curve"]
            assert again["results"][b][name]["report_values"] == data["results"][b][name]["report_values"]


def test_benchmark_gives_paired_statistics_of_the_reference_against_every_algorithm(tmp_path):
    """All algorithms share seeds: RENAS minus each other, per seed, with its standard error and a
    Wilcoxon signed-rank test, at every budget; and the Optuna version TPE ran with."""
    import optuna

    data = _bench(tmp_path, "algorithms=[renas,evolution,tpe]", "seeds=4", "budget=[12,20]", *SMALL,
                  "ga.mutation_rate=0.2")
    assert data["reference"] == "renas" and data["optuna"] == optuna.__version__
    assert data["versions"] == versions()
    for b in ("12", "20"):
        pairs = data["paired"][b]
        assert set(pairs) == {"evolution", "tpe"}
        for other, pr in pairs.items():
            ref, oth = data["results"][b]["renas"], data["results"][b][other]
            diffs = np.array(ref["fitness_values"]) - np.array(oth["fitness_values"])
            f = pr["fitness"]
            assert f["n"] == 4 and f["mean_diff"] == pytest.approx(diffs.mean())
            assert f["sem"] == pytest.approx(diffs.std(ddof=1) / 2)
            assert f["wins"] + f["losses"] + f["ties"] == 4 and 0 <= f["wilcoxon_p"] <= 1
            assert set(pr["report"]) == set(f)
    md = (tmp_path / "benchmark.md").read_text()
    assert "paired over the same seeds" in md and "| 20 | evolution |" in md and "Wilcoxon" in md
    assert "at the next budget" in md
    assert f"TPE ran with Optuna {optuna.__version__}." in md and f"renas {versions()['renas']}, torch {versions()['torch']}" in md


def test_paired_statistics_agree_with_scipy():
    from scipy.stats import wilcoxon

    from renas.benchmark import paired

    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 30)
    b = a - rng.normal(0.5, 1.0, 30)
    b[:5] = a[:5]  # ties are dropped, as in Wilcoxon's test
    p = paired(a, b)
    d = a - b
    assert p["mean_diff"] == pytest.approx(d.mean()) and p["sem"] == pytest.approx(d.std(ddof=1) / np.sqrt(30))
    assert (p["wins"], p["ties"]) == (int((d[5:] > 0).sum()), 5)
    assert p["wilcoxon_p"] == pytest.approx(wilcoxon(d[5:]).pvalue)
    assert paired([1.0, 2.0], [1.0, 2.0])["wilcoxon_p"] == 1.0


@pytest.mark.slow
def test_benchmark_runs_with_real_training(tmp_path):
    """evaluator=train: the same benchmark with Lightning-trained children (no table, no optimum),
    on a space from config with a build hook (the digits CNN example: children of a second)."""
    data = _bench(tmp_path, "algorithms=[renas,evolution]", "seeds=2", "budget=4", "evaluator=train",
                  "search_space=digits_cnn", "dataset.subset=0.3", "trainer.max_epochs=1",
                  "ga.population_size=2", "ga.sample_size=2", "evaluator.report_test=true")
    assert data["table"] is None and data["report"] == "test_acc" and data["metric"] == "val_acc"
    for name in ("renas", "evolution"):
        r = data["results"][name]
        assert r["runs"] == 2 and 0.0 <= r["fitness_mean"] <= 1.0 and 0.0 <= r["report_mean"] <= 1.0
        assert r["hit_rate"] is None
    assert set(data["paired"]["4"]) == {"evolution"}
    assert (tmp_path / "regret.png").exists() and "no known optimum" in (tmp_path / "benchmark.md").read_text()


def test_a_benchmark_sweep_is_ranked_by_the_tuning_tool(tmp_path):
    """The tuning protocol: a Hydra multirun of the benchmark, ranked by mean best fitness over
    the budgets (never the report column), the winner's overrides printed."""
    sweep = tmp_path / "sweep"
    proc = run_entry("renas.benchmark", "-m", "algorithms=[rea]", "seeds=3", "budget=[12,20]", "ga.population_size=10",
                     "ga.sample_size=2,3,20", f"hydra.sweep.dir={sweep}")  # a real multirun, in this process
    assert "ga.sample_size=20 is larger than ga.population_size=10" in proc.stderr + proc.stdout  # a refused job
    proc = run_entry("renas.benchmark.tune", str(sweep), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    done = [r for r in rows if r["objective"] is not None]
    assert {tuple(r["overrides"]) for r in done} == {("ga.population_size=10", "ga.sample_size=2"),
                                                      ("ga.population_size=10", "ga.sample_size=3")}
    for r in done:
        assert r["objective"] == pytest.approx(np.mean(list(r["budgets"].values())))
    assert done[0]["objective"] >= done[1]["objective"]
    assert len(rows) == 2  # the refused job left no folder behind
    proc = run_entry("renas.benchmark.tune", str(sweep))
    assert f"chosen for rea: {' '.join(done[0]['overrides'])}" in proc.stdout


def test_the_default_list_is_renas_its_ablation_and_the_baselines():
    """``python -m renas.benchmark`` without ``algorithms=`` runs the README's list, RENAS first
    (the reference of the paired statistics)."""
    from omegaconf import OmegaConf

    from renas.benchmark.plan import DEFAULT_ALGORITHMS
    from renas.config import CONF_DIR

    cfg = OmegaConf.load(f"{CONF_DIR}/benchmark.yaml")
    assert list(cfg.algorithms) == list(DEFAULT_ALGORITHMS)
    assert cfg.reference == "renas" == DEFAULT_ALGORITHMS[0]
    assert {"evolution", "rea", "rea_tuned", "local", "tpe"} <= set(cfg.algorithms)


def _fake_job(folder, overrides, seeds=(100, 101), budget=50, finished=True, fitness=84.0, algorithm="rea", **searched):
    """A benchmark job folder as a sweep leaves it (``.hydra/overrides.yaml``, ``benchmark.json``;
    ``searched``: its ``source``, ``metric``, ``direction``, ``fitness_optimum``)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if finished is not None:
        (folder / "benchmark.json").write_text(json.dumps({
            "results": {algorithm: {"fitness_mean": fitness}}, "budget": budget, "algorithms": [algorithm],
            "seeds": list(seeds), "finished": finished, **searched}))


def test_tune_leaves_out_unfinished_jobs_and_says_so(tmp_path):
    """An interrupted or failed job is listed, left out of the choice, named in a warning, and
    makes the status 1 (a script must not take an incomplete grid's winner silently); nothing
    finished: status 2."""
    sweep = tmp_path / "sweep"
    _fake_job(sweep / "0", ["ga.population_size=3"], fitness=84.0)
    _fake_job(sweep / "1", ["ga.population_size=5"], finished=False, fitness=85.0)
    _fake_job(sweep / "2", ["ga.population_size=10"], finished=None)  # no benchmark.json
    proc = run_entry("renas.benchmark.tune", str(sweep))
    assert proc.returncode == 1, proc.stderr
    assert "chosen for rea: ga.population_size=3 (objective 84.0000)" in proc.stdout
    assert f"warning: 2 job(s) did not finish and are left out of the choice: {sweep / '1'}, {sweep / '2'}" in proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header == "| algorithm | overrides | b50 | objective | seeds |"
    assert "| 100, 101 |" in proc.stdout  # the seeds as they are, not first..last
    only_unfinished = tmp_path / "sweep2"
    _fake_job(only_unfinished / "0", ["ga.population_size=5"], finished=False)
    proc = run_entry("renas.benchmark.tune", str(only_unfinished))
    assert proc.returncode == 2 and "error: no job finished: nothing to choose from" in proc.stderr


def test_tune_refuses_jobs_on_different_seeds_or_budgets_and_unreadable_results(tmp_path):
    _fake_job(tmp_path / "a", ["ga.population_size=3"], seeds=range(100, 200))
    _fake_job(tmp_path / "b", ["ga.population_size=5"], seeds=[3, 7, 100])
    proc = run_entry("renas.benchmark.tune", str(tmp_path / "a"), str(tmp_path / "b"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"error: rea ran on different seeds or budgets ({tmp_path / 'a'}: seeds 100..199, "
                                   f"budget 50; {tmp_path / 'b'}: seeds 3, 7, 100, budget 50): rank settings that ran "
                                   f"on the same ones")
    _fake_job(tmp_path / "c", ["ga.population_size=5"], seeds=range(100, 200), budget=[50, 100])
    proc = run_entry("renas.benchmark.tune", str(tmp_path / "a"), str(tmp_path / "c"))
    assert proc.returncode == 2 and "budget 50, 100" in proc.stderr
    for damaged in ('{"results": {"rea"', "null", '{"results": {"rea": 1}, "budget": 50, "algorithms": ["rea"]}'):
        (tmp_path / "c" / "benchmark.json").write_text(damaged)  # torn, not an object, missing keys
        proc = run_entry("renas.benchmark.tune", str(tmp_path / "c"))
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: {tmp_path / 'c' / 'benchmark.json'} cannot be read")
        assert "Traceback" not in proc.stderr


def test_tune_refuses_jobs_on_other_results_and_folders_that_are_not_benchmarks(tmp_path):
    """A job on another table (or column) ranked beside the sweep's: its objective came first
    (82.2 on the toy table against 78.1 on NAS-Bench-201); a search's or a training's folder was
    listed as "did not finish" (a training folder of 16 runs as 16 jobs)."""
    nb201 = {"source": "nb201_cifar10.csv", "metric": "c10_valid_12ep", "direction": "max",
             "fitness_optimum": {"arch": "x", "value": 84.892}}
    _fake_job(tmp_path / "a", ["ga.population_size=3"], fitness=78.1, **nb201)
    _fake_job(tmp_path / "b", ["ga.population_size=5"], fitness=82.2, **{**nb201, "source": "table.csv",
                                                                         "fitness_optimum": {"arch": "y", "value": 84.47}})
    proc = run_entry("renas.benchmark.tune", str(tmp_path / "a"), str(tmp_path / "b"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"error: rea searched different results ({tmp_path / 'a'}: nb201_cifar10.csv, "
                                   f"c10_valid_12ep maximised, optimum 84.892; {tmp_path / 'b'}: table.csv, "
                                   f"c10_valid_12ep maximised, optimum 84.47): rank settings that searched the same "
                                   f"table and column")
    _fake_job(tmp_path / "c", ["ga.population_size=5"], fitness=78.3, **{**nb201, "metric": "c10_valid_200ep"})
    proc = run_entry("renas.benchmark.tune", str(tmp_path / "a"), str(tmp_path / "c"))
    assert proc.returncode == 2 and "c10_valid_200ep maximised" in proc.stderr
    proc = run_entry("renas.benchmark.tune", str(tmp_path / "a"), str(tmp_path / "a"))  # the same folder twice: once
    assert proc.returncode == 0 and proc.stdout.count("| rea |") == 1, proc.stdout
    search = tmp_path / "search"
    (search / ".hydra").mkdir(parents=True)
    (search / "history.jsonl").write_text("")
    for folder in (search, tmp_path):  # the folder itself, or a folder of runs holding it
        proc = run_entry("renas.benchmark.tune", str(folder))
        assert proc.returncode == 2 and proc.stderr.strip() == (
            f"error: {search} holds a search, not a benchmark: give the folders of benchmarks (python -m "
            f"renas.benchmark) or of their sweeps (-m)"), proc.stderr


def test_an_interrupted_benchmark_says_what_it_kept(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM: status 130 / 143 and one line naming what ``benchmark.json`` holds
    (each algorithm is written when it finishes) or that nothing was kept."""
    import signal

    from renas.benchmark import runner

    real, calls = runner.run_search_once, []

    def stop_at_third(*args, **kwargs):  # the first algorithm has 2 seeds: the second one is in progress
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_search_once", stop_at_third)
    run_dir = tmp_path / "run"
    proc = run_entry("renas.benchmark", "algorithms=[rea,random]", "seeds=2", "budget=12", *SMALL, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 130 and proc.stderr.strip() == (
        f"interrupted; kept in {run_dir / 'benchmark.json'} (finished: false): rea; the algorithm in progress is not "
        f"kept, and a benchmark does not resume: the command run again (in a new folder) repeats every algorithm"), \
        proc.stderr[-2000:]
    data = json.loads((run_dir / "benchmark.json").read_text())
    assert data["finished"] is False and list(data["results"]) == ["rea"]

    sigterm = signal.getsignal(signal.SIGTERM)
    calls.clear()

    def terminate_at_first(*args, **kwargs):
        import os

        os.kill(os.getpid(), signal.SIGTERM)  # the benchmark's handler turns it into an interruption
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_search_once", terminate_at_first)
    run_dir = tmp_path / "run2"
    try:
        proc = run_entry("renas.benchmark", "algorithms=[rea]", "seeds=2", "budget=12", *SMALL, f"hydra.run.dir={run_dir}")
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        import renas.errors

        renas.errors._terminated = None
    assert proc.returncode == 143 and proc.stderr.strip().startswith(
        "terminated (SIGTERM); no algorithm had finished: nothing kept"), proc.stderr[-2000:]


def test_a_benchmark_into_a_folder_that_holds_one_is_refused_and_the_folder_kept(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_entry("renas.benchmark", "algorithms=[rea]", "seeds=2", "budget=12", *SMALL, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    for args in (["budget=0"], ["budget=12"]):  # a bad value (it rewrote .hydra/) and a good one (it overwrote everything)
        proc = run_entry("renas.benchmark", "algorithms=[rea]", "seeds=2", *args, *SMALL, f"hydra.run.dir={run_dir}")
        assert proc.returncode == 2 and proc.stderr.strip() == (
            f"error: {run_dir} already holds a benchmark (benchmark.json); choose another hydra.run.dir for the "
            f"benchmark; nothing in it was changed"), proc.stderr[-2000:]
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "already holds a benchmark (benchmark.json); choose another hydra.run.dir for the search" in proc.stderr


def test_a_benchmark_sweep_with_a_bad_benchmark_key_starts_no_job(tmp_path):
    """``seeds``, ``budget`` and ``algorithms`` are the benchmark's own keys, parsed by it rather
    than by a schema: checked for every job before the sweep starts, as a search's values are."""
    sweep = tmp_path / "sweep"
    for args, expected in ((["seeds=abc", "ga.population_size=10,20"], "seeds='abc' must be a number of seeds"),
                           (["seeds=2", "budget=50,abc"], "budget='abc' must be a number of evaluations")):
        proc = run_entry("renas.benchmark", "-m", "algorithms=[rea]", *args, f"hydra.sweep.dir={sweep}")
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
        assert not sweep.exists()


def test_an_infinite_paired_z_keeps_its_sign_in_the_table():
    from renas.benchmark.report import fmt_z

    assert fmt_z({"z": None, "sem": 0.0, "mean_diff": 0.5}) == "+inf"
    assert fmt_z({"z": None, "sem": 0.0, "mean_diff": -0.5}) == "-inf"
    assert fmt_z({"z": None, "sem": None, "mean_diff": None}) == "-"
    assert fmt_z({"z": 2.345, "sem": 0.1, "mean_diff": 0.2345}) == "2.3"


def test_the_benchmark_runs_options_of_a_users_config_folder(tmp_path):
    """``hydra.searchpath`` reaches every algorithm's config and the list of algorithms: a
    search space and an algorithm of the user's own folder (each algorithm's config was composed
    without that folder: "Could not find 'search_space/my201'"), in a run and in a sweep's
    checks."""
    conf = tmp_path / "conf"
    (conf / "search_space").mkdir(parents=True)
    (conf / "algorithm").mkdir()
    (conf / "search_space" / "my201.yaml").write_text("defaults:\n  - nasbench201\n  - _self_\n")
    (conf / "algorithm" / "myrandom.yaml").write_text("defaults:\n  - random\n  - _self_\n")
    args = [f"hydra.searchpath=[file://{conf}]", "search_space=my201", "seeds=2", "budget=20"]
    out = tmp_path / "bench"
    proc = run_entry("renas.benchmark", *args, "algorithms=[myrandom,rea]", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "benchmark.json").read_text())
    assert sorted(result["results"]) == ["myrandom", "rea"]
    proc = run_entry("renas.benchmark", "-m", *args, "algorithms=[myrandom,nope]", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 2 and "unknown algorithm 'nope'; allowed: evolution, ga, local, myrandom," in proc.stderr
