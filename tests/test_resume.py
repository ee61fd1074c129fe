"""Durable searches: a search killed at any point and resumed ends exactly as one that was
never interrupted, and no completed evaluation is lost or counted twice."""

from __future__ import annotations

import json
import random
import shutil
import signal
from pathlib import Path

import pytest

from conftest import SHARED
from helpers import drive, read_jsonl, run_entry, wandb_run, without_times

TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "ga.population_size=10", "ga.sample_size=3", "ga.budget=60",
         "progress=none", "logger=none", "threads=1", "snapshot.every=4"]


def comparable_summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    s.pop("seconds")
    return s


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted table search of ``TABLE``, the reference of the tests below."""
    if not (SHARED / "data/nasbench201").is_dir():
        pytest.skip(f"needs shared data at {SHARED / 'data/nasbench201'}")
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir


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


@pytest.mark.needs_shared("data/nasbench201")
def test_a_search_of_a_users_config_folder_resumes_from_anywhere(tmp_path, monkeypatch):
    """A search composed from the user's own config folder (``hydra.searchpath``) resumes with
    the command it prints, from another folder: the resume composed the saved overrides without
    that folder, which failed ("Could not find 'search_space/my201'") and blamed the renas
    version. A folder given relative to where the search ran is found from anywhere; a folder
    that moved is named, and ``hydra.searchpath`` on the resume command points at its new place."""
    (tmp_path / "conf" / "search_space").mkdir(parents=True)
    (tmp_path / "conf" / "search_space" / "my201.yaml").write_text("defaults:\n  - nasbench201\n  - _self_\n")
    monkeypatch.chdir(tmp_path)
    done = tmp_path / "done"
    proc = run_entry("search.py", "hydra.searchpath=[file://conf]", *TABLE, "search_space=my201", f"hydra.run.dir={done}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "run"  # (the fault driver runs in the repository: an absolute folder)
    proc = drive("eval", 7, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *TABLE, "search_space=my201",
                 f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    proc = run_entry("search.py", f"resume={done}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and "is finished (60 of 60 evaluations)" in proc.stdout, proc.stderr[-2000:]
    (tmp_path / "conf").rename(tmp_path / "moved")
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and f"its config folders (file://{tmp_path / 'conf'}) must still hold" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # not Hydra's warning as well
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.searchpath=[file://{tmp_path / 'moved'}]",
                     f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["step"] for r in read_jsonl(run_dir / "history.jsonl")] == list(range(60))


@pytest.mark.needs_shared("data/nasbench201")
def test_a_search_killed_while_it_wrote_its_last_files_resumes_to_them(tmp_path):
    """Killed after its last state but before ``summary.json``, the plots and the W&B run's end
    (about 1.5 s of a 12 s table search): the resume said "finished; nothing to resume" and those
    files never came. It now writes them, the same as an uninterrupted search's."""
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    reference = comparable_summary(run_dir)
    generations = read_jsonl(run_dir / "generations.jsonl")
    (run_dir / "summary.json").unlink()  # where such a kill leaves the folder
    shutil.rmtree(run_dir / "plots")
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert comparable_summary(run_dir) == reference
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == ["children.png", "controller_reward.png", "fitness.png"]
    assert read_jsonl(run_dir / "generations.jsonl") == generations  # nothing logged twice
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and "is finished (60 of 60 evaluations); nothing to resume" in proc.stdout


@pytest.mark.needs_shared("data/nasbench201")
def test_a_search_killed_as_it_started_is_run_again_in_its_folder(tmp_path, reference):
    """SIGKILL before the first state file (the history open, still empty) left a folder that the
    same command refused ("already holds a search; continue it with resume=") and resume= refused
    too ("state.pt not found"): each sent the user to the other. Nothing was done, so the command
    starts again there."""
    run_dir = tmp_path / "run"
    proc = drive("history", 1, *TABLE, f"hydra.run.dir={run_dir}")  # killed in the first evaluation's record
    assert proc.returncode == -signal.SIGKILL
    (run_dir / "state.pt").unlink()  # as if killed before its first state: an empty history
    (run_dir / "history.jsonl").write_text("")
    proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert without_times(read_jsonl(run_dir / "history.jsonl")) == without_times(read_jsonl(reference / "history.jsonl"))


@pytest.mark.needs_shared("data/nasbench201")
@pytest.mark.parametrize("when", ["before the last history line", "after it", "after the last snapshot"])
def test_a_stop_at_the_last_evaluation_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, reference, when):
    """Ctrl-C while the last evaluation is recorded (its history line, generation, W&B row, the
    final snapshot): a stop like any other, whose resume completes the records and writes the
    end files. The summary said ``stopped: "interrupted"`` beside ``finished: true`` and the
    resume "finished; nothing to resume", so the last generation, the plots or the summary's
    figures never came (and a first version of this change, which took ``steps == budget`` for
    complete, lost the last generation, or the resume when the history line was not written)."""
    from renas.search import run as search_run
    from renas.tracking import history

    append, on_step = history.HistoryWriter.append, search_run.Snapshots.on_step

    def stop_in_append(self, record):
        last = self.path.name == "history.jsonl" and record["step"] == 59
        if last and when == "before the last history line":
            raise KeyboardInterrupt
        append(self, record)
        if last and when == "after it":
            raise KeyboardInterrupt

    def stop_after_snapshot(self, search, record):
        on_step(self, search, record)
        if search.finished:
            raise KeyboardInterrupt

    monkeypatch.setattr(history.HistoryWriter, "append", stop_in_append)
    monkeypatch.setattr(search_run.Snapshots, "on_step", stop_after_snapshot)
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run_dir}")
    monkeypatch.setattr(history.HistoryWriter, "append", append)
    monkeypatch.setattr(search_run.Snapshots, "on_step", on_step)
    assert proc.returncode == 130 and "continue with: " in proc.stderr and f"resume={run_dir}" in proc.stderr, \
        proc.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["stopped"] == "interrupted"
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert comparable_summary(run_dir) == comparable_summary(reference)  # stopped: null, finished: true
    assert read_jsonl(run_dir / "generations.jsonl") == read_jsonl(reference / "generations.jsonl")
    assert without_times(read_jsonl(run_dir / "history.jsonl")) == without_times(read_jsonl(reference / "history.jsonl"))
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and "is finished (60 of 60 evaluations)" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.needs_shared("data/nasbench201")
def test_a_cut_generations_file_is_written_again_from_the_snapshot(tmp_path, reference):
    """``generations.jsonl`` cut (or deleted) in a stopped search's folder: the resume went on
    from the lines left (41 of 50 generations at the end, or only those after the snapshot). The
    snapshot records every generation up to it, so the file is written again from it."""
    for cut in ("half", "deleted"):
        run_dir = tmp_path / cut
        proc = drive("eval", 40, *TABLE, f"hydra.run.dir={run_dir}")
        assert proc.returncode == -signal.SIGKILL
        generations = run_dir / "generations.jsonl"
        if cut == "half":
            lines = generations.read_text().splitlines(keepends=True)
            generations.write_text("".join(lines[: len(lines) // 2]))
        else:
            generations.unlink()
        proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "written again from the snapshot" in (run_dir / "search.log").read_text()
        assert read_jsonl(generations) == read_jsonl(reference / "generations.jsonl")


def test_config_folders_are_made_absolute_from_where_the_command_ran():
    """A resume composes with the folders of the search's ``hydra.searchpath``, from anywhere: a
    relative one is taken from the folder the search ran in, a bare one too (Hydra reads it as a
    ``file://`` folder; it was left relative and not found from elsewhere)."""
    from renas.config import absolute_searchpath, searchpath_override

    assert absolute_searchpath(["my_conf", "file://c", "file:///abs", "pkg://my.conf", "/abs2"], "/w") == [
        "file:///w/my_conf", "file:///w/c", "file:///abs", "pkg://my.conf", "/abs2"]
    assert searchpath_override(["file:///a b/it's"]) == "hydra.searchpath=['file:///a b/it\\'s']"


@pytest.mark.needs_shared("data/nasbench201")
def test_run_search_refuses_a_folder_that_holds_a_search(tmp_path):
    """From a script, ``run_search`` into a folder that holds a search appended a second search
    to its history; it is refused, without the advice of ``resume=`` (which takes only a
    command's folder, with its ``.hydra/``)."""
    from helpers import compose
    from renas.errors import ConfigError
    from renas.search.run import run_search

    cfg = compose("search", [*TABLE, "ga.budget=12"])
    run_search(cfg, tmp_path / "run")
    before = (tmp_path / "run" / "history.jsonl").read_text()
    with pytest.raises(ConfigError, match=r"already holds a search; choose another run folder; nothing in it was changed$"):
        run_search(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "history.jsonl").read_text() == before


@pytest.mark.needs_shared("data/nasbench201")
def test_a_killed_search_resumes_into_one_whole_offline_wandb_run(tmp_path, reference):
    """SIGKILL loses what W&B still buffered (the killed run's file can be 7 bytes after 30
    evaluations), and a resumed offline run is a new file: the resume logs the whole past from
    the run folder into it and moves the earlier file to ``wandb/superseded/``, so
    ``wandb sync <run>/wandb/offline-run-*`` uploads one run with every evaluation and
    generation once. A sweep job's resume stays in its sweep's group, under its name (a single
    search's is the same code without the job's number and group)."""
    table = [a if a != "logger=none" else "logger=wandb" for a in TABLE]
    run_dir = tmp_path / "sweep" / "job"
    proc = drive("history", 30, "-m", "seed=0", *table, f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweep.subdir=job")
    assert proc.returncode == -signal.SIGKILL
    proc = run_entry("search.py", f"resume={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = read_jsonl(run_dir / "history.jsonl")
    assert without_times(history) == without_times(read_jsonl(reference / "history.jsonl"))

    run = wandb_run(run_dir)  # (asserts one offline run in wandb/)
    assert [p.name.rsplit("-", 1)[1] for p in (run_dir / "wandb" / "superseded").iterdir()] == [run["id"]]
    assert json.loads((run_dir / "summary.json").read_text())["wandb_run_id"] == run["id"]
    evaluations = [row for row in run["history"] if "evaluation" in row]
    assert [row["evaluation"] for row in evaluations] == list(range(1, 61))
    assert [row["eval/fitness"] for row in evaluations] == pytest.approx([r["fitness"] for r in history])
    assert [row["eval/best_so_far"] for row in evaluations] == pytest.approx(
        [max(r["fitness"] for r in history[: i + 1]) for i in range(60)])
    generations = [row for row in run["history"] if "generation" in row]
    assert [{k: v for k, v in row.items() if not k.startswith("_")} for row in generations] == [
        {k: v for k, v in g.items() if v is not None} for g in read_jsonl(run_dir / "generations.jsonl")]
    assert run["name"] == "renas-s0-0" and run["group"].endswith("_sweep")
    choices = run["config"]["choices"]
    assert choices.get("value", choices)["algorithm"] == "renas"  # (the resumed run's, saved with its state)
    assert run["summary"]["children/nrows"] == 60
    # which table, and the threads it ran with resolved: in the summary and the W&B config (a rerun can check them)
    import torch

    data = torch.load(run_dir / "state.pt", weights_only=False)["evaluator_data"]
    assert data["table"].endswith("nb201_cifar10.csv") and len(data["digest"]) == 64
    assert json.loads((run_dir / "summary.json").read_text())["evaluator_data"] == data
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in run["config"].items()}
    assert config["evaluator_data"] == data and config["threads"] == 1


@pytest.mark.needs_shared("data/nasbench201")
def test_a_killed_search_resumes_its_csv_metrics_whole_with_its_thread_count(tmp_path):
    """``logger=csv`` kept its rows in memory and wrote the file again on each: a resume's file
    held only the generations logged after it; the resume writes them from the run folder.
    ``threads=null`` (the default) is torch's own count, which a joblib sweep job gets as 1 and a
    shell as every core; with real training the count changes the children's fitness, so it is
    recorded (``summary.json``, ``state.pt``) and a resume without ``threads=`` takes it."""
    import csv

    import torch

    run_dir = tmp_path / "run"
    table = [a if a != "logger=none" else "logger=csv" for a in TABLE if not a.startswith("threads=")]
    proc = drive("history", 30, *table, f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL  # (the killed copy trained with 1 thread)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        proc = run_entry("search.py", f"resume={run_dir}")
    finally:
        torch.set_num_threads(before)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    generations = read_jsonl(run_dir / "generations.jsonl")
    assert [int(r["generation"]) for r in rows] == [g["generation"] for g in generations] == list(range(6))
    assert [float(r["fitness/best_so_far"]) for r in rows] == pytest.approx([g["fitness/best_so_far"] for g in generations])
    assert json.loads((run_dir / "summary.json").read_text())["threads"] == 1
    assert "threads=1, as the run had when it started (give threads= to change it)" in (run_dir / "search.log").read_text()


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder (the lock file aside), by relative path, with its bytes."""
    from renas.tracking.run_folder import LOCK_FILE

    return {str(f.relative_to(run_dir)): f.read_bytes() for f in sorted(run_dir.rglob("*"))
            if f.is_file() and f.name != LOCK_FILE}


@pytest.mark.needs_shared("data/nasbench201")
def test_a_folder_in_use_is_refused_and_overrides_that_do_not_apply_are_one_line(tmp_path, reference):
    """Two resumes of one folder at once (or a resume of a search still running: a requeued job
    whose first copy is alive) both ran to the end: history.jsonl held 100 lines with steps
    twice. A search now holds its folder (a lock on .renas.lock) and a second process is refused
    before it reads or writes anything. Also: ``resume=<run> evaluator.metric=...`` of a table
    search failed on the default evaluator's schema ("Key 'metric' not in 'TrainEvaluatorSchema'"),
    and ``+evaluator.table=...`` (Hydra's suggestion) with a traceback."""
    from filelock import FileLock

    run_dir = tmp_path / "run"
    proc = drive("eval", 20, *TABLE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL
    before = _files(run_dir)
    with FileLock(str(run_dir / ".renas.lock"), timeout=0):  # as the search at work there holds it
        proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines()[-1] == (
            f"error: {run_dir} is in use: another process holds its search ({run_dir / '.renas.lock'} is locked: the "
            f"search still running, or another resume of it); wait for it to end or stop it, then resume; nothing in "
            f"it was changed")
        proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run_dir}")  # a new search pointed there
        assert proc.returncode == 2 and "choose another hydra.run.dir; nothing in it was changed" in proc.stderr
    assert _files(run_dir) == before  # Hydra's files the new search's start rewrote are put back
    may = "only logger, progress, threads, snapshot, executor.address, executor.log_to_driver may change on resume"
    for override in ("evaluator.metric=c10_valid_200ep", "+evaluator.table=/x.csv"):
        proc = run_entry("search.py", f"resume={run_dir}", override, f"hydra.run.dir={tmp_path / 'new'}")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"error: resume: {override} cannot be given to a resumed search; {may}"
    assert _files(run_dir) == before
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")  # free again
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert without_times(read_jsonl(run_dir / "history.jsonl")) == without_times(read_jsonl(reference / "history.jsonl"))


def test_a_resume_that_reads_other_results_is_refused(tmp_path):
    """A resumed table search read whatever table its relative path found from the folder it ran
    in (or a table edited in place) and mixed two tables' fitness in one history. The state now
    keeps a digest of the rows read; other rows are refused, the same rows re-saved are not."""
    import csv

    table = tmp_path / "table.csv"
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "toy_table" / "table.csv", table)
    original = table.read_text()
    run_dir = tmp_path / "run"
    proc = drive("eval", 20, "experiment=toy_table", f"evaluator.table={table}", "ga.budget=40", "progress=none",
                 "logger=none", "threads=1", "snapshot.every=4", f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL
    before = _files(run_dir)
    rows = list(csv.reader(original.splitlines()))
    column = rows[0].index("valid_acc")
    for row in rows[1:]:
        row[column] = str(100 - float(row[column]))
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: evaluator.table={table} holds other results than the table this search started with; resume it with "
        f"that table; the run folder was left as it is")
    assert _files(run_dir) == before
    rows = list(csv.reader(original.splitlines()))
    with open(table, "w", newline="") as f:  # the same rows, re-saved with a column more and Windows line ends
        csv.writer(f, lineterminator="\r\n").writerows([[*r, "note" if i == 0 else ""] for i, r in enumerate(rows)])
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(read_jsonl(run_dir / "history.jsonl")) == 40


@pytest.mark.needs_shared("data/nasbench201")
def test_a_history_that_does_not_replay_leaves_no_summary_or_plots(tmp_path):
    """A resume refused as it replayed the history (a fitness edited after the snapshot) still
    wrote ``summary.json`` (best 99.9, ``finished: false``) and ``plots/`` as it stopped."""
    run_dir = tmp_path / "run"
    args = [a for a in TABLE if not a.startswith("snapshot.")]
    proc = drive("eval", 40, *args, "snapshot.every=1000", "snapshot.seconds=1000", f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL
    history = run_dir / "history.jsonl"
    lines = history.read_text().splitlines()
    record = json.loads(lines[20])
    record["fitness"] = 99.9
    lines[20] = json.dumps(record)
    history.write_text("\n".join(lines) + "\n")
    proc = run_entry("search.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and "do not belong together" in proc.stderr, proc.stderr[-2000:]
    assert not (run_dir / "summary.json").exists() and not (run_dir / "plots").exists()


def test_a_refused_command_leaves_a_folder_in_use_as_it_is(tmp_path):
    """A folder a search has just started in holds only Hydra's files and the lock until its
    first state: a second command refused there took it for its own empty folder and deleted
    it, the lock file with it (so a third was not refused)."""
    from filelock import FileLock

    run_dir = tmp_path / "run"
    (run_dir / ".hydra" / "search").mkdir(parents=True)  # the starting search's files, its own copy of Hydra's
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        (run_dir / ".hydra" / "search" / name).write_text(f"# the first search's {name}\n")
        (run_dir / ".hydra" / name).write_text(f"# the first search's {name}\n")
    with FileLock(str(run_dir / ".renas.lock"), timeout=0):  # as the search starting there holds it
        before = _files(run_dir)
        for script, args in (("search.py", ["experiment=toy_table", "ga.budget=10"]),
                             ("train.py", ["search_space=nasbench201"])):
            proc = run_entry(script, *args, "logger=none", f"hydra.run.dir={run_dir}")
            assert proc.returncode == 2 and "is in use: another process holds its" in proc.stderr, proc.stderr[-2000:]
            assert (run_dir / ".renas.lock").is_file()
            assert _files(run_dir) == before  # refused before Hydra writes its files there


def test_a_search_keeps_its_own_hydra_files_whoever_rewrote_them(tmp_path, monkeypatch):
    """Two sweeps given one sweep folder (two ``-m`` commands started in the same second, before
    the folder's name had microseconds): Hydra writes each job's ``.hydra/`` before the job takes
    its lock, and the job that held the folder copied the other sweep's files as its own: its
    resume was refused ("seed: 0 in the state, 7 in .hydra/config.yaml"). It now writes them from
    its own config. And ``resume=<run> hydra.run.dir=<run>`` left the resume command's files in
    ``.hydra/`` (what ``renas.compare`` reads); the search's are put back."""
    import renas.main

    sweep, small = tmp_path / "sweep", [*TABLE, "ga.budget=12"]
    original = renas.main.refuse_existing_search

    def another_sweep_wrote(run_dir: Path, *args) -> None:  # the other sweep's job, at the same moment
        (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=7\n")
        config = run_dir / ".hydra" / "config.yaml"
        config.write_text(config.read_text().replace("\nseed: 0\n", "\nseed: 7\n"))
        original(run_dir, *args)

    monkeypatch.setattr(renas.main, "refuse_existing_search", another_sweep_wrote)
    proc = run_entry("search.py", "-m", *small, "seed=0", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    monkeypatch.undo()
    job = sweep / "0"
    for folder in (job / ".hydra", job / ".hydra" / "search"):
        assert "- seed=0" in (folder / "overrides.yaml").read_text()
        assert "\nseed: 0\n" in (folder / "config.yaml").read_text()
    kept = {f.name: f.read_text() for f in (job / ".hydra").glob("*.yaml")}
    proc = run_entry("search.py", f"resume={job}", f"hydra.run.dir={job}")
    assert proc.returncode == 0 and "nothing to resume" in proc.stdout, proc.stderr[-2000:]
    assert {f.name: f.read_text() for f in (job / ".hydra").glob("*.yaml")} == kept
    # refused (an override that would change the search): the files were left as the refused command wrote them
    proc = run_entry("search.py", f"resume={job}", f"hydra.run.dir={job}", "ga.budget=9")
    assert proc.returncode == 2 and "ga.budget=9 would change the search" in proc.stderr, proc.stderr[-2000:]
    assert {f.name: f.read_text() for f in (job / ".hydra").glob("*.yaml")} == kept
    # a folder without the copy (made before it existed): the command destroyed the only one, and every resume failed
    shutil.rmtree(job / ".hydra" / "search")
    proc = run_entry("search.py", f"resume={job}", f"hydra.run.dir={job}")
    assert proc.returncode == 0 and "nothing to resume" in proc.stdout, proc.stderr[-2000:]
    assert {f.name: f.read_text() for f in (job / ".hydra").glob("*.yaml")} == kept


def test_a_sweep_job_refused_by_a_held_folder_names_the_sweeps_setting(tmp_path):
    """A sweep's job refused because another process holds its folder said "choose another
    hydra.run.dir", a setting a sweep's job folders do not come from."""
    from filelock import FileLock

    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    with FileLock(str(job / ".renas.lock"), timeout=0):  # as a search of another sweep at work there
        proc = run_entry("search.py", "-m", *TABLE, "ga.budget=12", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert "is in use: another process holds its search" in proc.stderr, proc.stderr[-2000:]
    assert "; choose another hydra.sweep.dir; nothing in it was changed" in proc.stderr
    assert not (job / "history.jsonl").exists()
