"""Bad input anywhere: a non-zero exit, one line naming the problem, nothing new on disk.

The cases run the entry points in this process (:func:`helpers.run_entry`: the same
``__main__``, Hydra composition, error report and exit status, without a new interpreter);
``SUBPROCESS`` repeats a few of them as real commands, so the path from the shell is checked too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import REPO, compose, run_cli, run_entry
from conftest import SHARED
from renas.tracking.versions import versions

TABLE = ["search_space=nasbench201", "evaluator=nasbench201"]

# (entry point, overrides, text the first line must contain)
CASES = [
    ("search.py", ["ga.mutation_rate=1.5"], "ga.mutation_rate"),
    ("search.py", ["ga.crossover_rate=-0.1"], "ga.crossover_rate"),
    ("search.py", ["ga.population_size=0"], "ga.population_size"),
    ("search.py", ["ga.sample_size=50"], "ga.sample_size"),
    ("search.py", ["ga.budget=2"], "ga.budget"),  # below the population (P = 3)
    ("search.py", ["ga.budget=many"], "ga.budget"),
    ("search.py", ["ga.selection=best"], "ga.selection"),
    ("search.py", ["ga.removal=random"], "ga.removal"),
    ("search.py", ["ga.foo=1"], "ga.foo"),
    # an override Hydra cannot parse: the line names it (Hydra's own message does not)
    ("search.py", ["ga.mutation_rate=["], "Error parsing override 'ga.mutation_rate=[': no viable alternative"),
    # wrong types fail when the config is composed (renas/schema.py), also with --cfg job
    ("search.py", ["ga.mutation_rate=abc"], "ga.mutation_rate=abc: Value 'abc' of type 'str' could not be converted to Float"),
    ("search.py", ["ga.population_size=3.5", "--cfg", "job"], "ga.population_size"),
    ("search.py", ["controller.lr=fast"], "controller.lr"),
    ("search.py", ["logger.project=[a,b]"], "logger.project"),
    ("search.py", ["algorithm.patience=abc"], "algorithm.patience"),
    ("search.py", ["algorithm=local", "algorithm.restart=true"], "algorithm.restart"),
    ("search.py", ["optim.label_smoothing=no"], "optim.label_smoothing"),
    ("search.py", ["evaluator.finetune_epochs=1.5"], "evaluator.finetune_epochs"),
    ("search.py", ["evaluator.bn_recalibration=yes"], "evaluator.bn_recalibration"),
    ("search.py", ["dataset.batch_size=big"], "dataset.batch_size"),
    ("search.py", ["seed=abc"], "seed"),
    ("search.py", ["algorithm=nope"], "algorithm/nope"),
    ("search.py", ["controller.lr=-1"], "controller.lr"),
    ("search.py", ["controller.batch=0"], "controller.batch"),
    ("search.py", ["controller=least_squares", "controller.prior=least_squares"], "controller.prior=least_squares puts a fitted prior under REINFORCE"),
    ("search.py", ["loop.dedup=fuzzy"], "loop.dedup"),
    ("search.py", ["loop.on_failure=retry"], "loop.on_failure"),
    ("search.py", ["seed=-1"], "seed"),
    ("search.py", ["threads=0"], "threads"),
    ("search.py", ["threads=-1"], "threads"),
    ("search.py", ["executor.workers=0"], "executor.workers"),
    ("search.py", ["snapshot.every=0"], "snapshot.every"),
    ("search.py", ["trainer.devices=2"], "executor.workers"),
    ("search.py", ["snapshot.seconds=soon"], "snapshot.seconds"),
    ("search.py", ["executor=slurm"], "executor/slurm"),
    ("search.py", ["executor.name=slurm"], "executor.name"),
    ("search.py", ["+loop.max_failure=3"],
     "loop.max_failure is not a setting of loop (did you mean loop.max_failures? settings: dedup, on_failure, max_failures)"),
    # a typo in a key: the closest setting named (Hydra's "+key" advice only where a class takes new keys)
    ("search.py", ["ga.mutaton_rate=0.2"], "ga.mutaton_rate is not a setting of ga (did you mean ga.mutation_rate? settings:"),
    ("search.py", ["algoritm=rea"], "algoritm is not a setting of search.py's config (did you mean algorithm? settings:"),
    # a group of another command's config: that group is what is missing, in this command's config
    ("train.py", ["ga.budget=5"], "ga is not a setting of train.py's config (settings: search_space, dataset, trainer"),
    ("search.py", ["algoritm.patience=3"], "algoritm is not a setting of search.py's config (did you mean algorithm?"),
    # a config group of the other commands: Hydra's "+experiment=..." advice fails too
    ("train.py", ["experiment=toy_table"], "experiment is not a config group of train.py (python train.py --help lists its groups)"),
    ("search.py", ["experiment=toy_table", "search_space.valid.max_pools=0", "ga.budget=1000"],
     "ga.budget=1000 is larger than the search space (972 of its 3,072 architectures are allowed by search_space.valid)"),
    ("search.py", ["experiment=toy_table", "search_space.valid.max_pools=-1", "search_space.reference=null"],
     "search_space.valid allows none of the 3,072 architectures of the toy space"),
    ("train.py", ["dataset.batchsize=8"], "Could not override 'dataset.batchsize' (did you mean dataset.batch_size? to add"),
    ("search.py", ["evaluator.workers=2"], "'evaluator.workers': it is executor.workers since renas 0.2"),  # a key of 0.1
    ("search.py", ["executor=ray", "executor.num_gpus=-1"], "executor.num_gpus"),
    ("train.py", ["threads=-1"], "threads"),
    ("search.py", ["dataset=nope"], "dataset/nope"),
    ("search.py", ["dataset.batch_size=0"], "dataset.batch_size"),
    ("search.py", ["dataset.val_fraction=1.5"], "dataset.val_fraction"),
    ("search.py", ["search_space.channels=0"], "search_space.channels"),
    ("search.py", ["search_space.stem=huge"], "search_space.stem"),
    ("search.py", ["optim.optimizer.lr=0"], "optim.optimizer.lr"),
    ("search.py", ["trainer.max_epochs=0"], "trainer.max_epochs"),
    ("search.py", ["trainer.accelerator=quantum"], "trainer"),
    ("search.py", ["logger.mode=sometimes"], "logger.mode"),
    ("search.py", ["logger.console=loud"], "logger.console"),
    ("search.py", [*TABLE, "evaluator.table=/nonexistent/table.csv"], "evaluator.table"),
    ("search.py", [*TABLE, "evaluator.metric=nope"], "'nope'"),
    ("search.py", [*TABLE, "ga.budget=20000"], "ga.budget"),
    ("search.py", ["dataset=mnist", "dataset.root={tmp}/empty", "dataset.download=false"], "put them there"),
    ("train.py", ["arch=|bogus~0|sep_conv_3x3~1|"], "bogus"),
    ("train.py", ["arch=|sep_conv_3x3~0|sep_conv_3x3~1|+|sep_conv_3x3~7|sep_conv_3x3~1|"], "input"),
    ("train.py", ["search_space=nasbench201", "arch=|nor_conv_3x3~0|+|nor_conv_3x3~0|"], "3 nodes"),
    ("train.py", ["arch_from={tmp}/nowhere"], "arch_from"),
    ("train.py", ["trainer.max_epochs=-1"], "trainer.max_epochs"),
    ("search.py", ["resume={tmp}/nowhere"], "resume"),
    ("search.py", ["resume={tmp}/a_file"], "a_file: a file, not a run folder (give the folder that holds the search)"),
    # a value left ??? in an option: the whole key (was: "evaluator: Missing mandatory value: table")
    ("search.py", ["evaluator=table"], "evaluator.table is not set: give it on the command line (evaluator.table=...)"),
    ("search.py", ["dataset=image_folder"], "dataset.root is not set: give it on the command line (dataset.root=...)"),
    # a space from config (the shipped examples): genes, hooks, tables, genotypes
    ("search.py", ["search_space=genes"], "search_space.genes"),
    ("search.py", ["search_space=genes", "search_space.genes=[{name: a, choices: [1, 1]}]"], "appears twice"),
    ("search.py", ["experiment=toy_table", "search_space.valid._target_=examples.nope"], "examples.nope"),
    ("search.py", ["experiment=toy_table", "evaluator.metric=nope"], "'nope'"),
    ("search.py", ["experiment=toy_table", "search_space.genes.4.choices=[16,32,64]"], "gene width: '128' is not one of 16, 32, 64"),
    ("search.py", ["experiment=toy_table", "search_space.valid.max_pools=3"], "has no row for"),
    # a canonical hook that fails: before the run folder (it was found at the first child, the folder left)
    ("search.py", ["experiment=toy_table", "loop.dedup=isomorphic", "+search_space.canonical._target_=user_algorithms.canonical_without_return"],
     "search_space.canonical (user_algorithms.canonical_without_return) returned None for "),
    ("search.py", ["experiment=toy_table", "evaluator=train"], "Key 'table' not in 'TrainEvaluatorSchema'"),
    ("search.py", ["experiment=toy_table", "evaluator.duplicates=max"], "evaluator.duplicates='max' is not one of: error, mean, first"),
    ("train.py", ["search_space=digits_cnn", "arch=depth:2|width1:32|width2:16|width3:8|act1:relu|act2:relu|act3:relu"],
     "not allowed by search_space.valid"),
    ("train.py", ["search_space=digits_cnn", "arch=depth:2|width1:48"], "gene width1: '48' is not one of 8, 16, 32, 64"),
    # a misspelled _target_ or key of a user's own option: what is missing, in words (Hydra's
    # message named the whole target as a missing module; an algorithm's was a traceback)
    ("search.py", [*TABLE, "algorithm._target_=renas.search.renas.RENAZ"],
     "algorithm._target_=renas.search.renas.RENAZ: renas.search.renas has no 'RENAZ'"),
    ("search.py", [*TABLE, "+algorithm.n_ini=4"], "algorithm.n_ini is not a setting of RENAS (a key of another algorithm option?)"),
    ("search.py", [*TABLE, "search_space._target_=renas.space.genes.GeneSpace"],
     "search_space._target_=renas.space.genes.GeneSpace: renas.space.genes has no 'GeneSpace'"),
    ("search.py", ["dataset._target_=my_projekt.data.MyDM"],
     "dataset._target_=my_projekt.data.MyDM: no module named 'my_projekt' (not on the Python path)"),
]


#: cases also run through the entry point in this process (exit status 2, one line on stderr, no
#: run folder left), one per source of errors: Hydra's grammar and the schemas' types, an unknown
#: key, an older version's key, a schema rule, a rule between keys, a part that fails to build,
#: missing data, train.py's genotype and its arch_from, resume= (which only the entry point reads) and
#: another command's config group (which the entry point words)
ENTRY = [c for c in CASES if c[1] in (
    ["ga.mutation_rate=abc"], ["ga.foo=1"], ["evaluator.workers=2"], ["ga.mutation_rate=1.5"], ["ga.budget=2"],
    ["experiment=toy_table", "search_space.valid.max_pools=3"], ["dataset=mnist", "dataset.root={tmp}/empty", "dataset.download=false"],
    ["arch=|bogus~0|sep_conv_3x3~1|"], ["arch_from={tmp}/nowhere"], ["resume={tmp}/nowhere"], ["resume={tmp}/a_file"], ["threads=-1"],
    ["experiment=toy_table"], [*TABLE, "algorithm._target_=renas.search.renas.RENAZ"],
)]
#: cases also run as real commands: a Hydra composition error (a wrong type, with --cfg job), a validation error, train.py
SUBPROCESS = [c for c in CASES if c[1] in (["ga.mutation_rate=1.5"], ["arch=|bogus~0|sep_conv_3x3~1|"],
                                           ["ga.population_size=3.5", "--cfg", "job"])]


def _ids(case):
    return f"{case[0]}:{' '.join(case[1])}"[:60]


def _check_bad_input(run, tmp_path, script, args, expected):
    if any("nasbench201" in a for a in args) and script == "search.py" and not (SHARED / "data/nasbench201").is_dir():
        pytest.skip(f"needs shared data at {SHARED / 'data/nasbench201'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("")
    run_dir = tmp_path / "run"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run(script, f"hydra.run.dir={run_dir}", "logger=none", *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])  # Hydra's composition errors too
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr[-2000:]
    assert not run_dir.exists()


def _first_error(tmp_path: Path, script: str, args: list[str]) -> str | None:
    """The line the entry point would print, from the path it takes before its run folder gets a
    file: Hydra's composition (grammar, schemas' types and keys), then everything the command
    checks and builds first (``prepare_search`` / ``prepare_training``). ``None``: no error."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from renas.cli import quote_arch_overrides
    from renas.errors import RenasError, one_line

    args = [a for a in quote_arch_overrides(args) if a not in ("--cfg", "job")]
    try:
        cfg = compose(script.removesuffix(".py"), ["logger=none", *args])
        if script == "search.py":
            from renas.search.run import prepare_search

            prepare_search(cfg, tmp_path / "run")
        else:
            from renas.train.final import prepare_training

            prepare_training(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        return one_line(e)
    except RenasError as e:
        return str(e)
    return None


@pytest.mark.parametrize("script,args,expected", [c for c in CASES if c not in ENTRY], ids=[_ids(c) for c in CASES if c not in ENTRY])
def test_bad_input(tmp_path, script, args, expected):
    if any("nasbench201" in a for a in args) and not (SHARED / "data/nasbench201").is_dir():
        pytest.skip(f"needs shared data at {SHARED / 'data/nasbench201'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("")
    line = _first_error(tmp_path, script, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert line is not None and "\n" not in line and expected in line, line


@pytest.mark.parametrize("script,args,expected", ENTRY, ids=[_ids(c) for c in ENTRY])
def test_bad_input_through_the_entry_point(tmp_path, script, args, expected):
    _check_bad_input(run_entry, tmp_path, script, args, expected)


@pytest.mark.parametrize("script,args,expected", SUBPROCESS, ids=[_ids(c) for c in SUBPROCESS])
def test_bad_input_from_the_shell(tmp_path, script, args, expected):
    _check_bad_input(run_cli, tmp_path, script, args, expected)


@pytest.mark.parametrize("script,arg,expected", [
    ("search.py", "ga.selection=best", "ga.selection='best' is not one of: tournament, roulette"),
    ("train.py", "optim.scheduler=bogus", "optim.scheduler='bogus' is not one of: cosine, none"),
    ("renas.benchmark", "ga.mutation_rate=1.5", "ga.mutation_rate=1.5 is out of range"),
    # a choice that an interpolation fills in: resolved, and so typed, only when read
    ("search.py", "ga.selection=${ga.removal}", "ga.selection='worst' is not one of: tournament, roulette"),
])
def test_a_bad_choice_or_range_fails_before_hydra_makes_the_run_folder(tmp_path, script, arg, expected):
    """Ranges are checked right after composition (``renas.cli.CheckFirst``, a Hydra callback),
    before Hydra makes the run folder, and choices while Hydra composes, or, where an
    interpolation gives the value, by the same callback: with the folder's parent a regular
    file, a later check would end in Hydra's NotADirectoryError instead of this one line."""
    (tmp_path / "file").write_text("")
    proc = run_entry(script, arg, "logger=none", f"hydra.run.dir={tmp_path / 'file' / 'run'}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: ") and expected in lines[0]


@pytest.mark.parametrize("script", ["search.py", "renas.benchmark"])
def test_a_sweep_whose_every_job_has_a_bad_value_is_refused_before_any_job(tmp_path, script):
    """A value the sweep does not vary (``-m seed=0,1 ga.mutation_rate=1.5``) is in every job:
    refused once, before the sweeper makes the sweep folder (it launched every job, each
    failing with the same line, and left the folder with its multirun.yaml)."""
    sweep = tmp_path / "sweep"
    proc = run_entry(script, "-m", "seed=0,1" if script == "search.py" else "seeds=2,3", "ga.mutation_rate=1.5",
                     "logger=none", f"hydra.sweep.dir={sweep}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == ("error: ga.mutation_rate=1.5 is out of range: must be a number in [0.0, 1.0] "
                        "(every job of the sweep has it; no job was started)")
    assert not sweep.exists()


@pytest.mark.parametrize("sweep_args, expected", [
    (["ga.mutation_rate=0.1,1.5"], "ga.mutation_rate=1.5 is out of range: must be a number in [0.0, 1.0] "
                                   "(a value of the sweep ga.mutation_rate=0.1,1.5; no job was started)"),
    (["seed=range(0,3)", "ga.mutation_rate=choice(0.2,-1)"], "ga.mutation_rate=-1.0 is out of range"),
    (["ga.selection=tournament,best"], "ga.selection='best' is not one of: tournament, roulette (a value of the sweep"),
    (["ga.budget=4,abc"], "ga.budget='abc': Value 'abc' of type 'str' could not be converted to Integer (a value of the sweep"),
    # the launchers' numbers, which their plugins take unchecked (joblib: a traceback; SLURM: a refused job)
    (["seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"],
     "hydra.launcher.n_jobs=0: give the number of jobs at once (>= 1; -1: one per core) (every job of the sweep has it"),
    (["seed=0", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=-5"],
     "hydra.launcher.timeout_min=-5 is out of range: must be a number of minutes >= 1"),
    (["seed=0", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=0"],
     "hydra.launcher.cpus_per_task=0 is out of range: must be a number of CPUs >= 1"),
    # a config group's option that does not exist (Hydra found it composing that job, after writing the sweep folder)
    (["executor=local,nope"], "Could not find 'executor/nope' (options: local, ray; a value of the sweep "
                              "executor=local,nope; no job was started)"),
    # an Optuna search space: both ends of an interval, each choice, also in the sweeper's params (the study ran
    # its first trial into the bad value)
    (["hparams_search=optuna", "ga.mutation_rate=interval(0.5,1.5)"],
     "ga.mutation_rate=1.5 is out of range: must be a number in [0.0, 1.0] (a value of the sweep "
     "ga.mutation_rate=interval(0.5,1.5); no job was started)"),
    (["hparams_search=mine", "hydra.searchpath=[file://{tmp}]"],
     "ga.population_size=0 is out of range: must be an integer >= 1 (a value of the sweep ga.population_size=choice(5, 0)"),
    (["hparams_search=optuna", "algorithm=choice(renas,nope)"], "Could not find 'algorithm/nope'"),
    # a rule between keys that every job breaks (each job failed with the same line)
    (["seed=0,1", "ga.budget=2"], "error: ga.budget=2 is smaller than ga.population_size=3: the initial population "
                                  "alone needs 3 evaluations (the job seed=0 of the sweep; no job was started)"),
    (["ga.population_size=3,10", "ga.budget=2"], "(the job ga.population_size=3 of the sweep; no job was started)"),
    # a sweep that starts no job (Hydra launched 0 jobs, status 0), a sweeper that cannot start (Optuna's tracebacks)
    (["seed=range(0,0)"], "error: seed=range(0,0): the sweep holds no value, so it would start no job (no job was "
                          "started)"),
    (["hparams_search=optuna", "ga.mutation_rate=interval(0.5,0.1)"],
     "error: ga.mutation_rate=interval(0.5,0.1): the interval's low end 0.5 is above its high end 0.1"),
    (["hparams_search=optuna", "hydra.sweeper.n_trials=0"],
     "error: hydra.sweeper.n_trials=0 is out of range: must be a number of trials >= 1 (no job was started)"),
])
def test_a_swept_bad_value_is_refused_before_any_job(tmp_path, sweep_args, expected):
    """Each value of a listed or ranged sweep is checked before the sweep starts (it failed in its
    own job, after the jobs before it had run: hours, in a real sweep)."""
    sweep = tmp_path / "sweep"
    (tmp_path / "hparams_search").mkdir()  # a user's Optuna search space with a bad choice
    (tmp_path / "hparams_search" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - optuna\nhydra:\n  sweeper:\n    params:\n"
        "      ga.population_size: choice(5, 0)\n")
    sweep_args = [a.replace("{tmp}", str(tmp_path)) for a in sweep_args]
    proc = run_entry("search.py", "-m", *sweep_args, "logger=none", f"hydra.sweep.dir={sweep}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert not sweep.exists()


@pytest.mark.needs_shared("data/nasbench201")
def test_a_sweep_over_an_option_of_a_users_config_folder_runs(tmp_path):
    """The options of a swept group are looked up as the command composes, with the command
    line's ``hydra.searchpath``: a user's own search space there is an option (the first version
    of the check listed only the package's and refused it), a missing one is still refused."""
    (tmp_path / "conf" / "search_space").mkdir(parents=True)
    (tmp_path / "conf" / "search_space" / "my201.yaml").write_text("defaults:\n  - nasbench201\n  - _self_\n")
    sweep = tmp_path / "sweep"
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "evaluator=nasbench201", "ga.budget=10",
            "logger=none", "progress=none", "threads=1", f"hydra.sweep.dir={sweep}"]
    proc = run_entry("search.py", "-m", "search_space=nasbench201,my202", *args)
    assert proc.returncode == 2 and "Could not find 'search_space/my202' (options: digits_cnn, genes, my201," in proc.stderr
    proc = run_entry("search.py", "-m", "search_space=nasbench201,my201", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]


def test_multirun_with_cfg_is_one_line():
    """Hydra takes one of ``-m`` and ``--cfg``: its ValueError was a traceback."""
    proc = run_entry("search.py", "-m", "--cfg", "job", "seed=0,1")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified "
        "(--cfg shows one run's config: drop -m)"), proc.stderr[-2000:]


@pytest.mark.needs_shared("data/nasbench201")
def test_an_optuna_choice_replaced_on_the_command_line_is_checked_as_given(tmp_path):
    """The command line's sweep of a key replaces the sweeper's own: a bad choice in
    ``hydra.sweeper.params`` that the command line replaces by a good one is not refused."""
    (tmp_path / "hparams_search").mkdir()
    (tmp_path / "hparams_search" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - optuna\nhydra:\n  sweeper:\n    params:\n"
        "      ga.population_size: choice(5, 0)\n")
    sweep = tmp_path / "sweep"
    proc = run_entry("search.py", f"hydra.searchpath=[file://{tmp_path}]", "hparams_search=mine",
                     "ga.population_size=choice(5,10)", "hydra.sweeper.n_trials=1", *TABLE, "ga.budget=20",
                     "logger=none", "progress=none", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (sweep / "optimization_results.yaml").is_file()


def test_a_sweep_of_good_values_and_of_config_groups_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the toy table's path is relative to the project
    sweep = tmp_path / "sweep"
    proc = run_entry("search.py", "-m", "algorithm=rea,renas", "ga.mutation_rate=0.1,0.2", "experiment=toy_table",
                     "ga.budget=12", "logger=none", "progress=none", "threads=1", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]


def test_a_failed_command_leaves_the_working_folder_as_it_was(tmp_path, monkeypatch):
    """With Hydra's default run folder (``outputs/search/<date>/<time>`` below the working
    folder), a command that fails after Hydra made it removes it and the folders above it that
    it made; a folder that holds anything else stays."""
    monkeypatch.chdir(tmp_path)
    proc = run_entry("search.py", "ga.sample_size=50", "logger=none")  # a rule between keys: checked in the task
    assert proc.returncode == 2 and "ga.sample_size=50 is larger than" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "outputs" / "search").mkdir(parents=True)
    (tmp_path / "outputs" / "search" / "notes.txt").write_text("mine")
    proc = run_entry("search.py", "ga.sample_size=50", "logger=none")
    assert proc.returncode == 2
    assert [p.name for p in (tmp_path / "outputs" / "search").iterdir()] == ["notes.txt"]
    # the working folder as the run folder: only what Hydra wrote into it goes, never the folder
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    proc = run_entry("search.py", "ga.sample_size=50", "logger=none", "hydra.run.dir=.")
    assert proc.returncode == 2 and "ga.sample_size=50 is larger than" in proc.stderr
    assert here.is_dir() and list(here.iterdir()) == []


# --- resuming from damaged or foreign run folders -------------------------------------------------

def _digest(folder: Path) -> dict[str, str]:
    """Every file's hash; the lock a command takes on the folder (.renas.lock, empty) aside."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".renas.lock"}


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """Two small finished table searches with different budgets."""
    if not (SHARED / "data/nasbench201").is_dir():
        pytest.skip(f"needs shared data at {SHARED / 'data/nasbench201'}")
    root = tmp_path_factory.mktemp("runs")
    for name, budget in (("a", 20), ("b", 30)):
        proc = run_entry("search.py", *TABLE, "ga.population_size=10", "ga.sample_size=3", f"ga.budget={budget}",
                         "logger=none", "progress=none", f"hydra.run.dir={root / name}")
        assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def _set_versions(run: Path, **changed: str) -> None:
    """Rewrite ``run``'s state.pt as if a process with other versions had written it."""
    import torch  # (deferred: only these tests read a state)

    state = torch.load(run / "state.pt", weights_only=True)
    state["versions"] = {**state["versions"], **changed}
    torch.save(state, run / "state.pt")


def _damaged(finished_runs: Path, tmp_path: Path, how: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_runs / "a", run)
    state = run / "state.pt"
    if how == "truncated":
        state.write_bytes(state.read_bytes()[:200])
    elif how == "garbage":
        state.write_bytes(b"this is not a state file\n" * 10)
    elif how == "foreign":
        shutil.copy(finished_runs / "b" / "state.pt", state)
    elif how == "missing":
        state.unlink()
    elif how == "old_keys":  # a search started by renas 0.1, whose evaluator carried the executor's keys
        with (run / ".hydra" / "search" / "overrides.yaml").open("a") as f:
            f.write("- evaluator.workers=1\n")
    elif how == "old_version":  # the same, from a state that records the renas version that wrote it
        with (run / ".hydra" / "search" / "overrides.yaml").open("a") as f:
            f.write("- evaluator.workers=1\n")
        _set_versions(run, renas="0.1.0")
    elif how == "training":  # what train.py leaves (result.json and its checkpoints, no state or history)
        for name in ("state.pt", "history.jsonl", "generations.jsonl", "summary.json"):
            (run / name).unlink()
        (run / "result.json").write_text('{"val_acc": 0.5}')
    elif how == "unstarted":  # killed as it started: an empty history, no state yet
        state.unlink()
        (run / "history.jsonl").write_text("")
    elif how == "overrides_torn":
        (run / ".hydra" / "search" / "overrides.yaml").write_text("- [unclosed\n")
    elif how == "overrides_not_a_list":
        (run / ".hydra" / "search" / "overrides.yaml").write_text("a: 1\n")
    elif how == "config_cut":  # cut short at a line's end: still YAML, without its last sections
        config = run / ".hydra" / "search" / "config.yaml"
        lines = config.read_text().splitlines(keepends=True)
        config.write_text("".join(lines[: len(lines) // 2]))
    elif how == "history_cut":
        lines = (run / "history.jsonl").read_text().splitlines(keepends=True)
        (run / "history.jsonl").write_text("".join(lines[:5]))
    return run


RESUME_CASES = [
    ("truncated", [], "corrupt or truncated and cannot be read (PytorchStreamReader failed reading zip archive: failed finding central directory); the run"),
    ("garbage", [], "corrupt or truncated"),
    ("foreign", [], "different search config"),
    ("missing", [], "state.pt is missing but history.jsonl holds 20 evaluations (deleted, or the folder copied"),
    ("unstarted", [], "the search stopped before it wrote its first state (state.pt); nothing to resume: run its"),
    ("overrides_torn", [], "search/overrides.yaml is damaged and cannot be read (while parsing a flow sequence"),
    ("overrides_not_a_list", [], "search/overrides.yaml is damaged (not a list); the run folder was left as it is"),
    ("config_cut", [], "resume it with the renas version that started it (or "),
    ("history_cut", [], "history"),
    ("old_keys", [], "saved overrides do not compose with this version (Could not override 'evaluator.workers'"),
    ("old_version", [], f"resume it with the renas version that started it (renas 0.1.0; this is {versions()['renas']})"),
    ("intact", ["ga.budget=99"], "would change the search"),
    ("intact", ["algorithm=rea"], "would change the search"),
    # an override given again unchanged is not named among the changes
    ("intact", ["ga.population_size=10", "ga.budget=99"], "error: resume: ga.budget=99 would change the search (ga.budget:"),
    # a training's folder: resume= of train.py's (was: "state.pt not found ... not a search run folder")
    ("training", [], "that is a training's folder (train.py); continue it with: python "),
]


@pytest.mark.parametrize("how,extra,expected", RESUME_CASES, ids=[f"{c[0]}{' ' + c[1][0] if c[1] else ''}" for c in RESUME_CASES])
def test_bad_resume_leaves_the_run_folder_untouched(finished_runs, tmp_path, how, extra, expected):
    run = _damaged(finished_runs, tmp_path, how)
    before = _digest(run)
    new_dir = tmp_path / "new"
    proc = run_entry("search.py", f"resume={run}", *extra, f"hydra.run.dir={new_dir}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and expected in lines[0], proc.stderr[-2000:]
    assert _digest(run) == before
    assert not new_dir.exists()


def test_resuming_a_finished_search_says_so(finished_runs, tmp_path, monkeypatch):
    run = _damaged(finished_runs, tmp_path, "intact")
    before = _digest(run)
    proc = run_entry("search.py", f"resume={run}", "progress=none", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "finished" in proc.stdout and "nothing to resume" in proc.stdout
    assert _digest(run) == before and not (tmp_path / "new").exists()
    # with the working folder as Hydra's run folder: Hydra's files there go too, the folder stays
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    proc = run_entry("search.py", f"resume={run}", "progress=none", "hydra.run.dir=.")
    assert proc.returncode == 0 and "nothing to resume" in proc.stdout, proc.stderr[-2000:]
    assert list(here.iterdir()) == [] and _digest(run) == before


def test_a_resume_with_other_versions_warns_and_records_its_own(finished_runs, tmp_path):
    """A search killed as it wrote its last files (no summary.json), resumed with another torch: a
    warning names what differs, and the summary the resume writes records this process's versions."""
    run = _damaged(finished_runs, tmp_path, "intact")
    (run / "summary.json").unlink()
    _set_versions(run, torch="0.0.1")
    proc = run_entry("search.py", f"resume={run}", "progress=none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = proc.stdout + proc.stderr  # (the log's warnings go to the console, stdout)
    assert f"was run with other versions than this process's (torch 0.0.1 -> {versions()['torch']})" in said
    assert "renas 0" not in said  # only what differs
    assert json.loads((run / "summary.json").read_text())["versions"] == versions()
    # a finished search is not resumed: nothing to warn about
    proc = run_entry("search.py", f"resume={run}", "progress=none")
    assert proc.returncode == 0 and "nothing to resume" in proc.stdout and "other versions" not in proc.stdout + proc.stderr


def test_a_new_search_in_a_folder_that_holds_one_is_refused(finished_runs, tmp_path):
    """E.g. a SLURM job re-run with the same hydra.run.dir: nothing appended, Hydra's files restored."""
    run = _damaged(finished_runs, tmp_path, "intact")
    before = _digest(run)
    proc = run_entry("search.py", *TABLE, "ga.population_size=10", "ga.sample_size=3", "ga.budget=15",
                     "logger=none", f"hydra.run.dir={run}")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {run} already holds a finished search; choose another hydra.run.dir; nothing in it was "
                     f"changed"], proc.stderr[-2000:]  # (it said how to resume a search that was finished)
    assert _digest(run) == before
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "finished": False}))  # stopped short: resumable
    proc = run_entry("search.py", *TABLE, "ga.population_size=10", "ga.sample_size=3", "ga.budget=15",
                     "logger=none", f"hydra.run.dir={run}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [
        f"error: {run} already holds a search; continue it with: python search.py resume={run} (or choose another "
        f"hydra.run.dir); nothing in it was changed"], proc.stderr[-2000:]
    (run / "summary.json").write_text(json.dumps(summary))
    proc = run_entry("search.py", f"resume={run}", "progress=none", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and "nothing to resume" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.needs_shared("data/nasbench201")
def test_a_part_built_as_the_search_starts_fails_in_one_line_and_leaves_no_folder(tmp_path):
    """The logger is built when the search has opened its files: a misspelled ``_target_`` there
    left a run folder with an empty history (and Hydra's message, which names the whole target
    as a missing module)."""
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", *TABLE, "logger=csv", "logger._target_=os.path.nope", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: logger._target_=os.path.nope: os.path has no 'nope'", \
        proc.stderr[-2000:]
    assert not run_dir.exists()


def test_a_hook_whose_module_imports_a_missing_package_says_so(tmp_path, monkeypatch):
    """A hook module of the user's that imports a package not installed was reported as if the
    module itself were missing ("No module named 'myhooks' (not on the Python path, nor under
    ...)"); a module that is not there still is."""
    from renas.errors import ConfigError
    from renas.space.genes import import_function

    (tmp_path / "myhooks.py").write_text("import not_installed_pkg\n\ndef valid(arch):\n    return True\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"cannot import 'myhooks.valid' \(from .*\): ModuleNotFoundError: "
                                          r"No module named 'not_installed_pkg'"):
        import_function("valid", "myhooks.valid")
    with pytest.raises(ConfigError, match=r"cannot import 'nohooks.valid': No module named 'nohooks' \(not on the"):
        import_function("valid", "nohooks.valid")


@pytest.mark.parametrize("script,args", [
    ("search.py", ["hydra.run.dir={file}/run"]),
    ("train.py", ["hydra.run.dir={file}/run"]),
    ("search.py", ["-m", "hydra.sweep.dir={file}/sweep", "seed=0,1"]),
])
def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, script, args):
    """A run or sweep folder under a file ended in Hydra's ``os.makedirs`` traceback, status 1."""
    (tmp_path / "notes.txt").write_text("mine\n")
    args = [a.format(file=tmp_path / "notes.txt") for a in args]
    proc = run_entry(script, *args, "ga.budget=3" if script == "search.py" else "trainer.max_epochs=1", "logger=none")
    key = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith(f"error: {key}=") and proc.stderr.strip().count("\n") == 0, proc.stderr[-2000:]
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder; choose another {key}" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_sweep_logging_online_to_wandb_without_a_key_is_refused_before_any_job(tmp_path, monkeypatch):
    """Each job failed at its W&B start, one after another (about 10 s each without a key), and
    left a sweep folder holding only multirun.yaml."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with a key
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    sweep = tmp_path / "sweep"
    proc = run_entry("search.py", "-m", "seed=0,1", "logger.mode=online", f"hydra.sweep.dir={sweep}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == ("error: logger: W&B online needs an API key and none is set: run `wandb login` or export "
                        "WANDB_API_KEY, or log offline (logger.mode=offline) and `wandb sync` later (every job of the "
                        "sweep has it; no job was started)")
    assert not sweep.exists()
