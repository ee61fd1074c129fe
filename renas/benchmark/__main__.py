"""``python -m renas.benchmark [overrides]``: the Hydra entry point of the benchmark."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from renas.config import CONF_DIR
from renas.benchmark.runner import run_benchmark
from renas.cli import hydra_run_dir, quiet_lightning, report_errors, set_threads
from renas.errors import stop_on_sigterm, stop_status


def _console_and_log_file() -> Callable[[str], None]:
    """Progress lines and the final table: printed as they are, and also written, timed, into
    the log files Hydra's job logging opened (``benchmark.log``), through a logger that does not
    pass them on to the console (whatever ``hydra/job_logging`` is chosen; none: printed only)."""
    files = logging.getLogger("renas.benchmark.out")
    files.propagate, files.handlers = False, [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    files.setLevel(logging.INFO)

    def out(line: str) -> None:
        print(line, flush=True)
        files.info(line)

    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="benchmark")
@report_errors
def main(cfg: DictConfig) -> float:
    quiet_lightning()  # children trained with evaluator=train: no banners per child
    set_threads(cfg.get("threads"))
    overrides = list(HydraConfig.get().overrides.task)
    run_dir = hydra_run_dir()
    restore = stop_on_sigterm()  # a scheduler's time limit: the finished algorithms are kept, as with Ctrl-C
    try:
        data = run_benchmark(cfg, run_dir, overrides, out=_console_and_log_file())
    except KeyboardInterrupt:
        what, status = stop_status()
        kept = partial_results(run_dir)
        print(f"{what}; {kept}", file=sys.stderr, flush=True)
        sys.exit(status)
    finally:
        restore()
    return float(data["seconds"])


def partial_results(run_dir: Path) -> str:
    """What an interrupted benchmark kept: the algorithms it finished (``benchmark.json``, written
    after each algorithm at each budget, ``finished: false``) or nothing."""
    path = run_dir / "benchmark.json"
    try:
        data = json.loads(path.read_text())
        results = data["results"] if isinstance(data["budget"], list) else {str(data["budget"]): data["results"]}
        done = [f"{a} at {b}" if isinstance(data["budget"], list) else a for b, r in results.items() for a in r]
    except (OSError, ValueError, KeyError, TypeError):
        log = run_dir / "benchmark.log"
        return "no algorithm had finished: nothing kept" + (f" (its progress is in {log})" if log.is_file() else "")
    return (f"kept in {path} (finished: false): {', '.join(done)}; the algorithm in progress is not kept, and a "
            f"benchmark does not resume: the command run again (in a new folder) repeats every algorithm")


if __name__ == "__main__":
    from renas.benchmark.plan import algorithm_overrides
    from renas.cli import quote_arch_overrides, run_hydra_main

    sys.argv = algorithm_overrides(quote_arch_overrides(sys.argv))
    run_hydra_main(main, "benchmark")
