"""Sweeps: the joblib and submitit launchers, the SLURM config, the Optuna sweep config, and
``python -m renas.compare`` over the run folders they leave."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from helpers import REPO, compose, run_entry, wandb_run
from renas import compare
from renas.tracking.versions import versions

TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "ga.population_size=10", "ga.sample_size=3",
         "ga.budget=20", "threads=1", "progress=generation"]


def _jobs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if (p / "summary.json").is_file()), key=lambda p: int(p.name))


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory) -> Path:
    """Two searches (ga.mutation_rate=0.1,0.2) run at once by the joblib launcher, W&B offline,
    each evaluating its children in two worker processes (spawned from joblib's loky workers).
    (Its tests carry ``needs_shared``: the marker skips them before this fixture runs.)"""
    sweep = tmp_path_factory.mktemp("joblib") / "sweep"
    proc = run_entry("search.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "ga.mutation_rate=0.1,0.2",
                   *TABLE, "executor.workers=2", "executor.threads_per_worker=1", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
def test_joblib_sweep_gives_two_finished_runs_in_one_wandb_group(joblib_sweep):
    jobs = _jobs(joblib_sweep)
    assert [j.name for j in jobs] == ["0", "1"]
    for job, rate in zip(jobs, (0.1, 0.2)):
        summary = _summary(job)
        assert summary["finished"] is True and summary["evaluations"] == 20 and summary["failures"] == 0
        assert f"ga.mutation_rate={rate}" in (job / ".hydra" / "overrides.yaml").read_text()
        assert (job / "history.jsonl").is_file() and (job / "plots" / "fitness.png").is_file()
    runs = [wandb_run(j) for j in jobs]
    assert runs[0]["id"] != runs[1]["id"]
    assert runs[0]["group"] == runs[1]["group"] == "_".join(joblib_sweep.parts[-2:])  # renas.build.sweep_group
    assert [sum("generation" in row for row in r["history"]) for r in runs] == [2, 2]  # one row per generation


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
def test_compare_shows_the_differing_overrides_and_writes_the_plot(joblib_sweep, tmp_path):
    png = tmp_path / "cmp.png"
    proc = run_entry("renas.compare", str(joblib_sweep), "--group-by", "ga.mutation_rate", "--out", str(png))
    assert proc.returncode == 0, proc.stderr
    header, *rows = [line.split() for line in proc.stdout.splitlines()[1:3 + 1]]
    assert header == ["run", "ga.mutation_rate", "best", "evals", "finished", "algorithm", "seconds"]
    assert [r[:2] for r in rows] == [["0", "0.1"], ["1", "0.2"]]
    for row, job in zip(rows, _jobs(joblib_sweep)):
        assert row[2:6] == [f"{_summary(job)['best']['fitness']:.4f}", "20", "yes", "renas"]
    assert png.stat().st_size > 1000

    as_json = run_entry("renas.compare", str(joblib_sweep), "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    # every override as given (a script reads ga.budget there too), the differing ones in settings
    assert [r["overrides"]["ga.mutation_rate"] for r in data] == [0.1, 0.2]
    for r, job in zip(data, _jobs(joblib_sweep)):
        given = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert sorted(r["overrides"]) == sorted(o.split("=", 1)[0] for o in given) and r["overrides"]["ga.budget"] == 20
    assert [r["settings"] for r in data] == [{"ga.mutation_rate": 0.1}, {"ga.mutation_rate": 0.2}]
    assert all(r["finished"] and r["evaluations"] == 20 and r["seconds"] > 0 for r in data)


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
def test_submitit_local_runs_one_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_entry("search.py", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "seed=0",
                   *TABLE, "logger=none", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [job] = _jobs(sweep)
    assert _summary(job)["finished"] is True
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # it ran as a submitit job


def _hparams_search() -> str:
    """``hparams_search=optuna``, or ``+hparams_search=optuna`` while search.yaml has no such default."""
    defaults = yaml.safe_load((REPO / "conf" / "search.yaml").read_text())["defaults"]
    listed = any(isinstance(d, dict) and any(k.split()[-1] == "hparams_search" for k in d) for d in defaults)
    return "hparams_search=optuna" if listed else "+hparams_search=optuna"


@pytest.mark.slow
@pytest.mark.needs_shared("data/nasbench201")
def test_optuna_sweep_runs_three_trials_and_reports_the_best(tmp_path):
    """Optuna's sweeper runs its trials one after another in one process (Hydra's basic
    launcher, as ``search.py -m`` does without a launcher): one run folder and one W&B run per
    trial, all in one W&B group, and the best trial reported."""
    import optuna

    sweep, storage = tmp_path / "optuna", f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = run_entry("search.py", _hparams_search(), "hydra.sweeper.n_trials=3", *TABLE[:2], "ga.budget=20",
                   "threads=1", f"hydra.sweep.dir={sweep}", f"hydra.sweeper.storage={storage}")  # no -m: the config sets multirun
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the study is kept in the database the config's comment suggests (Optuna 2.10 on SQLAlchemy 2: an AssertionError)
    study = optuna.load_study(study_name="renas", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    jobs = _jobs(sweep)
    assert len(jobs) == 3 and all(_summary(j)["finished"] for j in jobs)
    runs = [wandb_run(j) for j in jobs]
    assert len({r["id"] for r in runs}) == 3 and runs[0]["group"] and len({r["group"] for r in runs}) == 1
    for run, job in zip(runs, jobs):  # a row per generation of that trial's own search
        generations = [row for row in run["history"] if "generation" in row]
        ga = run["config"]["ga"].get("value", run["config"]["ga"])
        assert len(generations) == _summary(job)["generations"] and ga["budget"] == 20
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    params = result["best_params"]
    assert set(params) == {"ga.mutation_rate", "ga.population_size", "ga.sample_size", "controller.lr"}
    assert 0.0 <= params["ga.mutation_rate"] <= 0.5 and params["ga.population_size"] in (5, 10, 20)
    assert 1e-4 <= params["controller.lr"] <= 1e-2
    assert result["best_value"] == pytest.approx(max(_summary(j)["best"]["fitness"] for j in jobs))


def test_slurm_config_extends_the_plugin_with_project_defaults():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("search", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.timeout_min == 720 and launcher.gpus_per_node == 1
    assert launcher.tasks_per_node == 1 and launcher.max_num_timeout == 0
    assert launcher.qos is None  # the plugin's other settings are still there


@pytest.mark.slow
def test_slurm_config_renders_the_documented_sbatch_script(tmp_path, monkeypatch):
    """With stand-in ``srun``/``sbatch`` (the latter keeps the script and refuses the job)."""
    bin_dir, script = tmp_path / "bin", tmp_path / "job.sbatch"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\nfor last; do :; done\ncp "$last" "{script}"\nexit 1\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    failed = pytest.importorskip("submitit.core.utils").FailedJobError
    with pytest.raises(failed):  # the stand-in sbatch refused the job (a command prints the traceback, status 1)
        run_entry("search.py", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "seed=0,1",
                  f"hydra.sweep.dir={tmp_path / 'sweep'}")
    text = script.read_text()
    for line in ("#SBATCH --array=0-1%", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --time=720",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB", "#SBATCH --ntasks-per-node=1",
                 "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"):
        assert line in text, line


# renas.compare on hand-made run folders (fast: no search runs)

def _fake_run(folder: Path, overrides: list[str], curve: list[float], finished: bool = True) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    history = [{"step": i, "generation": 0, "arch": f"a{i}", "fitness": f, "status": "ok"} for i, f in enumerate(curve)]
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    (folder / "generations.jsonl").write_text(
        "".join(json.dumps({"generation": g, "fitness/best_so_far": max(curve[: g + 1])}) + "\n" for g in range(len(curve))))
    if finished:
        best = max(history, key=lambda r: r["fitness"])
        (folder / "summary.json").write_text(json.dumps({"best": best, "evaluations": len(curve), "finished": True,
                                                         "algorithm": "rea", "seconds": 1.5}))
    return folder


def test_compare_shows_a_crashed_run_as_unfinished(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    _fake_run(sweep / "0", ["seed=0", "logger=none"], [0.5, 0.7])
    crashed = _fake_run(sweep / "1", ["seed=1", "logger=none"], [0.6, 0.8], finished=False)
    with open(crashed / "history.jsonl", "a") as f:
        f.write('{"step": 2, "gen')  # torn last line
    compare.main([str(sweep), "--out", str(tmp_path / "cmp.png")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["run", "seed", "best", "evals", "finished", "algorithm", "seconds"]  # logger is the same
    assert lines[2].split() == ["0", "0", "0.7000", "2", "yes", "rea", "1.5"]
    assert lines[3].split() == ["1", "1", "0.8000", "2", "no", "-", "-"]
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_compare_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """``renas.compare <sweep> --json | head``: the reader's end of the pipe closes first; a
    BrokenPipeError traceback (status 1) is now status 141, as a shell reports SIGPIPE, and no
    line on stderr."""
    import subprocess
    import sys

    for i in range(3):
        _fake_run(tmp_path / "sweep" / str(i), [f"seed={i}"], [0.5, 0.7])
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader.wait()  # gone before renas.compare writes a byte
    proc = subprocess.run([sys.executable, "-m", "renas.compare", str(tmp_path / "sweep"), "--json"],
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    reader.stdin.close()
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr


def test_compare_groups_runs_given_one_by_one(tmp_path, capsys):
    runs = [_fake_run(tmp_path / f"r{i}", [f"ga.mutation_rate={rate}", f"seed={i}"], [0.1 * i, 0.2 * i])
            for i, rate in enumerate((0.1, 0.2, 0.1))]
    compare.main([*map(str, runs), "--group-by", "ga.mutation_rate", "--json", "--out", str(tmp_path / "g.png")])
    captured = capsys.readouterr()
    assert [r["overrides"] for r in json.loads(captured.out)] == [
        {"ga.mutation_rate": 0.1, "seed": 0}, {"ga.mutation_rate": 0.2, "seed": 1}, {"ga.mutation_rate": 0.1, "seed": 2}]
    assert (tmp_path / "g.png").is_file() and "plot:" in captured.err


def test_compare_warns_when_runs_ran_with_different_versions(tmp_path, capsys):
    """A seed fixes a run for one set of versions (summary.json's ``versions``): runs made with
    another torch are compared with a warning naming it; a run that records none (older) is not counted."""
    runs = [_fake_run(tmp_path / f"r{i}", [f"seed={i}"], [0.5, 0.6]) for i in range(3)]
    for run, torch in zip(runs, ("2.14.1", "2.13.0", None)):
        summary = json.loads((run / "summary.json").read_text())
        if torch:
            summary["versions"] = {"python": "3.11.7", "renas": "0.3.0", "torch": torch}
        (run / "summary.json").write_text(json.dumps(summary))
    compare.main([*map(str, runs), "--json"])
    captured = capsys.readouterr()
    assert captured.err.strip() == ("warning: these runs ran with different versions (torch 2.13.0, 2.14.1): the same "
                                    "settings and seed may give other results")
    assert [r["versions"] and r["versions"]["torch"] for r in json.loads(captured.out)] == ["2.14.1", "2.13.0", None]
    compare.main([*map(str, runs[:1] + runs[2:]), "--json"])
    assert "warning" not in capsys.readouterr().err


@pytest.mark.needs_shared("data/nasbench201")
def test_compare_shows_the_values_runs_ran_with_and_warns_across_spaces(tmp_path, capsys):
    """``seed=0`` and no seed ran the same search: no column; ``ga.mutation_rate`` shows the
    value each run had (the bundle's where not overridden, not ``-``); a run of another space is
    compared with a warning."""
    for name, extra in (("a", ["seed=0"]), ("b", []), ("c", ["ga.mutation_rate=0.5"])):
        proc = run_entry("search.py", *TABLE, *extra, "logger=none", "progress=none", f"hydra.run.dir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr[-2000:]
    compare.main([str(tmp_path / n) for n in "abc"] + ["--json", "--group-by", "ga.mutation_rate"])
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    default = compose("search", TABLE).ga.mutation_rate
    assert [r["settings"] for r in rows] == [{"ga.mutation_rate": default}, {"ga.mutation_rate": default},
                                             {"ga.mutation_rate": 0.5}]
    assert "warning" not in captured.err
    assert all(r["versions"] == versions() for r in rows)  # what each search recorded
    other = _fake_run(tmp_path / "d", ["seed=0"], [0.5, 0.9])
    summary = json.loads((other / "summary.json").read_text())
    (other / "summary.json").write_text(json.dumps({**summary, "search_space": "digits_cnn"}))
    compare.main([str(tmp_path / "a"), str(other), "--out", str(tmp_path / "x.png")])
    captured = capsys.readouterr()
    header = captured.out.splitlines()[1].split()
    assert header[:2] == ["run", "search_space"] and header.count("search_space") == 1  # once, though also overridden
    assert captured.err.strip() == ("warning: these runs differ in search_space (digits_cnn, nasbench201): their "
                                    "fitness values may not be comparable")


@pytest.mark.parametrize("case, message", [
    ("missing", "no such folder"),
    ("empty", "is not a run folder and holds none"),
    ("group_by", "--group-by nope: not an override or setting of these runs (overrides: seed)"),
    ("not_an_object", "summary.json is not a search's summary (a JSON object)"),
    ("wrong_types", "summary.json is not a search's summary (its best or evaluations are not what a search writes)"),
    ("bad_overrides", "overrides.yaml cannot be read (while parsing"),
    ("out_json", "--out {tmp}/x.json: the plot is written as one of avif, eps, gif, jpeg, jpg, pdf, "),
    ("out_folder", "--out {tmp} is a folder; give a file in it, e.g. --out {tmp}/compare.png"),
    ("out_unwritable", "--out /proc/x.png: cannot write the plot ("),
])
def test_compare_errors_are_one_line(tmp_path, capsys, case, message):
    """Damaged runs and a plot that cannot be written were tracebacks (a summary with a string for
    its best, an unparsable overrides.yaml, ``--out x.json``, ``--out /proc/x.png``); ``--out
    <folder>`` wrote ``<folder>.png`` and said it wrote ``<folder>``."""
    (tmp_path / "empty").mkdir()
    run = _fake_run(tmp_path / "run", ["seed=0"], [0.5])
    if case == "not_an_object":
        (run / "summary.json").write_text("null")
    if case == "wrong_types":
        (run / "summary.json").write_text('{"best": "x", "evaluations": "many"}')
    if case == "bad_overrides":
        (run / ".hydra" / "overrides.yaml").write_text("[\n")
    args = {"missing": [str(tmp_path / "missing")], "empty": [str(tmp_path / "empty")],
            "group_by": [str(run), "--group-by", "nope"]}.get(case, [str(run)])
    out = {"out_json": tmp_path / "x.json", "out_folder": tmp_path, "out_unwritable": "/proc/x.png"}.get(case, tmp_path / "x.png")
    with pytest.raises(SystemExit) as exit_info:
        compare.main([*args, "--out", str(out)])
    message = message.format(tmp=tmp_path)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.needs_shared("data/nasbench201")
def test_one_bad_job_does_not_stop_the_sweep(tmp_path):
    """ga.sample_size=50 is invalid for P = 10: that job fails with its one line, the other runs."""
    sweep = tmp_path / "sweep"
    args = [a for a in TABLE if not a.startswith("ga.sample_size")]
    proc = run_entry("search.py", "-m", "ga.sample_size=50,3", *args, "logger=none", f"hydra.sweep.dir={sweep}")
    assert proc.returncode != 0
    assert "error: ga.sample_size=50 is larger than ga.population_size=10" in proc.stderr
    # said before the first job: the others run (a grid of P and S has such jobs)
    assert ("warning: 1 of the sweep's 2 jobs break a rule between keys and will fail in their turn; the first: "
            "ga.sample_size=50 is larger than ga.population_size=10") in proc.stderr.splitlines()[0]
    jobs = _jobs(sweep)
    assert [j.name for j in jobs] == ["1"] and _summary(jobs[0])["finished"]


def test_compare_reads_override_values_as_hydra_does_and_leaves_out_display_settings(tmp_path, capsys):
    """``--json`` gave ``"true"`` for a boolean override (and real booleans in ``settings``), and
    ``progress`` (how a run is shown) came out as a setting that differs."""
    _fake_run(tmp_path / "a", ["evaluator.inherit_weights=true", "progress=none", "ga.mutation_rate=null"], [0.5])
    _fake_run(tmp_path / "b", ["evaluator.inherit_weights=false", "progress=eval", "ga.mutation_rate=0.2"], [0.6])
    compare.main([str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["overrides"] for r in rows] == [
        {"evaluator.inherit_weights": True, "progress": "none", "ga.mutation_rate": None},
        {"evaluator.inherit_weights": False, "progress": "eval", "ga.mutation_rate": 0.2}]
    assert [r["settings"] for r in rows] == [{"evaluator.inherit_weights": True, "ga.mutation_rate": None},
                                             {"evaluator.inherit_weights": False, "ga.mutation_rate": 0.2}]
