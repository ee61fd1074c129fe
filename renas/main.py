"""The Hydra entry points: ``search`` and ``train``.

The same functions run as ``python search.py`` / ``python train.py`` in a source checkout
(thin files that call them) and as the console scripts ``renas-search`` / ``renas-train``
after ``pip install``. Their config tree ships inside the package (``renas/conf``, read as
``pkg://renas.conf``; ``conf/`` at the project root is a link to it), so an installed package
works from any folder. Add your own config folders with ``hydra.searchpath``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from renas.build import sweep_group
from renas.cli import (distributed_worker, hydra_run_dir, move_logging, multirun, quiet_lightning, quote_arch_overrides, refuse_occupied_run_dir,
                       remove_empty_run_dir, report_errors, run_hydra_main, set_threads)
from renas.errors import (ConfigError, DiskFullError, RenasError, as_disk_full, command, error_line, stop_on_sigterm,
                          stop_status)
from renas.tracking.run_folder import (CHECKPOINTS, STATE_FILE, TRAIN_STATE, discard_unstarted, finished_search, holding, keep_hydra_files,
                                      refuse_existing_search, restore_hydra_files)
from renas.tracking.versions import warn_changed_versions

CONFIG_PATH = "pkg://renas.conf"


class _Run:
    """Where a command works, for its interrupt handler: ``dir``, the run folder (Hydra's, until a
    resume moves to the folder it continues), and ``resume``, the folder a ``resume=`` continues
    (``None``: a new run)."""

    def __init__(self, locks: contextlib.ExitStack) -> None:
        self.dir, self.resume = hydra_run_dir(), None
        self.fresh = False  # a new search's folder, checked: what it writes before its first state can go
        self.locks = locks

    def hold(self, folder: Path, job: str, resume: bool = True) -> None:
        """Hold ``folder`` until the command ends (:func:`renas.tracking.run_folder.holding`);
        a further process of a multi-device training works in the folder its first one holds."""
        if not distributed_worker():
            self.locks.enter_context(holding(folder, job, resume, _folder_key()))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="search")
@report_errors
def search_main(cfg: DictConfig) -> float:
    """Run a neural architecture search (``python search.py [overrides]``)."""
    locks = contextlib.ExitStack()
    run = _Run(locks)
    try:  # from the first line: Ctrl-C at any moment ends in interrupted()
        with locks:
            return _search(cfg, run)
    except KeyboardInterrupt:
        if finished_search(run.resume or run.dir):  # held while its last files were written (renas.errors.signals_held)
            what, status = stop_status()
            print(f"{what} as the search finished; its results are complete in {run.resume or run.dir}",
                  file=sys.stderr, flush=True)
            sys.exit(status)
        # a new search can resume once its state file is there (written before the first evaluation starts)
        interrupted("search", run, run.resume is not None or (run.dir / "state.pt").is_file(),
                    "before the search wrote its first state (state.pt)")


def _folder_key() -> str:
    """The setting that names this run's folder: a sweep job's is under ``hydra.sweep.dir``."""
    return "hydra.sweep.dir" if multirun() else "hydra.run.dir"


def _hydra_files(cfg: DictConfig) -> dict[str, str]:
    """The files Hydra wrote to ``.hydra/`` for this job, as Hydra writes them (``run_job``), from
    the job's own config: what the folder holds may be another sweep's, written since."""
    hydra_cfg = HydraConfig.instance().cfg
    return {"config.yaml": OmegaConf.to_yaml(cfg), "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
            "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task)}


def _search(cfg: DictConfig, run: _Run) -> float:
    # deferred: the search stack pulls torch (~3 s); start-up (--help, Hydra's own errors) stays light
    from renas.search.run import run_search

    quiet_lightning()
    resume, choices = None, dict(HydraConfig.get().runtime.choices)
    if cfg.get("resume"):
        # deferred: torch via renas.search, as above
        from renas.search.resume import prepare_resume

        run.resume = Path(str(cfg.resume)).expanduser().resolve()
        if (run.resume / ".hydra").is_dir():  # (taken before Hydra wrote; anything else is refused below, untouched)
            run.hold(run.resume, "search")
        overrides = [o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0] not in ("resume", "+resume")]
        try:
            cfg, choices, resume = prepare_resume(cfg.resume, overrides)
        finally:  # hydra.run.dir=<the folder>: Hydra wrote this command's files over the search's (also when refused)
            if hydra_run_dir().resolve() == run.resume and (run.resume / ".hydra").is_dir():
                restore_hydra_files(run.resume)  # from .hydra/search/ (renas.cli.CheckFirst made it where it was missing)
        run.dir = run.resume = move_logging(hydra_run_dir(), resume["run_dir"])
        done = int(resume["state"]["search"]["steps"])
        if done >= int(cfg.ga.budget) and finished_search(run.dir):
            from renas.search.run import restore_generations  # deferred: torch via renas.search, as above

            restore_generations(run.dir, resume)
            best = resume["state"]["search"]["best"]
            print(f"the search in {run.dir} is finished ({done} of {cfg.ga.budget} evaluations); nothing to resume")
            return float(best["fitness"]) if best else math.nan
        # (every evaluation done but summary.json not written: killed while it wrote its last files,
        # which the resume writes now: the summary, the plots, the W&B run's end)
        warn_changed_versions(resume["state"].get("versions"), run.dir)
    else:
        refuse_occupied_run_dir(run.dir, "search")  # a training's folder (CheckFirst: before Hydra writes there)
        try:
            run.hold(run.dir, "search", resume=False)
        except ConfigError:  # a multirun job's folder another search holds (a single run is refused before
            # Hydra writes there: renas.cli.CheckFirst): that search's own Hydra files back
            restore_hydra_files(run.dir)
            raise
        refuse_existing_search(run.dir, _folder_key())
        run.fresh = True
        keep_hydra_files(run.dir, _hydra_files(cfg))
    run_dir = run.dir
    set_threads(cfg.get("threads"))
    run.locks.callback(stop_on_sigterm())  # a scheduler's time limit stops the search as Ctrl-C does (until it ends)
    try:
        summary = run_search(cfg, run_dir, choices=choices, group=sweep_group(), resume=resume)
    except (DiskFullError, OSError) as e:
        if isinstance(e, OSError) and e.errno == errno.EMFILE:  # (the workers' pipes: the hard limit is too low)
            from renas.evaluate.executors import open_files_now  # deferred: torch, as the search's imports above

            again = (f"resume with: {command('search')} resume={run_dir}" if (run_dir / STATE_FILE).is_file()
                     else "run the command again")
            raise RenasError(f"too many open files (ulimit -n allows {open_files_now()}): use fewer "
                             f"executor.workers or raise the limit, then {again}") from None
        if as_disk_full(e, run_dir, "") is None:
            raise
        if not resume and discard_unstarted(run_dir):
            hint = "no evaluation had finished; free space and run the command again"
        else:
            hint = f"nothing is lost; free space and resume with: {command('search')} resume={run_dir}"
        raise as_disk_full(e, run_dir, hint) from None
    except RenasError:
        if not resume:  # bad input found while the search was set up (a logger's _target_): no folder left
            discard_unstarted(run_dir)
        raise
    best = summary["best"]
    return float(best["fitness"]) if best else math.nan


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
@report_errors
def train_main(cfg: DictConfig) -> float:
    """Train one architecture fully (``python train.py arch=... [overrides]``)."""
    locks = contextlib.ExitStack()
    run = _Run(locks)
    try:  # from the first line: Ctrl-C at any moment ends in interrupted()
        with locks:
            return _train(cfg, run)
    except KeyboardInterrupt:
        keep = bool(cfg.get("save_checkpoint", True))
        interrupted("train", run, run.resume is not None or (run.dir / CHECKPOINTS / "last.ckpt").is_file(),
                    "before its first checkpoint" if keep else "with save_checkpoint=false (no checkpoints)")


def _train(cfg: DictConfig, run: _Run) -> float:
    # deferred: renas.train.final pulls torch (~3 s); start-up stays light
    from renas.train.final import train_architecture

    quiet_lightning()
    resume_from = None
    if cfg.get("resume"):
        # deferred: torch via renas.train.final, as above
        from renas.train.final import prepare_train_resume

        given = [str(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []
        if ignored := [o for o in given if o.split("=", 1)[0].lstrip("+~").split(".")[0] not in ("resume", "threads", "hydra")]:
            raise ConfigError(f"resume={cfg.resume}: a training continues with its own settings, and "
                              f"{' '.join(ignored)} would not be taken (only threads= may change on a resume): leave "
                              f"{'it' if len(ignored) == 1 else 'them'} out, or start a new training")
        run.resume = Path(str(cfg.resume)).expanduser().resolve()
        if (run.resume / ".hydra").is_dir():  # (taken before Hydra wrote; anything else is refused below, untouched)
            run.hold(run.resume, "training")
        threads = cfg.get("threads")  # the one setting a training's resume takes from its command
        cfg, folder, resume_from = prepare_train_resume(cfg.resume)
        if threads is not None:
            with open_dict(cfg):
                cfg.threads = threads
        run.dir = run.resume = move_logging(hydra_run_dir(), folder)
        if resume_from is None:
            print(f"the training in {run.dir} is finished (result.json); nothing to resume")
            return float(json.loads((run.dir / "result.json").read_text())["val_acc"])
    else:
        refuse_occupied_run_dir(run.dir, "train")  # a multirun job's folder (CheckFirst: before Hydra writes there)
        run.hold(run.dir, "training", resume=False)
    run_dir = run.dir
    set_threads(cfg.get("threads"))
    run.locks.callback(stop_on_sigterm())  # a scheduler's time limit: checkpoint, then the resume command (until it ends)
    try:
        result = train_architecture(cfg, run_dir, resume_from=resume_from)
    except (DiskFullError, OSError) as e:  # OSError: e.g. the checkpoint, which Lightning writes itself
        resumable = (run_dir / CHECKPOINTS / "last.ckpt").is_file()
        full = as_disk_full(e, run_dir, f"free space and resume with: {command('train')} resume={run_dir}"
                            if resumable else "free space and run it again")
        if full is None:
            raise
        raise full from None
    except RenasError:
        raise
    except Exception as e:  # the network or its data failed in training: one line (a traceback: RENAS_DEBUG=1)
        from renas.train.module import DivergedError  # deferred: torch, imported by train_architecture already

        kept = ("; its last checkpoint is in " + str(run_dir / CHECKPOINTS)) if (run_dir / CHECKPOINTS / "last.ckpt").is_file() else ""
        if isinstance(e, DivergedError):
            raise RenasError(f"the training diverged: {e}{kept}; lower optim.optimizer.lr and train it again") from e
        raise RenasError(f"the training failed: {error_line(e)}{kept}; RENAS_DEBUG=1 shows the traceback") from e
    # deferred: Lightning (~4 s) stays off start-up
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:  # one line, also with several devices (DDP: a process per device)
        print(f"val_acc={result['val_acc']:.4f} test_acc={result['test_acc']:.4f} -> {run_dir / 'result.json'}")
    return result["val_acc"]


def interrupted(job: str, run: _Run, resumable: bool, early: str) -> NoReturn:
    """Ctrl-C (status 130) or SIGTERM (143) in a ``search`` or ``train`` command, wherever it
    landed: the resume command when there is something to resume; otherwise say so (``early``:
    when it stopped), take back what the new run wrote (Hydra's files stay) and remove the run
    folder if nothing else is left in it (:func:`renas.cli.remove_empty_run_dir`)."""
    what, status = stop_status()
    if resumable:
        done = "the training is checkpointed; " if job == "train" else ""
        print(f"{what}; {done}continue with: {command(job)} resume={run.resume or run.dir}", file=sys.stderr, flush=True)
        remove_empty_run_dir(hydra_run_dir())  # a resume= stopped before it moved on: the folder Hydra made
        sys.exit(status)
    if job == "search" and run.fresh:
        discard_unstarted(run.dir)
    elif job == "train":  # the W&B run id is for a resume, which cannot be; an empty checkpoint folder
        (run.dir / TRAIN_STATE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (run.dir / CHECKPOINTS).rmdir()
    remove_empty_run_dir(run.dir)
    print(f"{what} {early}; nothing to resume: run the command again", file=sys.stderr, flush=True)
    sys.exit(status)


def search() -> None:
    """``renas-search`` / ``python search.py``."""
    sys.argv = quote_arch_overrides(sys.argv)
    run_hydra_main(search_main, "search")


def train() -> None:
    """``renas-train`` / ``python train.py``."""
    sys.argv = quote_arch_overrides(sys.argv)
    run_hydra_main(train_main, "train")


def benchmark() -> None:
    """``renas-benchmark`` / ``python -m renas.benchmark``."""
    # deferred: numpy and the benchmark modules stay off search/train start-up
    from renas.benchmark.__main__ import main
    from renas.benchmark.plan import algorithm_overrides

    sys.argv = algorithm_overrides(quote_arch_overrides(sys.argv))
    run_hydra_main(main, "benchmark")


def compare() -> None:
    """``renas-compare`` / ``python -m renas.compare``."""
    # deferred: a module-level `main` here would read as renas.main's own
    from renas.compare import main

    main()
