"""Ctrl-C at any moment of search.py and train.py: one line, status 130, the resume command only
when there is something to resume, and no run folder left behind when there is not.

The interrupt is made in this process (:func:`helpers.run_entry`), by a step of the command that
raises ``KeyboardInterrupt`` as a real Ctrl-C would there (tests/test_resume_training.py sends
real signals to a running search)."""

from __future__ import annotations

import json
import sys

import pytest

import helpers

NOTHING = "nothing to resume: run the command again"


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def run_entry(*args: str):
    """:func:`helpers.run_entry`; a ``KeyboardInterrupt`` that escapes the command (the user's
    traceback) fails the test instead of stopping pytest."""
    try:
        return helpers.run_entry(*args)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the command: the user gets a traceback")


def _lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _interrupted(proc, expected: str) -> None:
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = _lines(proc)
    assert len(lines) == 1 and lines[0].startswith("interrupted") and expected in lines[0], proc.stderr[-2000:]


@pytest.mark.parametrize("where", ["start", "search"])
def test_an_early_ctrl_c_of_a_search_leaves_nothing_and_offers_no_resume(tmp_path, monkeypatch, where):
    """``start``: the first step of the command (where the deferred imports run, ~3 s: Ctrl-C
    there was a traceback); ``search``: the search's own setup, before its first state file
    (the resume command it printed then could not resume anything)."""
    import renas.main
    import renas.search.run

    if where == "start":
        monkeypatch.setattr(renas.main, "quiet_lightning", _ctrl_c)
    else:
        monkeypatch.setattr(renas.search.run, "run_search", _ctrl_c)
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", "logger=none", "threads=1", f"hydra.run.dir={run_dir}")
    _interrupted(proc, NOTHING)
    assert not run_dir.exists()


def test_an_early_ctrl_c_after_the_wandb_run_started_leaves_no_run_behind(tmp_path, monkeypatch):
    """Ctrl-C once W&B's run has started but before the search's first state: the run is ended
    then (not at exit) and its offline folder goes with the rest, so no stray run is left to
    sync and no run folder is left that only holds it."""
    import renas.search.run

    monkeypatch.setattr(renas.search.run, "Search", _ctrl_c)
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", "logger=wandb", "threads=1", f"hydra.run.dir={run_dir}")
    _interrupted(proc, NOTHING)
    assert not run_dir.exists()

    # a folder that already holds W&B runs of the user's own (hydra.run.dir=. in a project): they stay
    import os

    theirs = tmp_path / "project" / "wandb" / "offline-run-20260101_000000-abc123"
    theirs.mkdir(parents=True)
    (theirs / "run-abc123.wandb").write_text("keep")
    os.utime(theirs, (1.7e9, 1.7e9))
    proc = run_entry("search.py", "logger=wandb", "threads=1", f"hydra.run.dir={tmp_path / 'project'}")
    _interrupted(proc, NOTHING)
    assert [p.name for p in theirs.parent.iterdir()] == [theirs.name] and (theirs / "run-abc123.wandb").read_text() == "keep"


def test_an_early_ctrl_c_leaves_the_default_run_folder_out_too(tmp_path, monkeypatch):
    """Hydra's default ``outputs/search/<date>/<time>`` goes with the folders it made above it."""
    import renas.search.run

    monkeypatch.setattr(renas.search.run, "run_search", _ctrl_c)
    monkeypatch.chdir(tmp_path)
    proc = run_entry("search.py", "logger=none", "threads=1")
    _interrupted(proc, NOTHING)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_before_the_task_starts_is_one_line(tmp_path, monkeypatch):
    """Ctrl-C while Hydra still composes (here: its run callback) is no traceback either."""
    import renas.cli

    monkeypatch.setattr(renas.cli.CheckFirst, "on_run_start", _ctrl_c)
    proc = run_entry("search.py", "logger=none", "threads=1", f"hydra.run.dir={tmp_path / 'run'}")
    _interrupted(proc, "before the command started; " + NOTHING)
    assert not (tmp_path / "run").exists()



def basic_launcher() -> type:
    """The class Hydra launches a sweep's jobs with: the one its plugin scan loaded (the scan
    executes the plugin modules again, so the class imported from the module may not be it)."""
    from hydra.core.plugins import Plugins

    return Plugins.instance().class_name_to_class["hydra._internal.core_plugins.basic_launcher.BasicLauncher"]

def test_ctrl_c_in_a_sweeps_launcher_points_at_the_sweep_folder(tmp_path, monkeypatch):
    """The joblib and submitit launchers run the jobs in other processes: Ctrl-C reaches the
    launcher (here: the basic one, interrupted as joblib's waits) while the jobs stop on their own,
    each resumable. It used to say "before the command started; nothing to resume"."""
    import renas.cli

    monkeypatch.setattr(renas.cli, "_SWEEP_DIR", None)  # set by the sweep; put back after the test
    monkeypatch.setattr(basic_launcher(), "launch", _ctrl_c)
    sweep = tmp_path / "sweep"
    proc = run_entry("search.py", "-m", "seed=0,1", "logger=none", "threads=1", f"hydra.sweep.dir={sweep}")
    _interrupted(proc, f"the sweep's jobs that had started are in {sweep} (a folder each): continue one with "
                       f"python search.py resume=<its folder>")



def test_a_sweep_job_whose_process_died_is_one_line_pointing_at_the_sweep_folder(tmp_path, monkeypatch):
    """A joblib worker killed (out of memory, ``kill -9``) ended the sweep in a page of loky's
    ``TerminatedWorkerError`` (submitit: ``UncompletedJobError``), with no word on where the
    jobs are or how to go on. Now one line, status 1 (here: the basic launcher raising as joblib's does)."""
    import renas.cli

    class TerminatedWorkerError(Exception):
        pass

    def died(*args, **kwargs):
        raise TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated.\nmore")

    monkeypatch.setattr(renas.cli, "_SWEEP_DIR", None)  # set by the sweep; put back after the test
    monkeypatch.setattr(basic_launcher(), "launch", died)
    sweep = tmp_path / "sweep"
    proc = run_entry("search.py", "-m", "seed=0,1", "logger=none", "threads=1", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "error: a job of the sweep died (TerminatedWorkerError: A worker process managed by the executor was unexpectedly "
        f"terminated.); the sweep stopped; the jobs that had started are in {sweep} (a folder each); continue an "
        "unfinished one with python search.py resume=<its folder>"], proc.stderr[-2000:]

def test_a_search_interrupted_after_its_first_state_says_how_to_resume(tmp_path, monkeypatch):
    import renas.search.run

    def started(cfg, run_dir, **kwargs):
        (run_dir / "state.pt").write_bytes(b"a state")  # what run_search writes before its first evaluation
        raise KeyboardInterrupt

    monkeypatch.setattr(renas.search.run, "run_search", started)
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", "logger=none", "threads=1", f"hydra.run.dir={run_dir}")
    _interrupted(proc, f"continue with: python search.py resume={run_dir}")
    assert (run_dir / "state.pt").is_file()


def test_a_resume_interrupted_while_it_reads_the_folder_names_that_folder(tmp_path, monkeypatch):
    import renas.search.resume

    monkeypatch.setattr(renas.search.resume, "prepare_resume", _ctrl_c)
    old = tmp_path / "old"
    old.mkdir()
    proc = run_entry("search.py", f"resume={old}", "threads=1", f"hydra.run.dir={tmp_path / 'new'}")
    _interrupted(proc, f"continue with: python search.py resume={old}")
    assert not (tmp_path / "new").exists() and old.is_dir()


@pytest.mark.parametrize("checkpointed", [False, True])
def test_ctrl_c_of_a_training_offers_a_resume_only_with_a_checkpoint(tmp_path, monkeypatch, checkpointed):
    """Before the first checkpoint the resume command could only fail (``no checkpoints/last.ckpt``):
    the message says there is nothing to resume and the folder goes; with one, it is the resume command."""
    import renas.train.final

    def training(cfg, run_dir, resume_from=None):
        (run_dir / ".train_state.json").write_text('{"run_id": null}')
        (run_dir / "checkpoints").mkdir()
        if checkpointed:
            (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(renas.train.final, "train_architecture", training)
    run_dir = tmp_path / "run"
    proc = run_entry("train.py", "logger=none", "threads=1", f"hydra.run.dir={run_dir}")
    if checkpointed:
        _interrupted(proc, f"the training is checkpointed; continue with: python train.py resume={run_dir}")
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    else:
        _interrupted(proc, "before its first checkpoint; " + NOTHING)
        assert not run_dir.exists()


def test_ctrl_c_at_the_start_of_a_training_is_one_line(tmp_path, monkeypatch):
    import renas.main

    monkeypatch.setattr(renas.main, "quiet_lightning", _ctrl_c)
    proc = run_entry("train.py", "logger=none", "threads=1", f"hydra.run.dir={tmp_path / 'run'}")
    _interrupted(proc, NOTHING)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("script", ["search.py", "train.py"])
def test_ctrl_c_while_the_script_imports_the_package_is_one_line(script, monkeypatch):
    """The first fraction of a second, before renas.main's handlers exist: the script's own import."""
    import types

    class Importing(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "renas.main", Importing("renas.main"))  # `from renas.main import ...` fails there
    proc = run_entry(script)
    _interrupted(proc, "before the command started; " + NOTHING)


@pytest.mark.needs_shared("data/nasbench201")
def test_ctrl_c_while_the_last_files_are_written_is_held_until_they_are(tmp_path, monkeypatch):
    """A real SIGTERM while the plots are drawn: they and the W&B run's end are finished first,
    then the command stops with 143 saying the search is complete (it used to leave the plots and
    the W&B summary half-written, exit 143 and offer a resume that found nothing to do)."""
    import os
    import signal

    from renas.tracking import plots

    real = plots.plot_generations

    def interrupted_plot(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # held; acted on once the files are written
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_generations", interrupted_plot)
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background job
    run_dir = tmp_path / "run"
    try:
        proc = run_entry("search.py", "search_space=nasbench201", "evaluator=nasbench201", "ga.budget=12",
                         "logger=none", "threads=1", f"hydra.run.dir={run_dir}")
    finally:
        import renas.errors

        renas.errors._terminated = None  # this process goes on with the next test
    # then acted on: the command stops as asked (a sweep's next job must not start), its results complete
    assert proc.returncode == 143 and proc.stderr.strip() == (
        f"terminated (SIGTERM) as the search finished; its results are complete in {run_dir}"), proc.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["finished"] is True
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == ["children.png", "controller_reward.png", "fitness.png"]
    assert "SIGTERM while the search's last files were written: they were finished first (the search " \
           "is complete)" in (run_dir / "search.log").read_text()
    assert signal.getsignal(signal.SIGINT) == before  # put back


def test_a_second_signal_while_the_last_files_are_written_goes_through():
    """Only the first signal is held: a second one acts at once (a W&B upload that hangs at the
    end can still be stopped), and the handlers are put back either way."""
    import os
    import signal

    from renas.errors import act_on_held, signals_held

    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job ignores it)
    try:
        said = []
        with pytest.raises(KeyboardInterrupt):
            with signals_held(said.extend) as held:
                os.kill(os.getpid(), signal.SIGINT)  # held
                assert held == ["SIGINT"]
                os.kill(os.getpid(), signal.SIGINT)  # goes through: Python's own handler raises
                pytest.fail("the second Ctrl-C was held too")
        assert said == ["SIGINT"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    with pytest.raises(KeyboardInterrupt):
        act_on_held(["SIGINT"])
    act_on_held([])  # nothing held: nothing raised


@pytest.mark.needs_shared("data/nasbench201")
def test_a_search_done_puts_back_the_sigterm_handler_it_found(tmp_path):
    """A search made SIGTERM raise in its process and left it so: a sweep's joblib worker, idle
    after its job, then ignored SIGTERM (the exception raised where no job handled it) and lived
    on at 690 MB. The handler before the search is put back when it ends, also when it fails."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    table = ["search_space=nasbench201", "evaluator=nasbench201", "ga.budget=12", "logger=none", "progress=none", "threads=1"]
    proc = run_entry("search.py", *table, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0 and signal.getsignal(signal.SIGTERM) is before, proc.stderr[-2000:]
    proc = run_entry("search.py", *table, "evaluator.table=/nonexistent.csv", f"hydra.run.dir={tmp_path / 'bad'}")
    assert proc.returncode == 2 and signal.getsignal(signal.SIGTERM) is before
