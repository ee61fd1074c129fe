"""The per-child plot: every child's fitness and reward, whatever the history holds."""

from __future__ import annotations

import json

import pytest

from renas.tracking.plots import _origin_group, _running_mean, plot_children


def _record(step: int, fitness, origin: str, parent=None, reward=None, status: str = "ok") -> dict:
    return {"step": step, "generation": step // 4, "arch": f"a{step}", "fitness": fitness, "metrics": {},
            "parent": parent, "origin": origin, "reward": reward, "status": status, "seconds": 1.0}


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_children_plot_of_a_short_controller_run(tmp_path):
    """Four random children and four controller children (one failed): a real picture, not
    two generation points."""
    history = [_record(i, 0.5 + 0.05 * i, "random") for i in range(4)]
    history += [_record(4 + i, 0.7 + 0.02 * i, "controller", parent=3, reward=0.02 * i - 0.01) for i in range(3)]
    history.append(_record(7, None, "controller", parent=3, status="failed"))
    path = plot_children(history, tmp_path / "plots", title="renas on renas_cell")
    assert path == tmp_path / "plots" / "children.png" and _is_png(path)


def test_children_plot_reads_history_jsonl_and_handles_no_controller(tmp_path):
    history = [_record(i, 0.1 * i, "random") for i in range(3)] + [_record(3, 0.4, "mutation", parent=2)]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    assert _is_png(plot_children(tmp_path / "history.jsonl", tmp_path))


def test_children_plot_of_an_empty_history(tmp_path):
    assert _is_png(plot_children([], tmp_path))


@pytest.mark.parametrize(
    "origin, parent, group",
    [("random", None, "random"), ("controller", 1, "controller"), ("crossover+controller", 1, "controller"),
     ("mutation", 1, "mutation"), (None, None, "random"), (None, 2, "mutation")],
)
def test_children_are_told_apart_by_origin(origin, parent, group):
    assert _origin_group({"origin": origin, "parent": parent}) == group


def test_running_mean():
    assert _running_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
