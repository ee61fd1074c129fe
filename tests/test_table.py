"""The NAS-Bench-201 table: isomorphism classes, known values, errors; the NATS-Bench converter."""

from __future__ import annotations

import csv
import itertools
import math
import sys
from collections import defaultdict

import pytest

from conftest import SHARED
from helpers import run_cli, run_entry, write_csv
from renas.errors import ConfigError
from renas.evaluate.table import TableEvaluator
from renas.space.nasbench201 import OP_NAMES, NASBench201Space, canonical_form
from renas.tools import nb201_to_csv as conv

NB201_DIR = SHARED / "data" / "nasbench201"
CSV_PATH = NB201_DIR / "nb201_cifar10.csv"
needs_table = pytest.mark.needs_shared("data/nasbench201/nb201_cifar10.csv")
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space():
    return NASBench201Space()


@pytest.fixture(scope="module")
def rows():
    if not CSV_PATH.is_file():
        pytest.skip(f"needs shared data at {CSV_PATH} (set RENAS_SHARED to the folder holding data/)")
    with open(CSV_PATH, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def table(space):
    if not CSV_PATH.is_file():
        pytest.skip(f"needs shared data at {CSV_PATH} (set RENAS_SHARED to the folder holding data/)")
    return TableEvaluator(space, str(CSV_PATH), metric="c10_valid_12ep", report=["c10_test_200ep", "c10_test_12ep"])


# --- the shipped table ------------------------------------------------------------------------
@needs_table
def test_canonical_form_groups_cells_exactly_as_the_benchmarks_unique_str(rows, space):
    assert len(rows) == 15625
    ours: dict[str, set[str]] = defaultdict(set)
    theirs: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        ops = [OP_NAMES[o] for o in space.parse(row["arch_str"]).ops]
        ours[canonical_form(ops)].add(row["arch_str"])
        theirs[row["unique_str"]].add(row["arch_str"])
    assert len(ours) == len(theirs) == 6466
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs.values()))
    # and space.canonical is the same function
    assert space.canonical(space.parse(rows[0]["arch_str"])) == rows[0]["unique_str"]


@needs_table
def test_known_values_of_the_table(table, space):
    arch = space.format(space.parse(ALL_SKIP))
    assert table.value(arch, "c10_test_200ep") == pytest.approx(54.30, abs=0.01)
    best_arch, best_valid = table.optimum()  # by the search metric
    assert best_valid == pytest.approx(84.892, abs=0.001)
    assert table.value(best_arch, "c10_test_200ep") == pytest.approx(94.37, abs=0.01)
    _, best_test = table.optimum("c10_test_200ep")
    assert best_test == pytest.approx(94.3733, abs=0.001)


def test_table_errors_are_clear_config_errors(tmp_path, space):
    with pytest.raises(ConfigError, match="not found") as e:
        TableEvaluator(space, str(tmp_path / "missing.csv"))
    assert "nb201_to_csv" in str(e.value)  # says how to get one
    with pytest.raises(ConfigError, match=r"evaluator.table=.* is a folder; give the CSV file of results in it"):
        TableEvaluator(space, str(tmp_path))

    archs = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ALL_SKIP]
    no_column = write_csv(tmp_path / "no_column.csv", ["arch_str", "c10_valid_12ep"], [[a, 50.0] for a in archs])
    with pytest.raises(ConfigError, match=r"column 'c10_test_200ep' is not in .*no_column\.csv; columns are: 'arch_str', 'c10_valid_12ep'"):
        TableEvaluator(space, str(no_column), metric="c10_valid_12ep", report=["c10_test_200ep"])

    no_arch = write_csv(tmp_path / "no_arch.csv", ["arch", "c10_valid_12ep"], [[a, 50.0] for a in archs])
    with pytest.raises(ConfigError, match="has no 'arch_str' column"):
        TableEvaluator(space, str(no_arch), metric="c10_valid_12ep", report=[])

    # a repeated column name: csv.DictReader keeps the last such column, so the search ran on another one, silently
    twice = write_csv(tmp_path / "twice.csv", ["arch_str", "c10_valid_12ep", "c10_valid_12ep"], [[a, 50.0, 89.0] for a in archs])
    with pytest.raises(ConfigError, match=r"^column 'c10_valid_12ep' appears 2 times in the header of .*twice\.csv; "
                                          r"give each column its own name$"):
        TableEvaluator(space, str(twice), metric="c10_valid_12ep", report=[])

    partial = write_csv(tmp_path / "partial.csv", ["arch_str", "c10_valid_12ep", "c10_test_200ep"], [[a, 50.0, 60.0] for a in archs])
    with pytest.raises(ConfigError, match=r"has no row for \|none~0\|.* \(it covers 2 architectures; the nasbench201 space allows 15,625\); a search needs them all"):
        TableEvaluator(space, str(partial), metric="c10_valid_12ep", report=["c10_test_200ep"])


@pytest.mark.parametrize("bad", ["missing", pytest.param("no_column", marks=pytest.mark.slow), pytest.param("partial", marks=pytest.mark.slow)])
def test_search_with_a_bad_table_exits_with_one_line_and_no_run_folder(tmp_path, bad):
    archs = [ALL_SKIP]
    table = {
        "missing": tmp_path / "nope.csv",
        "no_column": write_csv(tmp_path / "t.csv", ["arch_str", "other"], [[a, 1.0] for a in archs]),
        "partial": write_csv(tmp_path / "t.csv", ["arch_str", "c10_valid_12ep", "c10_test_200ep"], [[a, 1.0, 2.0] for a in archs]),
    }[bad]
    run_dir = tmp_path / "run"
    proc = run_entry("search.py", "search_space=nasbench201", "evaluator=nasbench201", f"evaluator.table={table}",
                     "logger=none", f"hydra.run.dir={run_dir}")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert str(table.name) in lines[0]
    assert not run_dir.exists()


# --- the converter (pure parts, a fake API, a fake NATS-Bench archive) ------------------------
def test_converter_column_names_match_the_shipped_table():
    cols = conv.plan_columns(["cifar10"], ["12", "200"], ["valid", "test"])
    assert [c.name for c in cols] == ["c10_valid_12ep", "c10_test_12ep", "c10_valid_200ep", "c10_test_200ep"]
    assert [c.query_dataset for c in cols[:2]] == ["cifar10-valid", "cifar10"]
    more = conv.plan_columns(["cifar100", "ImageNet16-120"], ["200"], ["valid", "test"], costs=True)
    assert [c.name for c in more] == [
        "c100_valid_200ep", "c100_test_200ep", "c100_flops_M", "c100_params_MB", "c100_latency_ms",
        "in16_valid_200ep", "in16_test_200ep", "in16_flops_M", "in16_params_MB", "in16_latency_ms",
    ]
    assert all(c.query_dataset == c.dataset for c in more)
    with pytest.raises(ConfigError, match="unknown --hp"):
        conv.plan_columns(["cifar10"], ["90"])
    with pytest.raises(ConfigError, match="--datasets cifar10 cifar10: a value is named twice"):
        conv.plan_columns(["cifar10", "cifar10"], ["12"])
    with pytest.raises(ConfigError, match="--hp 12 12: a value is named twice"):
        conv.plan_columns(["cifar10"], [12, "12"])


def test_converter_rows_and_csv_from_fake_records(tmp_path):
    records = [
        (1, "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", {"c10_valid_12ep": 82.5, "c10_test_200ep": 93.66}),
        (0, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|", {"c10_valid_12ep": 63.3, "c10_test_200ep": math.nan}),
    ]
    cols = ["c10_valid_12ep", "c10_test_200ep"]
    rows = conv.build_rows(records, cols)
    assert [r["index"] for r in rows] == [0, 1]
    path = conv.write_csv(tmp_path / "out" / "t.csv", rows, cols)
    with open(path, newline="") as f:
        back = list(csv.DictReader(f))
    assert list(back[0]) == ["index", "arch_str", "op_codes", *cols, "n_conv3x3", "n_conv1x1", "n_avgpool", "n_skip", "n_none", "unique_str"]
    # the same derived values as the shipped table's first two rows
    assert back[0]["op_codes"] == "421211" and back[1]["op_codes"] == "334131"
    assert back[0]["unique_str"] == "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1"
    assert back[1]["unique_str"] == "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0"
    assert (back[1]["n_conv3x3"], back[1]["n_avgpool"], back[1]["n_skip"]) == ("3", "1", "2")
    assert float(back[1]["c10_valid_12ep"]) == 82.5 and back[0]["c10_test_200ep"] == "nan"

    with pytest.raises(ConfigError, match="appears twice"):
        conv.build_rows([records[0], records[0]], cols)
    with pytest.raises(ConfigError, match="no value for c10_test_200ep"):
        conv.build_rows([(5, records[0][1], {"c10_valid_12ep": 1.0})], cols)
    with pytest.raises(ConfigError, match="architecture 7"):
        conv.build_rows([(7, "|conv~0|+|", {c: 1.0 for c in cols})], cols)


class FakeAPI:
    """The part of the NATS-Bench topology API the converter uses, over all 15,625 cells."""

    def __init__(self):
        self.meta_archs = [
            "+".join("|" + "|".join(f"{ops[k + j]}~{j}" for j in range(i)) + "|" for i, k in ((1, 0), (2, 1), (3, 3)))
            for ops in itertools.product(OP_NAMES, repeat=6)
        ]
        self.calls = []

    def __len__(self):
        return len(self.meta_archs)

    def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
        self.calls.append((dataset, hp, is_random))
        base = index / 1000 + (10 if hp == "200" else 0)
        if dataset == "cifar10-valid":
            return {"valid-accuracy": 50 + base, "test-accuracy": -1.0}
        if dataset == "cifar10":
            if hp == "12" and index == 3:
                raise KeyError("no trial")  # a missing value
            return {"test-accuracy": 60 + base}
        return {"valid-accuracy": 30 + base, "test-accuracy": 31 + base}


def test_converter_end_to_end_with_a_fake_api_gives_a_table_the_evaluator_reads(tmp_path, space):
    api = FakeAPI()
    cols = conv.plan_columns(["cifar10"], ["12", "200"])
    names = [c.name for c in cols]
    rows = conv.build_rows(conv.extract(api, cols, trial=False), names)
    path = conv.write_csv(tmp_path / "fake.csv", rows, names)
    assert {c[2] for c in api.calls} == {False}  # seed means, as the shipped table
    assert {(c[0], c[1]) for c in api.calls} == {("cifar10-valid", "12"), ("cifar10", "12"), ("cifar10-valid", "200"), ("cifar10", "200")}
    ev = TableEvaluator(space, str(path), metric="c10_valid_12ep", report=["c10_test_200ep", "c10_test_12ep"])
    arch = api.meta_archs[42]
    assert ev.value(arch, "c10_valid_12ep") == pytest.approx(50.042)
    assert ev.value(arch, "c10_test_200ep") == pytest.approx(70.042)
    assert math.isnan(ev.value(api.meta_archs[3], "c10_test_12ep"))
    assert ev.optimum()[0] == api.meta_archs[-1]


def test_converter_says_how_to_install_the_api(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    archive.mkdir()
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # import fails as if not installed
    assert conv.main([str(archive), "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "pip install -e '.[nats]'" in err[0]
    monkeypatch.setitem(sys.modules, "nas_201_api", None)
    pth = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    pth.write_bytes(b"")
    assert conv.main([str(pth), "-o", str(tmp_path / "x.csv")]) == 2
    assert "nas_201_api" in capsys.readouterr().err
    assert conv.main([str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_converter_help_runs():
    proc = run_cli("renas.tools.nb201_to_csv", "--help", timeout=120)
    assert proc.returncode == 0 and "--datasets" in proc.stdout and "--hp" in proc.stdout


def test_converter_reads_a_real_nats_bench_archive(tmp_path):
    """A tiny archive written with nats_bench's own classes, read back through ``create``."""
    pytest.importorskip("nats_bench")
    from nats_bench.api_utils import ArchResults, ResultsCount, pickle_save

    archs = [FakeAPI().meta_archs[i] for i in (0, 1234, 15624)]
    root = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    pickle_save({"meta_archs": archs, "arch2infos": {}, "evaluated_indexes": list(range(len(archs)))}, str(root / "meta.pickle"))
    sets = {"cifar10-valid": ["x-valid", "ori-test"], "cifar10": ["ori-test"], "cifar100": ["x-valid", "x-test", "ori-test"],
            "ImageNet16-120": ["x-valid", "x-test", "ori-test"]}
    for i, arch in enumerate(archs):
        per_hp = {}
        for hp, epochs in (("12", 12), ("200", 200)):
            res = ArchResults(i, arch)
            for d, (dataset, names) in enumerate(sets.items()):
                for seed in (777, 888):
                    acc = lambda name: 10 * d + i + (0.5 if hp == "200" else 0) + names.index(name) / 10 + seed / 1000  # noqa: E731
                    rc = ResultsCount(dataset, None, {e: 1.0 for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                                      0.5 + i, 10.0 + i, {"arch_str": arch}, seed, epochs, [0.002])
                    rc.update_eval({f"{n}@{e}": acc(n) for n in names for e in range(epochs)},
                                   {f"{n}@{e}": 0.1 for n in names for e in range(epochs)},
                                   {f"{n}@{e}": 0.01 for n in names for e in range(epochs)})
                    res.update(dataset, seed, rc)
            per_hp[hp] = res.state_dict()
        pickle_save(per_hp, str(root / f"{i:06d}.pickle"))

    out = tmp_path / "nats.csv"
    assert conv.main([str(root), "-o", str(out), "--datasets", "cifar10", "cifar100", "--costs", "--quiet"]) == 0
    with open(out, newline="") as f:
        back = list(csv.DictReader(f))
    assert [r["arch_str"] for r in back] == archs
    mean_seed = (0.777 + 0.888) / 2
    r = back[1]  # i = 1
    assert float(r["c10_valid_12ep"]) == pytest.approx(0 + 1 + 0 + mean_seed)          # cifar10-valid x-valid
    assert float(r["c10_test_200ep"]) == pytest.approx(10 + 1 + 0.5 + 0 + mean_seed)   # cifar10 ori-test
    assert float(r["c100_valid_12ep"]) == pytest.approx(20 + 1 + 0 + mean_seed)        # cifar100 x-valid
    assert float(r["c100_test_200ep"]) == pytest.approx(20 + 1 + 0.5 + 0.1 + mean_seed)  # cifar100 x-test
    assert float(r["c10_params_MB"]) == pytest.approx(1.5) and float(r["c10_latency_ms"]) == pytest.approx(2.0)
    one = tmp_path / "seed.csv"
    assert conv.main([str(root), "-o", str(one), "--trial", "888", "--quiet"]) == 0
    with open(one, newline="") as f:
        assert float(list(csv.DictReader(f))[0]["c10_valid_12ep"]) == pytest.approx(0.888)


def test_converter_refuses_an_output_it_cannot_write_before_converting(tmp_path, monkeypatch, capsys):
    """``-o`` a folder was an IsADirectoryError traceback after the whole conversion (minutes):
    now one line before the benchmark file is opened."""
    opened = []
    monkeypatch.setattr(conv, "open_api", lambda *a, **k: opened.append(a) or FakeAPI())
    (tmp_path / "out").mkdir()
    (tmp_path / "file").write_text("")
    for output, message in ((tmp_path / "out", "is a folder; give the CSV file to write"),
                            (tmp_path / "file" / "x.csv", f"{tmp_path / 'file'} is not a folder")):
        assert conv.main([str(tmp_path), "-o", str(output)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0] == f"error: -o {output}: {message}", err
    assert opened == []
