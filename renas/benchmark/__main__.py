"""``python -m renas.benchmark [overrides]``: the Hydra entry point of the benchmark."""

from __future__ import annotations

import logging
import sys
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from renas.benchmark.plan import CONF_DIR
from renas.benchmark.runner import run_benchmark
from renas.cli import hydra_run_dir, quiet_lightning, report_errors, set_threads


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
    data = run_benchmark(cfg, hydra_run_dir(), overrides, out=_console_and_log_file())
    return float(data["seconds"])


if __name__ == "__main__":
    from renas.benchmark.plan import algorithm_overrides
    from renas.cli import quote_arch_overrides, run_hydra_main

    sys.argv = algorithm_overrides(quote_arch_overrides(sys.argv))
    run_hydra_main(main, "benchmark")
