"""Test doubles for executor tests: evaluators whose worker process dies mid-child."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from renas.evaluate.table import TableEvaluator


class KillOnceTableEvaluator(TableEvaluator):
    """A table evaluator whose process kills itself (SIGKILL) while it evaluates ``victim``
    (counted in submission order), the first ``times`` times; ``marker`` records the deaths, so
    a retry after the last one succeeds. ``victims=[[id, times], ...]`` kills several children
    (each with its own marker, ``<marker>.<id>``)."""

    def __init__(self, space, table, metric, report, marker: str, victim: int = 12, times: int = 1,
                 victims: list | None = None, **table_options) -> None:
        super().__init__(space, table, metric, report, **table_options)
        self.marker = Path(marker)
        self.victims = {int(v): int(t) for v, t in victims} if victims else {int(victim): int(times)}

    def evaluate(self, task):
        if task.id in self.victims:
            marker = self.marker if len(self.victims) == 1 else Path(f"{self.marker}.{task.id}")
            deaths = int(marker.read_text()) if marker.exists() else 0
            if deaths < self.victims[task.id]:
                marker.write_text(str(deaths + 1))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(task)


class SlowTableEvaluator(TableEvaluator):
    """A table evaluator that takes ``seconds`` for each child, as a long training would."""

    def __init__(self, space, table, metric, report, seconds: float = 60.0, **table_options) -> None:
        super().__init__(space, table, metric, report, **table_options)
        self.seconds = float(seconds)

    def evaluate(self, task):
        import time

        time.sleep(self.seconds)
        return super().evaluate(task)
