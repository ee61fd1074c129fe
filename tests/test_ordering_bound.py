"""benchmarks/ordering_bound.py: its loop on a synthetic table, and its refusals of bad input."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ordering_bound.py"


@pytest.fixture(scope="module")
def ob():
    spec = importlib.util.spec_from_file_location("ordering_bound", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ordering_bound"] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("ordering_bound", None)


def _write_table(path: Path, ob, rows=None) -> Path:
    """An additive table over all 15,625 cells (distinct per-edge values: one best cell, no ties)."""
    weights = np.random.default_rng(0).permutation(30).reshape(6, 5) / 10.0
    lines = ["arch_str,c10_valid_12ep"]
    for cell in rows if rows is not None else itertools.product(range(5), repeat=6):
        if isinstance(cell, str):
            lines.append(cell)
            continue
        e = [f"{ob.OPS[o]}~{i}" for o, i in zip(cell, (0, 0, 1, 0, 1, 2))]
        arch = f"|{e[0]}|+|{e[1]}|{e[2]}|+|{e[3]}|{e[4]}|{e[5]}|"
        lines.append(f"{arch},{80 + sum(weights[k, o] for k, o in enumerate(cell)):.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory, ob):
    return _write_table(tmp_path_factory.mktemp("ob") / "additive.csv", ob)


def test_on_an_additive_table_every_order_climbs_to_the_best_cell(ob, table_csv):
    table = ob.read_table(table_csv, "c10_valid_12ep")
    assert len(table) == 5**6
    best = max(table.values())
    archs = list(table)
    X = np.array([ob.features(a)[:30] for a in archs])
    oracle = np.linalg.lstsq(X, np.array([table[a] for a in archs]), rcond=None)[0]
    # no local optima but the best cell: the oracle (each edge's best op first) climbs there within
    # 3 + 6 evaluations; any order of the untried neighbours within 3 + 24 improvements * 24 neighbours
    for seed in range(3):
        assert ob.hill_climb(table, seed, 9, "oracle", oracle) == best
        assert ob.hill_climb(table, seed, 3 + 24 * 24, "random", oracle) == best
    # the learned order (terms per op and input node) too; one seed: it refits on every evaluation
    assert ob.hill_climb(table, 0, 3 + 24 * 24, "learned", oracle, model=ob.Model(np.inf, "in")) == best
    assert ob.hill_climb(table, 0, 3 + 24 * 24, "learned", oracle, model=ob.Model(30.0), pick="thompson") == best
    two = ob._two_gene((0, 1, 2, 3, 4, 0))
    assert len(two) == len(set(two)) == 15 * 4 * 4
    assert all(sum(x != y for x, y in zip(a, (0, 1, 2, 3, 4, 0))) == 2 for a in two)
    # the budget is the number of distinct cells evaluated: a budget of 3 is the first population
    starts = np.random.default_rng(5)
    first = [tuple(int(v) for v in starts.integers(0, 5, 6)) for _ in range(3)]
    assert ob.hill_climb(table, 5, 3, "random", oracle) == max(table[a] for a in first)
    assert ob.global_search(table, 1, 12) <= best


def test_path_terms_count_what_reaches_the_output(ob):
    assert ob.path_terms((0,) * 6).tolist() == [0] * 7  # all none: nothing reaches the output
    # skip 0->1, conv3 0->2, conv3 1->2, none 0->3, conv3 1->3, conv3 2->3: the direct path is cut,
    # the three others live: skip on two of them, conv3 five times, at most 2 convs on one path
    assert ob.path_terms((1, 3, 3, 0, 3, 3)).tolist() == [0, 2, 0, 5, 0, 2, 3]
    # a live edge off every live path adds nothing: conv1x1 on 0->1 when 1->2 and 1->3 are none
    assert ob.path_terms((2, 3, 0, 1, 0, 3)).tolist() == [0, 1, 0, 2, 0, 2, 2]
    model = ob.Model(np.inf, paths=True)
    assert model.x((3,) * 6).shape == model.penalty().shape == (7 + 5,)


def test_explained_is_one_for_the_model_that_made_the_table(ob, table_csv):
    table = ob.read_table(table_csv, "c10_valid_12ep")
    r2, rho = ob.explained(table, ob.Model())  # the table is additive per edge and op
    assert r2 == pytest.approx(1.0) and rho > 0.95  # (the table has ties; ranks break them arbitrarily)
    r2, rho = ob.explained(table, ob.Model(np.inf))  # labels alone cannot tell the edges apart
    assert 0 < r2 < 0.9 and rho < 0.9


def test_thompson_draws_around_the_ridge_fit_and_breaks_ties_at_random(ob, table_csv):
    table = ob.read_table(table_csv, "c10_valid_12ep")
    rng = np.random.default_rng(0)
    cells = [tuple(int(v) for v in rng.integers(0, 5, 6)) for _ in range(40)]
    seen = {a: table[a] for a in cells}
    model = ob.Model(np.inf)  # labels only: 5 terms
    mean = ob.fit(seen, model)
    draws = np.array([ob.thompson_weights(rng, seen, model, 1.0) for _ in range(4000)])
    spread = draws.std(axis=0)
    assert np.all(spread > 0)
    assert np.allclose(draws.mean(axis=0), mean, atol=4 * spread.max() / np.sqrt(len(draws)))
    assert np.allclose(np.array([ob.thompson_weights(rng, seen, model, 0.01) for _ in range(4000)]).std(axis=0),
                       spread / 10, rtol=0.1)
    # labels only: changing `none` to a conv on any of the 6 edges has the same terms; such ties are
    # broken at random, not by edge order (a fixed order would favour some edges on every table)
    parent = (0,) * 6
    untried = [parent[:i] + (3,) + parent[i + 1:] for i in range(6)]
    picks = {ob.learned_pick(rng, untried, seen, model, "thompson", 0.01) for _ in range(60)}
    assert len(picks) >= 4


def test_main_prints_each_order_and_budget(ob, table_csv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ordering_bound.py", "--table", str(table_csv), "--seeds", "2", "--budgets", "9", "40",
                                      "--orders", "random", "oracle", "global", "--restart", "model"])
    ob.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("15625 cells; best ") and "R2 = 1.00" in out[0]
    assert [line.split()[0] for line in out[1:]] == ["random", "oracle", "global"]
    assert all("b9 " in line and "b40 " in line for line in out[1:])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "1"], "--seeds=1: need at least 2"),
        (["--first-seed", "-1"], "--first-seed=-1 must be >= 0"),
        (["--budgets", "50", "0"], "--budgets 0: each budget must be in 1..15625"),
        (["--budgets", "20", "20"], "--budgets 20 20: a value is named twice"),  # a column printed twice
        (["--orders", "random", "random"], "--orders random random: a value is named twice"),
        (["--edge-ridge", "0"], "--edge-ridge must be > 0"),
        (["--node-ridge", "inf"], "--node-ridge must be > 0 and finite"),
        (["--pick", "thompson", "--posterior-scale", "0"], "--posterior-scale must be > 0 and finite"),
        (["--posterior-scale", "0.5"], "--posterior-scale=0.5 is used by --pick thompson only"),  # was ignored
        (["--table", "{tmp}/nope.csv"], "nope.csv: no such file"),
        (["--metric", "nope"], "no column nope (columns: arch_str, c10_valid_12ep)"),
        (["--table", "{tmp}/few.csv"], "few.csv: 2 cells; the loop needs all 15625"),
        (["--table", "{tmp}/badarch.csv"], "line 3: '|conv~0|' is not a NAS-Bench-201 cell"),
        (["--table", "{tmp}/badvalue.csv"], "line 2: c10_valid_12ep='n/a' is not a number"),
    ],
)
def test_bad_input_is_one_line_and_status_2(ob, table_csv, tmp_path, monkeypatch, capsys, argv, message):
    _write_table(tmp_path / "few.csv", ob, rows=[(0,) * 6, (1,) * 6])
    _write_table(tmp_path / "badarch.csv", ob, rows=[(0,) * 6, "|conv~0|,1.0"])
    _write_table(tmp_path / "badvalue.csv", ob, rows=["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,n/a"])
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--table" not in argv:
        argv += ["--table", str(table_csv)]
    monkeypatch.setattr(sys, "argv", ["ordering_bound.py", *argv])
    with pytest.raises(SystemExit) as e:
        ob.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
