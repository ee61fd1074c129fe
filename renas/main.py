"""The Hydra entry points: ``search`` and ``train``.

The same functions run as ``python search.py`` / ``python train.py`` in a source checkout
(thin files that call them) and as the console scripts ``renas-search`` / ``renas-train``
after ``pip install``. Their config tree ships inside the package (``renas/conf``, read as
``pkg://renas.conf``; ``conf/`` at the project root is a link to it), so an installed package
works from any folder. Add your own config folders with ``hydra.searchpath``.
"""

from __future__ import annotations

import json
import math
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from renas.build import sweep_group
from renas.cli import hydra_run_dir, move_logging, quiet_lightning, quote_arch_overrides, report_errors, run_hydra_main, set_threads
from renas.errors import DiskFullError, as_disk_full, command, stop_on_sigterm, was_terminated

CONFIG_PATH = "pkg://renas.conf"


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="search")
@report_errors
def search_main(cfg: DictConfig) -> float:
    """Run a neural architecture search (``python search.py [overrides]``)."""
    # deferred: the search stack pulls torch (~3 s); start-up (--help, Hydra's own errors) stays light
    from renas.search.run import run_search

    quiet_lightning()
    run_dir, resume, choices = hydra_run_dir(), None, dict(HydraConfig.get().runtime.choices)
    if cfg.get("resume"):
        # deferred: torch via renas.search, as above
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
        # deferred: torch via renas.search, as above
        from renas.search.resume import keep_hydra_files, refuse_existing_search

        refuse_existing_search(run_dir)
        keep_hydra_files(run_dir)
    set_threads(cfg.get("threads"))
    stop_on_sigterm()  # a scheduler's time limit stops the search as Ctrl-C does
    try:
        summary = run_search(cfg, run_dir, choices=choices, group=sweep_group(), resume=resume)
    except (DiskFullError, OSError) as e:
        # deferred: torch via renas.search, as above
        from renas.search.resume import discard_unstarted

        if as_disk_full(e, run_dir, "") is None:
            raise
        if not resume and discard_unstarted(run_dir):
            hint = "no evaluation had finished; free space and run the command again"
        else:
            hint = f"nothing is lost; free space and resume with: {command('search')} resume={run_dir}"
        raise as_disk_full(e, run_dir, hint) from None
    except KeyboardInterrupt:
        what, status = ("terminated (SIGTERM)", 143) if was_terminated() else ("interrupted", 130)
        print(f"{what}; continue with: {command('search')} resume={run_dir}", file=sys.stderr)
        sys.exit(status)
    best = summary["best"]
    return float(best["fitness"]) if best else math.nan


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
@report_errors
def train_main(cfg: DictConfig) -> float:
    """Train one architecture fully (``python train.py arch=... [overrides]``)."""
    # deferred: renas.train.final pulls torch (~3 s); start-up stays light
    from renas.train.final import train_architecture

    quiet_lightning()
    run_dir, resume_from = hydra_run_dir(), None
    if cfg.get("resume"):
        # deferred: torch via renas.train.final, as above
        from renas.train.final import prepare_train_resume

        cfg, folder, resume_from = prepare_train_resume(cfg.resume)
        run_dir = move_logging(hydra_run_dir(), folder)
        if resume_from is None:
            print(f"the training in {run_dir} is finished (result.json); nothing to resume")
            return float(json.loads((run_dir / "result.json").read_text())["val_acc"])
    set_threads(cfg.get("threads"))
    stop_on_sigterm()  # a scheduler's time limit: checkpoint, then the resume command
    try:
        result = train_architecture(cfg, run_dir, resume_from=resume_from)
    except (DiskFullError, OSError) as e:  # OSError: e.g. the checkpoint, which Lightning writes itself
        resumable = (run_dir / "checkpoints" / "last.ckpt").is_file()
        full = as_disk_full(e, run_dir, f"free space and resume with: {command('train')} resume={run_dir}"
                            if resumable else "free space and run it again")
        if full is None:
            raise
        raise full from None
    except KeyboardInterrupt:
        what, status = ("terminated (SIGTERM)", 143) if was_terminated() else ("interrupted", 130)
        print(f"{what}; the training is checkpointed; continue with: {command('train')} resume={run_dir}",
              file=sys.stderr)
        sys.exit(status)
    # deferred: Lightning (~4 s) stays off start-up
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:  # one line, also with several devices (DDP: a process per device)
        print(f"val_acc={result['val_acc']:.4f} test_acc={result['test_acc']:.4f} -> {run_dir / 'result.json'}")
    return result["val_acc"]


def search() -> None:
    """``renas-search`` / ``python search.py``."""
    sys.argv = quote_arch_overrides(sys.argv)
    run_hydra_main(search_main)


def train() -> None:
    """``renas-train`` / ``python train.py``."""
    sys.argv = quote_arch_overrides(sys.argv)
    run_hydra_main(train_main)


def benchmark() -> None:
    """``renas-benchmark`` / ``python -m renas.benchmark``."""
    # deferred: numpy and the benchmark modules stay off search/train start-up
    from renas.benchmark.__main__ import main
    from renas.benchmark.plan import algorithm_overrides

    sys.argv = algorithm_overrides(quote_arch_overrides(sys.argv))
    run_hydra_main(main)


def compare() -> None:
    """``renas-compare`` / ``python -m renas.compare``."""
    # deferred: a module-level `main` here would read as renas.main's own
    from renas.compare import main

    main()
