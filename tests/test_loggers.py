"""The W&B sink honours the user's W&B settings: an exported ``WANDB_MODE`` when
``logger.mode`` is not set, ``logger.mode`` over it, and the console / system-metrics switches."""

from __future__ import annotations

import pytest

from helpers import compose
from renas.build import build


def _sink(*overrides: str):
    return build(compose("search", ["logger=wandb", *overrides]).logger, "logger")


@pytest.mark.parametrize("env, overrides, expected", [
    ("disabled", [], "disabled"),                       # WANDB_MODE exported, logger.mode unset: W&B's own setting
    ("disabled", ["logger.mode=offline"], "offline"),   # logger.mode wins
    (None, [], "offline"),                              # neither: offline, as documented
])
def test_the_run_mode_follows_logger_mode_then_wandb_mode_then_offline(tmp_path, monkeypatch, env, overrides, expected):
    if env is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", env)
    sink = _sink(*overrides)
    sink.start(tmp_path, {"x": 1}, job_type="test")
    try:
        disabled = bool(getattr(sink.run, "disabled", False)) or sink.run.settings.mode == "disabled"
        assert ("disabled" if disabled else sink.run.settings.mode) == expected
        assert (tmp_path / "wandb").exists() == (expected != "disabled")
    finally:
        sink.finish(0)


def test_console_capture_and_system_metrics_are_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    sink = _sink("logger.console=wrap", "logger.system_metrics=true")
    sink.start(tmp_path, {}, job_type="test")
    try:
        assert sink.run.settings.console == "wrap" and sink.run.settings.x_disable_stats is False
    finally:
        sink.finish(0)
    assert _sink().console == "off" and _sink().system_metrics is False  # the defaults
