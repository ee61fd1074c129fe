"""The evaluator protocol: given an architecture, return its fitness and extra metrics.

The search loop knows an evaluator only through this protocol and an executor that runs it,
so a table look-up, in-process Lightning training and a Ray cluster are interchangeable. An
executor takes work (:meth:`Executor.submit`) and hands back results as they finish
(:meth:`Executor.next_result`), so several children can be in evaluation at once.
"""

from __future__ import annotations

import collections
import gc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from renas.errors import DiskFullError, disk_full, error_line


@dataclass
class Task:
    """One architecture to evaluate.

    Attributes:
        id: submission number (unique within a search).
        arch: the exact genotype string.
        values: its gene values.
        seed: seed for anything random in the evaluation (weight init, data order).
        parent_arch: the parent's genotype string (for weight inheritance), if any.
        parent_weights: the parent's trained weights (``torch.save`` bytes) when they travel
            with the task (Ray: through the object store) instead of being read from the run
            folder; set by the executor on the copy it sends, never kept in the search state.
    """

    id: int
    arch: str
    values: tuple[int, ...]
    seed: int
    parent_arch: str | None = None
    parent_weights: bytes | None = field(default=None, repr=False)


@dataclass
class Outcome:
    """What an evaluation produced. ``status`` is ``ok`` or ``failed`` (then ``error`` says why)."""

    fitness: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    seconds: float = 0.0
    #: the child's trained weights (``torch.save`` bytes) when they travel back with the
    #: outcome (Ray) for the driver to keep; the executor takes them off before the loop sees it
    weights: bytes | None = field(default=None, repr=False)

    @classmethod
    def failed(cls, error: str, seconds: float = 0.0, metrics: dict[str, Any] | None = None) -> "Outcome":
        return cls(None, dict(metrics or {}), "failed", error, seconds)


class Evaluator(Protocol):
    """Evaluates architectures. ``name`` shows up in summaries."""

    name: str

    def evaluate(self, task: Task) -> Outcome: ...


#: an evaluator may set this attribute on the exception a child's evaluation raises: the metrics
#: it measured before the failure, kept in the failed child's history record
METRICS_ATTRIBUTE = "renas_metrics"


def safe_evaluate(evaluator: Evaluator, task: Task) -> Outcome:
    """Run ``evaluator.evaluate``; an exception or a non-finite fitness becomes a failed outcome."""
    start = time.perf_counter()
    try:
        out = evaluator.evaluate(task)
    except KeyboardInterrupt:
        raise
    except DiskFullError:  # not the child's fault: the search stops (and can resume)
        raise
    except Exception as e:  # a child's failure must not end the search
        if disk_full(e):
            raise DiskFullError(getattr(e, "filename", None) or f"the files of child {task.id}") from None
        if type(e).__name__ == "OutOfMemoryError":
            _free_accelerator_memory()
        # what the evaluator measured before the failure (a child's params and FLOPs): METRICS_ATTRIBUTE
        return Outcome.failed(error_line(e), time.perf_counter() - start, getattr(e, METRICS_ATTRIBUTE, None))
    if out.status == "ok" and (out.fitness is None or not math.isfinite(out.fitness)):
        return Outcome.failed(f"non-finite fitness {out.fitness}", out.seconds, out.metrics)
    if not out.seconds:
        out.seconds = time.perf_counter() - start
    return out


def _free_accelerator_memory() -> None:
    gc.collect()
    try:
        # deferred: torch (~3 s) stays off renas.evaluate.base (renas.benchmark imports it); guarded
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


class Executor(Protocol):
    capacity: int

    def submit(self, task: Task) -> None: ...

    def next_result(self) -> tuple[Task, Outcome]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Evaluates in this process, one task at a time, when its result is asked for."""

    capacity = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.queue: collections.deque[Task] = collections.deque()

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def next_result(self) -> tuple[Task, Outcome]:
        task = self.queue.popleft()
        return task, safe_evaluate(self.evaluator, task)

    def close(self) -> None:
        self.queue.clear()
