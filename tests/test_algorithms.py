"""The search algorithms as named objects: RENAS's ablation, local search, the loop's fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import compose, without_times
from renas.evaluate.base import InlineExecutor, Outcome, Task
from renas.search.loop import Journal, LoopSettings, Search
from renas.search.run import validate
from renas.space import NASBench201Space

TABLE = ["search_space=nasbench201", "logger=none", "progress=none"]


class FunctionEvaluator:
    """Fitness from a function of the gene values (no table, no training)."""

    name = "function"

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def evaluate(self, task: Task) -> Outcome:
        self.calls += 1
        return Outcome(float(self.fn(task.values)), {})


def additive(values) -> float:
    """A smooth landscape: nor_conv_3x3 (3) best on every edge, none (0) worst."""
    return float(sum({0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0, 4: 0.5}[v] for v in values))


def two_peaks(values) -> float:
    """The global optimum (all 3) and a local one (all 1) whose neighbours are all worse."""
    v = np.asarray(values)
    return float(max((v == 3).sum() * 2.0, (v == 1).sum() * 1.5 + 0.1 * (v == 1).all()))


def _search(algorithm: str, fn, budget: int, seed: int = 0, overrides=(), **loop):
    from renas.build import build_strategy

    cfg = compose("search", [*TABLE, f"algorithm={algorithm}", f"ga.budget={budget}", f"seed={seed}", *overrides])
    space = NASBench201Space()
    strategy = build_strategy(cfg, space)
    records: list[dict] = []
    search = Search(space, strategy, InlineExecutor(FunctionEvaluator(fn)), budget=budget,
                    generation_size=int(cfg.ga.population_size), seed=seed, settings=LoopSettings(**loop),
                    callbacks=[Journal(records.append)])
    search.run()
    return cfg, strategy, search, records


def test_the_ablation_is_renas_with_its_controller_replaced_by_random_edits():
    renas = compose("search", [*TABLE, "algorithm=renas"])
    ablation = compose("search", [*TABLE, "algorithm=evolution"])
    assert ablation.algorithm._target_ == renas.algorithm._target_
    assert ablation.ga == renas.ga  # P, S, selection, removal, mutation rate: RENAS's own
    assert ablation.controller.name == "none" and renas.controller.name == "renas"
    assert {k: v for k, v in ablation.algorithm.items() if k != "name"} == {k: v for k, v in renas.algorithm.items() if k != "name"}
    _, strategy, search, records = _search("evolution", additive, 60)
    assert type(strategy.policy).__name__ == "UniformEdits" and not strategy.has_controller
    children = [r for r in records if r["parent"] is not None]
    assert children and all(r["origin"] == "mutation" and r["reward"] is None for r in children)
    assert search.duplicates == 0  # children already evaluated are masked, as for RENAS


def test_renas_with_controller_none_is_the_ablation_bundle():
    a = _search("evolution", additive, 50, seed=3)[3]
    b = _search("renas", additive, 50, seed=3, overrides=["controller=none"])[3]
    assert without_times(a) == without_times(b)


def test_renas_and_its_ablation_change_the_same_number_of_genes():
    """k = max(1, Binomial(genes, mutation_rate)) for both: the controller only chooses which."""
    counts = {}
    for algorithm in ("renas", "evolution"):
        ks = []
        for seed in range(4):
            records = _search(algorithm, additive, 80, seed=seed, overrides=["ga.mutation_rate=0.3"])[3]
            ks += [len(r["mutation"]) for r in records if r["mutation"]]
        counts[algorithm] = np.bincount(ks, minlength=7)[1:] / len(ks)
    expected = np.array([6 * 0.3 * 0.7**5 + 0.7**6] + [0.0] * 5)
    from math import comb

    for k in range(2, 7):
        expected[k - 1] = comb(6, k) * 0.3**k * 0.7 ** (6 - k)
    for algorithm, freq in counts.items():
        assert np.allclose(freq, expected, atol=0.06), (algorithm, freq, expected)


def test_renas_rewards_each_child_once_with_its_gain_over_the_parent():
    _, _, _, records = _search("renas", additive, 60)
    by_step = {r["step"]: r for r in records}
    children = [r for r in records if r["parent"] is not None]
    assert children
    for r in children:
        assert r["reward"] == pytest.approx(r["fitness"] - by_step[r["parent"]]["fitness"])


@pytest.mark.parametrize("move", ["first", "best"])
def test_local_search_climbs_neighbours_of_the_best_and_finds_a_smooth_optimum(move):
    _, strategy, search, records = _search("local", additive, 120, overrides=[f"algorithm.move={move}", "algorithm.n_init=5"])
    assert search.best["fitness"] == 18.0  # every edge nor_conv_3x3
    by_step = {r["step"]: r for r in records}
    for r in records[5:]:
        if r["origin"] == "local":
            parent = by_step[r["parent"]]["arch"]
            assert sum(a != b for a, b in zip(parent.split("|"), r["arch"].split("|"))) == 1
    if move == "first":  # a better neighbour becomes the centre at once
        climbs = [r for r in records if r["origin"] == "local"]
        for r, nxt in zip(climbs, climbs[1:]):
            if r["fitness"] > by_step[r["parent"]]["fitness"]:  # the centre: it, or a better evaluated neighbour of it
                assert nxt["parent"] == r["step"] or by_step[nxt["parent"]]["fitness"] > r["fitness"]


def test_local_search_restarts_at_random_from_a_local_optimum():
    """A restart comes only where every neighbour of the centre is evaluated and none is better;
    one evaluated before (another climb's) is answered from the cache, at no cost, and moves the
    centre: skipping it left 9 of 52 restarts' centres beside a better evaluated neighbour."""
    from renas.build import build_strategy

    cfg = compose("search", [*TABLE, "algorithm=local", "ga.budget=400", "seed=1", "algorithm.n_init=1"])
    space = NASBench201Space()
    strategy = build_strategy(cfg, space)
    ask, centres = strategy.ask, []

    def spy():
        proposal = ask()
        if proposal is not None and proposal.origin == "restart":
            centres.append(strategy.centre)
        return proposal

    strategy.ask = spy
    records: list[dict] = []
    search = Search(space, strategy, InlineExecutor(FunctionEvaluator(two_peaks)), budget=400, generation_size=10, seed=1,
                    callbacks=[Journal(records.append)])
    search.run()
    fitness = {r["arch"]: r["fitness"] for r in records}
    assert len(centres) >= 3 and search.duplicates > 0  # (the known neighbours, answered from the cache)
    assert len(fitness) == len(records) == 400
    for centre in centres:
        v = centre.values
        neighbours = [space.format(space.from_values(v[:g] + (x,) + v[g + 1:])) for g in range(len(v)) for x in range(5) if x != v[g]]
        assert all(n in fitness for n in neighbours) and max(fitness[n] for n in neighbours) <= centre.fitness


@pytest.mark.parametrize("algorithm", ["renas", "evolution", "rea", "ga"])
def test_the_loops_fallback_never_grows_a_population_past_its_size(algorithm):
    """After max_duplicates repeated proposals the loop proposes a random architecture; it must
    join the population like any child (one member leaves)."""
    from renas.build import build_strategy

    cfg = compose("search", [*TABLE, f"algorithm={algorithm}", "ga.budget=150", "seed=0", "ga.population_size=10", "ga.sample_size=3"])
    strategy = build_strategy(cfg, NASBench201Space())
    original = strategy.tell
    sizes = []

    def spy(proposal, fitness, step):
        out = original(proposal, fitness, step)
        sizes.append((proposal.origin, len(strategy.population)))
        return out

    strategy.tell = spy
    search = Search(NASBench201Space(), strategy, InlineExecutor(FunctionEvaluator(additive)), budget=150,
                    generation_size=10, seed=0, settings=LoopSettings(max_duplicates=1))
    search.run()
    assert max(n for _, n in sizes) == 10
    if algorithm in ("rea", "ga"):  # random mutation repeats known children: the fallback ran
        assert any(origin == "fallback" for origin, _ in sizes)


@pytest.mark.parametrize("selection", ["roulette", "tournament"])
def test_a_crossover_mates_the_parent_with_another_member(selection):
    """The mate was selected from the whole population, the parent included: 29 % of the ``ga``
    bundle's crossovers on the NAS-Bench-201 table were a copy of the parent (``ga.crossover_rate`` lower than set)."""
    _, _, _, records = _search("ga", additive, 200, overrides=[f"ga.selection={selection}", "ga.crossover_rate=1.0"])
    arch = {r["step"]: r["arch"] for r in records}
    crossed = [r for r in records if r["origin"].startswith("crossover")]
    assert len(crossed) > 150 and all(arch[r["mate"]] != arch[r["parent"]] for r in crossed)


def test_tpe_takes_the_loops_fallback_as_a_trial_of_its_own():
    """The fallback used to reach TPE's tell without an Optuna trial (KeyError 'trial')."""
    _, strategy, search, records = _search("tpe", additive, 40, overrides=["algorithm.n_startup_trials=5"], max_duplicates=1)
    assert search.steps == 40 and any(r["origin"] == "fallback" for r in records)
    told = strategy.study.get_trials(deepcopy=False)
    assert len(told) == 40 + search.duplicates and all(t.state.is_finished() for t in told)


def test_renas_restarts_only_at_a_local_optimum_and_keeps_what_its_controller_learned():
    """restart=true: when every single-gene child of the population's fittest member is evaluated,
    the population starts again from one random architecture; the controller is not reset."""
    from renas.build import build_strategy

    cfg = compose("search", [*TABLE, "algorithm=renas", "ga.budget=250", "seed=0", "ga.population_size=5",
                             "ga.sample_size=5"])
    space = NASBench201Space()
    strategy = build_strategy(cfg, space)
    assert strategy.restart is True
    search = Search(space, strategy, InlineExecutor(FunctionEvaluator(two_peaks)), budget=250, generation_size=5, seed=0)
    ask = strategy.ask
    seen = []

    def spy():
        before = {k: v.detach().clone() for k, v in strategy.policy.state_dict().items()}
        best = max(strategy.population.members, key=lambda m: (m.fitness, m.born)) if len(strategy.population) else None
        proposal = ask()
        if proposal is not None and proposal.origin == "restart":
            children = [tuple(best.values[:i]) + (v,) + tuple(best.values[i + 1:])
                        for i in range(6) for v in range(5) if v != best.values[i]]
            assert all(search.is_known(c) for c in children)  # a certified local optimum
            assert len(strategy.population) == 0
            assert all(torch.equal(before[k], v) for k, v in strategy.policy.state_dict().items())
            seen.append(proposal)
        return proposal

    strategy.ask = spy
    search.run()
    assert seen and search.steps == 250 and search.duplicates == 0


@pytest.mark.slow
def test_the_ablation_and_local_search_run_with_real_training(tmp_path):
    """The ablation and local search search real Lightning-trained children, not only tables
    (children of the digits CNN space: a space from config with a build hook)."""
    from renas.build import build_evaluator, build_space, build_strategy

    for algorithm, own in (("evolution", []), ("local", ["algorithm.n_init=2"])):
        cfg = compose("search", [f"algorithm={algorithm}", "search_space=digits_cnn", "dataset.subset=0.3",
                                 "trainer.max_epochs=1", "ga.population_size=2", "ga.sample_size=2", "ga.budget=4",
                                 *own, "logger=none", "progress=none", "threads=1"])
        space = build_space(cfg.search_space)
        records: list[dict] = []
        Search(space, build_strategy(cfg, space), InlineExecutor(build_evaluator(cfg, space, tmp_path / algorithm)),
               budget=4, generation_size=2, seed=0, callbacks=[Journal(records.append)]).run()
        assert [r["status"] for r in records] == ["ok"] * 4
        assert all(0.0 <= r["fitness"] <= 1.0 for r in records)
        assert all(r["parent"] is not None for r in records[2:])


def test_tpe_is_plain_optuna_tpe_with_the_same_seed():
    """algorithm=tpe proposes exactly what Optuna's TPESampler(seed=s) asks for, repeats told
    as trials with their known value (the independent reference of the README)."""
    import optuna

    space = NASBench201Space()
    seed, budget = 5, 30
    _, _, search, records = _search("tpe", additive, budget, seed=seed, overrides=["algorithm.n_startup_trials=10"])
    dists = {g.name: optuna.distributions.CategoricalDistribution(list(g.choices)) for g in space.genes}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    seen: list[str] = []
    while len(set(seen)) < budget:
        trial = study.ask(dists)
        values = tuple(g.choices.index(trial.params[g.name]) for g in space.genes)
        study.tell(trial, additive(values))
        arch = space.format(space.from_values(values))
        if arch not in seen:
            seen.append(arch)
    assert [r["arch"] for r in records] == seen
    assert search.duplicates == len(study.trials) - budget


@pytest.mark.parametrize("override, key", [
    ("algorithm.restart=maybe", "algorithm.restart"),
    ("algorithm.patience=-1", "algorithm.patience"),
    ("controller.replay=some", "controller.replay"),
    ("controller.replay_weight=-1", "controller.replay_weight"),
    ("controller.memory=-5", "controller.memory"),
    ("controller.steps=0", "controller.steps"),
    ("controller.gene_preferences=2", "controller.gene_preferences"),
    ("controller.mask_logprob=yes", "controller.mask_logprob"),
])
def test_bad_renas_settings_are_one_error_naming_the_key(override, key):
    from renas.build import build_strategy
    from renas.errors import ConfigError

    cfg, space = compose("search", [*TABLE, "algorithm=renas", override]), NASBench201Space()
    with pytest.raises(ConfigError) as e:
        validate(cfg, space)  # the schema's rules ...
        build_strategy(cfg, space)  # ... and what only the algorithm can check (controller.replay)
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


def test_bad_local_search_settings_are_one_error_naming_the_key():
    from renas.errors import ConfigError

    with pytest.raises(ConfigError, match=r"algorithm\.n_init"):
        validate(compose("search", [*TABLE, "algorithm=local", "algorithm.n_init=0"]), NASBench201Space())


@pytest.mark.parametrize("overrides, line", [
    (["algorithm=local", "algorithm.move=steepest"], "algorithm.move='steepest' is not one of: first, best"),
    (["algorithm=renas", "controller.encoder=gru"], "controller.encoder='gru' is not one of: lstm, none"),
    (["algorithm=renas", "controller.learner=adam"], "controller.learner='adam' is not one of: reinforce, least_squares"),
])
def test_an_algorithm_setting_outside_its_choices_fails_while_composing(overrides, line):
    from hydra.errors import HydraException

    from renas.errors import one_line

    with pytest.raises(HydraException) as e:
        compose("search", [*TABLE, *overrides])
    assert one_line(e.value) == line


@pytest.mark.needs_shared("data/nasbench201")
@pytest.mark.parametrize("target, settings, message", [
    ("user_algorithms.NoAsk", {}, "NoAsk has no ask() of its own"),
    ("user_algorithms.NotAStrategy", {}, "NotAStrategy is not a subclass of renas.search.strategies.Strategy"),
    ("user_algorithms.not_a_class", {}, "not a class (Located non-class of type 'function'"),
    ("user_algorithms.Typed", {"n_init": "abc"}, "algorithm.n_init='abc': Typed takes an int (its __init__'s annotation)"),
    ("user_algorithms.Typed", {"n_init": 2.7}, "algorithm.n_init=2.7: Typed takes an int"),
    ("user_algorithms.Typed", {"rate": "fast"}, "algorithm.rate='fast': Typed takes a number or null"),
    ("user_algorithms.Quoted", {"n_init": "abc", "widths": [3]}, "algorithm.n_init='abc': Quoted takes an int"),
    ("user_algorithms.InitTypo", {}, "InitTypo.initial = 'algorithm.n_inti': the config has no whole number there (None)"),
    ("user_algorithmz.Typed", {}, "algorithm._target_=user_algorithmz.Typed: no module named 'user_algorithmz'"),
])
def test_a_users_algorithm_that_cannot_work_is_one_line_before_the_search(tmp_path, target, settings, message):
    """A class without ask(), not a Strategy, a function, a setting of the wrong type for its
    annotation, an ``initial`` naming no setting: tracebacks after the run folder was made (or
    a string ran as an int); a misspelled module was reported as the budget's rule. Now each is
    one line from the checks before the search (what the entry point prints)."""
    from omegaconf import OmegaConf

    from renas.errors import ConfigError
    from renas.search.run import prepare_search

    budget = 3 if target.startswith("user_algorithmz") else 20  # (3: below the population the budget's rule asks for)
    cfg = compose("search", [*TABLE, "evaluator=nasbench201", "algorithm=random", f"ga.budget={budget}"])
    OmegaConf.set_struct(cfg, False)
    cfg.algorithm = {"_target_": target, "name": "mine", **settings}
    with pytest.raises(ConfigError) as info:
        prepare_search(cfg, tmp_path / "run")
    assert message in str(info.value) and "\n" not in str(info.value)
    Typed = pytest.importorskip("user_algorithms").Typed
    # an int is a number; containers are the class's own business (list[int] was taken for int); n: int = None takes null
    cfg.algorithm = {"_target_": "user_algorithms.Typed", "name": "mine", "n_init": 3, "rate": 1, "widths": [1, 2],
                     "weights": {"a": 1.0}, "cap": None}
    assert isinstance(prepare_search(cfg, tmp_path / "run")[1], Typed)


@pytest.mark.needs_shared("data/nasbench201")
def test_a_users_algorithm_whose_ask_returns_no_proposal_stops_in_one_line(tmp_path):
    from omegaconf import OmegaConf

    from renas.errors import RenasError
    from renas.search.run import run_search

    cfg = compose("search", [*TABLE, "evaluator=nasbench201", "algorithm=random", "ga.budget=3"])
    OmegaConf.set_struct(cfg, False)
    cfg.algorithm = {"_target_": "user_algorithms.ReturnsTuple", "name": "mine"}
    with pytest.raises(RenasError, match=r"^mine: ask\(\) returned a tuple; it returns a renas.search.strategies.Proposal, "
                                         r"or None to wait for results in flight$"):
        run_search(cfg, tmp_path / "run")
