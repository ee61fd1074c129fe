"""Executors: run evaluations in this process, in local worker processes, or on Ray.

All three take tasks with :meth:`submit` and hand back ``(task, outcome)`` pairs as children
finish with :meth:`next_result`; the search loop keeps ``capacity`` children in flight.

- ``InlineExecutor`` (``executor=local``, ``executor.workers=1``): in the search's own process.
- :class:`LocalExecutor` (``executor=local``, ``executor.workers=K``): K worker processes on
  this machine, each building its evaluator (and loading the data) once, with
  ``threads_per_worker`` torch threads (default: the cores this process may use / K) and GPUs assigned round-robin.
- :class:`RayExecutor` (``executor=ray``): one Ray task per child on an existing Ray
  cluster (``ray.init(address=...)``), each asking for ``executor.num_cpus`` /
  ``num_gpus``; the evaluator is built once per Ray worker process.

A worker that dies in the middle of a child (killed, out of host memory) is retried once, then
the child is recorded as failed and the search goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import re
import signal
import socket
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from renas.build import build_evaluator, build_space
from renas.config import plain
from renas.errors import ConfigError
from renas.evaluate.base import InlineExecutor, Outcome, Task, safe_evaluate
from renas.tracking.files import atomic_write_bytes
from renas.train.quiet import quiet_lightning

log = logging.getLogger("renas.evaluate")

_WORKER: dict[str, Any] = {}


def evaluator_spec(cfg, run_dir: Path) -> dict[str, Any]:
    """What a worker needs to build the same evaluator: plain config containers."""
    keys = ("search_space", "evaluator", "dataset", "trainer", "optim")
    return {"cfg": {k: plain(cfg[k]) for k in keys if k in cfg}, "run_dir": str(run_dir)}


def _build(spec: dict[str, Any]):
    cfg = OmegaConf.create(spec["cfg"])
    return build_evaluator(cfg, build_space(cfg.search_space), Path(spec["run_dir"]))


def _exit_with_parent(sentinel: int) -> None:
    """Wait until the search's process is gone, then end this worker (a daemon thread's task)."""
    mp_wait([sentinel])
    os._exit(1)


def _init_worker(spec: dict[str, Any], threads: int, gpu: int | None) -> None:
    # a search killed outright (SIGKILL, the OOM killer) cannot close its pool, and a worker
    # would wait for its next task for ever (holding its memory, and the search's output pipes)
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), daemon=True, name="renas-parent").start()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    # deferred: torch after CUDA_VISIBLE_DEVICES is set for this worker
    import torch

    torch.set_num_threads(threads)

    quiet_lightning()
    _WORKER["spec"] = spec


def _worker_evaluate(task: Task) -> Outcome:
    if "evaluator" not in _WORKER:  # built on first use, so a bad spec fails one child, visibly
        _WORKER["evaluator"] = _build(_WORKER["spec"])
    return safe_evaluate(_WORKER["evaluator"], task)


class LocalExecutor:
    """K worker processes on this machine (spawned, so CUDA and threads start clean).

    Each worker is a one-process pool of its own, so that when a worker dies exactly its
    child is known: it is retried once on a fresh worker, then recorded as failed.
    """

    def __init__(self, spec: dict[str, Any], workers: int, threads: int, gpus: list[int] | None = None) -> None:
        self.capacity = workers
        self.spec, self.threads, self.gpus = spec, threads, list(gpus or [])
        if mp.get_start_method(allow_none=True) not in (None, *mp.get_all_start_methods()):
            # a worker of another library's pool (joblib's loky: a Hydra joblib sweep) names its
            # own start method, which a spawned worker would try to set and cannot: spawn's own
            mp.set_start_method("spawn", force=True)
        self.ctx = mp.get_context("spawn")
        self.slots = [self._start(i) for i in range(workers)]
        self.running: dict[Future, tuple[Task, int]] = {}
        self.attempts: dict[int, int] = {}
        self._ready: list[tuple[Task, Outcome]] = []

    def _start(self, slot: int) -> ProcessPoolExecutor:
        gpu = self.gpus[slot % len(self.gpus)] if self.gpus else None  # round-robin
        return ProcessPoolExecutor(1, mp_context=self.ctx, initializer=_init_worker, initargs=(self.spec, self.threads, gpu))

    def submit(self, task: Task) -> None:
        busy = {slot for _, slot in self.running.values()}
        slot = next(i for i in range(self.capacity) if i not in busy)
        self.attempts[task.id] = self.attempts.get(task.id, 0) + 1
        self.running[self.slots[slot].submit(_worker_evaluate, task)] = (task, slot)

    def next_result(self) -> tuple[Task, Outcome]:
        while not self._ready:
            done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self.running[f][0].id):
                task, slot = self.running.pop(future)
                try:
                    self._ready.append((task, future.result()))
                except BrokenProcessPool:
                    self.slots[slot].shutdown(wait=False, cancel_futures=True)
                    self.slots[slot] = self._start(slot)
                    if self.attempts[task.id] >= 2:
                        self._ready.append((task, Outcome.failed("the worker process evaluating this child died twice")))
                    else:
                        log.warning("the worker evaluating task %d died; retrying it once", task.id)
                        self.submit(task)
        return self._ready.pop(0)

    def close(self) -> None:
        """Stop every worker now: a child still training is not waited for (a stopped search
        evaluates it again on resume), so SIGTERM ends the search within the scheduler's grace time."""
        for pool in self.slots:
            terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
            if terminate is not None:
                terminate()
                continue
            # before shutdown, which forgets them (Python < 3.14 has no public way to stop a worker)
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                if process.is_alive():
                    process.terminate()


def _ray_evaluate(spec: dict[str, Any], task: Task, parent_weights: bytes | None = None) -> Outcome:
    """A child on a Ray worker, on any node: the parent's weights come with the task (Ray
    resolves the object reference the driver passed) and the child's go back with the outcome;
    the worker never touches the driver's run folder."""
    # deferred: optional dependency (ray extra); tests put a fake in sys.modules
    import ray

    key = repr(sorted(spec["cfg"].items())) + spec["run_dir"]
    if spec.get("threads"):
        # deferred: torch, as the evaluator's own modules import it
        import torch

        torch.set_num_threads(int(spec["threads"]))
    if _WORKER.get("key") != key:  # once per Ray worker process
        evaluator = _build(spec)
        if hasattr(evaluator, "weights_travel"):
            evaluator.weights_travel = True
        _WORKER.update(key=key, evaluator=evaluator)
    if parent_weights is not None:
        task = dataclasses.replace(task, parent_weights=parent_weights)
    outcome = safe_evaluate(_WORKER["evaluator"], task)
    outcome.metrics["ray_node"] = ray.get_runtime_context().get_node_id()  # where it ran
    return outcome


class RayExecutor:
    """One Ray task per child on a Ray cluster; Ray retries a task whose worker died once.

    Weight inheritance across machines: the driver keeps every child's weights in its run
    folder (``weights_dir``); a child's task carries its parent's weights through Ray's object
    store, and the trained child's weights come back with its outcome. No node needs the
    driver's disk.
    """

    def __init__(self, spec: dict[str, Any], workers: int, address: str | None, num_cpus: float, num_gpus: float,
                 log_to_driver: bool = False, runtime_env: dict[str, Any] | None = None,
                 weights_dir: Path | None = None) -> None:
        try:
            # deferred: optional dependency (ray extra)
            import ray
        except ImportError:
            raise ConfigError('executor=ray needs Ray: pip install -e ".[ray]"') from None
        self.ray = ray
        started_here = False  # joined a running Ray: a node may join later
        self.owns_ray = False  # this search called ray.init: close() shuts it down
        self.refs: dict[Any, Task] = {}
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": log_to_driver}
            if address:
                kwargs["address"] = address
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            given = f"executor.address={address}" if address else f"RAY_ADDRESS={os.environ.get('RAY_ADDRESS')}"
            why = unreachable(address or os.environ.get("RAY_ADDRESS"))  # ray.init reads RAY_ADDRESS without one
            if why is not None:  # Ray itself retries for minutes before it gives up
                raise ConfigError(f"executor=ray: {given}: {why}; start the head with "
                                  f"`ray start --head` (it prints the address to give), or give executor.address=auto "
                                  f"on a node of the cluster")
            sigterm = signal.getsignal(signal.SIGTERM)
            started_here = not address and _no_running_ray(ray)  # before init, which may join a cluster started here
            try:
                ray.init(**kwargs)
            except SystemExit as e:
                # SIGTERM while Ray starts: its driver's handler, installed early in init, exits with the
                # signal's number (status 15, nothing said, Ray's agents left running): stop as everywhere else
                _shutdown_quietly(ray)
                if e.code == signal.SIGTERM and callable(sigterm):
                    signal.signal(signal.SIGTERM, sigterm)
                    sigterm(signal.SIGTERM, None)
                raise
            except KeyboardInterrupt:  # Ctrl-C while Ray starts
                _shutdown_quietly(ray)
                raise
            except Exception as e:  # no cluster at the address, a bad runtime_env, ...: one line, before any file
                where = f" at {given}" if address or os.environ.get("RAY_ADDRESS") else ""
                detail = " ".join(str(e).split())[:300]
                raise ConfigError(f"executor=ray: Ray could not start or connect{where}: {type(e).__name__}: {detail}") from None
            finally:
                if sigterm is not None and signal.getsignal(signal.SIGTERM) is not sigterm:
                    # Ray's driver installs its own, which aborts: SIGTERM (a scheduler's time limit) must
                    # stop the search as everywhere else, with its summary and the resume command
                    signal.signal(signal.SIGTERM, sigterm)
            self.owns_ray = True
        try:
            self._check_resources(num_cpus, num_gpus, started_here)
        except ConfigError:
            self.close()
            raise
        self.capacity = workers
        self.remote = ray.remote(_ray_evaluate).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=1,
                                                        retry_exceptions=False)
        # the child's torch threads: its CPUs (Ray's own OMP_NUM_THREADS is its hint, set only where Ray
        # starts the worker): so a child gets the fitness it gets in-process with threads=<that count>
        self.spec_ref = ray.put({**spec, "threads": max(1, int(num_cpus))})
        self.weights_dir = Path(weights_dir) if weights_dir is not None else None

    def _check_resources(self, num_cpus: float, num_gpus: float, started_here: bool) -> None:
        """A child's task needs ``num_cpus`` and ``num_gpus`` on one node; where no node has them
        it would wait, silently, for ever: refused on a cluster this search started, a warning on
        one it joined (a node may join later)."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if fits(nodes, num_cpus, num_gpus):
            return
        have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes) or "none alive"
        what = f"executor.num_cpus={num_cpus:g} executor.num_gpus={num_gpus:g}: no node of the Ray cluster has that many (nodes: {have})"
        if started_here:
            raise ConfigError(f"{what}; lower them, or join a cluster that has them with executor.address=...")
        log.warning("%s; every child waits until such a node joins", what)

    def _weights_file(self, arch: str) -> Path:
        # deferred: lightning_eval imports torch; this module stays torch-free (see make_executor)
        from renas.evaluate.lightning_eval import weights_name

        return self.weights_dir / weights_name(arch)

    def submit(self, task: Task) -> None:
        weights = None
        if self.weights_dir is not None and task.parent_arch:
            parent = self._weights_file(task.parent_arch)
            if parent.is_file():
                weights = self.ray.put(parent.read_bytes())
        self.refs[self.remote.remote(self.spec_ref, task, weights)] = task

    def next_result(self) -> tuple[Task, Outcome]:
        (ref,), _ = self.ray.wait(list(self.refs), num_returns=1)
        task = self.refs.pop(ref)
        try:
            outcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:  # the worker died twice, or Ray lost the task
            return task, Outcome.failed(f"{type(e).__name__}: the Ray worker evaluating this child failed")
        if outcome.weights is not None:
            if self.weights_dir is not None:
                self.weights_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(self._weights_file(task.arch), outcome.weights)
            outcome.weights = None
        return task, outcome

    def close(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        if self.owns_ray:  # the next search in this process (a sweep's next job) starts Ray with its own settings
            self.owns_ray = False
            _shutdown_quietly(self.ray)


def _shutdown_quietly(ray) -> None:
    """Stop what a failed or interrupted ``ray.init`` started (its raylet and agents outlived the
    search by minutes)."""
    try:
        ray.shutdown()
    except BaseException:  # noqa: BLE001 - already on the way out; the first error is the one to report
        pass


def _no_running_ray(ray) -> bool:
    """Whether ``ray.init()`` without an address starts a Ray instance of its own: no
    ``RAY_ADDRESS`` and no cluster started on this machine with ``ray start`` (Ray's own lookup,
    a private function; where it is missing the answer is no, so a shortage is only a warning)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address  # deferred: optional dependency
    except ImportError:
        return False
    try:
        return canonicalize_bootstrap_address(None) is None
    except Exception:  # an unreadable address file, a bad RAY_ADDRESS: ray.init reports it
        return False


#: open files a local worker holds in the search's process (its pool's pipes and queues), and those
#: the search itself needs: 160 workers ran and 200 did not under a limit of 1,024; 2 workers ran
#: under 40 and not under 30
FILES_PER_WORKER, FILES_OF_THE_SEARCH = 6, 24


def open_files_limit(workers: int, raise_soft: bool = False) -> None:
    """Refuse ``workers`` local workers when this process may not open the files they need (the
    pools would start until ``Too many open files``); with ``raise_soft``, lift the soft limit
    (``ulimit -n``) up to the hard one where that is enough, as Ray does for its own."""
    try:
        import resource  # deferred: POSIX only
    except ImportError:
        return
    need = workers * FILES_PER_WORKER + FILES_OF_THE_SEARCH
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if soft == infinite:
        return
    if hard != infinite and need > hard:
        raise ConfigError(f"executor.workers={workers} needs about {need} open files and this process may open "
                          f"{hard} (ulimit -Hn); use fewer workers, or raise the limit")
    if raise_soft and (hard == infinite or soft < hard):
        # the estimate is a floor (what a worker opens depends on its data and libraries): lift the soft
        # limit to the hard one, as Ray does, not just to the estimate
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != infinite else max(soft, 4 * need, 65536), hard))
        except (ValueError, OSError):  # (an infinite hard limit above the kernel's nr_open)
            if need > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def open_files_now() -> str:
    """This process's open-file limits, ``soft (hard)`` (``?`` where the system has none)."""
    try:
        import resource  # deferred: POSIX only
    except ImportError:
        return "?"
    return "%s (hard %s)" % resource.getrlimit(resource.RLIMIT_NOFILE)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one (``taskset``,
    a SLURM job's cgroup or cpuset), not every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def unreachable(address: str | None, timeout: float = 5.0) -> str | None:
    """Why nothing answers at an explicit ``host:port`` (or ``ray://host:port``) Ray address, or
    ``None`` (it answers, or the address is ``auto``/``local``/another form Ray reads itself)."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address or "")
    if m is None:
        return None
    host, port = m.group(1), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"nothing answers at {host}:{port} ({e.strerror or type(e).__name__})"


def fits(nodes: list[dict[str, float]], num_cpus: float, num_gpus: float) -> bool:
    """Whether one of the nodes (their Ray ``Resources``) can hold a task asking for ``num_cpus``
    and ``num_gpus``."""
    return any(r.get("CPU", 0) >= num_cpus and r.get("GPU", 0) >= num_gpus for r in nodes)


def executor_settings(ex) -> dict[str, Any]:
    """The ``executor`` config as the executors take it (each value checked by its schema rule,
    :mod:`renas.schema`): ``threads`` per local worker (``threads_per_worker``, default cores /
    workers) and Ray's ``runtime_env`` (a mapping). Called before the run folder gets any file,
    and again to build the executor."""
    workers, kind = int(ex.workers), str(ex.name)
    settings: dict[str, Any] = {"workers": workers, "kind": kind}
    if kind == "local":
        per_worker = ex.get("threads_per_worker")
        settings["threads"] = max(1, usable_cores() // workers) if per_worker is None else int(per_worker)
        if workers > 1:
            open_files_limit(workers)
    else:
        settings.update(address=ex.get("address"), num_cpus=float(ex.num_cpus), num_gpus=float(ex.num_gpus),
                        log_to_driver=bool(ex.log_to_driver), runtime_env=_runtime_env(ex.get("runtime_env")))
        for key in ("num_cpus", "num_gpus"):
            value = settings[key]
            if 0 < value < 0.0001:  # Ray's own ValueError came as a traceback, after the run folder
                raise ConfigError(f"executor.{key}={value:g}: Ray's smallest amount of a resource is 0.0001; give "
                                  f"0 or at least 0.0001")
    return settings


def _runtime_env(value: Any) -> dict[str, Any] | None:
    """``executor.runtime_env``: Ray's runtime environment for the workers (e.g.
    ``{working_dir: .}`` ships the project folder, with hook modules, to other machines)."""
    if value is None:
        return None
    if isinstance(value, DictConfig):
        value = plain(value)
    if not isinstance(value, dict):
        raise ConfigError(f"executor.runtime_env must be a mapping (e.g. {{working_dir: .}}), got {value!r}")
    return value


def make_executor(cfg, evaluator, run_dir: Path, threads: int | None = None):
    """The executor ``cfg.executor`` asks for."""
    settings = executor_settings(cfg.executor)
    workers, kind = settings["workers"], settings["kind"]
    if kind == "local" and workers == 1:
        if cfg.executor.get("threads_per_worker") is not None:
            log.warning("executor.threads_per_worker=%s is for worker processes (executor.workers > 1); with one "
                        "worker the children train in this process with threads=%s", cfg.executor.threads_per_worker,
                        "null (the default)" if cfg.get("threads") is None else cfg.get("threads"))
        return InlineExecutor(evaluator)
    spec = evaluator_spec(cfg, run_dir)
    if kind == "local":
        # deferred: worker processes import this module before _init_worker sets CUDA_VISIBLE_DEVICES
        import torch

        gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        cores, threads = usable_cores(), settings["threads"]
        if workers * threads > cores:
            log.warning("executor.workers=%d with %d torch thread%s each: %d threads on %d usable core%s, so the "
                        "workers wait for each other and each child trains slower", workers, threads,
                        "" if threads == 1 else "s", workers * threads, cores, "" if cores == 1 else "s")
        open_files_limit(workers, raise_soft=True)
        return LocalExecutor(spec, workers, threads, gpus)
    return RayExecutor(spec, workers, address=settings["address"], num_cpus=settings["num_cpus"],
                       num_gpus=settings["num_gpus"], log_to_driver=settings["log_to_driver"],
                       runtime_env=settings["runtime_env"], weights_dir=getattr(evaluator, "weights_dir", None)
                       if getattr(evaluator, "inherit_weights", False) else None)
