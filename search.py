"""Run a neural architecture search: ``python search.py [overrides]``.

``python search.py`` runs RENAS on the bundled digits data with a small budget; see the README
for algorithms, evaluators, sweeps (``-m``) and resuming.
"""

import math
import sys

import hydra
from omegaconf import DictConfig

from renas.cli import hydra_run_dir, quiet_lightning, quote_arch_overrides, report_errors, set_threads


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
@report_errors
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from renas.build import sweep_group
    from renas.search.run import run_search

    quiet_lightning()
    set_threads(cfg.get("threads"))
    summary = run_search(cfg, hydra_run_dir(), choices=dict(HydraConfig.get().runtime.choices), group=sweep_group())
    best = summary["best"]
    return float(best["fitness"]) if best else math.nan


if __name__ == "__main__":
    sys.argv = quote_arch_overrides(sys.argv)
    main()
