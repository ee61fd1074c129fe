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
