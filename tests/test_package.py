"""The installable package: a wheel built from the project holds the config tree and the
console scripts, and works from a folder outside the checkout (no source tree on the path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO, write_csv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The project built as a wheel (from a copy: the checkout gets no build/ folder) and
    installed without dependencies into a folder of its own; returns paths and the environment
    that puts that folder, and not the checkout, on the path."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "renas", src / "renas", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(dist.glob("renas-*.whl"))
    site = tmp / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), PYTHONUNBUFFERED="1")
    work = tmp / "elsewhere"  # a user's folder: no conf/, no search.py, no examples/
    work.mkdir()
    return {"wheel": wheel, "site": site, "bin": site / "bin", "env": env, "work": work}


def _run(installed: dict, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=installed["work"], env=installed["env"], capture_output=True, text=True,
                          timeout=300)


def test_the_wheel_holds_the_config_tree_and_the_scripts(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "renas/conf/search.yaml" in names and "renas/conf/train.yaml" in names
    assert "renas/conf/algorithm/renas.yaml" in names and "renas/conf/hydra/launcher/slurm.yaml" in names
    assert "renas/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    for script in ("renas-search", "renas-train", "renas-benchmark", "renas-compare"):
        assert script in text
        assert (installed["bin"] / script).is_file()


@pytest.mark.slow
def test_console_scripts_run_from_any_folder(installed):
    where = _run(installed, sys.executable, "-c", "import renas; print(renas.__file__)")
    assert where.stdout.strip().startswith(str(installed["site"])), where.stdout + where.stderr  # not the checkout

    helps = _run(installed, str(installed["bin"] / "renas-search"), "--help")  # (the other scripts: same mechanism)
    assert helps.returncode == 0, helps.stderr[-2000:]
    assert "algorithm: evolution" in helps.stdout  # the packaged config groups
    assert "python search.py resume=<run folder>" in helps.stdout  # under renas's own header (hydra.help.header)

    table = write_csv(installed["work"] / "results.csv", ["arch", "acc"],
                      [[f"a:{a}|b:{b}", 10 * i + j] for i, a in enumerate("xyz") for j, b in enumerate((1, 2))])
    r = _run(installed, str(installed["bin"] / "renas-search"), "search_space=genes",
             "search_space.genes={a:[x,y,z],b:[1,2]}", "evaluator=table", f"evaluator.table={table}",
             "evaluator.metric=acc", "ga.budget=5", "ga.population_size=2", "ga.sample_size=2", "logger=none",
             "progress=none", "hydra.run.dir=run")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((installed["work"] / "run" / "summary.json").read_text())
    assert summary["evaluations"] == 5 and summary["best"]["fitness"] == 21.0
    assert (installed["work"] / "run" / "search.log").is_file()  # the job keeps its name


def test_messages_name_the_command_that_was_used(monkeypatch, tmp_path):
    from renas.errors import command

    monkeypatch.setattr(sys, "argv", ["/venv/bin/renas-search", "resume=x"])
    assert command("search") == "renas-search" and command("train") == "python train.py"
    monkeypatch.setattr(sys, "argv", ["search.py"])
    assert command("search") == "python search.py"
    # started by a path from another folder: the command names that path, so it runs from here too
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["/my projects/renas/search.py"])
    assert command("search") == "python '/my projects/renas/search.py'" and command("train") == "python train.py"
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "search.py")])
    assert command("search") == "python search.py"
