"""Children evaluated concurrently: local worker processes and Ray."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from helpers import REPO, compose, read_jsonl, without_times
from renas.search.run import run_search

pytestmark = [pytest.mark.needs_shared("data/nasbench201"), pytest.mark.slow]

BUDGET = 20  # two generations: enough for parents, rewards and a kill at the 12th child
TABLE = ["search_space=nasbench201", "evaluator=nasbench201", "ga.population_size=10", "ga.sample_size=3", f"ga.budget={BUDGET}",
         "logger=none", "progress=none", "threads=1"]
LOCAL = ["executor.threads_per_worker=1"]  # (the default: cores / workers)
KILLER = ["evaluator._target_=killer.KillOnceTableEvaluator", "+evaluator.victim=12"]


@pytest.fixture(scope="module")
def local_ray():
    """A two-node Ray cluster on this machine for this module only (``ray.cluster_utils.Cluster``:
    a head and a worker node, 1 CPU each, loopback, no dashboard); the search's driver joins it as
    it would join a real cluster (``executor.address``). Workers import the test doubles
    (``killer``, tests/) and the example hooks (examples/) through the job's runtime environment."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    path = [str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")]
    ray.init(address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(path)}})
    yield ray
    ray.shutdown()
    cluster.shutdown()


def _search(tmp_path: Path, name: str, *overrides: str) -> list[dict]:
    run_dir = tmp_path / name
    summary = run_search(compose("search", [*TABLE, *overrides]), run_dir)
    history = read_jsonl(run_dir / "history.jsonl")
    assert summary["finished"] and summary["evaluations"] == len(history) == BUDGET
    assert [r["step"] for r in history] == list(range(BUDGET))  # each evaluation recorded once
    assert len({r["arch"] for r in history}) == BUDGET
    return history


def test_one_worker_gives_the_sequential_history_on_every_executor(tmp_path, local_ray, monkeypatch):
    sequential = without_times(_search(tmp_path, "inline"))
    assert without_times(_search(tmp_path, "ray", "executor=ray")) == sequential
    # a worker process, not this one: force the process pool with workers=1 by a one-worker pool
    from renas.evaluate import executors

    def pool_of_one(cfg, evaluator, run_dir, threads=None):
        return executors.LocalExecutor(executors.evaluator_spec(cfg, run_dir), 1, 1)

    monkeypatch.setattr(executors, "make_executor", pool_of_one)
    assert without_times(_search(tmp_path, "local", *LOCAL)) == sequential


def test_two_ray_workers_complete_the_budget_with_tpe(tmp_path, local_ray):
    """TPE with two children in flight (constant liar). RENAS with two workers on either executor:
    the killed-worker tests below, which also complete the budget."""
    history = _search(tmp_path, "ray2", "executor=ray", "executor.workers=2", "algorithm=tpe")
    assert all(r["status"] == "ok" for r in history)


def test_a_ray_worker_killed_during_a_child_is_retried_and_the_search_completes(tmp_path, local_ray):
    marker = tmp_path / "deaths"
    history = _search(tmp_path, "ray", "executor=ray", "executor.workers=2", *KILLER,
                      f"+evaluator.marker={marker}")
    assert marker.read_text() == "1"  # it did die once
    assert all(r["status"] == "ok" for r in history)  # ... and the retry succeeded


def test_inherited_weights_travel_with_the_tasks_between_two_nodes(tmp_path, local_ray):
    """Real training with weight inheritance on the two-node cluster: children run on both
    nodes, every child with a parent starts from its weights, which reach the worker through
    the object store (the workers do not read the run folder: ``weights_travel``), and every
    evaluation is recorded once."""
    budget = 6
    run_dir = tmp_path / "two_nodes"
    cfg = compose("search", ["experiment=digits_cnn", f"ga.budget={budget}", "ga.population_size=3", "ga.sample_size=2",
                             "dataset.subset=0.3", "trainer.max_epochs=1", "executor=ray", "executor.workers=2",
                             "evaluator.inherit_weights=true", "evaluator.finetune_epochs=1", "logger=none",
                             "progress=none", "threads=1"])
    summary = run_search(cfg, run_dir)
    history = read_jsonl(run_dir / "history.jsonl")
    assert summary["finished"] and [r["step"] for r in history] == list(range(budget))
    assert all(r["status"] == "ok" for r in history)
    assert len({r["metrics"]["ray_node"] for r in history}) == 2  # both nodes evaluated children
    children = [r for r in history if r.get("parent") is not None]
    assert children and all(not r["metrics"]["parent_weights_missing"] for r in children)
    assert any(r["metrics"]["inherited"] > 0 for r in children)  # a width change can leave nothing to take
    assert list((run_dir / "weights").glob("*.pt"))  # kept by the driver, for the next parents


def test_local_workers_killed_during_children_retry_once_and_the_search_completes(tmp_path):
    """Child 12's worker dies once: the retry succeeds. Child 15's dies twice: it is recorded
    as failed. The search spends its whole budget either way."""
    marker = tmp_path / "deaths"
    history = _search(tmp_path, "local", *LOCAL, "executor.workers=2", "evaluator._target_=killer.KillOnceTableEvaluator",
                      "+evaluator.victims=[[12,1],[15,2]]", f"+evaluator.marker={marker}")
    assert Path(f"{marker}.12").read_text() == "1" and Path(f"{marker}.15").read_text() == "2"
    failed = [r for r in history if r["status"] == "failed"]
    assert len(failed) == 1 and "died" in failed[0]["error"]  # child 15; child 12's retry succeeded


def test_ray_that_cannot_start_or_has_no_node_for_a_child_is_one_line_and_keeps_our_sigterm(local_ray, monkeypatch, caplog):
    from renas.errors import ConfigError
    from renas.evaluate import executors

    assert executors.fits([{"CPU": 2.0}], 1, 0) and not executors.fits([{"CPU": 2.0}], 1, 1)
    assert not executors.fits([{"CPU": 1.0, "GPU": 1.0}, {"CPU": 4.0}], 2, 1)  # one node must hold both
    spec = {"cfg": {}, "run_dir": "unused"}
    # a cluster the search joined: a node may join later, so a warning (the module's cluster: 2 nodes, 1 CPU each)
    with caplog.at_level("WARNING", "renas.evaluate"):
        executors.RayExecutor(spec, 1, None, num_cpus=1, num_gpus=1).close()
    assert "executor.num_cpus=1 executor.num_gpus=1: no node of the Ray cluster has that many (nodes: 1 CPU, 0 GPU; 1 CPU, 0 GPU)" in caplog.text

    # a cluster the search starts itself (here the module's, standing in): refused; Ray's own
    # SIGTERM handler (it aborts the driver) is replaced by the one the search had
    monkeypatch.setattr(executors, "_no_running_ray", lambda ray: True)  # ray.init() would start its own
    monkeypatch.setattr(local_ray, "is_initialized", lambda: False)
    monkeypatch.setattr(local_ray, "init", lambda **kw: signal.signal(signal.SIGTERM, lambda *a: None))
    shut = []  # (the module's cluster stays up: a Ray the search started is shut down when it is done with it)
    monkeypatch.setattr(local_ray, "shutdown", lambda: shut.append(True))
    ours = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ConfigError, match=r"executor.num_cpus=4 executor.num_gpus=0: no node .*; lower them, or join"):
        executors.RayExecutor(spec, 1, None, num_cpus=4, num_gpus=0)
    assert signal.getsignal(signal.SIGTERM) is ours and len(shut) == 1  # refused: the Ray it started is stopped
    executors.RayExecutor(spec, 1, None, num_cpus=1, num_gpus=0).close()
    assert len(shut) == 2

    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.\n  Please specify the one to connect to.")

    monkeypatch.setattr(local_ray, "init", no_cluster)
    monkeypatch.setattr(executors, "_no_running_ray", lambda ray: False)  # joined: a shortage is only a warning
    with caplog.at_level("WARNING", "renas.evaluate"):
        monkeypatch.setattr(local_ray, "init", lambda **kw: None)
        executors.RayExecutor(spec, 1, None, num_cpus=4, num_gpus=0).close()
    assert "executor.num_cpus=4 executor.num_gpus=0: no node" in caplog.text
    monkeypatch.setattr(local_ray, "init", no_cluster)
    with pytest.raises(ConfigError, match=r"^executor=ray: Ray could not start or connect at executor.address=auto: "
                                          r"ConnectionError: Could not find any running Ray instance. Please specify"):
        executors.RayExecutor(spec, 1, "auto", num_cpus=1, num_gpus=0)


def test_a_ray_search_may_resume_on_another_ray_address(tmp_path, local_ray):
    """A search requeued on a new Ray head joins it with executor.address=...: where Ray runs and
    what it shows change no child; anything else about Ray still would."""
    from helpers import run_entry

    run_dir = tmp_path / "run"
    proc = run_entry("search.py", *TABLE, "executor=ray", f"hydra.run.dir={run_dir}")  # joins the module's cluster
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_entry("search.py", f"resume={run_dir}", "executor=ray", "executor.address=auto", "executor.log_to_driver=true")
    assert proc.returncode == 0 and "finished" in proc.stdout + proc.stderr, proc.stderr[-2000:]  # accepted
    proc = run_entry("search.py", f"resume={run_dir}", "executor=ray", "executor.num_cpus=2")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: resume: executor.num_cpus=2 would change the search (executor.num_cpus: 1.0 -> 2.0); only logger, "
        "progress, threads, snapshot, executor.address, executor.log_to_driver may change on resume"), proc.stderr[-2000:]


def test_closing_local_workers_stops_children_in_evaluation_at_once(tmp_path):
    """SIGTERM (a scheduler's time limit) must end a parallel search within the scheduler's grace
    time: closing the executor stops its workers, it does not wait for the children they hold
    (the interpreter used to wait for them at exit: 17 s for a child of 14 s)."""
    import time

    from renas.evaluate import executors
    from renas.evaluate.base import Task

    cfg = compose("search", [*TABLE, "evaluator._target_=killer.SlowTableEvaluator", "+evaluator.seconds=300"])
    pool = executors.LocalExecutor(executors.evaluator_spec(cfg, tmp_path), 2, 1)
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    for i in range(2):
        pool.submit(Task(i, arch, (0,) * 6, seed=i))
    processes = []
    deadline = time.monotonic() + 60
    while len(processes) < 2 and time.monotonic() < deadline:  # the workers start as their tasks arrive
        processes = [p for slot in pool.slots for p in (slot._processes or {}).values()]
        time.sleep(0.2)
    assert len(processes) == 2
    time.sleep(2)  # in evaluation now
    pool.close()
    # is_alive() can say True for a moment after the end: the pool's own thread reaps its workers
    # too, and a poll that loses that race reads "running" (seen about once in 10 closes)
    deadline = time.monotonic() + 10
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(p.is_alive() for p in processes)


WORKERS_OF_A_KILLED_SEARCH = '''
import sys, time
sys.path.insert(0, {tests!r})
from helpers import compose
from renas.evaluate import executors
from renas.evaluate.base import Task

cfg = compose("search", {overrides!r})
pool = executors.LocalExecutor(executors.evaluator_spec(cfg, {run_dir!r}), 2, 1)
for i in range(2):
    pool.submit(Task(i, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", (0,) * 6, seed=i))
while len([p for slot in pool.slots for p in (slot._processes or {{}}).values()]) < 2:
    time.sleep(0.1)
print(" ".join(str(p.pid) for slot in pool.slots for p in slot._processes.values()), flush=True)
time.sleep(300)
'''


def test_the_workers_of_a_killed_search_end_with_it(tmp_path):
    """A search killed outright (SIGKILL: it cannot close its pool) left its workers waiting for
    their next task for ever (850 MB each with real training, and holding the search's output
    pipe: a caller that reads it hung). Each worker now ends when the search's process is gone."""
    import subprocess
    import sys
    import time

    script = WORKERS_OF_A_KILLED_SEARCH.format(tests=str(REPO / "tests"), run_dir=str(tmp_path), overrides=[
        *TABLE, "evaluator._target_=killer.SlowTableEvaluator", "+evaluator.seconds=300"])
    search = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=str(REPO))
    try:
        pids = [int(p) for p in search.stdout.readline().split()]
        assert len(pids) == 2
        search.kill()
        search.wait(timeout=30)

        def running(pid: int) -> bool:  # a zombie (ended, not yet reaped by whoever adopted it) has ended
            try:
                return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            except (OSError, IndexError):
                return False

        deadline = time.monotonic() + 30
        while any(map(running, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = [pid for pid in pids if running(pid)]
    finally:
        search.kill()
        for pid in pids if "pids" in locals() else []:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the search"


def test_a_ray_child_trains_with_its_cpus_as_torch_threads(tmp_path, monkeypatch):
    """A Ray worker's torch threads were whatever Ray's environment left (its OMP_NUM_THREADS
    hint, where Ray started the worker): a child's fitness depends on the count, so it is set to
    the task's ``executor.num_cpus``, the count ``threads=`` must match in-process for the same
    history (README)."""
    import sys
    import types

    import torch

    from renas.evaluate import executors
    from renas.evaluate.base import Task

    fake = types.SimpleNamespace(get_runtime_context=lambda: types.SimpleNamespace(get_node_id=lambda: "node"))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(executors, "_WORKER", {})
    spec = {**executors.evaluator_spec(compose("search", TABLE), tmp_path), "threads": 1}
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        space_arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        outcome = executors._ray_evaluate(spec, Task(id=0, arch=space_arch, values=(), seed=0))
        assert outcome.status == "ok" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
