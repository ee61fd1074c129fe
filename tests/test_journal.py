"""Resume = the last snapshot + the journal after it, for every algorithm.

A search is run once to the end while its state is captured at several evaluations (the
snapshots a crash could have left); each captured state is then resumed with the history
written after it, and must end with exactly the history, best and generations of the
uninterrupted search. The executor keeps three children in flight and returns them out of
submission order, as parallel workers do, so the replay has to match each journal line with
the right child in flight. No data set is needed: fitness is a fixed function of the cell.
"""

from __future__ import annotations

import copy
import functools
import io
import zlib
from pathlib import Path

import pytest
import torch

from helpers import compose
from renas.build import build_strategy
from renas.errors import RenasError
from renas.evaluate.base import Outcome, Task
from renas.search.controller import LeastSquares, Reinforce
from renas.search.loop import Journal, Search, SearchCallback
from renas.space import GenesSpace, NASBench201Space

#: every algorithm bundle, and RENAS with its least-squares controller (``<algorithm>+<controller>``)
ALGORITHMS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "algorithm").glob("*.yaml")) + ["renas+least_squares"]
BUDGET = 32


class ScrambledExecutor:
    """Three children in flight; the next result is the one whose cell hashes highest, so
    results come back out of submission order, deterministically."""

    capacity = 3

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.returned: list[int] = []  # task ids in the order their results came back

    def submit(self, task: Task) -> None:
        self.tasks.append(task)

    def next_result(self) -> tuple[Task, Outcome]:
        task = max(self.tasks, key=lambda t: zlib.crc32(t.arch.encode()))
        self.tasks.remove(task)
        self.returned.append(task.id)
        return task, self.outcome(task)

    @staticmethod
    def outcome(task: Task) -> Outcome:
        fitness = 80.0 + sum((i + 1) * (v % 4) for i, v in enumerate(task.values)) / 10 + (zlib.crc32(task.arch.encode()) % 100) / 1000
        return Outcome(fitness, {"test": fitness - 1}, seconds=0.01)

    def close(self) -> None:
        pass


@functools.lru_cache
def config(algorithm: str):
    algorithm, _, controller = algorithm.partition("+")
    return compose("search", [f"algorithm={algorithm}", *([f"controller={controller}"] if controller else []),
                              "search_space=nasbench201", "evaluator=nasbench201",
                              f"ga.budget={BUDGET}", "ga.population_size=8", "ga.sample_size=4", "seed=3"])


class OnStep(SearchCallback):
    def __init__(self, fn) -> None:
        self.fn = fn

    def on_step(self, search, record) -> None:
        self.fn(search, record)


def constrained_space() -> GenesSpace:
    """Six genes of five choices, a fifth of the combinations disallowed: every proposer meets
    disallowed ones, and what it does about them (TPE's pruned trials, REINFORCE's blocked
    samples, evolution's retries) is part of the state a resume must restore."""
    return GenesSpace([{"name": f"g{i}", "choices": list("abcde"), "kind": "op"} for i in range(6)], name="constrained",
                      valid=lambda arch: arch["g0"] != arch["g1"])


def make_search(algorithm: str, journal: list, on_step=None, constrained: bool = False) -> Search:
    cfg = config(algorithm)
    space = constrained_space() if constrained else NASBench201Space()
    callbacks = [Journal(journal.append)]
    if on_step is not None:
        callbacks.append(OnStep(on_step))
    return Search(space, build_strategy(cfg, space), ScrambledExecutor(), budget=BUDGET, generation_size=8, seed=3,
                  callbacks=callbacks)


def run_with_snapshot(algorithm: str, at: int) -> tuple[Search, list, dict]:
    """Run a search to the end; returns it, its journal and its state after ``at`` evaluations."""
    journal: list = []
    states = {}

    def on_step(search, record):
        if search.steps == at:
            states[at] = snapshot(search)

    search = make_search(algorithm, journal, on_step)
    search.run()
    return search, journal, states[at]


def snapshot(search: Search) -> dict:
    """The state as state.pt stores it (saved and loaded the way search.py does)."""
    buf = io.BytesIO()
    torch.save(search.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resuming_any_snapshot_with_its_journal_gives_the_uninterrupted_search(algorithm):
    states = {}
    at = {2, 17}

    def on_step(search, record):
        if search.steps in at:
            states[search.steps] = snapshot(search)

    journal: list = []
    reference = make_search(algorithm, journal, on_step)
    reference.run()
    assert [r["step"] for r in journal] == list(range(BUDGET))

    for steps, state in sorted(states.items()):
        for crash in (steps, steps + 6):  # the history written after the snapshot, up to the crash
            resumed_journal = journal[:crash]
            resumed = make_search(algorithm, resumed_journal)
            resumed.load_state_dict(copy.deepcopy(state))  # as read from state.pt
            resumed.expect(journal[steps:crash])
            resumed.run()
            assert resumed_journal == journal, f"resumed from the snapshot at {steps}, crashed at {crash}"
        assert resumed.best == reference.best
        assert resumed.generations == reference.generations
        assert resumed.duplicates == reference.duplicates


@pytest.mark.parametrize("algorithm", ["renas", "ga", "local", "reinforce", "tpe"])
def test_a_search_of_a_constrained_space_resumes_to_the_uninterrupted_search(algorithm):
    states: dict = {}

    def on_step(search, record):
        if search.steps == 17:
            states[17] = snapshot(search)

    journal: list = []
    reference = make_search(algorithm, journal, on_step, constrained=True)
    reference.run()
    space = reference.space
    assert all(space.is_valid(space.parse(r["arch"]).values) for r in journal)
    resumed_journal = journal[:23]
    resumed = make_search(algorithm, resumed_journal, constrained=True)
    resumed.load_state_dict(copy.deepcopy(states[17]))
    resumed.expect(journal[17:23])
    resumed.run()
    assert resumed_journal == journal and resumed.best == reference.best


class WeightStore(SearchCallback):
    """What weight inheritance keeps on disk: every evaluated child's weights, deleted when
    ``on_alive`` says the child is no longer a population member or a parent in flight (as
    ``TrainEvaluator.retain``). ``stored`` outlives a crash, as the run folder does."""

    needs_alive = True

    def __init__(self, stored: set) -> None:
        self.stored = stored

    def on_evaluation(self, search, record) -> None:
        self.stored.add(record["arch"])

    def on_alive(self, search, alive) -> None:
        self.stored &= alive


class ParentsChecked(ScrambledExecutor):
    """Records every submitted child whose parent's weights are not in ``stored``."""

    def __init__(self, stored: set) -> None:
        super().__init__()
        self.stored, self.missing = stored, []

    def submit(self, task: Task) -> None:
        if task.parent_arch is not None and task.parent_arch not in self.stored:
            self.missing.append(task.id)
        super().submit(task)


def test_a_resume_keeps_the_weights_of_children_evaluated_after_the_snapshot():
    """With weight inheritance, a resumed search must find the weights of every parent it
    gives a child, the children evaluated between the snapshot and the crash included (the
    replay used to delete them: they were not alive yet at their replayed step)."""
    def search_with(stored, journal, on_step=None):
        search = make_search("renas", journal, on_step)
        search.executor = ParentsChecked(stored)
        search.callbacks.append(WeightStore(stored))
        return search

    states, on_disk = {}, {}

    def on_step(search, record):
        if search.steps == 9:
            states[9] = snapshot(search)
        if search.steps == 20:  # the crash: what the run folder holds then
            on_disk[20] = set(stored)

    stored: set = set()
    journal: list = []
    reference = search_with(stored, journal, on_step)
    reference.run()
    assert reference.executor.missing == []
    resumed = search_with(on_disk[20], journal[:20])
    resumed.load_state_dict(copy.deepcopy(states[9]))
    resumed.expect(journal[9:20])
    resumed.run()
    assert resumed.steps == BUDGET and resumed.best == reference.best
    assert resumed.executor.missing == []


def test_the_replayed_children_came_back_out_of_order_and_are_held_until_the_journal_ends():
    reference, journal, state = run_with_snapshot("rea", 10)
    assert reference.executor.returned != sorted(reference.executor.returned)  # what the replay must cope with
    resumed = make_search("rea", [])
    resumed.load_state_dict(state)
    assert resumed.pending and resumed.held == set(resumed.pending)
    resumed.expect(journal[10:])
    resumed.run()
    assert not resumed.held and resumed.steps == BUDGET
    # nothing in the journal was evaluated again: only the children in flight at the crash would be
    assert resumed.executor.returned == []


def test_a_journal_that_does_not_belong_to_the_state_is_an_error():
    _, journal, state = run_with_snapshot("renas", 12)
    foreign = [dict(r) for r in journal[12:]]
    foreign[2]["arch"] = journal[0]["arch"]  # an evaluation this search never has in flight then
    resumed = make_search("renas", [])
    resumed.load_state_dict(copy.deepcopy(state))
    resumed.expect(foreign)
    with pytest.raises(RenasError, match="history.jsonl step 14 .* do not belong together"):
        resumed.run()
    resumed = make_search("renas", [])
    resumed.load_state_dict(copy.deepcopy(state))
    resumed.expect(journal[12:] + [dict(journal[-1], step=BUDGET)])  # one line more than the budget
    with pytest.raises(RenasError, match=f"step {BUDGET} .* past the end"):
        resumed.run()


def test_snapshots_are_written_every_n_evaluations_or_t_seconds_and_at_the_end(monkeypatch):
    from types import SimpleNamespace

    from renas.search import run

    clock = {"t": 0.0}
    monkeypatch.setattr(run.time, "monotonic", lambda: clock["t"])
    written = []
    snaps = run.Snapshots(lambda search: written.append(search.steps), every=5, seconds=60)
    search = SimpleNamespace(steps=0, finished=False)
    snaps.now(search)  # the start
    for step in range(1, 13):
        search.steps = step
        clock["t"] += 1.0
        snaps.on_step(search, {})
    assert written == [0, 5, 10]
    clock["t"] += 61  # a slow evaluation: the time limit comes first
    search.steps = 13
    snaps.on_step(search, {})
    search.steps, search.finished = 14, True  # the last evaluation
    snaps.on_step(search, {})
    assert written == [0, 5, 10, 13, 14]


def test_a_tpe_state_of_the_previous_format_is_a_clear_error():
    """TPE's state is the asks and tells made to the study (Optuna's public API only); a state
    with the sampler's private random states instead (the previous format) cannot be resumed."""
    search = make_search("tpe", [])
    search.run()
    state = snapshot(search)
    del state["strategy"]["events"]
    with pytest.raises(RenasError, match="older renas"):
        make_search("tpe", []).load_state_dict(state)


def test_renas_trains_reinforce_on_the_policy_it_drew_from_then_refits_its_prior(monkeypatch):
    """With the bundle's prior (controller.prior=least_squares), each child's REINFORCE update
    comes before the prior is refitted: the log-probability it trains on is that of the policy
    the edit was drawn from. The prior ends up carrying what the evaluations say."""
    order: list[str] = []
    fit, observe = LeastSquares.fit, Reinforce.observe
    monkeypatch.setattr(LeastSquares, "fit", lambda self, *a, **k: (order.append("fit"), fit(self, *a, **k))[1])
    monkeypatch.setattr(Reinforce, "observe", lambda self, *a, **k: (order.append("observe"), observe(self, *a, **k))[1])
    search = make_search("renas", [])
    search.run()
    assert len(order) == 2 * BUDGET and order == ["observe", "fit"] * BUDGET
    prior = search.strategy.policy.prior_label
    assert float(prior.abs().sum()) > 0 and not prior.requires_grad  # fitted, not trained


@pytest.mark.parametrize("tail, kept, error", [
    ('{"step": 3, "ar', 3, None),  # torn by a crash: no newline at its end
    ("\n\n", 3, None),  # blank lines at the end
    ("this is not json\n", None, "line 4 is not valid JSON"),  # a complete line: edited or corrupt, not torn
    ('{"step": 3}\nnot json\n{"step": 5}\n', None, "line 5 is not valid JSON"),
])
def test_the_history_drops_a_torn_last_line_only(tmp_path, caplog, tail, kept, error):
    from renas.tracking.history import read_history

    path = tmp_path / "history.jsonl"
    good = "".join(f'{{"step": {i}}}\n' for i in range(3))
    path.write_text(good + tail)
    if error:
        with pytest.raises(RenasError, match=error):
            read_history(path, repair=True)
        assert path.read_text() == good + tail  # nothing cut
        return
    with caplog.at_level("WARNING"):
        assert [r["step"] for r in read_history(path, repair=True)] == list(range(kept))
    assert path.read_text() == good
    assert f"cut the {len(tail)} bytes after its last complete line" in caplog.text


class LastInFirstOut(ScrambledExecutor):
    """Three children in flight, the last submitted back first (a fast child overtaking slow
    ones): the earlier ones stay in evaluation while the strategy proposes again. Fitness of
    :func:`tiny_space`'s six architectures from a fixed table (with these values local search
    and the GA met the early end the test below guards against)."""

    FITNESS = {(0, 0): 84.442, (0, 1): 75.795, (0, 2): 42.057, (1, 0): 25.892, (1, 1): 51.127, (1, 2): 40.493}

    def next_result(self) -> tuple[Task, Outcome]:
        task = self.tasks.pop()
        self.returned.append(task.id)
        return task, Outcome(self.FITNESS[tuple(task.values)], {}, seconds=0.01)


def tiny_space() -> GenesSpace:
    """Six architectures: with three children in flight, proposals of a child still in
    evaluation are common."""
    return GenesSpace([{"name": "a", "choices": ["x", "y"], "kind": "op"},
                       {"name": "b", "choices": ["x", "y", "z"], "kind": "op"}], name="tiny")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_proposal_of_a_child_in_evaluation_is_answered_by_its_result(algorithm):
    """With several workers, a proposal of a child still in evaluation was dropped untold: the
    strategy still waited for it (a population that never reached P, a restart never made, an
    Optuna trial never told) and the search ended early with status 0 ("done: 2 evaluations" of
    5). It is answered with that child's result when it comes, as a repeat is from the cache:
    every algorithm spends the whole of a six-architecture space, and a snapshot taken while
    such a proposal waits resumes to the same search."""
    from renas.search.loop import LoopSettings

    name, _, controller = algorithm.partition("+")
    waited = 0
    for seed in range(4):
        cfg = compose("search", [f"algorithm={name}", *([f"controller={controller}"] if controller else []),
                                 "ga.population_size=3", "ga.sample_size=2", "ga.budget=6", f"seed={seed}",
                                 *(["++algorithm.n_init=3"] if name == "local" else [])])
        states: dict = {}

        def on_step(search, record):
            if search.twins and not states:
                states[search.steps] = snapshot(search)

        def make(journal, callbacks=()):
            space = tiny_space()
            return Search(space, build_strategy(cfg, space), LastInFirstOut(), budget=6, generation_size=3, seed=seed,
                          settings=LoopSettings(max_duplicates=20), callbacks=[Journal(journal.append), *callbacks])

        journal: list = []
        search = make(journal, [OnStep(on_step)])
        search.run()
        assert search.steps == 6 and len({r["arch"] for r in journal}) == 6, f"seed {seed}: {search.steps} evaluations"
        for steps, state in states.items():
            waited += 1
            resumed_journal = journal[:steps]
            resumed = make(resumed_journal)
            resumed.load_state_dict(copy.deepcopy(state))
            resumed.run()
            assert resumed_journal == journal and resumed.duplicates == search.duplicates
    assert waited or name in ("random", "tpe", "reinforce"), "no proposal ever waited for its twin"
