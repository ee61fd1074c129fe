"""Networks built from genotypes: every op, a training step, and fidelity to published sizes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from renas.space import NASBench201Space, RenasCellSpace
from renas.space.ops import NB201_OPS, RENAS_OPS
from renas.train.profile import count_flops, count_params

OPS = [("renas", name) for name in RENAS_OPS] + [("nb201", name) for name in NB201_OPS]


@pytest.mark.parametrize("table, name", OPS, ids=[f"{t}-{n}" for t, n in OPS])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_every_op_builds_and_keeps_channels(table, name, stride, size):
    c = 6
    op = (RENAS_OPS if table == "renas" else NB201_OPS)[name](c, stride)
    x = torch.randn(2, c, size, size)
    for mode in (op.train, op.eval):
        mode()
        y = op(x)
        out = -(-size // stride)  # ceil: padded ops keep 'same' size, stride 2 halves it
        assert y.shape == (2, c, out, out)
        assert torch.isfinite(y).all()


def _one_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    out = net(x)
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = torch.nn.functional.cross_entropy(logits, y)
    if aux is not None:
        loss = loss + 0.4 * torch.nn.functional.cross_entropy(aux, y)
    opt.zero_grad()
    loss.backward()
    for n, p in net.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), n
    opt.step()
    changed = {n for n, p in net.named_parameters() if not torch.equal(before[n], p.detach())}
    assert "classifier.weight" in changed and "stem.0.weight" in changed
    return loss.item()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"shared_reduction": False, "cells_per_stage": 2},
        {"auxiliary": True, "drop_path": 0.2, "dropout": 0.1, "concat_prev": True},
    ],
    ids=["shared", "separate", "aux-droppath-concat"],
)
def test_random_renas_network_trains_one_step(seed, kwargs):
    space = RenasCellSpace(channels=8, **kwargs)
    genotype = space.sample(np.random.default_rng(seed))
    torch.manual_seed(seed)
    net = space.build(genotype, in_channels=1, num_classes=10)
    if kwargs.get("drop_path"):
        net.set_drop_path(0.2)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    loss = _one_step(net, x, y)
    assert np.isfinite(loss) and loss > 0
    net.eval()
    assert net(x).shape == (8, 10)  # no auxiliary output at inference


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_nasbench201_network_trains_one_step(seed):
    space = NASBench201Space(channels=8, cells_per_stage=1)
    genotype = space.sample(np.random.default_rng(seed))
    torch.manual_seed(seed)
    net = space.build(genotype, in_channels=3, num_classes=10)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    assert np.isfinite(_one_step(net, x, y))
    net.eval()
    assert net(x).shape == (4, 10)


def test_all_zero_nasbench201_cell_still_runs():
    space = NASBench201Space(channels=4, cells_per_stage=1)
    net = space.build(space.from_values([0] * 6), 3, 10).eval()
    assert torch.isfinite(net(torch.randn(2, 3, 8, 8))).all()


# --- fidelity: sizes from the benchmark and the paper ----------------------------------------

@pytest.mark.needs_shared("data/nasbench201/nb201_cifar10_valid200_subset.csv")
def test_nasbench201_params_match_the_benchmark(shared):
    """C=16, N=5, 10 classes: parameter counts equal NASLib's for a seeded sample of cells
    (building all 725 networks takes ~30 s; the counts depend only on the op mix)."""
    with open(shared / "data/nasbench201/nb201_cifar10_valid200_subset.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 725
    pick = np.random.default_rng(0).choice(len(rows), size=100, replace=False)
    space = NASBench201Space(channels=16, cells_per_stage=5)
    for i in pick:
        row = rows[i]
        net = space.build(space.parse(row["arch_str"]), in_channels=3, num_classes=10)
        assert count_params(net) == round(float(row["c10_params_MB_naslib"]) * 1e6), row["arch_str"]


def test_nasbench201_best_cell_size():
    space = NASBench201Space()
    net = space.build(space.reference(), 3, 10)
    assert count_params(net) == 1_288_506  # NASLib: 0.24304 * 5 + 0.073306 M
    assert count_flops(net, 3, 32) / 2 == pytest.approx(184.7e6, rel=0.01)


def _imagenet_renasnet(concat_prev: bool) -> tuple[int, float]:
    space = RenasCellSpace(cells_per_stage=4, channels=44, stem="imagenet", auxiliary=False,
                           concat_prev=concat_prev)
    net = space.build(space.reference(), in_channels=3, num_classes=1000)
    return count_params(net), count_flops(net, 3, 224) / 2


def test_renasnet_imagenet_mobile_matches_the_paper():
    """Paper: 5.36M params, 580M mult-adds (ImageNet mobile, N=4, F=44, 224x224)."""
    params, mult_adds = _imagenet_renasnet(concat_prev=False)
    assert params == pytest.approx(5.36e6, rel=0.05)
    assert mult_adds == pytest.approx(580e6, rel=0.10)
    assert params == 5_239_908  # the figure the README and the space's docstring quote
    assert mult_adds == pytest.approx(571.6e6, rel=0.005)


def test_renasnet_imagenet_released_mxnet_layout():
    """concat_prev=True is the released MXNet code's cell output: 5,677,268 params, ~608M."""
    params, mult_adds = _imagenet_renasnet(concat_prev=True)
    assert params == 5_677_268
    assert mult_adds == pytest.approx(608_200_896, rel=0.005)


def test_renasnet_cifar_setting_matches_the_paper():
    """Paper: 3.5M params for the CIFAR-10 model (N=6, F=32)."""
    space = RenasCellSpace(cells_per_stage=6, channels=32)
    net = space.build(space.reference(), in_channels=3, num_classes=10)
    assert count_params(net) == pytest.approx(3.5e6, rel=0.05)
    net.eval()
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
