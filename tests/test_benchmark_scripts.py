"""The scripts in ``benchmarks/`` refuse a bad command-line input before they start any work:
``parser.error`` (exit status 2), one ``error:`` line that names the option and the value, no
traceback. Each case loads the script as a module and calls its ``main()`` in this process with
``sys.argv`` set, so a case costs the argument checks only (some compose the config, as the
script's run would: a fraction of a second)."""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def load(script: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{script}", REPO / "benchmarks" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refused(monkeypatch, capsys, script: str, args: list[str]) -> str:
    """Run ``script``'s ``main()`` with ``args``; assert the refusal (exit 2, one error line, no
    traceback) and return that line."""
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        load(script).main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{script}.py: error: "), err
    return lines[0]


# (script, arguments, text the error line must contain: the option and its value)
CASES = [
    ("bench_epoch", ["--threads", "0"], "--threads=0"),
    ("bench_epoch", ["--epochs", "0"], "--epochs=0"),
    ("bench_epoch", ["--epochs", "-1"], "--epochs=-1"),  # Lightning: max_epochs=-1 trains for ever
    ("bench_epoch", ["--datasets", "digits", "--channels", "0"], "--channels: search_space.channels=0"),
    ("bench_epoch", ["--datasets", "digits", "--cells-per-stage", "101"],
     "--cells-per-stage: search_space.cells_per_stage=101"),
    ("bench_epoch", ["--datasets", "digits", "--seed", "-1"], "--seed: seed=-1"),
    ("bench_epoch", ["--datasets", "digits", "--trainer", "nope"], "--trainer='nope' is not one of final, proxy"),
    ("bench_epoch", ["--datasets", "nope"], "--datasets: unknown data set 'nope'"),
    ("bench_epoch", ["--datasets", "digits", "digits"], "--datasets digits digits"),
    ("bench_epoch", ["--datasets", "image_folder"], "--datasets image_folder: needs dataset.root"),
    ("bench_child", ["--children", "0"], "--children=0"),
    ("bench_child", ["--rounds", "-1"], "--rounds=-1"),
    ("bench_child", ["--seed", "-1"], "--seed=-1"),
    ("bench_child", ["--limit", "-1"], "--limit=-1"),
    ("bench_child", ["--variants", "compile", "compile"], "--variants 'compile' 'compile'"),
    ("bench_child", ["--set", "foo"], "--set 'foo' must be KEY=VALUE"),
    ("bench_child", ["--set", "search_space.channels=0"], "--set search_space.channels=0"),
    ("bench_child", ["--set", "nope=1"], "--set nope=1: nope is not a setting"),
    ("bench_child", ["--set", "dataset=nope"], "--set dataset=nope: Could not find 'dataset/nope'"),
    ("bench_child", ["--set", "dataset=image_folder"], "--set: the config needs dataset.root"),
    ("bench_inherit", ["--parent-epochs", "0"], "--parent-epochs=0"),
    ("bench_inherit", ["--epochs", "0"], "--epochs=0"),
    ("bench_inherit", ["--threads", "0"], "--threads=0"),
    ("bench_inherit", ["--seeds", "-1"], "--seeds: -1 is out of range"),
    ("bench_inherit", ["--seeds", "1", "1"], "--seeds 1 1"),
    ("bench_inherit", ["--channels", "0"], "--channels: search_space.channels=0"),
    ("bench_inherit", ["--op", "nope"], "--op='nope'"),
    ("bench_inherit", ["--op", "sep_conv_5x5"], "--op='sep_conv_5x5'"),
    ("bench_inherit", ["--op", "nope"], "one of sep_conv_3x3, sep_conv_7x7, avg_pool_3x3"),  # the parent's op left out
    ("bench_search", ["--threads", "0"], "--threads=0"),  # no parts named: all of them (once refused by argparse)
    ("bench_search", ["ray", "ray"], "parts ray ray"),
    ("bench_search", ["nope"], "parts: unknown part 'nope'; choose from default, workers, ray, persistence, overhead"),
    ("bench_search", ["workers", "nope", "--budget", "16"], "parts: unknown part 'nope'"),
    ("bench_search", ["workers", "--budget", "2"], "--budget=2"),
    ("bench_search", ["persistence", "--snapshot-every", "-1"], "--snapshot-every=-1"),
    ("bench_search", ["persistence", "--algorithms", "nope"], "--algorithms: unknown algorithm 'nope'"),
    ("bench_search", ["persistence", "--algorithms", "rea", "rea"], "--algorithms rea rea"),
    ("bench_search", ["overhead", "--budgets", "500", "500"], "--budgets 500 500"),
    ("bench_search", ["ray", "--table-budget", "5"], "--table-budget=5: ga.budget=5 is smaller"),
    ("bench_search", ["overhead", "--algorithms", "renas", "--budgets", "20000"],
     "--budgets 20000 (--algorithms renas): ga.budget=20000 is larger than the search space"),
    ("bench_search", ["persistence", "--algorithms", "rea", "--budgets", "5"], "--budgets 5 (--algorithms rea)"),
    ("bench_search", ["persistence", "--algorithms", "rea_tuned"], "--algorithms rea_tuned"),
    ("reference_tpe", ["--budgets", "0"], "--budgets: 0 is out of range"),
    ("reference_tpe", ["--budgets", "20000"], "--budgets: 20000 is out of range"),  # never ended: 15,625 cells
    ("reference_tpe", ["--budgets", "5", "5"], "--budgets 5 5"),
    ("reference_tpe", ["--seeds", "0"], "--seeds=0"),
    ("reference_tpe", ["--seeds", "1"], "--seeds=1"),  # a standard error of nan
    ("reference_tpe", ["--first-seed", "-1"], "--first-seed=-1"),
    ("bench_proxy", ["--n", "2"], "--n=2"),
    ("bench_proxy", ["--proxies", "nope"], "--proxies: unknown nope"),
    ("bench_proxy", ["--proxies", "e1", "e1"], "--proxies e1 e1"),  # its figures were appended twice, misaligned
    ("bench_proxy", ["--seed", "-1"], "--seed=-1"),
    ("bench_proxy", ["--seed", "50000"], "--seed=50000"),  # seed * 100003 + index past 2**32
    ("bench_proxy", ["--dataset", "nope"], "--dataset='nope'"),
    ("bench_proxy", ["--dataset", "image_folder"], "--dataset=image_folder: needs dataset.root"),
    ("bench_proxy", ["--set", "foo"], "--set 'foo' must be KEY=VALUE"),
    ("bench_proxy", ["--set", "nope=1"], "--set nope=1: nope is not a setting"),
    ("bench_proxy", ["--set", "dataset=nope"], "--set dataset=nope"),
]


@pytest.mark.parametrize("script, args, expected", CASES, ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES])
def test_bad_option_is_refused(monkeypatch, capsys, script, args, expected):
    assert expected in refused(monkeypatch, capsys, script, args)


def test_bench_epoch_refuses_a_data_set_whose_data_is_absent(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RENAS_SHARED", str(tmp_path))
    line = refused(monkeypatch, capsys, "bench_epoch", ["--datasets", "cifar10_subset"])
    assert f"--datasets cifar10_subset: its data {tmp_path}/data/cifar10_subset/cifar10_subset.npz is not there" in line


@pytest.mark.parametrize("kind", ["npz", "idx"])
def test_bench_child_refuses_a_data_set_whose_data_is_absent(monkeypatch, capsys, tmp_path, kind):
    """The data is read when the evaluator is built, before the warm-up child: one line, not the
    data module's traceback."""
    monkeypatch.setenv("RENAS_SHARED", str(tmp_path))  # conf/dataset/cifar10_subset.yaml's path
    args, expected = {
        "npz": (["--set", "dataset=cifar10_subset"],
                f"--set dataset=cifar10_subset: {tmp_path}/data/cifar10_subset/cifar10_subset.npz not found"),
        "idx": (["--set", "dataset=mnist", "--set", f"dataset.root={tmp_path}/empty", "--set", "dataset.download=false"],
                f"MNIST files train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz not found in {tmp_path}/empty"),
    }[kind]
    assert expected in refused(monkeypatch, capsys, "bench_child", [*args, "--variants", "1 thread"])


def test_bench_search_usage_names_its_parts(monkeypatch, capsys):
    """The parts are checked after parsing (no part named: all of them), so the usage line shows
    ``[PART ...]``, not argparse's choices with the empty one that once stood for "all"."""
    monkeypatch.setattr(sys, "argv", ["bench_search.py", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        load("bench_search").main()
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    usage = out.split("\n\n")[0]
    assert "[PART ...]" in usage and "{" not in usage, usage
    assert "some of: default, workers, ray, persistence, overhead (default: all of them)" in " ".join(out.split())


def _table(path: str, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize("kind", ["absent", "column", "number", "cells"])
def test_reference_tpe_refuses_a_bad_table(monkeypatch, capsys, tmp_path, kind):
    header = ["arch_str", "c10_valid_12ep", "c10_test_200ep"]
    path = str(tmp_path / "table.csv")
    if kind == "column":
        _table(path, ["arch_str", "c10_valid_200ep"], [[CELL, "1.0"]])
    elif kind == "number":
        _table(path, header, [[CELL, "abc", "1.0"]])
    elif kind == "cells":
        _table(path, header, [[CELL, "1.0", "2.0"]])
    expected = {
        "absent": f"--table {path} not found",
        "column": f"--table {path}: no column c10_valid_12ep, c10_test_200ep",
        "number": f"--table {path}, line 2: c10_valid_12ep='abc'",
        "cells": f"--table {path}: 15624 of the 15625 cells are not in it",
    }[kind]
    assert expected in refused(monkeypatch, capsys, "reference_tpe", ["--budgets", "5", "--seeds", "2", "--table", path])


def _saved_run(archs: int, start: int = 0, **config) -> dict:
    return {"config": {"reference_epochs": 10, **config}, "start": start, "fitness": {"reference": [0.5] * archs},
            "seconds": {"reference": [1.0] * archs}, "network": {"params": [1] * archs, "input_size": 8}}


@pytest.mark.parametrize("kind", ["absent", "text", "list", "keys", "few"])
def test_bench_proxy_refuses_a_bad_table(monkeypatch, capsys, tmp_path, kind):
    path = tmp_path / "run.json"
    content = {"text": "nope", "list": "[1]", "keys": json.dumps({"a": 1}), "few": json.dumps(_saved_run(2))}
    if kind in content:
        path.write_text(content[kind])
    expected = {
        "absent": f"--table {path}: cannot be read",
        "text": f"--table {path}: not JSON",
        "list": f"--table {path}: not a saved run of this script (not a JSON object)",
        "keys": f"--table {path}: not a saved run of this script (no config, fitness, seconds, network)",
        "few": f"--table {path}: 2 architecture(s) measured",
    }[kind]
    assert expected in refused(monkeypatch, capsys, "bench_proxy", ["--table", str(path)])


@pytest.mark.parametrize("kind", ["folder", "no folder", "resume text", "resume other", "existing"])
def test_bench_proxy_refuses_a_bad_json(monkeypatch, capsys, tmp_path, kind):
    path = {"folder": tmp_path, "no folder": tmp_path / "nope" / "run.json"}.get(kind, tmp_path / "run.json")
    if kind == "resume text":
        path.write_text("nope")
    if kind == "resume other":
        path.write_text(json.dumps({"a": 1}))
    if kind == "existing":  # a saved run, given without --resume: a new run wrote over it
        path.write_text(json.dumps(_saved_run(2)))
    before = path.read_bytes() if path.is_file() else None
    expected = {
        "folder": f"--json {path}: is a folder",
        "no folder": f"--json {path}: its folder does not exist",
        "resume text": f"--json {path}: not JSON",
        "resume other": f"--json {path}: not a saved run of this script (no config); cannot --resume it",
        "existing": f"--json {path} already exists; add --resume to continue the run in it, or give another file",
    }[kind]
    args = ["--json", str(path)] + ["--resume"] * kind.startswith("resume")
    assert expected in refused(monkeypatch, capsys, "bench_proxy", args)
    assert (path.read_bytes() if path.is_file() else None) == before


@pytest.mark.parametrize("kind", ["config", "gap", "overlap"])
def test_bench_proxy_refuses_table_parts_that_do_not_join(monkeypatch, capsys, tmp_path, kind):
    """``--table a.json b.json`` joins the parts of one run; parts that do not fit are one line,
    status 2 (they were ``SystemExit`` with status 1)."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(_saved_run(2)))
    second.write_text(json.dumps({"config": _saved_run(2, 2, reference_epochs=5), "gap": _saved_run(2, 3),
                                  "overlap": _saved_run(2, 1)}[kind]))
    expected = {
        "config": "--table: the files measure different things (reference_epochs differ)",
        "gap": "--table: architectures 2..2 are in no file",
        "overlap": "--table: two files both measured architecture 1",
    }[kind]
    assert expected in refused(monkeypatch, capsys, "bench_proxy", ["--table", str(first), str(second)])


def _no_run(args):
    raise AssertionError("bench_proxy started measuring")


def test_bench_proxy_resume_needs_the_saved_run(monkeypatch, capsys, tmp_path):
    """``--resume`` of a ``--json`` that is not there is refused (it started a new run)."""
    monkeypatch.setattr(load("bench_proxy"), "run", _no_run)
    path = tmp_path / "run.json"
    line = refused(monkeypatch, capsys, "bench_proxy", ["--json", str(path), "--resume"])
    assert f"--resume: --json {path} does not exist (leave out --resume to start a new run)" in line
    assert not path.exists()


def test_bench_proxy_refuses_to_resume_another_run(monkeypatch, capsys, tmp_path):
    """A saved run made with other options is refused before anything is built (status 2, it was
    ``SystemExit`` with status 1), and the file is left as it was."""
    monkeypatch.setattr(load("bench_proxy"), "run", _no_run)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_saved_run(1, n=30, seed=1)))
    saved = path.read_text()
    line = refused(monkeypatch, capsys, "bench_proxy", ["--json", str(path), "--resume"])
    assert f"--resume: {path} was made with seed=1, this run has 0" in line
    assert path.read_text() == saved


def test_bench_proxy_refuses_to_resume_another_sample(monkeypatch, capsys, tmp_path):
    """A saved run with the same options but other architectures (its sample is compared once the
    space is built): one line, status 2, the file as it was and no temporary folder left."""
    import torch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where run() makes its folder
    (tmp_path / "tmp").mkdir()
    path = tmp_path / "run.json"
    config = {"n": 3, "seed": 0, "dataset": "digits", "reference_epochs": 1, "reference_seeds": 1,
              "parent_epochs": 2, "proxies": ["e1"], "threads": 1, "set": []}
    path.write_text(json.dumps({**_saved_run(1, **config), "archs": ["not this sample"] * 3}))
    saved = path.read_text()
    threads = torch.get_num_threads()
    try:
        line = refused(monkeypatch, capsys, "bench_proxy", ["--n", "3", "--reference-epochs", "1", "--proxies", "e1",
                                                            "--json", str(path), "--resume"])
    finally:
        torch.set_num_threads(threads)
    assert f"--resume: {path} measured other architectures (start or sample differs)" in line
    assert path.read_text() == saved
    # (torch's compile cache, torchinductor_<user>, lands there when this test is the first to build a network)
    assert [p for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("torchinductor_")] == []


def test_bench_epoch_refuses_data_it_cannot_get_before_timing_any(monkeypatch, capsys):
    """A data set to download with no network (``--datasets digits cifar10`` offline) was a
    traceback after digits had been timed, its row lost: now one line before anything runs
    (the download is made to fail here: tests never touch the network)."""
    import renas.build
    from renas.errors import DataError

    real = renas.build.build_datamodule

    def offline(cfg):
        dm = real(cfg)
        if str(cfg.get("root", "")).endswith("cifar10"):  # conf/dataset/cifar10.yaml's data/cifar10
            def no_download():
                raise DataError("could not download cifar10 to data/cifar10 (no network)")
            dm.prepare_data = no_download
        return dm

    monkeypatch.setattr(renas.build, "build_datamodule", offline)
    monkeypatch.setattr(load("bench_epoch"), "bench", lambda *a, **k: pytest.fail("bench_epoch started timing"))
    line = refused(monkeypatch, capsys, "bench_epoch", ["--datasets", "digits", "cifar10", "--epochs", "1"])
    assert "--datasets cifar10: could not download cifar10" in line


def test_bench_epoch_refuses_missing_files_before_timing_any(monkeypatch, capsys, tmp_path):
    """A data set whose files are missing and that may not download (``download: false`` in a
    user's ``conf/dataset``) was found only when its turn to be timed came, after the data sets
    before it: now one line before anything runs."""
    import renas.build

    real = renas.build.build_datamodule

    def not_there(cfg):
        dm = real(cfg)
        if str(cfg.get("root", "")).endswith("cifar10"):
            dm.root, dm.download = tmp_path / "empty", False
        return dm

    monkeypatch.setattr(renas.build, "build_datamodule", not_there)
    monkeypatch.setattr(load("bench_epoch"), "bench", lambda *a, **k: pytest.fail("bench_epoch started timing"))
    line = refused(monkeypatch, capsys, "bench_epoch", ["--datasets", "digits", "cifar10", "--epochs", "1"])
    assert "--datasets cifar10: cifar10 not found in" in line
