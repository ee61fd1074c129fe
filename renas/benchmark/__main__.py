"""``python -m renas.benchmark [overrides]``: the Hydra entry point of the benchmark."""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from renas.benchmark.plan import CONF_DIR
from renas.benchmark.runner import run_benchmark
from renas.cli import hydra_run_dir, quiet_lightning, report_errors, set_threads


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="benchmark")
@report_errors
def main(cfg: DictConfig) -> float:
    quiet_lightning()  # children trained with evaluator=train: no banners per child
    set_threads(cfg.get("threads"))
    overrides = list(HydraConfig.get().overrides.task)
    # progress and the table go to the console and to benchmark.log (Hydra's job logging)
    data = run_benchmark(cfg, hydra_run_dir(), overrides, out=logging.getLogger("renas.benchmark").info)
    return float(data["seconds"])


if __name__ == "__main__":
    from renas.cli import quote_arch_overrides, run_hydra_main

    sys.argv = quote_arch_overrides(sys.argv)
    run_hydra_main(main)
