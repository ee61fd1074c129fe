"""Run search.py (or train.py) with a fault injected:
``python tests/fault_driver.py <fault> <n> -- [train.py] <args>``, or from a test with
:func:`helpers.drive` (a forked copy of the test's process, which has torch and Hydra imported).

The process kills itself with SIGKILL (as a crash, the OOM killer or a pre-empted node would)
at the n-th occurrence (1-based) of the chosen point:

- ``eval``: inside an evaluation, before its result is returned (table or Lightning evaluator).
- ``train``: inside a child's Lightning training step.
- ``state``: while writing state.pt, half of the temporary file written, before the rename.
- ``history``: while appending a history line, half of the line written (a torn line).
- ``generation``: right after a generation's row was logged (between generations).
- ``none``: no fault.

Fault injection lives here, in the tests, not in the package.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def install(fault: str, n: int) -> None:
    """Patch this process so that it kills itself at the n-th ``fault`` point."""
    count = {"n": 0}

    def hit() -> bool:
        count["n"] += 1
        return count["n"] == n

    def die() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    if fault == "eval":
        from renas.evaluate import lightning_eval, table

        for cls in (table.TableEvaluator, lightning_eval.TrainEvaluator):
            original = cls.evaluate

            def evaluate(self, task, _original=original):
                out = _original(self, task)
                if hit():
                    die()
                return out

            cls.evaluate = evaluate
    elif fault == "train":
        from renas.train import module

        original = module.ClassifierModule.training_step

        def training_step(self, batch, batch_idx, _original=original):
            if hit():
                die()
            return _original(self, batch, batch_idx)

        module.ClassifierModule.training_step = training_step
    elif fault == "state":
        from renas.tracking import state

        original = state.atomic_write_bytes

        def atomic_write_bytes(path, data, _original=original):
            if hit():
                tmp = Path(path).with_name(f".{Path(path).name}.tmp")
                with open(tmp, "wb") as f:
                    f.write(data[: len(data) // 2])
                die()
            return _original(path, data)

        state.atomic_write_bytes = atomic_write_bytes
    elif fault == "history":
        from renas.tracking import history

        original = history.HistoryWriter.append

        def append(self, record, _original=original):
            if self.path.name == "history.jsonl" and hit():
                import json

                line = json.dumps(record)
                self._f.write(line[: len(line) // 2])
                self._f.flush()
                die()
            return _original(self, record)

        history.HistoryWriter.append = append
    elif fault == "generation":
        from renas.search import loop

        original = loop.Search._log_generation

        def _log_generation(self, _original=original):
            _original(self)
            if hit():
                die()

        loop.Search._log_generation = _log_generation
    elif fault != "none":
        raise SystemExit(f"unknown fault {fault!r}")


def run(args: list[str]) -> None:
    """``python search.py <args>`` (or ``train.py`` when ``args[0]`` is ``train.py``) in this process."""
    args = list(args)
    script = args.pop(0) if args and args[0].endswith(".py") else "search.py"  # e.g. `-- train.py ...`
    sys.argv = [str(REPO / script), *args]
    os.chdir(REPO)
    runpy.run_path(str(REPO / script), run_name="__main__")


def main() -> None:
    fault, n = sys.argv[1], int(sys.argv[2])
    assert sys.argv[3] == "--"
    install(fault, n)
    run(sys.argv[4:])


if __name__ == "__main__":
    main()
