"""Search spaces: genes, sampling, genotype strings (round trips, errors), canonical forms."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from renas.errors import GenotypeError
from renas.space import SPACES, NASBench201Space, RenasCellSpace
from renas.space.nasbench201 import OP_NAMES as NB201_OP_NAMES
from renas.space.renas_cell import OP_NAMES as RENAS_OP_NAMES
from renas.space.renas_cell import RENASNET

N_SAMPLES = 2000

RENASNET_STR = (
    "|sep_conv_5x5~0|sep_conv_3x3~1|+|identity~1|sep_conv_3x3~1|+|sep_conv_3x3~0|avg_pool_3x3~0|"
    "+|sep_conv_5x5~1|sep_conv_3x3~0|+|identity~2|sep_conv_3x3~2|"
)
RENASNET_LIST = "[[1,0],[0,1],[7,1],[0,1],[0,0],[3,0],[1,1],[0,0],[7,2],[0,2]]"
NB201_BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)

SPACE_PARAMS = {
    "renas_shared": lambda: RenasCellSpace(shared_reduction=True),
    "renas_separate": lambda: RenasCellSpace(shared_reduction=False),
    "nasbench201": lambda: NASBench201Space(),
}


@pytest.fixture(params=list(SPACE_PARAMS))
def space(request):
    return SPACE_PARAMS[request.param]()


# --- genes and sampling ----------------------------------------------------------------------

def test_spaces_are_registered():
    assert SPACES["renas_cell"] is RenasCellSpace
    assert SPACES["nasbench201"] is NASBench201Space


@pytest.mark.parametrize("shared, n_genes", [(True, 20), (False, 40)])
def test_renas_cell_genes(shared, n_genes):
    space = RenasCellSpace(shared_reduction=shared)
    genes = space.genes
    assert len(genes) == n_genes
    for g in genes:
        block = int(g.name.split(".b")[1].split(".")[0])
        if g.kind == "op":
            assert g.choices == RENAS_OP_NAMES and g.arity == 8
        else:
            assert g.kind == "input"
            assert g.arity == block + 2, g.name  # h[i-1], h[i] and the earlier blocks
    # genotype order: (op, input) pairs, block by block
    assert [g.kind for g in genes[:4]] == ["op", "input", "op", "input"]
    assert space.size == (8**10 * 2 * 2 * 3 * 3 * 4 * 4 * 5 * 5 * 6 * 6) ** (n_genes // 20)


def test_nasbench201_genes():
    space = NASBench201Space()
    assert len(space.genes) == 6
    assert all(g.arity == 5 and g.choices == NB201_OP_NAMES for g in space.genes)
    assert NB201_OP_NAMES == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert space.size == 15625


def test_sampling_is_reproducible(space):
    rng1, rng2 = np.random.default_rng(123), np.random.default_rng(123)
    first = [space.sample(rng1) for _ in range(200)]
    assert first == [space.sample(rng2) for _ in range(200)]
    other = np.random.default_rng(124)
    assert first != [space.sample(other) for _ in range(200)]
    assert len({space.format(g) for g in first}) > 150  # not stuck on a few genotypes


def test_sampling_covers_every_legal_value(space):
    rng = np.random.default_rng(0)
    values = np.array([space.values(space.sample(rng)) for _ in range(N_SAMPLES)])
    for k, gene in enumerate(space.genes):
        assert set(values[:, k]) == set(range(gene.arity)), gene.name


# --- string round trips ----------------------------------------------------------------------

def test_round_trip_of_sampled_genotypes(space):
    rng = np.random.default_rng(2024)
    for _ in range(N_SAMPLES):
        g = space.sample(rng)
        s = space.format(g)
        assert space.parse(s) == g
        assert space.format(space.parse(s)) == s
        assert space.from_values(space.values(g)) == g


def _random_renas_cell_string(rng: np.random.Generator, blocks: int = 5) -> str:
    """A cell string written from the documented grammar, independently of ``format``."""
    parts = []
    for b in range(blocks):
        ops = [RENAS_OP_NAMES[rng.integers(8)] for _ in range(2)]
        ins = [int(rng.integers(b + 2)) for _ in range(2)]
        parts.append(f"|{ops[0]}~{ins[0]}|{ops[1]}~{ins[1]}|")
    return "+".join(parts)


def _random_nb201_string(rng: np.random.Generator) -> str:
    nodes = []
    for i in range(1, 4):
        nodes.append("|" + "|".join(f"{NB201_OP_NAMES[rng.integers(5)]}~{j}" for j in range(i)) + "|")
    return "+".join(nodes)


@pytest.mark.parametrize("shared", [True, False])
def test_renas_cell_strings_round_trip(shared):
    space = RenasCellSpace(shared_reduction=shared)
    rng = np.random.default_rng(5)
    for _ in range(N_SAMPLES):
        s = _random_renas_cell_string(rng)
        if not shared:
            s = s + ";" + _random_renas_cell_string(rng)
        g = space.parse(s)
        assert space.format(g) == s
        assert space.parse(space.format(g)) == g


def test_nasbench201_strings_round_trip():
    space = NASBench201Space()
    rng = np.random.default_rng(5)
    for _ in range(N_SAMPLES):
        s = _random_nb201_string(rng)
        assert space.format(space.parse(s)) == s


def test_separate_cells_from_one_cell_string():
    space = RenasCellSpace(shared_reduction=False)
    g = space.parse(RENASNET_STR)
    assert g.normal == g.reduce == RENASNET
    assert space.format(g) == RENASNET_STR + ";" + RENASNET_STR
    assert len(space.values(g)) == 40


# --- references and the paper's list form ----------------------------------------------------

def test_renasnet_reference():
    space = RenasCellSpace()
    assert space.reference().normal == RENASNET
    assert space.format(space.reference()) == RENASNET_STR


@pytest.mark.parametrize(
    "text",
    [
        RENASNET_LIST,
        " " + RENASNET_LIST.replace(",", ", ") + " ",
        [[1, 0], [0, 1], [7, 1], [0, 1], [0, 0], [3, 0], [1, 1], [0, 0], [7, 2], [0, 2]],
        tuple(tuple(p) for p in RENASNET),
        {"normal": [list(p) for p in RENASNET]},
    ],
    ids=["str", "spaced-str", "list", "tuple", "mapping"],
)
def test_paper_list_form_parses_to_renasnet(text):
    space = RenasCellSpace()
    g = space.parse(text)
    assert g == space.reference()
    assert space.format(g) == RENASNET_STR


def test_paper_list_form_from_hydra_override():
    """``arch=[[1,0],...]`` reaches the space as an OmegaConf ListConfig."""
    from omegaconf import OmegaConf

    space = RenasCellSpace()
    assert space.parse(OmegaConf.create([list(p) for p in RENASNET])) == space.reference()


def test_nasbench201_reference_is_the_best_cell():
    space = NASBench201Space()
    assert space.format(space.reference()) == NB201_BEST


# --- malformed genotypes ---------------------------------------------------------------------

def assert_genotype_error(call, arg, words: list[str]) -> None:
    """``call(arg)`` raises GenotypeError and its message names every one of ``words``."""
    with pytest.raises(GenotypeError) as info:
        call(arg)
    for w in words:
        assert w in str(info.value), str(info.value)


def _replace_block(text: str, b: int, new: str) -> str:
    blocks = text.split("+")
    blocks[b] = new
    return "+".join(blocks)


RENAS_BAD = [
    # (text, substrings the message must contain)
    ("", ["cannot parse", "5 blocks"]),
    ("   ", ["cannot parse", "5 blocks"]),
    ("garbage", ["cannot parse 'garbage'", "5 blocks"]),
    (RENASNET_STR.replace("sep_conv_5x5", "sep_conv_9x9", 1), ["unknown op 'sep_conv_9x9'", "block 0", "sep_conv_3x3"]),
    (RENASNET_STR.replace("identity~2|", "identity~6|"), ["input 6 of block 4", "out of range", "0..5"]),
    (_replace_block(RENASNET_STR, 0, "|conv_3x3~2|conv_3x3~0|"), ["input 2 of block 0", "0..1"]),
    (RENASNET_STR.replace("identity~1", "identity~x"), ["input 'x' of block 1", "not an integer"]),
    (RENASNET_STR.replace("identity~1", "identity~-1"), ["input '-1' of block 1"]),
    (RENASNET_STR.replace("identity~1", "identity~\u0661"), ["input '\u0661' of block 1", "not an integer 0..2"]),  # Arabic 1
    (RENASNET_STR.replace("identity~1", "identity~\uff11"), ["input '\uff11' of block 1"]),  # a full-width 1
    ("+".join(RENASNET_STR.split("+") * 600), ["expected 5 blocks joined by '+', got 3000"]),
    ("+".join(RENASNET_STR.split("+")[:4]), ["expected 5 blocks", "got 4"]),
    (RENASNET_STR + "+|conv_3x3~0|conv_3x3~1|", ["expected 5 blocks", "got 6"]),
    (_replace_block(RENASNET_STR, 2, "|conv_3x3~0|"), ["block 2", "is not '|op~input|op~input|'"]),
    (";".join([RENASNET_STR] * 3), ["cannot parse", "reduction cell"]),
    (RENASNET_STR + ";" + RENASNET_STR.replace("sep_conv_5x5", "conv_3x3"), ["shared_reduction", "two different cells"]),
    ("[[1,0],[0,1]]", ["expected 10 [op, input] pairs", "got 2"]),
    (RENASNET_LIST.replace("[0,2]]", "[0,9]]"), ["input 9 of block 4", "out of range"]),
    (RENASNET_LIST.replace("[[1,0]", "[[8,0]"), ["op 8 in block 0", "0..7"]),
    (RENASNET_LIST.replace("[0,2]]", "[0,2,3]]"), ["entry 9", "not an [op, input] pair"]),
    ("[[1,0],", ["cannot read", "as a list"]),
    ({"normal": [list(p) for p in RENASNET], "other": []}, ["needs keys 'normal'"]),
    (42, ["cannot parse 42"]),
    (None, ["cannot parse None"]),
]


@pytest.mark.parametrize("text, words", RENAS_BAD, ids=[f"renas{i}" for i in range(len(RENAS_BAD))])
def test_malformed_renas_cell_genotypes(text, words):
    assert_genotype_error(RenasCellSpace().parse, text, words)


def test_separate_space_reports_the_reduction_cell():
    bad = RENASNET_STR + ";" + RENASNET_STR.replace("sep_conv_5x5", "bogus_op", 1)
    with pytest.raises(GenotypeError, match=r"reduction cell: unknown op 'bogus_op'"):
        RenasCellSpace(shared_reduction=False).parse(bad)


NB201_BAD = [
    ("", ["expected 3 nodes"]),
    ("garbage", ["cannot parse 'garbage'", "expected 3 nodes"]),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", ["expected 3 nodes"]),
    (NB201_BEST + "+|none~0|", ["expected 3 nodes"]),
    (NB201_BEST.replace("nor_conv_3x3~0|+", "conv_3x3~0|+", 1), ["unknown op 'conv_3x3'", "edge 1<-0", "nor_conv_3x3"]),
    (NB201_BEST.replace("nor_conv_3x3~2", "nor_conv_3x3~5"), ["must read from node 2", "got input '5'"]),
    (NB201_BEST.replace("|nor_conv_3x3~0|+", "|nor_conv_3x3~1|+", 1), ["must read from node 0", "got input '1'"]),
    (NB201_BEST.replace("|nor_conv_3x3~0|nor_conv_3x3~1|", "|nor_conv_3x3~0|"), ["node 2", "must have 2 edges, got 1"]),
    (NB201_BEST[:-1] + "|none~3|", ["node 3", "must have 3 edges, got 4"]),
    (NB201_BEST.replace("|nor_conv_3x3~0|+", "|nor_conv_3x3|+", 1), ["'nor_conv_3x3'", "not 'op~input'"]),
    (NB201_BEST[1:], ["node 1", "not '|op~input|...|'"]),
    ([3, 3, 3, 1, 3, 3], ["arch string"]),
]


@pytest.mark.parametrize("text, words", NB201_BAD, ids=[f"nb201_{i}" for i in range(len(NB201_BAD))])
def test_malformed_nasbench201_genotypes(text, words):
    assert_genotype_error(NASBench201Space().parse, text, words)


@pytest.mark.parametrize(
    "values, words",
    [
        ([0] * 19, ["expected 20 gene values, got 19"]),
        ([0] * 21, ["expected 20 gene values, got 21"]),
        ([8] + [0] * 19, ["normal.b0.op0=8", "out of range 0..7"]),
        ([0, 2] + [0] * 18, ["normal.b0.in0=2", "out of range 0..1"]),
        ([0.5] + [0] * 19, ["normal.b0.op0", "must be an integer"]),
        ([True] + [0] * 19, ["must be an integer"]),
    ],
)
def test_bad_gene_values(values, words):
    assert_genotype_error(RenasCellSpace().from_values, values, words)


def test_gene_values_accept_numpy_integers():
    space = NASBench201Space()
    assert space.from_values(np.array([3, 3, 3, 1, 3, 3])) == space.reference()


# --- canonical forms -------------------------------------------------------------------------

def test_renas_cell_canonical_is_the_string():
    space = RenasCellSpace()
    assert space.canonical(space.reference()) == RENASNET_STR


def test_nasbench201_canonical_merges_isomorphic_cells():
    space = NASBench201Space()
    # a skip connection passes its input through: conv-then-skip equals skip-then-conv
    a = space.parse("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    b = space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    assert a != b and space.canonical(a) == space.canonical(b)
    c = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    assert space.canonical(a) != space.canonical(c)


@pytest.mark.needs_shared("data/nasbench201/nb201_cifar10.csv")
def test_nasbench201_table_strings(shared):
    """Every arch_str of the benchmark parses, formats back, has the table's op codes and
    canonical form (the table's ``unique_str``, NATS-Bench's definition)."""
    space = NASBench201Space()
    with open(shared / "data/nasbench201/nb201_cifar10.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15625
    canon = set()
    for r in rows:
        g = space.parse(r["arch_str"])
        assert space.format(g) == r["arch_str"]
        assert "".join(map(str, space.values(g))) == r["op_codes"]
        c = space.canonical(g)
        assert c == r["unique_str"], r["arch_str"]
        canon.add(c)
    assert len(canon) == 6466
