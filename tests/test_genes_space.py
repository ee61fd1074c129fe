"""Bring your own search space: genes from config, hooks, any table, every algorithm, examples.

The toy table space (conf/experiment/toy_table.yaml, examples/toy_table/) and the trainable
digits CNN space (conf/search_space/digits_cnn.yaml, examples/digits_cnn.py) ship with the
project, so nothing here needs ../shared.
"""

from __future__ import annotations

import csv
import functools
import json
import re

import numpy as np
import pytest
from torch import nn

from helpers import REPO, compose, read_jsonl, run_entry, write_csv
from renas.build import build_evaluator, build_space, build_strategy
from renas.errors import ConfigError, GenotypeError, RenasError
from renas.evaluate.base import InlineExecutor
from renas.evaluate.table import TableEvaluator
from renas.search.loop import Journal, Search
from renas.search.run import check_between
from renas.space.genes import GenesSpace

ALGORITHMS = sorted(p.stem for p in (REPO / "conf" / "algorithm").glob("*.yaml"))
TOY_OPTIMUM = "op1:conv5|op2:sep3|op3:conv3|op4:pool|width:64|depth:2"


def small_space(**hooks) -> GenesSpace:
    return GenesSpace([{"name": "depth", "choices": [1, 2, 3]},
                       {"name": "lr", "choices": [5e-4, 1e-3, 0.1]},
                       {"name": "act", "choices": ["relu", "tanh"], "kind": "act"},
                       {"name": "bn", "choices": [True, False]}], name="small", **hooks)


# --- genes and genotype strings ----------------------------------------------------------------
def test_every_genotype_string_round_trips_and_reads_as_documented():
    space = small_space()
    assert [g.kind for g in space.genes] == ["1|2|3", "0.0005|0.001|0.1", "act", "true|false"]  # default: the choices
    genotypes = list(space.genotypes())
    assert len(genotypes) == space.size == 36
    strings = {space.format(g) for g in genotypes}
    assert len(strings) == 36
    for g in genotypes:
        assert space.parse(space.format(g)) == g
    g = space.parse("depth:2|lr:0.001|act:tanh|bn:false")
    assert space.as_dict(g) == {"depth": 2, "lr": 1e-3, "act": "tanh", "bn": False}
    # the other accepted forms: name=choice, commas or spaces, any order, numbers by value,
    # a mapping (a Hydra dict override), a list of choices in gene order
    for other in ("depth=2,lr=1e-3,act=tanh,bn=false", "bn:False act:tanh lr:1.0e-03 depth:2.0",
                  {"depth": 2, "lr": 0.001, "act": "tanh", "bn": False}, [2, "0.001", "tanh", False]):
        assert space.parse(other) == g, other


def test_choices_with_separators_round_trip_escaped():
    """A third-party table's choices may hold spaces, commas, colons: written %XX in strings."""
    space = GenesSpace({"op": ["max pool", "conv 3x3", "a|b", "x:y", "50%"], "lr": ["1e-3", "0.01"], "n layers": [16, 32]})
    for g in space.genotypes():
        assert space.parse(space.format(g)) == g
    g = space.parse({"op": "max pool", "lr": 0.001, "n layers": "16.0"})  # numbers by value, strings too
    assert space.format(g) == "op:max%20pool|lr:1e-3|n%20layers:16"
    assert space.parse("op:a%7Cb|lr:1.0E-3|n%20layers:32") == space.parse({"op": "a|b", "lr": "1e-3", "n layers": 32})


@pytest.mark.parametrize("text, message", [
    ("depth:4|lr:0.001|act:tanh|bn:true", "gene depth: '4' is not one of 1, 2, 3"),
    ("depth:1|lr:0.001|act:tanh", "gives no choice for gene(s) bn"),
    ("depth:1|depth:2|lr:0.001|act:tanh|bn:true", "gene depth is given twice"),
    ("width:1|depth:1|lr:0.001|act:tanh|bn:true", "has no gene 'width'"),
    ("depth 1", "'depth' is not name:choice"),
    (7, "is a string like 'name:choice|...'"),
])
def test_a_bad_genotype_string_is_one_line_naming_the_problem(text, message):
    with pytest.raises(GenotypeError, match=None) as e:
        small_space().parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("genes, message", [
    (None, "search_space.genes is not set"),
    ([], "must be a non-empty list"),
    ([{"name": "a", "choices": []}], "genes[0] (a).choices must be a non-empty list"),
    ([{"name": "a", "choices": [1]}, {"name": "a", "choices": [2]}], "gene name 'a' is used twice"),
    ([{"name": " ", "choices": [1]}], "name must be a non-empty string"),
    ([{"name": "a", "choices": ["x", "x"]}], "choice 'x' appears twice"),
    ([{"name": "a", "choices": [1, 1.0]}], "two choices are the same number"),
    ([{"name": "a", "choices": [""]}], "choice '' is empty"),
    ([{"name": "a", "choices": [[1, 2]]}], "is not a string or a number"),
    ([{"name": "a", "choices": [1], "kinds": "op"}], "unknown key(s) kinds"),
    # white space at either end: a genotype string reads its tokens stripped, so ' lead' never read back
    ([{"name": "a", "choices": [" lead", "b"]}], "genes[0] (a): choice ' lead' starts or ends with white space, which "
                                                 "genotype strings do not keep; leave it out"),
    ([{"name": "a ", "choices": [1]}], "genes[0].name 'a ' starts or ends with white space"),
])
def test_bad_genes_are_one_config_error_naming_the_gene(genes, message):
    with pytest.raises(ConfigError) as e:
        GenesSpace(genes)
    assert message in str(e.value)


def test_the_short_form_and_hooks_by_target_through_hydra():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({
        "_target_": "renas.space.genes.GenesSpace", "name": "short",
        "genes": {"depth": [1, 2], "act": {"choices": ["relu", "tanh"], "kind": "act"}},
        # extra keys of a hook are bound as keyword arguments; no _partial_ needed
        "valid": {"_target_": "examples.toy_table.rules.valid", "max_pools": 0},
        "canonical": None, "build": None, "reference": "depth:2|act:tanh"})
    with pytest.raises(RenasError, match=r"search_space.valid \(examples.toy_table.rules.valid\) failed on depth:2\|act:tanh: KeyError"):
        build_space(cfg)  # the toy rule reads op1..op4, which this space has not: named, one line
    cfg.valid = {"_target_": "renas.space.genes.no_such_function"}
    with pytest.raises(ConfigError, match="search_space.valid: cannot import 'renas.space.genes.no_such_function': .*has no attribute"):
        build_space(cfg)
    cfg.valid = None
    space = build_space(cfg)
    assert [(g.name, g.kind, g.choices) for g in space.genes] == [("depth", "1|2", ("1", "2")), ("act", "act", ("relu", "tanh"))]
    assert space.format(space.reference()) == "depth:2|act:tanh"


def test_valid_canonical_and_build_hooks():
    space = build_space(compose("search", ["search_space=digits_cnn"]).search_space)
    assert space.constrained and space.can_build
    with pytest.raises(GenotypeError, match="not allowed by search_space.valid .*examples.digits_cnn.valid"):
        space.parse("depth:2|width1:32|width2:16|width3:8|act1:relu|act2:relu|act3:relu")  # widths shrink
    a = space.parse("depth:1|width1:16|width2:8|width3:8|act1:gelu|act2:relu|act3:relu")
    b = space.parse("depth:1|width1:16|width2:64|width3:32|act1:gelu|act2:tanh|act3:gelu")
    c = space.parse("depth:2|width1:16|width2:64|width3:32|act1:gelu|act2:tanh|act3:gelu")
    assert space.canonical(a) == space.canonical(b) == space.format(a)  # layers past depth do not count
    assert space.canonical(c) != space.canonical(b)
    net = space.build(c, 1, 10)
    assert isinstance(net, nn.Module) and len(net.blocks) == 2 and net.classifier.out_features == 10
    table_only = small_space()
    assert not table_only.can_build
    with pytest.raises(ConfigError, match="search_space.build is not set"):
        table_only.build(table_only.parse("depth:1|lr:0.1|act:relu|bn:true"), 1, 10)
    with pytest.raises(ConfigError, match="search_space.reference is not set"):
        table_only.reference()
    bad = small_space(build=lambda arch, c, n: "not a module")
    with pytest.raises(RenasError, match="returned str, not an nn.Module"):
        bad.build(bad.parse("depth:1|lr:0.1|act:relu|bn:true"), 1, 10)
    lazy = small_space(build=lambda arch, c, n: nn.Sequential(nn.Flatten(), nn.LazyLinear(n)))
    with pytest.raises(RenasError, match=r"^search_space.build \(.*\) returned a network with lazy modules \(LazyLinear\): "
                                         r"give their sizes"):  # (was: train.py's traceback, counting its parameters)
        lazy.build(lazy.parse("depth:1|lr:0.1|act:relu|bn:true"), 1, 10)
    forgot = small_space(canonical=lambda arch: None)  # a hook without its return: every architecture one key
    with pytest.raises(RenasError, match=r"search_space.canonical \(.*\) returned None for depth:1\|lr:0.1\|act:relu\|"
                                         r"bn:true: return a key"):
        forgot.canonical(forgot.parse("depth:1|lr:0.1|act:relu|bn:true"))
    none = small_space(valid=lambda arch: False)
    with pytest.raises(RenasError, match="none of 10,000 random architectures is allowed"):
        build_strategy(compose("search", ["algorithm=random"]), none).random_values()
    yes = small_space(valid=lambda arch: "yes")  # a bug in the hook, not an answer
    with pytest.raises(RenasError, match=r"search_space.valid \(.*\) returned 'yes' for depth:1\|lr:0.0005\|act:relu\|bn:true; "
                                         r"it must return True or False"):
        yes.parse("depth:1|lr:0.0005|act:relu|bn:true")
    assert small_space(valid=lambda arch: np.bool_(arch["depth"] < 3)).allowed() == 24
    calls = []
    counted = small_space(valid=lambda arch: calls.append(arch) or True)
    assert counted.allowed(at_most=5) == 5 and len(calls) == 5  # a slow hook is called only as far as needed


def test_a_valid_hook_that_allows_too_little_is_refused_before_the_search():
    cfg = compose("search", ["algorithm=random", "ga.budget=24"])
    check_between(cfg, small_space(valid=lambda arch: arch["depth"] < 3))  # 24 of 36 allowed: the budget fits
    cfg.ga.budget = 25
    with pytest.raises(ConfigError, match=r"ga.budget=25 is larger than the search space \(24 of its 36 architectures "
                                          r"are allowed by search_space.valid\)"):
        check_between(cfg, small_space(valid=lambda arch: arch["depth"] < 3))
    cfg.loop.dedup = "isomorphic"  # repeats of a canonical form cost nothing: no count to compare
    check_between(cfg, small_space(valid=lambda arch: arch["depth"] < 3))
    with pytest.raises(ConfigError, match="search_space.valid allows none of the 36 architectures of the small space"):
        check_between(cfg, small_space(valid=lambda arch: False))


# --- any table ------------------------------------------------------------------------------------
def all_rows(space: GenesSpace) -> list[list]:
    rows = []
    for g in space.genotypes():
        d = space.as_dict(g)
        rows.append([d["depth"], d["lr"], d["act"], str(d["bn"]).lower(), d["depth"] * 10 + (d["act"] == "relu"), 1.0])
    return rows


HEADER = ["depth", "lr", "act", "bn", "valid_acc", "test_acc"]


def test_a_table_keyed_by_one_column_per_gene_or_by_genotype_strings(tmp_path):
    space = small_space()
    rows = all_rows(space)
    rows_text = [[r[0], {5e-4: "0.0005", 1e-3: "1e-3", 0.1: "0.10"}[r[1]], *r[2:]] for r in rows]  # numbers by value
    ev = TableEvaluator(space, str(write_csv(tmp_path / "t.csv", HEADER, rows_text)), metric="valid_acc",
                        report=["test_acc"], key_columns="genes")
    assert len(ev.table.rows) == 36
    assert ev.optimum() == ("depth:3|lr:0.0005|act:relu|bn:true", 31.0)
    # custom column names, in gene order
    renamed = ["n_layers", "init_lr", "activation", "batchnorm", "valid_acc", "test_acc"]
    ev = TableEvaluator(space, str(write_csv(tmp_path / "r.csv", renamed, rows)), metric="valid_acc",
                        key_columns=renamed[:4])
    assert ev.value("depth:2|lr:0.1|act:tanh|bn:false", "valid_acc") == 20.0
    # a table read before is not read again, unless the file changed
    again = TableEvaluator(space, str(tmp_path / "r.csv"), metric="valid_acc", key_columns=renamed[:4])
    assert again.table.rows is ev.table.rows
    write_csv(tmp_path / "r.csv", renamed, [r[:4] + [r[4] + 1000, r[5]] for r in rows])
    changed = TableEvaluator(space, str(tmp_path / "r.csv"), metric="valid_acc", key_columns=renamed[:4])
    assert changed.value("depth:2|lr:0.1|act:tanh|bn:false", "valid_acc") == 1020.0
    # one column of genotype strings
    strings = [[space.format(space.parse(r[:4])), r[4]] for r in rows]
    ev = TableEvaluator(space, str(write_csv(tmp_path / "s.csv", ["arch", "acc"], strings)), metric="acc",
                        key_column="arch")
    assert ev.value("depth:1|lr:0.0005|act:relu|bn:true", "acc") == 11.0


def test_bad_tables_are_one_line_naming_the_first_bad_row(tmp_path):
    space = small_space()
    rows = all_rows(space)

    def error(rows, header=HEADER, **kw):
        path = write_csv(tmp_path / "bad.csv", header, rows)
        with pytest.raises(ConfigError) as e:
            TableEvaluator(space, str(path), metric="valid_acc", **{"key_columns": "genes", **kw})
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "has no row for depth:3|lr:0.1|act:tanh|bn:false" in error(rows[:-1])
    assert "line 5: column valid_acc is 'n/a', not a number" in error(rows[:3] + [rows[3][:4] + ["n/a", 1.0]] + rows[4:])
    assert "line 3: gene act: 'swish' is not one of relu, tanh (evaluator.extra_rows=skip" in error(
        rows[:1] + [[1, 0.1, "swish", "true", 0, 0]] + rows[1:])
    assert "line 38: depth:1|lr:0.0005|act:relu|bn:true is also on line 2 (evaluator.duplicates=mean" in error(rows + rows[:1])
    assert "line 2 has fewer fields than the header" in error([rows[0][:5]] + rows[1:], report=["test_acc"])
    assert re.search(r"key column 'depth' is not in .*\.csv; columns are: 'lr', 'act',", error([r[1:] for r in rows], HEADER[1:]))
    assert "needs one column per gene (4: depth, lr, act, bn), got 2" in error(rows, key_columns=["depth", "lr"])
    # the genes' own columns in another order read each gene from another's column (silently, before)
    assert "key_columns=[lr,depth,act,bn] names the genes in another order than the space's (depth, lr, act, bn)" in error(
        rows, key_columns=["lr", "depth", "act", "bn"])
    assert "evaluator.key_columns='gens' must be genes (one column per gene" in error(rows, key_columns="gens")
    # a spreadsheet's byte-order mark before the first column name is not part of the name
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + write_csv(tmp_path / "good.csv", HEADER, rows).read_bytes())
    assert len(TableEvaluator(space, str(bom), metric="valid_acc", key_columns="genes").table.rows) == len(rows)
    # the options that accept such tables
    path = write_csv(tmp_path / "ok.csv", HEADER, rows + [[1, 0.1, "swish", "true", 0, 0], rows[0][:4] + [99.0, 1.0]])
    ev = TableEvaluator(space, str(path), metric="valid_acc", key_columns="genes", extra_rows="skip", duplicates="mean")
    assert ev.value("depth:1|lr:0.0005|act:relu|bn:true", "valid_acc") == (11.0 + 99.0) / 2
    ev = TableEvaluator(space, str(path), metric="valid_acc", key_columns="genes", extra_rows="skip", duplicates="first")
    assert ev.value("depth:1|lr:0.0005|act:relu|bn:true", "valid_acc") == 11.0
    # a constrained space needs rows only for what it allows
    constrained = small_space(valid=lambda arch: arch["depth"] < 3)
    path = write_csv(tmp_path / "c.csv", HEADER, [r for r in rows if r[0] < 3])
    assert len(TableEvaluator(constrained, str(path), metric="valid_acc", key_columns="genes").table.rows) == 24


# --- every algorithm, unchanged ----------------------------------------------------------------------
@functools.lru_cache
def toy(algorithm: str):
    # a stricter rule than the table's (no pooling at all: 972 of 3,072 combinations), so that
    # every proposer meets disallowed architectures all the time
    return compose("search", ["experiment=toy_table", f"algorithm={algorithm}", "search_space.valid.max_pools=0",
                              "evaluator.extra_rows=skip", "ga.budget=40", "ga.population_size=8", "ga.sample_size=4",
                              "ga.crossover_rate=0.5", "logger=none", "progress=none", "seed=1"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_searches_a_config_space_and_never_proposes_what_valid_rejects(tmp_path, algorithm):
    cfg = toy(algorithm)
    space = build_space(cfg.search_space)
    strategy = build_strategy(cfg, space)
    proposed: list[tuple[int, ...]] = []
    ask = strategy.ask

    def spy():
        proposal = ask()
        if proposal is not None:
            proposed.append(proposal.values)
        return proposal

    strategy.ask = spy
    records: list[dict] = []
    Search(space, strategy, InlineExecutor(build_evaluator(cfg, space, tmp_path)), budget=40, generation_size=8,
           seed=1, callbacks=[Journal(records.append)]).run()
    assert len(records) == 40 and len(proposed) >= 40
    assert all(space.is_valid(v) for v in proposed), "a proposer returned an architecture the valid hook rejects"
    assert all("pool" not in r["arch"] for r in records)
    assert len({r["arch"] for r in records}) == 40  # distinct, each a row of the table
    assert all(r["metrics"]["test_acc"] > 0 for r in records)


def test_search_and_benchmark_run_the_table_example_from_its_experiment_file(tmp_path):
    run = tmp_path / "search"
    proc = run_entry("search.py", "experiment=toy_table", "logger=none", "progress=none", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["search_space"] == "toy" and summary["evaluator"] == "table" and summary["evaluations"] == 100
    assert summary["best"]["arch"] == TOY_OPTIMUM  # RENAS finds the documented optimum with seed 0
    bench = tmp_path / "bench"
    proc = run_entry("renas.benchmark", "experiment=toy_table", "seeds=2", "budget=30", f"hydra.run.dir={bench}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((bench / "benchmark.json").read_text())
    assert data["table"].endswith("examples/toy_table/table.csv") and data["metric"] == "valid_acc" and data["report"] == "test_acc"
    assert data["report_optimum"]["arch"] == TOY_OPTIMUM and data["report_optimum"]["value"] == 84.3
    assert set(data["results"]) == {"renas", "evolution", "rea", "rea_tuned", "local", "tpe", "reinforce", "random"}
    assert all(r["runs"] == 2 for r in data["results"].values())

    # the same table as losses (100 - accuracy), minimised: every algorithm makes the same choices
    # (they compare fitness, and a shift changes no comparison), so hit rates, paired differences
    # and regrets are the same; the loss values are 100 - the accuracies
    losses = tmp_path / "losses.csv"
    with open(REPO / "examples/toy_table/table.csv") as f, open(losses, "w", newline="") as g:
        rows = list(csv.DictReader(f))
        w = csv.writer(g)
        w.writerow(["op1", "op2", "op3", "op4", "width", "depth", "valid_loss", "test_loss"])
        w.writerows([[r["op1"], r["op2"], r["op3"], r["op4"], r["width"], r["depth"],
                      100 - float(r["valid_acc"]), 100 - float(r["test_acc"])] for r in rows])
    bench_min = tmp_path / "bench_min"
    proc = run_entry("renas.benchmark", "experiment=toy_table", "algorithms=[renas,rea,local,tpe]", "seeds=2", "budget=30",
                     f"evaluator.table={losses}",
                     "evaluator.metric=valid_loss", "evaluator.report=[test_loss]", "evaluator.direction=min",
                     f"hydra.run.dir={bench_min}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    low = json.loads((bench_min / "benchmark.json").read_text())
    assert low["direction"] == "min" and low["report_optimum"]["arch"] == TOY_OPTIMUM
    assert low["report_optimum"]["value"] == pytest.approx(100 - 84.3)
    for name, m in low["results"].items():
        r = data["results"][name]
        assert m["hit_rate"] == r["hit_rate"], name
        assert m["report_mean"] == pytest.approx(100 - r["report_mean"]), name
        assert m["fitness_mean"] == pytest.approx(r["fitness_mean"] - 100), name
    for name, pair in low["paired"]["30"].items():
        for column in ("fitness", "report"):
            assert pair[column]["mean_diff"] == pytest.approx(data["paired"]["30"][name][column]["mean_diff"], abs=1e-9)
    md = (bench_min / "benchmark.md").read_text()
    assert "−valid_loss" in md and "Regret = mean − optimum" in md


@pytest.mark.slow
def test_the_trainable_example_searches_and_trains_with_its_build_hook(tmp_path):
    run = tmp_path / "search"
    proc = run_entry("search.py", "experiment=digits_cnn", "ga.budget=4", "ga.population_size=2", "ga.sample_size=2",
                     "trainer.max_epochs=1", "logger=none", "progress=none", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = read_jsonl(run / "history.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" and 0 <= r["fitness"] <= 1 for r in records)
    assert all(r["metrics"]["params"] > 0 and r["metrics"]["epochs"] == 1 for r in records)
    train = tmp_path / "train"
    proc = run_entry("train.py", "search_space=digits_cnn", f"arch_from={run}", "trainer.max_epochs=1", "logger=none",
                     f"hydra.run.dir={train}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((train / "result.json").read_text())
    assert result["arch"] == json.loads((run / "summary.json").read_text())["best"]["arch"]
    assert 0 <= result["test_acc"] <= 1

    from renas.train.final import load_trained

    net, meta = load_trained(train / "model.ckpt")
    assert isinstance(net, nn.Module) and not net.training and meta["arch"] == result["arch"]
    # a table-only space cannot be trained: one line before any run folder
    proc = run_entry("search.py", "search_space=genes", "search_space.genes={a: [1, 2, 3, 4]}", "ga.budget=4", "logger=none",
                     f"hydra.run.dir={tmp_path / 'no'}")
    assert proc.returncode == 2 and "evaluator=train needs networks, and the genes space has none" in proc.stderr
    assert not (tmp_path / "no").exists()
