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
