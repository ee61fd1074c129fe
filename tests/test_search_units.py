"""Selection, crossover, mutation, replacement and the controller: behaviour and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renas.search.controller import Experience, MutationController, Reinforce
from renas.search.mutation import diff, random_mutation, uniform_crossover
from renas.search.population import Population
from renas.search.selection import roulette, tournament
from renas.space import NASBench201Space, RenasCellSpace


@pytest.fixture(scope="module")
def nb201():
    return NASBench201Space()


@pytest.fixture(scope="module")
def cells():
    return RenasCellSpace()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mutation_rate_is_the_per_gene_change_probability(cells, rate):
    rng = np.random.default_rng(0)
    genes = cells.genes
    changed = []
    for _ in range(4000):
        parent = cells.sample(rng).values
        child, edits = random_mutation(parent, genes, rate, rng)
        assert len(diff(parent, child)) == len(edits) >= 1
        for i, old, new in edits:
            assert old == parent[i] and new != old and 0 <= new < genes[i].arity
        cells.from_values(child)  # inputs stay among legal predecessors
        changed.append(len(edits))
    n = len(genes)
    expected = rate * n + (1 - rate) ** n  # at least one gene always changes
    assert np.mean(changed) == pytest.approx(expected, rel=0.05)


def test_mutation_rate_zero_changes_exactly_one_gene(nb201):
    rng = np.random.default_rng(1)
    for _ in range(500):
        parent = nb201.sample(rng).values
        child, edits = random_mutation(parent, nb201.genes, 0.0, rng)
        assert len(edits) == 1 and len(diff(parent, child)) == 1


def test_mutation_new_values_are_uniform_over_the_other_values(nb201):
    rng = np.random.default_rng(2)
    parent = (0, 0, 0, 0, 0, 0)
    counts = np.zeros(5)
    for _ in range(8000):
        _, edits = random_mutation(parent, nb201.genes, 0.0, rng)
        counts[edits[0][2]] += 1
    assert counts[0] == 0
    assert np.allclose(counts[1:] / counts.sum(), 0.25, atol=0.02)


def test_uniform_crossover_takes_each_gene_from_a_parent_half_the_time(cells):
    rng = np.random.default_rng(3)
    a, b = cells.sample(rng).values, cells.sample(rng).values
    from_b = []
    for _ in range(3000):
        child = uniform_crossover(a, b, rng)
        cells.from_values(child)
        for x, y, c in zip(a, b, child):
            assert c in (x, y)
            if x != y:
                from_b.append(c == y)
    assert np.mean(from_b) == pytest.approx(0.5, abs=0.03)


def _population(fitnesses):
    pop = Population()
    for i, f in enumerate(fitnesses):
        pop.add(i, (i,), f)
    return pop


def test_tournament_picks_the_best_of_its_sample():
    rng = np.random.default_rng(4)
    pop = _population([0.1, 0.5, 0.3, 0.9, 0.2, 0.7])
    for _ in range(500):
        parent, sample = tournament(pop, 3, rng)
        assert len(sample) == 3 and len({m.born for m in sample}) == 3
        assert parent.fitness == max(m.fitness for m in sample)
    parent, _ = tournament(pop, len(pop), rng)
    assert parent.fitness == 0.9


def test_tournament_sample_is_uniform():
    rng = np.random.default_rng(5)
    pop = _population([float(i) for i in range(10)])
    counts = np.zeros(10)
    for _ in range(5000):
        for m in tournament(pop, 3, rng)[1]:
            counts[m.step] += 1
    assert np.allclose(counts / counts.sum(), 0.1, atol=0.01)


def test_roulette_prefers_fitter_members_in_proportion():
    rng = np.random.default_rng(6)
    pop = _population([0.5, 0.6, 0.7, 0.9])
    counts = np.zeros(4)
    for _ in range(20000):
        counts[roulette(pop, rng).step] += 1
    shares = counts / counts.sum()
    w = np.array([0.0, 0.1, 0.2, 0.4])
    w = w + w.mean() * 0.01
    assert np.allclose(shares, w / w.sum(), atol=0.01)


def test_oldest_removal_removes_the_oldest_member():
    pop = _population([0.9, 0.1, 0.5])
    assert pop.remove_oldest().step == 0
    pop.add(3, (3,), 0.2)
    assert pop.remove_oldest().step == 1
    assert [m.step for m in pop] == [2, 3]


def test_worst_removal_removes_the_worst_of_the_sample():
    pop = _population([0.9, 0.1, 0.5, 0.3])
    sample = [pop.members[0], pop.members[2], pop.members[3]]
    assert pop.remove_worst(sample).step == 3  # 0.1 is not in the sample
    assert pop.remove_worst().step == 1  # without a sample: the worst overall


def test_population_state_round_trips():
    pop = _population([0.3, 0.2])
    pop.remove_oldest()
    again = Population.from_state(pop.state_dict())
    assert [m.to_dict() for m in again] == [m.to_dict() for m in pop]
    assert again.add(9, (9,), 0.1).born == pop.add(9, (9,), 0.1).born


def test_controller_proposals_never_repeat_known_children(nb201):
    torch.manual_seed(0)
    controller = MutationController(nb201.genes)
    gen = torch.Generator().manual_seed(0)
    parent = (0, 1, 2, 3, 4, 0)
    known = set()
    for _ in range(24):  # 6 genes x 4 other values: every single-edit child, once each
        edits = controller.propose(parent, 1, gen, known=lambda v: v in known)
        child = list(parent)
        child[edits[0][0]] = edits[0][2]
        assert tuple(child) not in known and edits[0][2] != parent[edits[0][0]]
        known.add(tuple(child))
    assert controller.propose(parent, 1, gen, known=lambda v: v in known) is None


def test_controller_learns_an_edit_that_always_helps(nb201):
    """Synthetic fitness: gene 2 = nor_conv_3x3 adds 1, nothing else matters. REINFORCE on
    reward = fitness(child) - fitness(parent) must make that edit much more likely."""
    torch.manual_seed(0)
    controller = MutationController(nb201.genes)
    learner = Reinforce(controller, lr=3e-3, batch=4, entropy_weight=1e-3, baseline_decay=0.9, normalize=True)
    gen = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(7)
    target_gene, target_value = 2, 3

    def fitness(v):
        return float(v[target_gene] == target_value)

    def parent():
        v = list(nb201.sample(rng).values)
        if v[target_gene] == target_value:
            v[target_gene] = 0
        return tuple(v)

    probe = [parent() for _ in range(20)]
    before = np.mean([controller.edit_probability(p, target_gene, target_value) for p in probe])
    for _ in range(400):
        p = parent()
        edits = controller.propose(p, 1, gen)
        child = list(p)
        child[edits[0][0]] = edits[0][2]
        learner.observe(Experience(fitness(child) - fitness(p), p, (edits[0][0],), (edits[0][2],)))
    after = np.mean([controller.edit_probability(p, target_gene, target_value) for p in probe])
    assert before < 0.1  # about 1/6 genes x 1/4 values at the start
    assert after > 0.5 and after > 5 * before


def test_reinforce_state_round_trips(nb201):
    torch.manual_seed(0)
    a = Reinforce(MutationController(nb201.genes), batch=2)
    a.observe(Experience(0.5, (0,) * 6, (1,), (2,)))
    a.observe(Experience(-0.5, (0,) * 6, (2,), (3,)))
    a.observe(Experience(0.1, (0,) * 6, (3,), (1,)))
    torch.manual_seed(1)
    b = Reinforce(MutationController(nb201.genes), batch=2)
    b.load_state_dict(a.state_dict())
    assert b.baseline == a.baseline and len(b.buffer) == 1 and b.updates == a.updates
    for (k, x), y in zip(a.policy.state_dict().items(), b.policy.state_dict().values()):
        assert torch.equal(x, y), k


def test_paper_cifar10_experiment_composes_and_validates():
    """conf/experiment/paper_cifar10.yaml: a valid search config (not run: it needs CIFAR-10 and GPUs)."""
    from hydra.utils import instantiate

    from helpers import compose
    from renas.build import build_space
    from renas.data import CIFARDataModule
    from renas.search.run import build_strategy, validate

    cfg = compose("search", ["experiment=paper_cifar10"])
    assert cfg.algorithm.name == "renas" and cfg.evaluator.inherit_weights is True
    assert (cfg.search_space.cells_per_stage, cfg.search_space.channels, cfg.ga.budget) == (2, 24, 1000)
    space = build_space(cfg.search_space)
    validate(cfg, space)
    build_strategy(cfg, space)
    dm = instantiate(cfg.dataset)  # the constructor checks the options; no data is read
    assert isinstance(dm, CIFARDataModule) and dm.augment
