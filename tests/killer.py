"""Test doubles for executor tests: evaluators whose worker process dies mid-child."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from renas.evaluate.table import TableEvaluator


class KillOnceTableEvaluator(TableEvaluator):
    """A table evaluator whose process kills itself (SIGKILL) the first time it evaluates
    ``victim`` (counted in submission order); ``marker`` records that it happened, so the
    retry of the same child succeeds."""

    def __init__(self, space, table, metric, report, marker: str, victim: int = 12, times: int = 1, **table_options) -> None:
        super().__init__(space, table, metric, report, **table_options)
        self.marker, self.victim, self.times = Path(marker), victim, times

    def evaluate(self, task):
        if task.id == self.victim:
            deaths = int(self.marker.read_text()) if self.marker.exists() else 0
            if deaths < self.times:
                self.marker.write_text(str(deaths + 1))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(task)
