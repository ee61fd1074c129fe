"""The W&B sink honours the user's W&B settings: an exported ``WANDB_MODE`` when
``logger.mode`` is not set, ``logger.mode`` over it, and the console / system-metrics switches."""

from __future__ import annotations

import pytest

from helpers import compose, read_wandb_records
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


def test_a_disabled_run_leaves_no_run_id(tmp_path):
    """``logger.mode=disabled``: no run exists, so none is named (``summary.json``'s
    ``wandb_run_id``, which train.py ``arch_from=`` links as ``search-<id>``)."""
    sink = _sink("logger.mode=disabled")
    sink.start(tmp_path, {}, job_type="search")
    try:
        assert sink.run_id is None
    finally:
        sink.finish(0)


def test_a_run_that_cannot_start_is_one_line_that_says_what_to_do(tmp_path, monkeypatch):
    """W&B online without an API key (or network) raised from ``wandb.init``: a traceback of 58
    lines. It is one line, with the way out."""
    import wandb

    from renas.errors import RenasError

    def no_key(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", no_key)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    sink = _sink("logger.mode=online")
    with pytest.raises(RenasError) as e:
        sink.start(tmp_path, {}, job_type="search")
    assert str(e.value) == ("logger: W&B could not start its online run (No API key configured. Use `wandb login` to "
                            "log in.); run `wandb login` or export WANDB_API_KEY, or log offline (logger.mode=offline) "
                            "and `wandb sync` later")

    def no_network(**kwargs):  # a key, no network: `wandb login` was the wrong advice
        raise wandb.errors.CommError("Timed out while retrying: dial tcp: lookup api.wandb.ai: no such host")

    monkeypatch.setattr(wandb, "init", no_network)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    with pytest.raises(RenasError, match=r"no such host\); check the network \(an API key is set\), or log offline"):
        _sink("logger.mode=online").start(tmp_path, {}, job_type="search")


def test_a_training_run_charts_against_lightnings_step(tmp_path, monkeypatch):
    """Lightning defines its ``trainer/global_step`` axis only for a run it makes itself; train.py
    hands it ours, so the sink defines it (else ``val/acc`` is charted against W&B's row count)."""
    from helpers import wandb_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    sink = _sink()
    sink.start(tmp_path, {}, name="train-digits-s0", job_type="train")
    sink.finish(0)
    run = wandb_run(tmp_path)
    assert run["metrics"]["*"] == "trainer/global_step" and run["name"] == "train-digits-s0"


def test_a_resumed_offline_run_retires_its_earlier_files_only_once_it_went_on(tmp_path, monkeypatch):
    """A resume refused on the way (a journal that does not belong) leaves the earlier files
    where they were; one that went on moves them to ``wandb/superseded/``."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    earlier = tmp_path / "wandb" / "offline-run-20260101_000000-abc123"
    earlier.mkdir(parents=True)
    record = {"step": 0, "status": "ok", "fitness": 1.0}
    for went_on in (False, True):
        sink = _sink()
        sink.start(tmp_path, {}, job_type="search", resume_id="abc123")
        sink.replay([record], [])
        if went_on:
            sink.log_evaluation({**record, "step": 1}, 1.0)
        sink.finish(1)
        assert earlier.is_dir() != went_on
    assert (tmp_path / "wandb" / "superseded" / earlier.name).is_dir()


def test_the_tests_wandb_reader_takes_the_whole_records_of_a_file_still_being_written(tmp_path):
    """The tests read a run's ``.wandb`` file while W&B may still write it (``wandb_run`` waits for
    its exit record): a chunk cut short is not yet a record, not a protobuf error (a flaky failure)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    def chunk(record) -> bytes:
        payload = record.SerializeToString()
        return struct.pack("<IHB", 0, len(payload), 1) + payload

    first, second = pb.Record(), pb.Record()
    first.run.run_id = "abc"
    second.history.item.add(key="loss", value_json="0.5")
    whole = b"\0" * 7 + chunk(first) + chunk(second)
    path = tmp_path / "run.wandb"
    for cut in (len(whole) - 3, len(whole) - len(chunk(second)) + 4):  # in the last payload, in its header
        path.write_bytes(whole[:cut])
        assert [r.run.run_id for r in read_wandb_records(path)] == ["abc"]
    path.write_bytes(whole)
    assert [r.WhichOneof("record_type") for r in read_wandb_records(path)] == ["run", "history"]


def test_versions_name_what_differs_and_older_run_folders_compare_as_equal():
    from renas.tracking import versions as v

    now = v.versions()
    assert now["renas"] and now["torch"] and list(now)[:3] == ["python", "renas", "torch"]
    assert v.differences({**now, "torch": "2.0.0", "lightning": None}) == [
        f"torch 2.0.0 -> {now['torch']}", f"lightning none -> {now['lightning']}"]
    assert v.differences(now) == [] and v.differences(None) == [] and v.differences({"other": "1"}) == []
    assert v.started_by({"renas": "0.1.0"}) == f" (renas 0.1.0; this is {now['renas']})"
    assert v.started_by(now) == v.started_by(None) == v.started_by({}) == ""


def test_a_resumed_trainings_csv_keeps_its_readable_rows_before_the_checkpoint(tmp_path):
    """Lightning's CSV writer deletes the metrics.csv it finds: the rows before the resumed step
    come back, rows that do not read (an extra field: a traceback that removed the file) are left
    out, and a file that does not read at all is kept aside, named in a warning."""
    import csv

    from renas.tracking.loggers import CSVSink

    sink = CSVSink()
    sink.start(tmp_path, {})
    (tmp_path / "metrics.csv").write_text("epoch,step,val/acc\n0,5,0.5\n0,10,0.6\n1,20,0.7,EXTRA\n1,30,0.8\n")
    logger = sink.lightning(resumed_step=25)
    logger.log_metrics({"val/acc": 0.9, "epoch": 2}, step=30)
    logger.save()
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["val/acc"]) for r in rows] == [("5", "0.5"), ("10", "0.6"), ("30", "0.9")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
    (tmp_path / "metrics.csv").write_bytes(b"step,a\n1,\xff\n")  # undecodable bytes read as replacement characters
    sink.lightning(resumed_step=5)
    assert (tmp_path / "metrics.csv").read_text(encoding="utf-8", errors="replace").splitlines()[0] == "a,step"
