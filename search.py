"""Run a neural architecture search: ``python search.py [overrides]``.

``python search.py`` runs RENAS on the bundled digits data with a small budget;
``python search.py resume=<run folder>`` continues a stopped search. See the README for
algorithms, evaluators, sweeps (``-m``) and the run folder.
"""

import math
import sys

import hydra
from omegaconf import DictConfig

from renas.cli import hydra_run_dir, quiet_lightning, quote_arch_overrides, report_errors, set_threads
from renas.errors import DiskFullError, as_disk_full, stop_on_sigterm, was_terminated


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
@report_errors
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from renas.build import sweep_group
    from renas.cli import move_logging
    from renas.search.run import run_search

    quiet_lightning()
    run_dir, resume, choices = hydra_run_dir(), None, dict(HydraConfig.get().runtime.choices)
    if cfg.get("resume"):
        from renas.search.resume import prepare_resume

        overrides = [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0] not in ("resume", "+resume")]
        cfg, choices, resume = prepare_resume(cfg.resume, overrides)
        run_dir = move_logging(hydra_run_dir(), resume["run_dir"])
        done = int(resume["state"]["search"]["steps"])
        if done >= int(cfg.ga.budget):
            best = resume["state"]["search"]["best"]
            print(f"the search in {run_dir} is finished ({done} of {cfg.ga.budget} evaluations); nothing to resume")
            return float(best["fitness"]) if best else math.nan
    else:
        from renas.search.resume import keep_hydra_files, refuse_existing_search

        refuse_existing_search(run_dir)
        keep_hydra_files(run_dir)
    set_threads(cfg.get("threads"))
    stop_on_sigterm()  # a scheduler's time limit stops the search as Ctrl-C does
    try:
        summary = run_search(cfg, run_dir, choices=choices, group=sweep_group(), resume=resume)
    except (DiskFullError, OSError) as e:
        from renas.search.resume import discard_unstarted

        if as_disk_full(e, run_dir, "") is None:
            raise
        if not resume and discard_unstarted(run_dir):
            hint = "no evaluation had finished; free space and run the command again"
        else:
            hint = f"nothing is lost; free space and resume with: python search.py resume={run_dir}"
        raise as_disk_full(e, run_dir, hint) from None
    except KeyboardInterrupt:
        what, status = ("terminated (SIGTERM)", 143) if was_terminated() else ("interrupted", 130)
        print(f"{what}; continue with: python search.py resume={run_dir}", file=sys.stderr)
        sys.exit(status)
    best = summary["best"]
    return float(best["fitness"]) if best else math.nan


if __name__ == "__main__":
    sys.argv = quote_arch_overrides(sys.argv)
    main()
