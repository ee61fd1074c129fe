"""The search loop: propose, evaluate, record, learn, until the budget is spent.

The loop is the same for every algorithm and evaluator. It keeps up to
``executor.capacity`` children in evaluation, never evaluates an architecture twice (cache by
exact or isomorphism-canonical string; the budget counts distinct evaluations), writes one
history line per evaluation, and logs one row per generation (``population_size``
consecutive evaluations).
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from renas.errors import RenasError
from renas.evaluate.base import Executor, Outcome, Task
from renas.search.strategies import Proposal, Strategy
from renas.space.base import SearchSpace

log = logging.getLogger("renas.search")


class SearchStopped(RenasError):
    """The search stopped before its budget was spent (e.g. too many failures in a row)."""


class JournalMismatch(RenasError):
    """A resumed search's history does not replay: it and the state do not belong together."""


@dataclass
class CacheEntry:
    step: int
    fitness: float | None  # None: failed and skipped
    status: str


@dataclass
class Pending:
    task: Task
    proposal: Proposal
    key: str


@dataclass
class GenerationStats:
    """Accumulates what one generation logs."""

    fitness: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    updates: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class LoopSettings:
    """How the loop treats repeats and failures (the ``loop`` group, and the evaluator's
    ``failure_fitness``; the defaults here are conf/loop/default.yaml's, for code that builds
    a :class:`Search` without a config).

    Attributes:
        dedup: ``exact`` (genotype string) or ``isomorphic`` (canonical form) cache keys.
        on_failure: ``worst`` (a failed child gets ``failure_fitness``) or ``skip`` (it is
            recorded but never joins the population nor rewards the controller).
        failure_fitness: fitness given to failed children under ``worst`` (``None`` in the config:
            the evaluator's ``worst_fitness``, e.g. the lowest of a table, else 0.0).
        max_failures: this many failures in a row stop the search.
        max_duplicates: proposals in a row answered from the cache before the strategy's
            ``fallback`` is asked instead.
    """

    dedup: str = "exact"
    on_failure: str = "worst"
    failure_fitness: float = 0.0
    max_failures: int = 10
    max_duplicates: int = 1000

    @classmethod
    def from_config(cls, cfg: Any, evaluator: Any = None, **overrides: Any) -> "LoopSettings":
        """From a search config's ``loop`` and ``evaluator.failure_fitness`` (validated by
        ``renas.search.run.validate``); ``evaluator`` supplies the fitness of a failure when the
        config leaves it ``null``."""
        failure = cfg.evaluator.get("failure_fitness", cls.failure_fitness)
        if failure is None:
            failure = getattr(evaluator, "worst_fitness", None)
        loop = cfg.loop
        return cls(dedup=str(loop.dedup), on_failure=str(loop.on_failure),
                   failure_fitness=cls.failure_fitness if failure is None else float(failure),
                   max_failures=int(loop.max_failures), **overrides)


class SearchCallback:
    """What the loop tells the outside, in the style of Lightning's ``Callback``: subclass and
    override the hooks you need. An evaluation replayed from the journal on resume calls
    ``on_generation`` and ``on_step`` again but not ``on_evaluation``: its line is written."""

    #: ``on_alive`` is called (working out the live architectures costs a scan of the population)
    needs_alive = False

    def on_evaluation(self, search: "Search", record: dict[str, Any]) -> None:
        """A new evaluation's history record (write it, print progress)."""

    def on_generation(self, search: "Search", row: dict[str, Any]) -> None:
        """A generation's log row (every ``generation_size`` evaluations, and a last partial one)."""

    def on_step(self, search: "Search", record: dict[str, Any]) -> None:
        """Everything of an evaluation is recorded: the search state is whole (snapshots)."""

    def on_alive(self, search: "Search", alive: set[str]) -> None:
        """The architectures still alive: in the population or parents of children in flight."""


class Journal(SearchCallback):
    """Calls ``fn(record)`` with each new evaluation's history record."""

    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_evaluation(self, search: "Search", record: dict[str, Any]) -> None:
        self.fn(record)


class OnGeneration(SearchCallback):
    """Calls ``fn(row)`` with each generation's log row."""

    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_generation(self, search: "Search", row: dict[str, Any]) -> None:
        self.fn(row)


class Search:
    """Runs a strategy against an executor for a budget of distinct evaluations.

    Args:
        space: the search space.
        strategy: the algorithm (ask / tell).
        executor: runs evaluations (inline, local processes, Ray).
        budget: number of distinct architectures to evaluate.
        generation_size: evaluations per generation (``ga.population_size``).
        seed: the run's seed (children's seeds derive from it).
        settings: repeats and failures (:class:`LoopSettings`).
        callbacks: :class:`SearchCallback` objects, called in order.
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        executor: Executor,
        budget: int,
        generation_size: int,
        seed: int = 0,
        settings: LoopSettings | None = None,
        callbacks: Sequence[SearchCallback] = (),
    ) -> None:
        self.space = space
        self.strategy = strategy
        self.executor = executor
        self.budget = budget
        self.generation_size = generation_size
        self.seed = seed
        self.settings = settings or LoopSettings()
        self.callbacks = list(callbacks)
        # state
        self.steps = 0
        self.next_task_id = 0
        self.cache: dict[str, CacheEntry] = {}
        self.pending: dict[int, Pending] = {}
        self.best: dict[str, Any] | None = None
        self.best_so_far: list[float] = []
        self.duplicates = 0
        self.failures = 0
        self.failures_in_row = 0
        self.gen = GenerationStats()
        self.generations: list[dict[str, Any]] = []
        self.archs: dict[int, str] = {}  # step -> arch string (for the final population table)
        self.exhausted = False
        #: why the search ended short of its budget (``summary.json``'s ``stopped``): ``exhausted`` (only repeats
        #: proposed, many in a row) or ``no new architecture`` (the algorithm proposed none); ``None``: it did not
        self.ended_short: str | None = None
        #: history records after the snapshot the search resumed from, replayed in order
        self.expected: deque[dict[str, Any]] = deque()
        #: tasks in ``pending`` not yet given to the executor (held while the journal replays)
        self.held: set[int] = set()
        #: proposals of a child already in evaluation (several workers), by its key: answered
        #: with its result when it comes, as a repeat is from the cache (the strategy counts on
        #: an answer to every proposal: a dropped one kept a population from ever reaching P)
        self.twins: dict[str, list[Proposal]] = {}
        strategy.is_known = self.is_known

    def is_known(self, values: tuple[int, ...]) -> bool:
        """Evaluated already, or in evaluation now."""
        key = self.key(self.space.from_values(values))
        return key in self.cache or any(p.key == key for p in self.pending.values())

    # --- state: everything needed to continue exactly where the search stopped ------------
    def state_dict(self) -> dict[str, Any]:
        """The whole search state (plain types and tensors; loadable with weights_only=True)."""
        np_state = np.random.get_state()
        return {
            "steps": self.steps,
            "next_task_id": self.next_task_id,
            "cache": {k: [e.step, e.fitness, e.status] for k, e in self.cache.items()},
            "pending": [
                {"task": _task_dict(p.task), "proposal": p.proposal.to_dict(), "key": p.key}
                for p in sorted(self.pending.values(), key=lambda p: p.task.id)
            ],
            "twins": [[k, [p.to_dict() for p in ps]] for k, ps in self.twins.items()],
            "archs": [[k, v] for k, v in self.archs.items()],
            "best": self.best,
            "best_so_far": list(self.best_so_far),
            "duplicates": self.duplicates,
            "failures": self.failures,
            "failures_in_row": self.failures_in_row,
            "gen": asdict(self.gen),
            "generations": list(self.generations),
            "strategy": self.strategy.state_dict(),
            "rng": {
                "python": _plain(random.getstate()),
                "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
                "torch": torch.get_rng_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.next_task_id = int(state["next_task_id"])
        self.cache = {k: CacheEntry(int(v[0]), v[1], v[2]) for k, v in state["cache"].items()}
        self.pending = {}
        for p in state["pending"]:
            t = p["task"]
            task = Task(int(t["id"]), t["arch"], tuple(t["values"]), int(t["seed"]), t["parent_arch"])
            self.pending[task.id] = Pending(task, Proposal.from_dict(p["proposal"]), p["key"])
        self.twins = {k: [Proposal.from_dict(p) for p in ps] for k, ps in state.get("twins", [])}
        self.archs = {int(k): v for k, v in state["archs"]}
        self.best = state["best"]
        self.best_so_far = list(state["best_so_far"])
        self.duplicates = int(state["duplicates"])
        self.failures = int(state["failures"])
        self.failures_in_row = int(state["failures_in_row"])
        self.gen = GenerationStats(**{k: list(v) for k, v in state["gen"].items()})  # lists of its own
        self.generations = list(state["generations"])
        self.strategy.load_state_dict(state["strategy"])
        rng = state["rng"]
        random.setstate(_tuples(rng["python"]))
        n = rng["numpy"]
        np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
        torch.set_rng_state(rng["torch"])
        self.held = set(self.pending)  # in evaluation when the snapshot was taken: run again

    def expect(self, records: list[dict[str, Any]]) -> None:
        """The journal after the snapshot the search resumed from: history records written
        after the last saved state. The resumed search replays them in order: it proposes
        exactly what it proposed before (the state holds every RNG), takes each result from
        the history instead of evaluating again (checking that the evaluation is one it has in
        flight), and gives children to the executor only once the journal is used up."""
        self.expected = deque(records)

    def _flush_held(self) -> None:
        for task_id in sorted(self.held):
            self.executor.submit(self.pending[task_id].task)
        self.held.clear()

    def _next_result(self) -> tuple[Task, Outcome, bool]:
        """The next finished evaluation: from the journal while it lasts, then from the
        executor. Returns ``(task, outcome, new)``; ``new`` is False for a replayed one."""
        if not self.expected:
            task, outcome = self.executor.next_result()
            return task, outcome, True
        record = self.expected.popleft()
        match = [p.task for p in self.pending.values() if p.task.arch == record["arch"]]
        if not match:
            raise JournalMismatch(
                f"history.jsonl step {record['step']} ({record['arch']}) is not an evaluation the resumed search "
                f"has in flight: history.jsonl and state.pt do not belong together (or the search was started by "
                f"an earlier renas whose algorithm proposed otherwise: resume it with that version)"
            )
        task = match[0]
        self.held.discard(task.id)
        if not self.expected:  # the journal is used up: what is still in flight is evaluated now
            self._flush_held()
        ok = record["status"] == "ok"
        outcome = Outcome(record["fitness"] if ok else None, record.get("metrics", {}), record["status"],
                          record.get("error"), record.get("seconds", 0.0))
        return task, outcome, False

    # --- keys and seeds ------------------------------------------------------------------
    def key(self, genotype) -> str:
        return self.space.canonical(genotype) if self.settings.dedup == "isomorphic" else self.space.format(genotype)

    def child_seed(self, task_id: int) -> int:
        return int(np.random.SeedSequence([self.seed, task_id]).generate_state(1)[0] % (2**31 - 1))

    @property
    def finished(self) -> bool:
        return self.steps >= self.budget

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Evaluate until the budget is spent (or a stop is requested / the space exhausted)."""
        if not self.expected:  # children that were in evaluation at the snapshot: run them again
            self._flush_held()
        streak = 0
        while True:
            while (
                not self.exhausted
                and len(self.pending) < self.executor.capacity
                and self.steps + len(self.pending) < self.budget
            ):
                proposal = self.strategy.ask() if streak < self.settings.max_duplicates else self.strategy.fallback()
                if proposal is None:
                    break
                if not isinstance(proposal, Proposal):  # (a user's algorithm: its mistake in one line)
                    raise RenasError(f"{self.strategy.name}: ask() returned a {type(proposal).__name__}; it returns a "
                                     f"renas.search.strategies.Proposal, or None to wait for results in flight")
                if not self._submit(proposal):
                    streak += 1
                    if streak >= 10 * self.settings.max_duplicates:
                        self.exhausted = True
                        log.warning("%d proposals in a row were already evaluated: the space looks exhausted", streak)
                else:
                    streak = 0
            if not self.pending:
                break
            task, outcome, new = self._next_result()
            self._record(task, outcome, write=new)
        if self.expected:
            record = self.expected[0]
            raise JournalMismatch(
                f"history.jsonl step {record['step']} ({record['arch']}) is past the end of the resumed search: "
                f"history.jsonl and state.pt do not belong together"
            )
        if self.exhausted:
            self.ended_short = "exhausted"
        elif self.steps < self.budget:
            self.ended_short = "no new architecture"
            log.warning("%s proposed no new architecture after %d of %d evaluations: the search ends short of its "
                        "budget (every architecture it can still reach is evaluated)", self.strategy.name, self.steps,
                        self.budget)
        if self.steps and (not self.generations or self.generations[-1]["evaluations"] < self.steps):
            self._log_generation()  # a last, partial generation

    def _submit(self, proposal: Proposal) -> bool:
        """Submit a proposal; a repeat is answered from the cache instead (returns False)."""
        genotype = self.space.from_values(proposal.values)
        if not self.space.is_valid(proposal.values):
            raise RenasError(f"{self.strategy.name} proposed {self.space.format(genotype)}, which the search space "
                             f"does not allow (search_space.valid): every algorithm must skip such architectures")
        key = self.key(genotype)
        hit = self.cache.get(key)
        if hit is not None:
            self.duplicates += 1
            self._learn(proposal, hit.fitness, hit.step)
            return False
        if any(p.key == key for p in self.pending.values()):  # the same child is in evaluation: its result answers it
            self.twins.setdefault(key, []).append(proposal)
            return False
        parent_arch = self.archs.get(proposal.parent.step) if proposal.parent is not None else None
        if parent_arch is not None:  # a parent that failed (loop.on_failure=worst) has no weights to give
            entry = self.cache.get(self.key(self.space.from_values(proposal.parent.values)))
            parent_arch = parent_arch if entry is None or entry.status == "ok" else None
        task = Task(self.next_task_id, self.space.format(genotype), proposal.values, self.child_seed(self.next_task_id), parent_arch)
        self.next_task_id += 1
        self.pending[task.id] = Pending(task, proposal, key)
        if self.expected:  # replaying the journal: the result may be in it already
            self.held.add(task.id)
        else:
            self.executor.submit(task)
        return True

    def _learn(self, proposal: Proposal, fitness: float | None, step: int) -> float | None:
        """Tell the strategy; return the controller reward (if it had one)."""
        feedback = self.strategy.tell(proposal, fitness, step)
        if feedback is None:
            return None
        if feedback.reward is not None:
            self.gen.rewards.append(feedback.reward)
        if feedback.update:
            self.gen.updates.append(feedback.update)
        return feedback.reward

    def _record(self, task: Task, outcome: Outcome, write: bool = True) -> None:
        pending = self.pending.pop(task.id)
        proposal = pending.proposal
        step = self.steps
        if outcome.status == "ok":
            fitness: float | None = float(outcome.fitness)
            self.failures_in_row = 0
        else:
            self.failures += 1
            self.failures_in_row += 1
            fitness = self.settings.failure_fitness if self.settings.on_failure == "worst" else None
        self.cache[pending.key] = CacheEntry(step, fitness, outcome.status)
        self.archs[step] = task.arch
        reward = self._learn(proposal, fitness, step)
        for twin in self.twins.pop(pending.key, []):
            self.duplicates += 1
            self._learn(twin, fitness, step)
        self.steps += 1
        record = {
            "step": step,
            "generation": step // self.generation_size,
            "arch": task.arch,
            "fitness": fitness,
            "metrics": outcome.metrics,
            "parent": None if proposal.parent is None else proposal.parent.step,
            "mate": None if proposal.mate is None else proposal.mate.step,
            "mutation": self._describe(proposal),
            "origin": proposal.origin,
            "reward": reward,
            "status": outcome.status,
            "seconds": round(outcome.seconds, 4),
        }
        if outcome.status != "ok":
            record["error"] = outcome.error
        if outcome.status == "ok" and (self.best is None or fitness > self.best["fitness"]):
            self.best = {"step": step, "arch": task.arch, "fitness": fitness, "metrics": outcome.metrics}
        self.best_so_far.append(self.best["fitness"] if self.best else math.nan)
        if fitness is not None:
            self.gen.fitness.append(fitness)
        if write:
            for cb in self.callbacks:
                cb.on_evaluation(self, record)
        if write and any(cb.needs_alive for cb in self.callbacks):
            # not while the journal replays: the children evaluated after the snapshot are not
            # alive yet at their replayed step, but their weights are on disk and will be needed
            alive = {self.archs[m.step] for m in (self.strategy.population_members() or []) if m.step in self.archs}
            alive |= {self.archs[p.proposal.parent.step] for p in self.pending.values()
                      if p.proposal.parent is not None and p.proposal.parent.step in self.archs}
            for cb in self.callbacks:
                if cb.needs_alive:
                    cb.on_alive(self, alive)
        if self.steps % self.generation_size == 0:
            self._log_generation()
        for cb in self.callbacks:
            cb.on_step(self, record)
        if self.failures_in_row >= self.settings.max_failures and self.steps < self.budget:  # (the budget's last
            # child failing ends the search as it would anyway: finished, not stopped)
            raise SearchStopped(
                f"{self.failures_in_row} children failed in a row (last: {outcome.error}); stopping "
                f"(loop.max_failures={self.settings.max_failures})"
            )

    def _describe(self, proposal: Proposal) -> list[dict[str, Any]] | None:
        if not proposal.edits:
            return None
        out = []
        for i, old, new in proposal.edits:
            gene = self.space.genes[i]
            out.append({"gene": gene.name, "from": gene.choices[old], "to": gene.choices[new]})
        return out

    def _log_generation(self) -> None:
        members = self.strategy.population_members()
        fit = [m.fitness for m in members] if members else self.gen.fitness
        row: dict[str, Any] = {
            "generation": (self.steps - 1) // self.generation_size,
            "evaluations": self.steps,
            "fitness/best_so_far": self.best["fitness"] if self.best else None,
        }
        if fit:
            row.update({"fitness/max": max(fit), "fitness/mean": float(np.mean(fit)), "fitness/min": min(fit)})
        if self.strategy.has_controller:
            if self.gen.rewards:
                row["controller/reward_mean"] = float(np.mean(self.gen.rewards))
            if self.gen.updates:
                for k in ("loss", "entropy", "baseline"):  # what the learner reports (least squares: loss)
                    values = [u[k] for u in self.gen.updates if k in u]
                    if values:
                        row[f"controller/{k}"] = float(np.mean(values))
        row["duplicates"] = self.duplicates
        self.generations.append(row)
        self.gen = GenerationStats()
        for cb in self.callbacks:
            cb.on_generation(self, row)

    def final_population(self) -> list[dict[str, Any]]:
        """The population at the end (or the last generation's evaluations)."""
        members = self.strategy.population_members()
        if members:
            return [{"step": m.step, "arch": self.archs.get(m.step), "fitness": m.fitness, "born": m.born} for m in members]
        return []


def _plain(x: Any) -> Any:
    """Tuples to lists, recursively (Python's random state, for a weights-only file)."""
    return [_plain(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def _task_dict(task: Task) -> dict[str, Any]:
    """A pending task in the search state (weights never travel in it)."""
    d = asdict(task)
    d.pop("parent_weights", None)
    return d
