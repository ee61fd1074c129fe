"""Selection, crossover, mutation, replacement and the controller: behaviour and statistics."""

from __future__ import annotations

import re
import types

import numpy as np
import pytest
import torch

from renas.errors import ConfigError
from renas.search import run as run_module
from renas.search.controller import (
    Experience,
    LeastSquares,
    Mutation,
    MutationController,
    Reinforce,
    UniformEdits,
    edit_probability,
    log_prob,
    propose,
)
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


def _controller(space, **kw):
    torch.manual_seed(0)
    return MutationController(space.genes, **kw)


@pytest.mark.parametrize("kw", [{"encoder": "lstm", "utility": False}, {"encoder": "none", "utility": True},
                                {"encoder": "lstm", "utility": True, "interactions": 2}])
def test_controller_proposals_never_repeat_known_children(nb201, kw):
    controller = _controller(nb201, **kw)
    gen = torch.Generator().manual_seed(0)
    parent = (0, 1, 2, 3, 4, 0)
    known = set()
    for _ in range(24):  # 6 genes x 4 other values: every single-edit child, once each
        m = propose(controller, parent, 1, gen, known=lambda v: v in known)
        (i, old, new), = m.edits
        child = list(parent)
        child[i] = new
        assert tuple(child) not in known and new != parent[i] and old == parent[i]
        known.add(tuple(child))
    assert propose(controller, parent, 1, gen, known=lambda v: v in known) is None


def test_the_lstm_encoders_scores_stay_within_its_bound(nb201):
    """``controller.encoder_bound``: however large the encoder's weights grow (as REINFORCE drove
    them without a bound: the policy's entropy fell to ~1e-25 within a few generations), its
    scores stay within +-bound, so every legal edit keeps a probability of at least
    ``exp(-2 bound) / (number of edits)``."""
    parents = torch.tensor([[0, 1, 2, 3, 4, 0], [4, 4, 4, 4, 4, 4]])
    for bound in (None, 3.0):
        controller = _controller(nb201, encoder="lstm", utility=False, encoder_bound=bound)
        with torch.no_grad():
            controller.val_bias.add_(torch.linspace(-500.0, 500.0, controller.val_bias.numel()))
        raw = controller.raw_scores(parents)
        spread = (raw.amax(dim=(1, 2)) - raw.amin(dim=(1, 2))).max().item()
        if bound is None:
            assert spread > 100
        else:
            assert raw.abs().max().item() <= bound and spread <= 2 * bound


def test_a_multi_edit_proposal_changes_distinct_genes_and_masks_only_its_last_edit(cells):
    controller = _controller(cells)
    gen = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(0)
    for _ in range(50):
        parent = cells.sample(rng).values
        asked: list[tuple] = []

        def known(v):  # an arbitrary half of the space counts as known
            asked.append(v)
            return sum(v) % 2 == 0

        m = propose(controller, parent, 3, gen, known=known)
        assert all(len(diff(parent, v)) == 3 for v in asked)  # only the last edit is masked
        genes = [i for i, _, _ in m.edits]
        assert len(genes) == len(set(genes)) == 3
        child = list(parent)
        for i, old, new in m.edits:
            assert old == parent[i] and new != old
            child[i] = new
        cells.from_values(child)  # inputs stay among legal predecessors
        assert sum(child) % 2 == 1  # the last edit avoided every known child


def test_the_log_prob_trained_on_is_that_of_the_masked_distribution_sampled_from(nb201):
    """Children already known are masked out of the last edit; log_prob must score the edit under
    that masked distribution (it sums to 1 over the edits that could be drawn), and the
    sampler's frequencies must match it."""
    controller = _controller(nb201)
    with torch.no_grad():  # a policy far from uniform, so that a wrong normaliser shows
        controller.val_bias.copy_(torch.randn_like(controller.val_bias) * 2)
    parent = (0, 1, 2, 3, 4, 0)
    known = {(1, 1, 2, 3, 4, 0), (0, 3, 2, 3, 4, 0), (0, 1, 2, 3, 4, 3), (0, 1, 0, 3, 4, 0)}
    gen = torch.Generator().manual_seed(2)
    counts: dict[tuple, int] = {}
    masked = None
    n = 3000  # seeded: the largest frequency error here is well inside 0.02 (3,000 draws: SE <= 0.009)
    for _ in range(n):
        m = propose(controller, parent, 1, gen, known=lambda v: v in known)
        counts[m.edits[0]] = counts.get(m.edits[0], 0) + 1
        masked = m.masked
    assert len(masked) == len(known)
    edits = [(i, parent[i], v) for i in range(6) for v in range(5) if v != parent[i]]
    x = torch.tensor([parent] * len(edits))
    with torch.no_grad():
        lp_masked, _ = log_prob(controller, x, [Mutation([e], masked) for e in edits])
        lp_plain, _ = log_prob(controller, x, [Mutation([e], []) for e in edits])
    p_masked = lp_masked.exp().numpy()
    allowed = np.array([tuple(parent[:i]) + (v,) + tuple(parent[i + 1:]) not in known for i, _, v in edits])
    assert p_masked[allowed].sum() == pytest.approx(1.0, abs=1e-5)
    assert lp_plain.exp().numpy()[allowed].sum() < 0.95  # the unmasked one would be a different distribution
    for e, p in zip(edits, p_masked):
        if tuple(parent[: e[0]]) + (e[2],) + tuple(parent[e[0] + 1:]) in known:
            assert counts.get(e, 0) == 0
        else:
            assert counts.get(e, 0) / n == pytest.approx(p, abs=0.02)


@pytest.mark.parametrize("kw", [{"encoder": "lstm", "utility": False}, {"encoder": "none", "utility": True}])
def test_controller_learns_an_edit_that_always_helps(nb201, kw):
    """Synthetic fitness: gene 2 = nor_conv_3x3 adds 1, nothing else matters. REINFORCE on
    reward = fitness(child) - fitness(parent) must make that edit much more likely."""
    controller = _controller(nb201, **kw)
    learner = Reinforce(controller, lr=3e-3 if kw["encoder"] == "lstm" else 3e-2, batch=4, entropy_weight=1e-3,
                        baseline_decay=0.9, normalize=True)
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
    before = np.mean([edit_probability(controller, p, target_gene, target_value) for p in probe])
    for _ in range(400):
        p = parent()
        m = propose(controller, p, 1, gen)
        child = list(p)
        child[m.edits[0][0]] = m.edits[0][2]
        learner.observe(Experience(fitness(child) - fitness(p), p, m))
    after = np.mean([edit_probability(controller, p, target_gene, target_value) for p in probe])
    assert before < 0.1  # about 1 of 24 edits at the start
    assert after > 0.5 and after > 5 * before


def test_reward_normalisation_does_not_depend_on_the_reward_scale(nb201):
    """Fitness in [0, 1] (real training) and in percent (tables) must train the same policy."""
    parent = (0, 1, 2, 3, 4, 0)
    rng = np.random.default_rng(3)
    experiences = [(float(rng.normal()), [(int(i), parent[i], int((parent[i] + 1 + rng.integers(4)) % 5))])
                   for i in rng.integers(6, size=24)]
    policies = []
    for scale in (0.01, 1.0, 100.0):
        controller = _controller(nb201)
        learner = Reinforce(controller, lr=1e-2, batch=4, normalize=True)
        for r, edits in experiences:
            learner.observe(Experience(r * scale, parent, Mutation(edits)))
        policies.append(controller.state_dict())
    for k in policies[0]:
        assert torch.allclose(policies[0][k], policies[1][k], atol=1e-5), k
        assert torch.allclose(policies[2][k], policies[1][k], atol=1e-5), k


def test_least_squares_fits_the_preferences_that_explain_the_rewards(nb201):
    """Fitness made of one value per op label (plus noise): the fitted preferences order the
    labels as those values do, an edit's score is its predicted gain over temperature times the
    fitness spread (so it halves when the temperature doubles), and the best edit of a parent
    is the one towards the best label."""
    value = np.array([-6.0, 0.0, 1.0, 2.0, -1.0])  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 5, size=(40, 6))
    fitness = 80 + value[archs].sum(1) + rng.normal(0, 0.1, 40)
    fits = {}
    for temperature in (0.3, 0.6):
        controller = _controller(nb201, encoder="none", utility=True, gene_preferences=False)
        stats = LeastSquares(controller, temperature=temperature, ridge=3.0).fit(archs, fitness, reward=1.5, parent=(0,) * 6)
        assert stats["reward_mean"] == 1.5 and stats["fitted"] == 40 and 0 <= stats["loss"] < 0.2
        assert 0 < stats["entropy"] < np.log(24)  # 24 edits of a parent, far from uniform
        fits[temperature] = controller.label_pref.detach().numpy().copy(), controller.scores(torch.tensor([[0, 1, 2, 4, 0, 1]]))[0].detach()
    pref, scores = fits[0.3]
    assert list(np.argsort(pref)) == list(np.argsort(value))
    finite = torch.isfinite(scores)
    assert torch.allclose(fits[0.6][1][finite], scores[finite] / 2, atol=1e-5)
    i, v = divmod(int(scores.flatten().argmax()), scores.shape[1])
    assert v == 3  # towards nor_conv_3x3, on a gene that holds a worse op
    assert float(scores[0, 3]) > float(scores[3, 0])  # none -> 3x3 gains, pool -> none loses


def test_least_squares_needs_the_value_preferences_alone(nb201):
    for kw in ({"encoder": "lstm", "utility": True}, {"encoder": "none", "utility": False}, {"encoder": "none", "utility": True, "interactions": 2}):
        with pytest.raises(ConfigError, match="controller.learner=least_squares"):
            LeastSquares(_controller(nb201, **kw))


def test_uniform_edits_draw_every_unknown_child_alike(nb201):
    policy = UniformEdits(nb201.genes)
    gen = torch.Generator().manual_seed(4)
    parent = (0, 0, 0, 0, 0, 0)
    known = {(1, 0, 0, 0, 0, 0), (0, 2, 0, 0, 0, 0)}
    counts: dict[tuple, int] = {}
    for _ in range(11000):
        e = propose(policy, parent, 1, gen, known=lambda v: v in known).edits[0]
        counts[e] = counts.get(e, 0) + 1
    assert len(counts) == 22 and (0, 0, 1) not in counts and (1, 0, 2) not in counts
    assert np.allclose(np.array(list(counts.values())) / 11000, 1 / 22, atol=0.01)


def test_reinforce_state_round_trips(nb201):
    parent = (0,) * 6
    a = Reinforce(_controller(nb201), batch=2, normalize=True)
    a.observe(Experience(0.5, parent, Mutation([(1, 0, 2)])))
    a.observe(Experience(-0.5, parent, Mutation([(2, 0, 3)], [5, 6])), [Experience(0.2, parent, Mutation([(3, 0, 1)]))])
    a.observe(Experience(0.1, parent, Mutation([(3, 0, 1)])), [Experience(-0.2, parent, Mutation([(4, 0, 1)]))])
    torch.manual_seed(1)
    b = Reinforce(MutationController(nb201.genes), batch=2)
    b.load_state_dict(a.state_dict())
    assert (b.baseline, b.scale2, b.updates) == (a.baseline, a.scale2, a.updates)
    assert [e.to_dict() for e in b.buffer + b.replay] == [e.to_dict() for e in a.buffer + a.replay]
    for (k, x), y in zip(a.policy.state_dict().items(), b.policy.state_dict().values()):
        assert torch.equal(x, y), k


def test_paper_cifar10_experiment_composes_and_validates():
    """conf/experiment/paper_cifar10.yaml: a valid search config (not run: it needs CIFAR-10 and GPUs)."""
    from helpers import compose
    from hydra.utils import instantiate

    from renas.build import build_space, build_strategy
    from renas.data import CIFARDataModule
    from renas.search.run import validate

    cfg = compose("search", ["experiment=paper_cifar10"])
    assert cfg.algorithm.name == "renas" and cfg.evaluator.inherit_weights is True
    assert (cfg.search_space.cells_per_stage, cfg.search_space.channels, cfg.ga.budget) == (2, 24, 1000)
    space = build_space(cfg.search_space)
    validate(cfg, space)
    build_strategy(cfg, space)
    dm = instantiate(cfg.dataset)  # the constructor checks the options; no data is read
    assert isinstance(dm, CIFARDataModule) and dm.augment


def test_a_collapsed_sampler_still_samples_an_unknown_architecture(nb201):
    """The REINFORCE sampler can converge so far that every value but one has probability 0.0
    in float32; when that one is known already, it must sample among the others, not fail
    (``invalid multinomial distribution``, seen with controller.lr=0.03)."""
    from renas.search.controller import ArchitectureSampler, torch_generator

    sampler = ArchitectureSampler(nb201.genes)
    with torch.no_grad():
        for head in sampler.heads:
            head.weight.zero_()
            head.bias.zero_()
            head.bias[0] = 200.0  # value 0 everywhere, the others underflow to 0
    assert float(torch.softmax(sampler.heads[0].bias.detach(), -1)[1]) == 0.0
    generator = torch_generator(0)
    assert sampler.sample(generator) == ((0,) * len(nb201.genes), [])
    blocked = lambda prefix: prefix[0] == 0  # every architecture starting with value 0 is known
    for _ in range(20):
        values, masked = sampler.sample(generator, blocked)
        assert masked == [0]  # the first gene's value 0
        assert values[0] != 0 and values[1:] == (0,) * (len(nb201.genes) - 1)
    # what it trains on is the distribution it drew from: the first gene uniform over the 4 free
    # values (their logits are equal), the others certain; unmasked it would be about -200
    with torch.no_grad():
        logp, _ = sampler.log_prob(torch.tensor([values]), [masked])
    assert float(logp[0]) == pytest.approx(np.log(1 / 4), abs=1e-4)


@pytest.mark.parametrize("workers, clock, expected", [
    # one worker: the first child pays the start-up (10 s), then 1 s per child; after the first,
    # the estimate is the later rate (8 left at 1 s), not the mean with the start-up
    (1, [10.0, 11.0, 12.0], ["1:30", "0:08", "0:07"]),
    # two workers pay the start-up side by side (20 s), then 10 s per child each: the estimate
    # leaves out the first wave once both have finished one (not the 0.5 s gap between them)
    (2, [20.0, 20.5, 30.0, 30.5], ["3:00", "1:22", "1:06", "0:30"]),
])
def test_the_remaining_time_leaves_out_the_first_evaluations_start_up(monkeypatch, caplog, workers, clock, expected):
    times = iter([0.0, *clock])
    monkeypatch.setattr(run_module.time, "perf_counter", lambda: next(times))
    progress = run_module.Progress(budget=10, mode="eval", workers=workers)
    search = types.SimpleNamespace(steps=0, best={"fitness": 0.5})
    record = {"fitness": 0.5, "status": "ok", "generation": 0, "origin": "random"}
    with caplog.at_level("INFO", logger="renas.search"):
        for steps in range(1, len(clock) + 1):
            search.steps = steps
            progress.step(search, record)
    assert [m.split("remaining ~")[1] for m in caplog.messages] == expected



def test_progress_lines_before_any_child_succeeded_say_so_without_nan(caplog):
    """While every child so far had failed the lines said ``best nan`` and ``best so far nan``
    (and a best of 0.0 showed as nan)."""
    progress = run_module.Progress(budget=10, mode="generation")
    progress.mode = "eval"
    search = types.SimpleNamespace(steps=1, best=None)
    with caplog.at_level("INFO", logger="renas.search"):
        progress.step(search, {"fitness": None, "status": "failed", "error": "boom", "generation": 0, "origin": "random"})
        progress.generation({"generation": 0, "evaluations": 3, "fitness/best_so_far": None})
        progress.generation({"generation": 1, "evaluations": 6, "fitness/max": 0.0, "fitness/mean": 0.0,
                             "fitness/best_so_far": 0.0})
    assert "| best - |" in caplog.messages[0] and "nan" not in caplog.messages[0]
    assert caplog.messages[1] == "generation 0 done: 3 evaluations | population max - mean - | best so far -"
    assert caplog.messages[2] == ("generation 1 done: 6 evaluations | population max 0.0000 mean 0.0000 | "
                                  "best so far 0.0000")

def test_a_search_whose_every_child_failed_stops_with_an_error_and_keeps_its_files(tmp_path, monkeypatch):
    """Every evaluation failed within the budget (below loop.max_failures): no result, so an
    error naming the first failure, not a finished search with best fitness nan (exit 0)."""
    import json

    from helpers import REPO, compose
    from renas.evaluate.table import TableEvaluator
    from renas.search.loop import SearchStopped
    from renas.search.run import run_search

    def broken(self, task):
        raise RuntimeError("the table is broken")

    monkeypatch.setattr(TableEvaluator, "evaluate", broken)
    monkeypatch.chdir(REPO)  # the toy table's path is relative to the project
    cfg = compose("search", ["experiment=toy_table", "ga.budget=4", "logger=none", "progress=none", "threads=1"])
    with pytest.raises(SearchStopped, match=r"every one of the 4 children failed \(the first error: RuntimeError: the table is broken"):
        run_search(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"] is None and summary["evaluations"] == 4 and summary["stopped"].startswith("every one of the 4")
    assert len((tmp_path / "run" / "history.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("target", ["torch.optim.Nope", "torch.nn.Linear", "nope"])
def test_an_optimizer_that_is_not_one_is_refused_before_any_child(target):
    from omegaconf import OmegaConf

    from renas.errors import one_line
    from renas.train.checks import check_optim

    with pytest.raises(ConfigError) as e:
        check_optim(OmegaConf.create({"optimizer": {"_target_": target, "lr": 0.1}}))
    assert one_line(e.value) == f"optim.optimizer._target_='{target}' is not an optimizer class (e.g. torch.optim.SGD, torch.optim.AdamW)"
    check_optim(OmegaConf.create({"optimizer": {"_target_": "torch.optim.AdamW", "lr": 0.1}}))


@pytest.mark.parametrize("algorithm, budget, error", [
    ("random", 4, None), ("tpe", 4, None), ("reinforce", 4, None),  # no initial population: any budget
    ("local", 8, "ga.budget=8 is smaller than algorithm.n_init=10: the random architectures before the first climb alone need 10"),
    ("local", 10, None),
    ("rea", 4, "ga.budget=4 is smaller than ga.population_size=10: the initial population alone needs 10 evaluations"),
])
def test_the_budget_must_cover_the_algorithms_initial_phase_only(algorithm, budget, error):
    """Random search, TPE and REINFORCE have no population (ga.population_size only groups their
    evaluations into logged generations); local search's initial phase is algorithm.n_init."""
    from helpers import compose
    from renas.build import build_space
    from renas.search.run import check_between

    cfg = compose("search", [f"algorithm={algorithm}", "search_space=nasbench201", f"ga.budget={budget}"])
    if error is None:
        check_between(cfg, build_space(cfg.search_space))
    else:
        with pytest.raises(ConfigError, match=re.escape(error)):
            check_between(cfg, build_space(cfg.search_space))


def test_the_sampler_trains_on_the_distribution_it_drew_from():
    """With prefixes blocked (every completion known), the REINFORCE sampler never draws them,
    and the log-probability it trains on is that of the masked distribution it drew from:
    over the free architectures it sums to 1 and matches the frequencies of 2,000 draws;
    the unmasked one (no slots given) does not (issue 12)."""
    import itertools

    from renas.search.controller import ArchitectureSampler, torch_generator
    from renas.space.base import Gene

    genes = [Gene("a", "op", ("x", "y", "z")), Gene("b", "op", ("x", "y", "z")), Gene("c", "op", ("x", "y"))]
    torch.manual_seed(3)
    sampler = ArchitectureSampler(genes)
    with torch.no_grad():
        for head in sampler.heads:
            head.bias.copy_(torch.randn_like(head.bias))  # far from uniform
    known = {(0, 1, 0), (0, 1, 1), (2, 0, 1)} | {(1, b, c) for b in range(3) for c in range(2)}
    arities = [3, 3, 2]
    completions = [int(np.prod(arities[i:])) for i in range(4)]

    def blocked(prefix):
        return sum(1 for k in known if k[: len(prefix)] == prefix) >= completions[len(prefix)]

    generator = torch_generator(0)
    counts: dict[tuple, int] = {}
    masks: dict[tuple, list[int]] = {}
    n = 2000
    for _ in range(n):
        values, masked = sampler.sample(generator, blocked)
        counts[values] = counts.get(values, 0) + 1
        masks.setdefault(values, masked)
        assert masks[values] == masked  # the mask depends on the path to the architecture only
    free = [v for v in itertools.product(*map(range, arities)) if v not in known]
    assert set(counts) <= set(free)
    with torch.no_grad():
        logp, ent = sampler.log_prob(torch.tensor(free), [masks.get(v, []) for v in free])
        plain, _ = sampler.log_prob(torch.tensor(free))
    p = logp.exp().numpy()
    assert abs(p.sum() - 1) < 1e-5 and plain.exp().sum() < 0.8
    observed = np.array([counts.get(v, 0) for v in free])
    chi2 = float((((observed - n * p) ** 2) / (n * p)).sum())
    assert chi2 < 32, chi2  # 9 free architectures, 8 degrees of freedom: p < 0.001 (a fixed seed: it does not flake)
    assert (ent > 0).all()
    # the first gene's value 1 (all known) is masked for every draw; (0, 1, .) only after 0
    assert all(1 in m for m in masks.values())
    assert all((3 + 1 in m) == (v[0] == 0) for v, m in masks.items())


def test_reinforce_search_trains_on_the_mask_it_drew_with(nb201):
    """ReinforceSearch hands the learner the mask its proposal was drawn with (and none with
    controller.mask_logprob=false, renas 0.3.0's behaviour kept for comparison)."""
    from helpers import compose

    from renas.search.reinforce import ReinforceSearch

    for mask_logprob in (True, False):
        cfg = compose("search", ["algorithm=reinforce", f"controller.mask_logprob={str(mask_logprob).lower()}"])
        search = ReinforceSearch(nb201, cfg.ga, cfg.controller, seed=0)
        seen = []
        search.learner.observe = lambda exp, replay=(): seen.append(exp)
        first = search.ask()
        search.tell(first, 50.0, 1)
        search._blocked = lambda prefix: len(prefix) == 1 and prefix[0] < 4  # as if all were known
        second = search.ask()
        assert second.values[0] == 4 and second.info["masked"] == [0, 1, 2, 3]
        search.tell(second, 60.0, 2)
        assert seen[0].masked == []
        assert seen[1].masked == (list(second.info["masked"]) if mask_logprob else [])
        assert Experience.from_dict(seen[1].to_dict()) == seen[1]  # kept in the state as it is
