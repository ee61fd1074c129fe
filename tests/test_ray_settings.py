"""Ray settings reach ``ray.init``: checked against a stand-in ``ray`` module (no Ray instance;
the executor itself runs on real Ray in tests/test_executors.py)."""

from __future__ import annotations

import sys
import types

import pytest

from helpers import compose
from renas.config import check_schema
from renas.errors import ConfigError
from renas.evaluate import executors


@pytest.fixture
def fake_ray(monkeypatch):
    calls: dict = {}
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: False
    ray.init = lambda **kwargs: calls.update(kwargs)
    ray.remote = lambda fn: types.SimpleNamespace(options=lambda **kw: fn)
    ray.put = lambda obj: obj
    ray.nodes = lambda: [{"Alive": True, "Resources": {"CPU": 4.0}}]  # room for a child's task
    monkeypatch.setitem(sys.modules, "ray", ray)
    return calls


def test_ray_log_to_driver_and_runtime_env_reach_ray_init(fake_ray, tmp_path):
    cfg = compose("search", ["executor=ray", "executor.workers=2", "executor.address=auto",
                             "executor.log_to_driver=true", "executor.runtime_env={working_dir: .}"])
    executors.make_executor(cfg, None, tmp_path)
    assert fake_ray == {"include_dashboard": False, "log_to_driver": True, "address": "auto",
                        "runtime_env": {"working_dir": "."}}
    fake_ray.clear()
    executors.make_executor(compose("search", ["executor=ray", "executor.workers=2"]), None, tmp_path)
    assert fake_ray == {"include_dashboard": False, "log_to_driver": False}  # the defaults: a local instance, quiet


@pytest.mark.parametrize("override, message", [
    ("executor.log_to_driver=loud", "executor.log_to_driver"),
    ("executor.runtime_env=here", "executor.runtime_env must be a mapping"),
])
def test_bad_ray_settings_are_one_line(override, message):
    cfg = compose("search", ["executor=ray", override])
    with pytest.raises(ConfigError, match=message):
        check_schema(cfg)  # the schema's rules (log_to_driver) ...
        executors.executor_settings(cfg.executor)  # ... and what the executor takes (runtime_env)


def test_threads_per_worker_with_one_worker_is_named_as_unused(tmp_path, caplog):
    """With ``executor.workers=1`` the children train in the search's own process with
    ``threads``: a ``threads_per_worker`` given there is said to be unused, not silently dropped."""
    with caplog.at_level("WARNING", logger="renas.evaluate"):
        executor = executors.make_executor(compose("search", ["executor.threads_per_worker=2", "threads=1"]), None, tmp_path)
    assert isinstance(executor, executors.InlineExecutor)
    assert [r.getMessage() for r in caplog.records] == [
        "executor.threads_per_worker=2 is for worker processes (executor.workers > 1); with one worker the children "
        "train in this process with threads=1"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="renas.evaluate"):
        executors.make_executor(compose("search", ["threads=1"]), None, tmp_path)
    assert caplog.records == []


def test_a_ray_address_where_nothing_answers_is_one_line_at_once(fake_ray, tmp_path):
    """Ray retries an address where no head listens for minutes before it fails: an explicit
    ``host:port`` is tried first (a closed port here), and ``ray.init`` is never called."""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        cfg = compose("search", ["executor=ray", "executor.workers=2", f"executor.address={address}"])
        with pytest.raises(ConfigError, match=rf"executor.address={address}: nothing answers at 127.0.0.1:{port} "):
            executors.make_executor(cfg, None, tmp_path)
    assert fake_ray == {}
    with socket.socket() as s:  # a listening port goes on to ray.init
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        executors.make_executor(compose("search", ["executor=ray", "executor.workers=2", f"executor.address={address}"]),
                                None, tmp_path)
    assert fake_ray["address"] == address


def test_a_dead_ray_address_from_the_environment_is_one_line_at_once(fake_ray, tmp_path, monkeypatch):
    """``RAY_ADDRESS`` (a SLURM job's environment often sets it) is what ``ray.init`` joins
    without ``executor.address``: an address where nothing answers hung for minutes."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=rf"^executor=ray: RAY_ADDRESS=127.0.0.1:{port}: nothing answers at "):
        executors.make_executor(compose("search", ["executor=ray", "executor.workers=2"]), None, tmp_path)
    assert fake_ray == {}


def test_sigterm_while_ray_starts_stops_as_everywhere_else(fake_ray, tmp_path):
    """Ray's driver handler, installed early in ``ray.init``, turned SIGTERM into ``exit(15)``:
    status 15, nothing said, Ray's agents left running. Now Ray is shut down and the search's
    own handler stops it (status 143 and its line at the entry point)."""
    import signal

    from renas.errors import Terminated, stop_on_sigterm

    ray = sys.modules["ray"]
    shut = []
    ray.shutdown = lambda: shut.append(True)

    def init(**kwargs):
        raise SystemExit(signal.SIGTERM)

    ray.init = init
    before = signal.getsignal(signal.SIGTERM)
    try:
        stop_on_sigterm()
        ours = signal.getsignal(signal.SIGTERM)
        with pytest.raises(Terminated):
            executors.make_executor(compose("search", ["executor=ray", "executor.workers=2"]), None, tmp_path)
        assert shut == [True] and signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, before)


def test_resources_below_rays_smallest_amount_are_one_line():
    cfg = compose("search", ["executor=ray", "executor.num_cpus=0.00001"])
    check_schema(cfg)
    with pytest.raises(ConfigError, match=r"^executor.num_cpus=1e-05: Ray's smallest amount of a resource is 0.0001; "
                                          r"give 0 or at least 0.0001$"):
        executors.executor_settings(cfg.executor)
    for value in ("0.33333", "0.0001", "0.25", "0", "2"):  # Ray takes these (it rounds the finer ones itself)
        ex = compose("search", ["executor=ray", f"executor.num_cpus={value}", f"executor.num_gpus={value}"]).executor
        assert executors.executor_settings(ex)["num_cpus"] == float(value)


def test_more_local_workers_than_open_files_allow_are_refused_or_the_soft_limit_raised(monkeypatch):
    """Every local worker's pool holds pipes in the search's process: 200 workers under the
    common limit of 1,024 open files ended in ``Too many open files`` and a traceback."""
    import resource

    limits = {"now": (1024, 1024)}
    monkeypatch.setattr(resource, "getrlimit", lambda what: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda what, value: limits.update(now=value))
    cfg = compose("search", ["executor.workers=200"])
    with pytest.raises(ConfigError, match=r"^executor.workers=200 needs about 1224 open files and this process may "
                                          r"open 1024 \(ulimit -Hn\); use fewer workers, or raise the limit$"):
        executors.executor_settings(cfg.executor)
    executors.executor_settings(compose("search", ["executor.workers=160"]).executor)  # 984 files: fine (160 ran)
    limits["now"] = (1024, 4096)
    executors.executor_settings(cfg.executor)  # the hard limit allows it: no refusal, nothing changed yet
    assert limits["now"] == (1024, 4096)
    executors.open_files_limit(200, raise_soft=True)  # as the executor starts: up to the hard limit, as Ray does
    assert limits["now"] == (4096, 4096)
    # the estimate is a floor: 8 workers of a table search needed 86 files where it says 72, and one raised
    # only to the estimate ran out; the soft limit now goes to the hard one even where the estimate fits
    limits["now"] = (72, 20000)
    executors.open_files_limit(8, raise_soft=True)
    assert limits["now"] == (20000, 20000)


def test_more_worker_threads_than_cores_warn(tmp_path, caplog, monkeypatch):
    """The README's "K x threads never exceeds the cores" held only for the default threads and
    K <= cores: more is now said."""
    monkeypatch.setattr(executors, "usable_cores", lambda: 2)
    for overrides, line in (
        (["executor.workers=2", "executor.threads_per_worker=2"],
         "executor.workers=2 with 2 torch threads each: 4 threads on 2 usable cores, so the workers wait for each "
         "other and each child trains slower"),
        (["executor.workers=3"], "executor.workers=3 with 1 torch thread each: 3 threads on 2 usable cores"),
        (["executor.workers=2"], None),
    ):
        caplog.clear()
        with caplog.at_level("WARNING", logger="renas.evaluate"):
            executors.make_executor(compose("search", overrides), None, tmp_path).close()
        assert (line in caplog.text) if line else not caplog.records, caplog.text


def test_a_ray_the_search_started_is_shut_down_when_it_closes(fake_ray, tmp_path):
    """A sweep's jobs in one process (the basic launcher, a reused joblib worker): the second job
    found the first one's Ray running, joined it and ignored its own executor settings (a job
    with executor.num_cpus=4 waited for ever on the first job's 1-CPU instance). A Ray the search
    started is now shut down when the search closes it; a Ray it joined is left running."""
    ray = sys.modules["ray"]
    shut = []
    ray.shutdown = lambda: shut.append(True)
    ray.cancel = lambda ref, force: None
    executor = executors.make_executor(compose("search", ["executor=ray", "executor.workers=2"]), None, tmp_path)
    executor.close()
    executor.close()  # (once is enough)
    assert shut == [True]
    ray.is_initialized = lambda: True  # joined: someone else's Ray
    executors.make_executor(compose("search", ["executor=ray", "executor.workers=2"]), None, tmp_path).close()
    assert shut == [True]
