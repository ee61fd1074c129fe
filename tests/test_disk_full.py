"""A full disk is an ordinary error: one line, exit status 3, no temporary files, nothing lost.

Writes are made to fail with ENOSPC at the k-th call of :func:`renas.tracking.files.write_data`
(the one place the run folder's files get their bytes; half the data is written first, as a
real full disk does), then the search is resumed and must end exactly as an uninterrupted one.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from helpers import read_jsonl, run_entry, without_times

TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "ga.population_size=10", "ga.sample_size=3",
         "ga.budget=30", "progress=none", "logger=none", "threads=1", "snapshot.every=4"]


class FullAfter:
    """``write_data`` that writes half of the k-th call's data and then raises ENOSPC."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, 0

    def __call__(self, f, data) -> None:
        self.calls += 1
        if self.calls >= self.k:
            f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        f.write(data)


def _summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    s.pop("seconds")
    return s


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("reference") / "run"
    proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run


@pytest.mark.needs_shared("data/nasbench201")
def test_a_search_that_cannot_write_its_first_state_leaves_no_folder(tmp_path, monkeypatch):
    import renas.tracking.files as files

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(files, "write_data", FullAfter(1))
        proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run}")
    assert proc.returncode == 3, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("no evaluation had finished; free space and run the command again")
    assert not run.exists()


@pytest.mark.needs_shared("data/nasbench201")
@pytest.mark.parametrize("k", [2, 3, 7, 20, 41])
def test_a_full_disk_stops_with_one_line_and_the_search_resumes_exactly(reference, tmp_path, monkeypatch, k):
    import renas.tracking.files as files

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(files, "write_data", FullAfter(k))
        proc = run_entry("search.py", *TABLE, f"hydra.run.dir={run}")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: disk full while writing ") and "nothing is lost" in lines[0]
    assert lines[0].endswith(f"resume with: python search.py resume={run}")
    assert not list(run.rglob("*.tmp")), "a temporary file was left behind"

    proc = run_entry("search.py", f"resume={run}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = read_jsonl(run / "history.jsonl")
    assert [r["step"] for r in history] == list(range(30))
    assert without_times(history) == without_times(read_jsonl(reference / "history.jsonl"))
    assert _summary(run) == _summary(reference)
    assert read_jsonl(run / "generations.jsonl") == read_jsonl(reference / "generations.jsonl")


def test_train_py_reports_a_full_disk_in_one_line(tmp_path, monkeypatch):
    import lightning.pytorch as pl

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    run = tmp_path / "run"
    monkeypatch.setattr(pl.Trainer, "save_checkpoint", full)
    proc = run_entry("train.py", "threads=1", "trainer.enable_progress_bar=false", "trainer.max_epochs=1",
                     "search_space.channels=4", "dataset.subset=0.2", "logger=none", f"hydra.run.dir={run}")
    assert proc.returncode == 3, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    # the first checkpoint written is the first epoch's best.ckpt; nothing to resume from yet
    assert lines == [f"error: disk full while writing {run / 'checkpoints' / 'best.ckpt'}; free space and run it again"], proc.stderr
    assert not list(run.rglob("*.tmp"))
