"""How good an architecture is: the evaluator protocol, Lightning and table evaluators, executors."""

from renas.evaluate.base import Evaluator, InlineExecutor, Outcome, Task

__all__ = ["Evaluator", "InlineExecutor", "Outcome", "Task"]
