"""What the Hydra entry points share: argument quoting, error reporting, run-folder hygiene."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from renas.config import check_number, check_schema, group_options, may_change_on_resume, resume_may_change
from renas.errors import JOB_NAMES, ConfigError, RenasError, command, one_line
from renas.tracking.loggers import online_without_login
from renas.tracking.run_folder import LOCK_FILE, copy_hydra_files, held_elsewhere, run_folder_kind, take
from renas.train.quiet import quiet_lightning  # noqa: F401 (the entry points' import)

log = logging.getLogger("renas")

_ARCH_KEYS = ("arch", "+arch", "++arch")


def quote_arch_overrides(argv: list[str]) -> list[str]:
    """Let ``arch='|nor_conv_3x3~0|+|...|'`` through Hydra's override grammar.

    Hydra does not accept ``~`` or ``|`` in an unquoted value, so a genotype string given as
    ``arch=<string>`` is quoted for it. Values already quoted, and lists such as
    ``arch=[[1,0],[0,1],...]`` (the paper's encoding), are left as they are.
    """
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in _ARCH_KEYS and value and value[0] not in "'\"[{" and value != "null":
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            arg = f"{key}={value}"
        out.append(arg)
    return out


def hydra_run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def _only_hydra_files(run_dir: Path) -> bool:
    """True if the folder holds nothing but what Hydra wrote when the job started."""
    for p in run_dir.iterdir():
        if p.name in (".hydra", LOCK_FILE) or p.suffix == ".log":
            continue
        return False
    return True


def remove_empty_run_dir(run_dir: Path) -> None:
    """Remove a run folder that holds only Hydra's own files (a job that failed to start, or
    the folder a resumed search left for its own), and the folders above it that this leaves
    empty: Hydra's ``<date>`` folder anywhere, and any below the working folder (the default
    ``outputs/search/<date>/<time>``: a bad command leaves the working folder as it was). A run
    folder that is the working folder or above it (``hydra.run.dir=.``) is never removed: only
    the files Hydra wrote into it (``.hydra/`` and its log file) are."""
    try:
        if not (run_dir.is_dir() and _only_hydra_files(run_dir)) or held_elsewhere(run_dir):
            return
        logs = []
        for handler in logging.getLogger().handlers[:]:
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir:
                handler.close()
                logging.getLogger().removeHandler(handler)
                logs.append(Path(handler.baseFilename))
        cwd, run = Path.cwd().resolve(), run_dir.resolve()
        if run == cwd or run in cwd.parents:
            try:  # the job's log, also when move_logging already moved its handler (resume=)
                logs.append(run / f"{HydraConfig.get().job.name}.log")
            except ValueError:  # not in a Hydra job
                pass
            shutil.rmtree(run / ".hydra", ignore_errors=True)
            (run / LOCK_FILE).unlink(missing_ok=True)
            for path in logs:
                path.unlink(missing_ok=True)
            return
        shutil.rmtree(run_dir)
        parent = run.parent
        while (parent.is_dir() and not any(parent.iterdir())
               and (re.fullmatch(r"\d{4}-\d{2}-\d{2}", parent.name) or cwd in parent.parents)):
            parent.rmdir()
            parent = parent.parent
    except OSError:
        pass


def move_logging(new_run_dir: Path, run_dir: Path) -> Path:
    """Log into ``run_dir``'s log file instead of the folder Hydra made for this command, and
    remove that folder (a resumed search continues in its own folder)."""
    root = logging.getLogger()
    formatter = None
    for handler in root.handlers[:]:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == Path(new_run_dir):
            formatter = handler.formatter
            name = Path(handler.baseFilename).name
            handler.close()
            root.removeHandler(handler)
            moved = logging.FileHandler(Path(run_dir) / name, mode="a")
            moved.setFormatter(formatter)
            root.addHandler(moved)
    if Path(new_run_dir).resolve() != Path(run_dir).resolve():
        remove_empty_run_dir(Path(new_run_dir))
    return Path(run_dir)


def distributed_worker() -> bool:
    """A process other than the first of a multi-device training (``trainer.devices=2``:
    Lightning starts the command again for each further device, with the same run folder, which
    the first process is already writing)."""
    return any(os.environ.get(name, "0") != "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def check_output_dir(path: Any, key: str) -> None:
    """The folder Hydra is to make (``hydra.run.dir``, ``hydra.sweep.dir``) can be made: its
    nearest existing ancestor is a folder this process may write in. Otherwise a
    :class:`ConfigError` naming ``key`` (Hydra's ``os.makedirs`` would end in a traceback)."""
    target = Path(str(path)).absolute()  # as Hydra makes it (``~`` is a folder name to it)
    for folder in (target, *target.parents):
        if not os.path.lexists(folder):
            continue
        if not folder.is_dir():
            what = "a file" if folder.is_file() else "a broken link" if folder.is_symlink() else "something else"
            raise ConfigError(f"{key}={path}: {folder} is {what}, not a folder; choose another {key}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}={path}: {folder} is not writable here; choose another {key}")
        return


def refuse_occupied_run_dir(run_dir: Path, job: str, resume: Any = None) -> None:
    """A new ``job`` (``search``, ``train`` or ``benchmark``) must not write into a run folder that
    holds a training, a search or a benchmark (``hydra.run.dir=`` of an earlier run): a :class:`ConfigError` that says
    what to do instead. A search in a search's folder is left to
    :func:`renas.tracking.run_folder.refuse_existing_search` (its message, and the search's own copy of
    Hydra's files put back). With ``resume``, the folder Hydra makes is dropped, so only a folder
    that holds something is refused; ``train.py resume=<dir> hydra.run.dir=<dir>`` is refused
    too: Hydra would overwrite the overrides that resume reads."""
    kind = run_folder_kind(run_dir)
    if kind is None or (job == "search" and kind == "search") or distributed_worker():
        return
    run_dir = Path(run_dir)
    unchanged = "nothing in it was changed"
    if job == "benchmark" or kind == "benchmark":
        what = {"search": "a search", "training": "a training", "benchmark": "a benchmark (benchmark.json)"}[kind]
        raise ConfigError(f"{run_dir} already holds {what}; choose another hydra.run.dir for the "
                          f"{ {'train': 'training'}.get(job, job)}; {unchanged}")
    if resume and Path(str(resume)).expanduser().resolve() == run_dir.resolve():
        raise ConfigError(f"resume={resume} hydra.run.dir={run_dir}: leave hydra.run.dir out (a resumed "
                          f"training continues in its own folder); {unchanged}")
    if job == "search":
        raise ConfigError(f"{run_dir} already holds a training (train.py); choose another hydra.run.dir "
                          f"for the search; {unchanged}")
    if kind == "search":
        raise ConfigError(f"{run_dir} holds a search; train its best architecture with: {command('train')} "
                          f"arch_from={run_dir} (or choose another hydra.run.dir); {unchanged}")
    if (run_dir / "result.json").exists():
        raise ConfigError(f"{run_dir} already holds a finished training (result.json); choose another "
                          f"hydra.run.dir; {unchanged}")
    raise ConfigError(f"{run_dir} already holds a training; continue it with: {command('train')} resume={run_dir} "
                      f"(or choose another hydra.run.dir); {unchanged}")


class JobError(RuntimeError):
    """A multirun job's bad input, already printed on one line: Hydra marks the job failed,
    runs the sweep's other jobs (an Optuna study counts a failed trial) and exits non-zero."""


#: the sweep folder of the multirun this process launches (set by CheckFirst.on_multirun_start;
#: ``None``: a single run, or before the sweep)
_SWEEP_DIR: Path | None = None
#: what a sweep's launcher raises when a job's process died (joblib's loky, submitit, concurrent.futures)
LAUNCHER_JOB_DIED = ("TerminatedWorkerError", "UncompletedJobError", "BrokenProcessPool")


def multirun() -> bool:
    """Whether this is a job of a sweep (``-m``)."""
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


#: set when a Hydra task function starts: an error before it is Hydra's (composition), after it the task's
_TASK_STARTED = False


def hold_before_hydra_writes(config: DictConfig, task_cfg: DictConfig, job: str) -> None:
    """Take the run folder (:func:`renas.tracking.run_folder.take`) before Hydra writes its
    files there: a new run's ``hydra.run.dir`` (made now), or the folder a ``resume=``
    continues (one with Hydra's files: anything else is refused later, untouched). Another
    process at work there refuses this command before it changes anything."""
    what = "search" if job == "search" else "training"
    resume = task_cfg.get("resume")
    if resume:
        folder = Path(str(resume)).expanduser().resolve()
        if (folder / ".hydra").is_dir():
            take(folder, what)
            if job == "search" and Path(str(config.hydra.run.dir)).expanduser().resolve() == folder:
                copy_hydra_files(folder)  # Hydra writes this command's files there next; the search's stay in .hydra/search/
        return
    run_dir = Path(str(config.hydra.run.dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    take(run_dir, what, resume=False)


class CheckFirst(Callback):
    """Every value against its schema's rule (ranges, booleans: :func:`renas.config.check_schema`)
    right after Hydra composes the config, before it makes the run folder (``hydra.callbacks``
    in ``search.yaml``, ``train.yaml`` and ``benchmark.yaml``; Hydra calls ``on_run_start``
    before ``run_job``). A bad value prints one line and exits with status 2 from here: Hydra
    turns an exception raised by a callback into a warning and goes on. The task checks again
    (the same function: the multirun jobs and ``resume=`` get their checks there)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        task_cfg = _task_config(config)
        try:
            check_schema(task_cfg)  # first: a bad value is the first thing to say
            check_output_dir(config.hydra.run.dir, "hydra.run.dir")  # (before a folder that cannot be entered is read)
            job = {"search": "search", "train": "train", "benchmark": "benchmark"}.get(str(kwargs.get("config_name")))
            if job is not None:  # a run folder that holds a run: refused before Hydra writes its files there
                refuse_occupied_run_dir(Path(str(config.hydra.run.dir)), job, task_cfg.get("resume"))
            if job in ("search", "train") and not distributed_worker():
                hold_before_hydra_writes(config, task_cfg, job)
        except RenasError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep, before the sweeper makes the sweep folder or launches a job: the launcher's
        numbers (:func:`check_launcher`), the values every job shares (the overrides that are not
        swept), each option of a swept config group (:func:`check_swept_options`), then each value
        of a listed or ranged sweep of a setting (``ga.mutation_rate=0.1,1.5``, ``seed=range(0,5)``)
        and both ends of an interval (an Optuna search space) in the shared config; for the
        benchmark also its own keys (``seeds``, ``budget``, ``algorithms``)."""
        task_cfg = _task_config(config)
        job_check = _job_check(kwargs.get("config_name"), list(config.hydra.overrides.hydra))
        try:
            check_sweep_shapes(config)
        except RenasError as e:
            print(f"error: {e} (no job was started)", file=sys.stderr, flush=True)
            sys.exit(2)
        try:
            check_swept_options(config, kwargs.get("config_name"))
        except RenasError as e:
            print(f"error: {e}; no job was started)", file=sys.stderr, flush=True)
            sys.exit(2)
        try:
            check_launcher(config.hydra.get("launcher"))
            check_schema(task_cfg)
            job_check(task_cfg)
            if line := online_without_login(task_cfg.get("logger")):
                raise ConfigError(line)
        except RenasError as e:
            print(f"error: {e} (every job of the sweep has it; no job was started)", file=sys.stderr, flush=True)
            sys.exit(2)
        for override, key, value in _swept_values(config):
            try:
                job_cfg = _with_values(task_cfg, {key: value})  # a typed key checks its type here
                check_schema(job_cfg)
                job_check(job_cfg)
            except (RenasError, OmegaConfBaseException) as e:
                msg = one_line(e)
                msg = msg if msg.startswith(key) else f"{key}={value!r}: {msg}"
                print(f"error: {msg} (a value of the sweep {override}; no job was started)", file=sys.stderr, flush=True)
                sys.exit(2)
        if kwargs.get("config_name") == "search":
            try:
                check_jobs_between(config, task_cfg)
            except RenasError as e:
                print(f"error: {e}; no job was started)", file=sys.stderr, flush=True)
                sys.exit(2)
        try:  # last: a bad value is the first thing to say
            check_output_dir(config.hydra.sweep.dir, "hydra.sweep.dir")
        except RenasError as e:
            print(f"error: {e} (no job was started)", file=sys.stderr, flush=True)
            sys.exit(2)
        global _SWEEP_DIR
        _SWEEP_DIR = Path(str(config.hydra.sweep.dir))


def _job_check(config_name: Any, hydra_overrides: list[str]) -> Callable[[DictConfig], Any]:
    """What a command checks of its own keys besides the schema's rules (the benchmark's
    ``algorithms``, ``seeds``, ``budget``), for a sweep's jobs before any starts."""
    if config_name == "benchmark":
        # deferred: the benchmark's planning is not needed by search.py and train.py
        from renas.benchmark.plan import check_keys

        return lambda cfg: check_keys(cfg, hydra_overrides)
    return lambda cfg: None


def _sweeps(config: DictConfig) -> list[Any]:
    """The sweeps of a multirun, parsed: the sweeper's ``params`` (the Optuna sweeper's search
    space, or the basic sweeper's), each replaced by the command line's sweep of the same key,
    then the command line's other sweeps."""
    parser = OverridesParser.create()
    by_key: dict[str, Any] = {}
    params = config.hydra.get("sweeper", {}).get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    for override in parser.parse_overrides(lines):
        if override.is_sweep_override() and not override.is_delete():
            by_key[override.get_key_element()] = override
    return list(by_key.values())


def check_swept_options(config: DictConfig, config_name: Any = None) -> None:
    """Each option of a listed sweep of a config group (``-m executor=local,nope``) exists:
    Hydra finds out only when it composes that job, after the sweep folder and its
    ``multirun.yaml`` are written (and, for a later batch, after the jobs before it ran). The
    options are looked up as the command composes (its primary config and the command line's
    ``hydra.searchpath``: a user's own config folder)."""
    if not GlobalHydra.instance().is_initialized():
        return
    for override in _sweeps(config):
        if override.value_type not in (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.CHOICE_SWEEP):
            continue
        group = override.key_or_group
        options = group_options(group, config_name, list(config.hydra.overrides.hydra))
        if not options:  # a setting, not a config group: its values are checked by _swept_values
            continue
        for value in override.sweep_iterator():
            if str(value) not in options:
                raise ConfigError(f"Could not find '{group}/{value}' (options: {', '.join(options)}; "
                                  f"a value of the sweep {override.input_line}")


#: the launchers' numbers that Hydra's joblib and submitit plugins take unchecked (a traceback
#: from joblib, or a SLURM job refused after the sweep started): key -> (smallest value, what it is)
LAUNCHER_MINIMA = {"timeout_min": (1, "minutes"), "cpus_per_task": (1, "CPUs"), "gpus_per_node": (0, "GPUs"),
                   "tasks_per_node": (1, "tasks"), "nodes": (1, "nodes"), "mem_gb": (1, "GB"),
                   "array_parallelism": (1, "jobs at once")}


def check_sweep_shapes(config: DictConfig) -> None:
    """A sweep that would start no job, or whose sweeper cannot start: a listed or ranged sweep
    without a value (``seed=range(0,0)``: Hydra launched 0 jobs and said nothing), an interval
    whose low end is above its high end (Optuna's traceback at the first trial), and the Optuna
    sweeper's ``n_trials`` below 1 (its traceback after no trial)."""
    for override in _sweeps(config):
        if override.value_type == ValueType.INTERVAL_SWEEP:
            low, high = override.value().start, override.value().end
            if low > high:
                raise ConfigError(f"{override.input_line}: the interval's low end {low:g} is above its high end {high:g}")
        elif override.value_type in (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.CHOICE_SWEEP, ValueType.RANGE_SWEEP):
            if next(iter(override.sweep_iterator()), _NOTHING) is _NOTHING:
                raise ConfigError(f"{override.input_line}: the sweep holds no value, so it would start no job")
    sweeper = config.hydra.get("sweeper") or {}
    n_trials = sweeper.get("n_trials") if "optuna" in str(sweeper.get("_target_", "")).lower() else None
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ConfigError(f"hydra.sweeper.n_trials={n_trials!r} is out of range: must be a number of trials >= 1")


_NOTHING = object()


def check_launcher(launcher: Any) -> None:
    """``hydra.launcher``'s numbers: joblib's ``n_jobs`` (not 0; negative counts back from the
    cores, as joblib reads it) and submitit's sizes and time (:data:`LAUNCHER_MINIMA`)."""
    if launcher is None:
        return
    n_jobs = launcher.get("n_jobs")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0):
        raise ConfigError(f"hydra.launcher.n_jobs={n_jobs!r}: give the number of jobs at once (>= 1; -1: one per core)")
    for key, (least, what) in LAUNCHER_MINIMA.items():
        value = launcher.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < least:
            raise ConfigError(f"hydra.launcher.{key}={value!r} is out of range: must be a number of {what} >= {least}")


#: the most values of one swept setting checked before a sweep starts (each check takes ~5 ms)
SWEEP_VALUES_CHECKED = 1000


def _swept_values(config: DictConfig) -> list[tuple[str, str, Any]]:
    """``(override, key, value)`` for each value of each listed or ranged sweep of a setting (not
    of a config group, nor Hydra's own keys), and both ends of an interval (an Optuna search
    space: the sampler may draw either)."""
    groups = set(config.hydra.runtime.choices.keys())
    out = []
    for override in _sweeps(config):
        key = override.key_or_group
        if key in groups or key.startswith("hydra."):
            continue
        if override.value_type == ValueType.INTERVAL_SWEEP:
            values: Any = (override.value().start, override.value().end)
        elif override.value_type in (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.CHOICE_SWEEP, ValueType.RANGE_SWEEP):
            values = override.sweep_iterator()
        else:
            continue
        for i, value in enumerate(values):
            if i >= SWEEP_VALUES_CHECKED:
                break
            out.append((override.input_line, key, value))
    return out


def check_jobs_between(config: DictConfig, task_cfg: DictConfig) -> None:
    """The search's rules between keys (S <= P, the budget against the population: the rules
    :func:`renas.search.run.check_between` applies in each job) for the jobs of a basic sweep of
    settings, before the first starts. When every job breaks one (``-m seed=0,1 ga.budget=2``),
    a :class:`RenasError` with the first job's (its message ends in ``(the job ... of the
    sweep``, for the caller to close): the sweep failed job by job, each with the same line.
    When some do (a grid of P and S), a warning names how many and the first; they fail in
    their turn and the others run, as before. Only where the jobs are the product of the
    command line's lists and ranges on one config (no swept config group, search space key or
    Optuna search space), up to :data:`SWEEP_VALUES_CHECKED` jobs."""
    if task_cfg.get("resume") or "basic" not in str(config.hydra.sweeper.get("_target_", "")).lower():
        return
    groups = set(config.hydra.runtime.choices.keys())
    sweeps = [o for o in _sweeps(config) if not o.key_or_group.startswith("hydra.")]
    if not sweeps or any(o.key_or_group in groups or o.key_or_group.startswith("search_space")
                         or o.value_type not in (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.CHOICE_SWEEP,
                                                 ValueType.RANGE_SWEEP) for o in sweeps):
        return
    keys = [o.key_or_group for o in sweeps]
    jobs = list(itertools.islice(itertools.product(*(list(o.sweep_iterator()) for o in sweeps)), SWEEP_VALUES_CHECKED + 1))
    if len(jobs) > SWEEP_VALUES_CHECKED:
        return  # too many to check here: each job checks its own
    # deferred: building the space pulls the search stack (torch), which a sweep's start needs here only
    from renas.build import build_space
    from renas.search.run import check_between

    try:
        space = build_space(task_cfg.search_space)
    except RenasError:
        return  # the same for every job: each says so
    broken: list[str] = []
    for values in jobs:
        try:
            check_between(_with_values(task_cfg, dict(zip(keys, values))), space)
        except RenasError as e:
            job = " ".join(f"{key}={value}" for key, value in zip(keys, values))
            broken.append(f"{e} (the job {job} of the sweep")
    if len(broken) == len(jobs):
        raise ConfigError(broken[0])
    if broken:
        print(f"warning: {len(broken)} of the sweep's {len(jobs)} jobs break a rule between keys and will fail "
              f"in their turn; the first: {broken[0]})", file=sys.stderr, flush=True)


def _with_values(task_cfg: DictConfig, values: dict[str, Any]) -> DictConfig:
    """A copy of ``task_cfg`` with ``values`` (``key: value``) set, as a sweep's job has them."""
    job_cfg = task_cfg.copy()
    with read_write(job_cfg), open_dict(job_cfg):
        for key, value in values.items():
            OmegaConf.update(job_cfg, key, value, force_add=True)
    return job_cfg


def _task_config(config: DictConfig) -> DictConfig:
    """What the task gets: the config without Hydra's own node."""
    task_cfg = config.copy()
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


def _help_groups_when_asked() -> None:
    """Hydra's ``get_help`` formats ``$HYDRA_CONFIG_GROUPS`` and ``$APP_CONFIG_GROUPS`` before it
    reads the template: 2 s of a 3 s ``--help`` (each group's query copies the ConfigStore).
    renas's template (``conf/hydra/help/renas.yaml``) uses neither, so they are formatted only
    for a template that names them (``--hydra-help``'s, or a user's own); the text is the same.
    Hydra's private ``Hydra.get_help`` is wrapped: without it (another Hydra) nothing changes."""
    original = getattr(Hydra, "get_help", None)
    if original is None or getattr(original, "renas_lazy", False) or not hasattr(Hydra, "format_config_groups"):
        return

    def get_help(self: Any, help_cfg: DictConfig, *args: Any, **kwargs: Any) -> str:
        if "CONFIG_GROUPS" in str(help_cfg.get("template", "")):
            return original(self, help_cfg, *args, **kwargs)
        self.format_config_groups = lambda *_, **__: ""  # this call only: the instance's attribute
        try:
            return original(self, help_cfg, *args, **kwargs)
        finally:
            del self.format_config_groups

    get_help.renas_lazy = True  # type: ignore[attr-defined]
    Hydra.get_help = get_help


def run_hydra_main(main: Callable[[], Any], job: str | None = None) -> Any:
    """Run a ``@hydra.main`` function so that Hydra's own errors (a bad override, an unknown
    option or key, a wrong type caught by a schema: all before the run folder exists) are one
    line and exit status 2, like renas's own. ``HYDRA_FULL_ERROR=1`` keeps Hydra's report.
    ``job`` (``search``, ``train``, ``benchmark``) names the command in those lines."""
    global _TASK_STARTED, _SWEEP_DIR
    if os.environ.get("HYDRA_FULL_ERROR"):
        return main()

    _TASK_STARTED, _SWEEP_DIR = False, None
    if "--help" in sys.argv or "-h" in sys.argv:
        _help_groups_when_asked()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its report and exiting 1
    try:
        return main()
    except JobError:  # a multirun job's bad input: its line is printed already
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C before the task started (the task handles its own): nothing to resume
        if _TASK_STARTED:
            raise
        if _SWEEP_DIR is not None:  # a sweep's launcher (joblib, submitit): its jobs run elsewhere and handle their own
            how = (f": continue one with {command(job)} resume=<its folder>" if job in ("search", "train") else "")
            print(f"interrupted; the sweep's jobs that had started are in {_SWEEP_DIR} (a folder each){how}",
                  file=sys.stderr, flush=True)
            sys.exit(130)
        try:
            remove_empty_run_dir(hydra_run_dir())
        except Exception:  # Hydra had not set up the job (or its run folder) yet
            pass
        print("interrupted before the command started; nothing to resume: run the command again",
              file=sys.stderr, flush=True)
        sys.exit(130)
    except (HydraException, OmegaConfBaseException) as e:
        if _TASK_STARTED:  # raised by the task itself: a bug, with its traceback
            raise
        text = not_a_group(one_line(e), job)
        if job == "search" and any(a.split("=", 1)[0].lstrip("+") == "resume" for a in sys.argv[1:]):
            # the command's config before resume= reads the run's own: an override that does not fit the
            # defaults (evaluator.metric of a table search) fails there, and is not the resume's to take anyway
            if given := [a for a in sys.argv[1:] if ("=" in a or a.startswith("~")) and not a.startswith("-")
                         and not may_change_on_resume(a)]:
                text = f"resume: {' '.join(given)} cannot be given to a resumed search; {resume_may_change()}"
        print(f"error: {text}", file=sys.stderr, flush=True)
        sys.exit(2)
    except ValueError as e:  # Hydra's own flags given together (``-m ... --cfg job``)
        if _TASK_STARTED or not str(e).startswith("Only one of --run"):
            raise
        print(f"error: {e} (--cfg shows one run's config: drop -m)", file=sys.stderr, flush=True)
        sys.exit(2)
    except BrokenPipeError:  # the reader stopped early (`--help | head`): what it read is all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        sys.exit(141)
    except Exception as e:
        if _TASK_STARTED or _SWEEP_DIR is None or type(e).__name__ not in LAUNCHER_JOB_DIED:
            raise
        # a sweep's job process died (killed, out of memory): the launcher raises where it waits
        how = (f"; continue an unfinished one with {command(job)} resume=<its folder>" if job in ("search", "train")
               else "")
        what = f"{type(e).__name__}: {e}".strip().splitlines()[0].split(". ")[0].rstrip(".")[:200] + "."  # its first sentence
        print(f"error: a job of the sweep died ({what}); the sweep stopped; the jobs that had started "
              f"are in {_SWEEP_DIR} (a folder each){how}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)
        if "--help" in sys.argv or "-h" in sys.argv or "--cfg" in sys.argv:  # (printed, not yet flushed)
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def not_a_group(text: str, job: str | None) -> str:
    """Hydra's "Could not override 'experiment'. No match in the defaults list. To append to
    your default list use +experiment=..." for a group another command has (``train.py
    experiment=...``): the ``+`` it suggests fails too, so the line says whose groups these are."""
    m = re.match(r"Could not override '([\w/]+)'\. No match in the defaults list\.", text)
    if m is None or m.group(1).startswith("hydra/"):
        return text
    name = JOB_NAMES.get(job or "", "this command")
    helper = command(job) if job in ("search", "train") else "python -m renas.benchmark" if job else "the command"
    return f"{m.group(1)} is not a config group of {name} ({helper} --help lists its groups)"


def report_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a Hydra task; a :class:`RenasError` prints one line and exits with status 2 (a full
    disk, :class:`~renas.errors.DiskFullError`: status 3).

    A run folder the failed job left with only Hydra's files in it is removed, so bad input
    leaves nothing behind. Set ``RENAS_DEBUG=1`` for the traceback. The folder the command runs
    in is importable (last on ``sys.path``, as ``python -m`` puts it first): a ``_target_`` of the
    user's own modules there is found by ``python search.py`` and the console scripts alike.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _TASK_STARTED
        _TASK_STARTED = True
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            result = fn(*args, **kwargs)
            _TASK_STARTED = False  # the next job of a multirun is composed after this one
            return result
        except RenasError as e:
            if os.environ.get("RENAS_DEBUG"):
                raise
            try:
                remove_empty_run_dir(hydra_run_dir())
            except Exception:
                pass
            if not distributed_worker():  # (a multi-device training's further processes fail alike: one line)
                print(f"error: {e}", file=sys.stderr, flush=True)
            if multirun():  # one bad job of a sweep must not kill the others (or an Optuna study)
                raise JobError(str(e)) from None
            sys.exit(getattr(e, "exit_code", 2))

    return wrapper


def set_threads(threads: int | None) -> None:
    """Limit torch's intra-op threads (``threads=null`` keeps torch's default)."""
    if threads is not None:
        check_number("threads", threads, 1, 1024, integer=True)  # before torch sees it: one line, not a traceback
        # deferred: torch (~3 s) only when threads is set
        import torch

        torch.set_num_threads(int(threads))
