"""Weight inheritance by op, fine-tune epochs, missing parents' weights, BN recalibration."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch

from helpers import compose, read_jsonl
from renas.errors import ConfigError
from renas.evaluate.base import Task
from renas.search.run import validate
from renas.space.renas_cell import OP_NAMES, RENASNET, CellGenotype, RenasCellSpace
from renas.train.callbacks import recalibrate_batchnorm
from renas.train.inherit import inherit, module_signatures

SPACE = RenasCellSpace(channels=4)


def _edit(code, position: int, op: str | None = None, inp: int | None = None) -> CellGenotype:
    """RENASNet-style code with the op and/or input of one position changed."""
    code = [list(pair) for pair in code]
    if op is not None:
        code[position][0] = OP_NAMES.index(op)
    if inp is not None:
        code[position][1] = inp
    return CellGenotype(tuple(tuple(p) for p in code))


def _trained_parent(genotype: CellGenotype) -> torch.nn.Module:
    """A parent whose every tensor differs from a fresh network's (as if trained)."""
    torch.manual_seed(0)
    net = SPACE.build(genotype, 1, 10)
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.add_(1000.0)
    return net


def _copied(child: torch.nn.Module, parent: torch.nn.Module, prefix: str) -> bool:
    """Every tensor under ``prefix`` of ``child`` equals the parent's."""
    own, theirs = child.state_dict(), parent.state_dict()
    keys = [k for k in own if k.startswith(prefix + ".") and own[k].is_floating_point()]
    assert keys, prefix
    same = [torch.equal(own[k], theirs[k]) for k in keys if k in theirs and theirs[k].shape == own[k].shape]
    return bool(same) and all(same) and len(same) == len(keys)


def test_a_changed_op_inherits_nothing_and_everything_else_carries_over():
    """sep_conv_5x5 -> sep_conv_3x3 at position 0: same pointwise / BN names and shapes, but
    nothing of the old op is copied; the other ops, the stem, the cells' input convolutions
    and the classifier are."""
    parent_g = CellGenotype(RENASNET)
    assert OP_NAMES[parent_g.normal[0][0]] == "sep_conv_5x5"
    child_g = _edit(RENASNET, 0, op="sep_conv_3x3")
    parent = _trained_parent(parent_g)
    child = SPACE.build(child_g, 1, 10)
    fresh = {k: v.clone() for k, v in child.state_dict().items()}
    got = inherit(child, parent.state_dict(), module_signatures(parent))

    cells = len(child.cells)
    for i in range(cells):
        own = child.state_dict()
        changed = [k for k in own if k.startswith(f"cells.{i}.ops.0.")]
        assert all(torch.equal(own[k], fresh[k]) for k in changed), f"cell {i}: the changed op inherited"
        for k in range(1, 2 * SPACE.blocks):
            if any(n.startswith(f"cells.{i}.ops.{k}.") for n in own):  # ops with weights
                assert _copied(child, parent, f"cells.{i}.ops.{k}"), (i, k)
        assert _copied(child, parent, f"cells.{i}.pre1")
    assert _copied(child, parent, "stem") and _copied(child, parent, "classifier")

    params = dict(child.named_parameters())
    assert got.fraction == pytest.approx(got.parameters / sum(p.numel() for p in params.values()))
    assert 0.5 < got.fraction < 1.0
    assert not any(k.startswith("cells.0.ops.0.") for k in got.keys)

    # the old rule (name and shape) would have taken the old op's pointwise and BN weights
    old_rule = SPACE.build(child_g, 1, 10)
    coincidental = inherit(old_rule, parent.state_dict(), None)
    assert any(k.startswith("cells.0.ops.0.") for k in coincidental.keys)
    assert coincidental.fraction > got.fraction


def test_an_input_change_keeps_the_ops_but_not_what_reads_a_new_cell_layout():
    """Block 4 reads block 1 instead of block 0: the ops keep their weights, but the cell now
    concatenates other blocks (same count, other layout), so the next cells' input convolutions
    and the classifier, whose weights map those channels, start fresh."""
    parent_g = CellGenotype(RENASNET)
    child_g = _edit(_edit(RENASNET, 8, inp=3).normal, 9, inp=3)
    parent = _trained_parent(parent_g)
    child = SPACE.build(child_g, 1, 10)
    assert child.cells[0].concat != parent.cells[0].concat
    assert len(child.cells[0].concat) == len(parent.cells[0].concat)
    inherit(child, parent.state_dict(), module_signatures(parent))
    assert _copied(child, parent, "stem")
    assert _copied(child, parent, "cells.0.pre1") and _copied(child, parent, "cells.0.ops.1")
    assert _copied(child, parent, "cells.1.ops.1")
    assert not _copied(child, parent, "cells.1.pre1")  # reads cell 0's new layout
    assert not _copied(child, parent, "classifier")


def test_identical_architecture_inherits_everything():
    parent = _trained_parent(CellGenotype(RENASNET))
    child = SPACE.build(CellGenotype(RENASNET), 1, 10)
    assert inherit(child, parent.state_dict(), module_signatures(parent)).fraction == 1.0
    for k, v in child.state_dict().items():
        assert torch.equal(v, parent.state_dict()[k]), k


@pytest.mark.parametrize(
    "kwargs",
    [{"shared_reduction": False, "cells_per_stage": 2}, {"auxiliary": True, "concat_prev": True},
     {"stem": "imagenet", "channels": 8}],
    ids=["separate-cells", "aux-concat-prev", "imagenet-stem"],
)
def test_every_layout_inherits_all_of_itself_and_not_a_changed_op(kwargs):
    import numpy as np

    space = RenasCellSpace(**{"channels": 4, **kwargs})
    genotype = space.sample(np.random.default_rng(1))
    torch.manual_seed(0)
    parent = space.build(genotype, 3, 10)
    assert inherit(space.build(genotype, 3, 10), parent.state_dict(), module_signatures(parent)).fraction == 1.0
    values = list(genotype.values)
    values[0] = (values[0] + 1) % len(OP_NAMES)  # normal cell, block 0, first op
    child = space.build(space.from_values(values), 3, 10)
    got = inherit(child, parent.state_dict(), module_signatures(parent))
    normal = [i for i, cell in enumerate(child.cells) if not cell.reduction]
    assert not any(k.startswith(f"cells.{i}.ops.0.") for i in normal for k in got.keys)
    assert got.fraction < 1.0 or not any(k.startswith(f"cells.{normal[0]}.ops.0.") for k in parent.state_dict())


def test_generic_signatures_for_networks_without_their_own():
    """NAS-Bench-201 cells: an edge whose op changed starts fresh even where shapes agree."""
    from renas.space import NASBench201Space

    space = NASBench201Space(channels=4, cells_per_stage=1)
    parent_g = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    child_g = space.parse("|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    torch.manual_seed(0)
    parent = space.build(parent_g, 3, 10)
    child = space.build(child_g, 3, 10)
    fresh = {k: v.clone() for k, v in child.state_dict().items()}
    got = inherit(child, parent.state_dict(), module_signatures(parent))
    edge0 = [k for k in child.state_dict() if ".edges.0." in k]
    assert edge0 and not any(k in got.keys for k in edge0)  # BN of 1x1 vs 3x3 has the same shape
    assert all(torch.equal(child.state_dict()[k], fresh[k]) for k in edge0)
    assert any(".edges.1." in k for k in got.keys) and 0 < got.fraction < 1


# --- the evaluator: epochs, history fields, missing weights -----------------------------------

TINY = ["search_space.channels=2", "dataset.subset=0.15", "dataset.batch_size=64", "logger=none", "progress=none"]


def _evaluator(tmp_path: Path, *overrides: str):
    from renas.build import build_evaluator, build_space

    cfg = compose("search", [*TINY, *overrides])
    space = build_space(cfg.search_space)
    validate(cfg, space)
    return build_evaluator(cfg, space, tmp_path / "run"), space


def test_inherited_child_trains_finetune_epochs_and_scratch_children_the_full_proxy(tmp_path):
    ev, space = _evaluator(tmp_path, "evaluator.inherit_weights=true", "trainer.max_epochs=2",
                           "evaluator.finetune_epochs=1")
    parent = space.format(CellGenotype(RENASNET))
    child = space.format(_edit(RENASNET, 0, op="conv_3x3"))
    first = ev.evaluate(Task(0, parent, (), 1))
    assert first.metrics["epochs"] == 2 and first.metrics["inherited"] == 0.0
    assert first.metrics["parent_weights_missing"] is False
    second = ev.evaluate(Task(1, child, (), 2, parent_arch=parent))
    assert second.metrics["epochs"] == 1
    assert 0.3 < second.metrics["inherited"] < 1.0
    assert second.metrics["parent_weights_missing"] is False
    assert second.metrics["train_seconds"] > 0


def test_missing_parent_weights_warn_and_are_recorded(tmp_path, caplog):
    ev, space = _evaluator(tmp_path, "evaluator.inherit_weights=true", "trainer.max_epochs=2",
                           "evaluator.finetune_epochs=1")
    parent = space.format(CellGenotype(RENASNET))
    child = space.format(_edit(RENASNET, 0, op="conv_3x3"))
    with caplog.at_level(logging.WARNING, logger="renas.evaluate"):
        out = ev.evaluate(Task(5, child, (), 2, parent_arch=parent))  # the parent was never trained here
    assert out.metrics["parent_weights_missing"] is True
    assert out.metrics["epochs"] == 2 and out.metrics["inherited"] == 0.0  # from scratch: the full proxy
    assert any("child 5" in r.message and "missing" in r.message for r in caplog.records)



@pytest.mark.parametrize("damage", ["junk", "cut", "a list"])
def test_unreadable_parent_weights_warn_and_the_child_trains_from_scratch(tmp_path, caplog, damage):
    """A damaged weights file in the run folder (a disk error, a copy cut short) failed every
    child of that parent (``KeyError: 174812789``, naming no file) and fed the controller their
    failures as rewards. It is now a parent whose weights are missing: a warning naming the
    file, ``parent_weights_missing: true``, and the child trains from scratch."""
    ev, space = _evaluator(tmp_path, "evaluator.inherit_weights=true", "trainer.max_epochs=2",
                           "evaluator.finetune_epochs=1")
    parent = space.format(CellGenotype(RENASNET))
    child = space.format(_edit(RENASNET, 0, op="conv_3x3"))
    assert ev.evaluate(Task(0, parent, (), 1)).status == "ok"
    (weights,) = (tmp_path / "run" / "weights").glob("*.pt")
    if damage == "junk":
        weights.write_bytes(b"junk\n")
    elif damage == "cut":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        torch.save([1, 2, 3], weights)
    with caplog.at_level(logging.WARNING, logger="renas.evaluate"):
        out = ev.evaluate(Task(1, child, (), 2, parent_arch=parent))
    assert out.status == "ok" and out.metrics["parent_weights_missing"] is True
    assert out.metrics["epochs"] == 2 and out.metrics["inherited"] == 0.0
    assert any("child 1: its parent's weights cannot be read" in r.message and str(weights) in r.message
               for r in caplog.records)

def test_search_history_records_epochs_inheritance_and_lost_weights(tmp_path, monkeypatch):
    """A real (tiny) search with inheritance whose parents' weights disappear: every child's
    history line says its epochs, seconds and inherited fraction, the lost weights are a field,
    and the per-child plot is written."""
    from renas.evaluate.lightning_eval import TrainEvaluator
    from renas.search.run import run_search

    def lose_everything(self, archs):  # as if the weights folder were on another machine
        for f in self.weights_dir.glob("*.pt"):
            f.unlink()

    monkeypatch.setattr(TrainEvaluator, "retain", lose_everything)
    cfg = compose("search", [*TINY, "evaluator.inherit_weights=true", "trainer.max_epochs=2",
                             "evaluator.finetune_epochs=1", "ga.population_size=2", "ga.sample_size=2",
                             "ga.budget=4", "seed=3"])
    run_dir = tmp_path / "run"
    run_search(cfg, run_dir)
    records = read_jsonl(run_dir / "history.jsonl")
    assert len(records) == 4
    for r in records:
        m = r["metrics"]
        assert {"epochs", "train_seconds", "inherited", "parent_weights_missing"} <= m.keys()
        assert r["seconds"] > 0
    children = [r for r in records if r["parent"] is not None]
    assert children and all(r["metrics"]["parent_weights_missing"] for r in children)
    assert all(r["metrics"]["epochs"] == 2 for r in records)
    assert all(not r["metrics"]["parent_weights_missing"] for r in records if r["parent"] is None)
    assert (run_dir / "plots" / "children.png").stat().st_size > 0


@pytest.mark.parametrize(
    "override, message",
    [
        ("evaluator.finetune_epochs=0", "evaluator.finetune_epochs=0 is out of range"),
        ("evaluator.bn_recalibration=-1", "evaluator.bn_recalibration=-1 is out of range"),
    ],
)  # wrong types (finetune_epochs=1.5, bn_recalibration=yes) fail at composition: tests/test_bad_input.py
def test_bad_evaluator_settings_are_one_clear_error(tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _evaluator(tmp_path, override)


def test_batchnorm_recalibration_uses_the_given_batches_and_restores_the_momentum():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.BatchNorm2d(3))
    bn = net[1]
    x = torch.randn(16, 1, 4, 4) * 3 + 5
    net.eval()
    used = recalibrate_batchnorm(net, [(x, None)])
    assert used == 1 and not net.training and bn.momentum == 0.1
    with torch.no_grad():
        y = net[0](x)
    assert torch.allclose(bn.running_mean, y.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, y.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4)


def test_a_child_of_a_failed_parent_trains_from_scratch_without_a_missing_weights_warning(tmp_path, monkeypatch, caplog):
    """With ``loop.on_failure=worst`` a failed child can be a parent; it never had weights, so
    its children train from scratch as random children do, not flagged as "parent weights
    missing" (that flag is for weights that should be on disk and are not)."""
    from renas.evaluate.lightning_eval import TrainEvaluator
    from renas.search.run import run_search

    real = TrainEvaluator.evaluate

    def initial_fail(self, task):  # the initial population fails: every later child has a failed parent
        if task.parent_arch is None and task.id < 2:
            raise RuntimeError("a child that could not train")
        return real(self, task)

    monkeypatch.setattr(TrainEvaluator, "evaluate", initial_fail)
    cfg = compose("search", [*TINY, "evaluator.inherit_weights=true", "trainer.max_epochs=2",
                             "evaluator.finetune_epochs=1", "ga.population_size=2", "ga.sample_size=2",
                             "ga.budget=3", "seed=3", "loop.on_failure=worst"])
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        run_search(cfg, run_dir)
    records = read_jsonl(run_dir / "history.jsonl")
    assert [r["status"] for r in records[:2]] == ["failed", "failed"]
    child = records[2]
    assert child["parent"] in (0, 1) and child["status"] == "ok"
    assert child["metrics"]["parent_weights_missing"] is False and child["metrics"]["inherited"] == 0.0
    assert child["metrics"]["epochs"] == 2  # the full proxy, from scratch
    assert not [m for m in caplog.messages if "weights are missing" in m]
