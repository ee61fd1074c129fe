"""Test helpers: run the entry points, compose configs, read an offline W&B run."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import runpy
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_cli(script: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python <script> <args>`` in the repository root; returns the finished process."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, *([script] if script.endswith(".py") else ["-m", script]), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=full_env)


def _copy(script: str, args: list[str], fault: str = "none", n: int = 0) -> tuple[int, Any, Path, Any]:
    """``python <script> <args>`` in a forked copy of this process: a process of its own (real
    signals, a real SIGKILL mid-write, its own exit status), without the ~6 s a new interpreter
    spends importing torch (and ``torch._dynamo``, which ``torch.optim`` and torchvision's ops pull in), Lightning and
    Hydra: they are imported here once and every copy starts with them. The copy keeps only the
    forking thread, uses one torch thread (a forked OpenMP pool is not safe to reuse), has
    SIGINT and SIGTERM as a new interpreter has them, and never returns into pytest.

    Returns ``(pid, stdout pipe to read, stderr file, temporary folder)``."""
    import signal
    import tempfile

    import fault_driver
    import lightning.pytorch  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401

    import renas.main  # noqa: F401
    import renas.search.run  # noqa: F401
    import renas.train.final  # noqa: F401

    tmp = tempfile.TemporaryDirectory()
    err_path = Path(tmp.name) / "stderr"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            sys.stdout = open(1, "w", buffering=1, closefd=False)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            torch.set_num_threads(1)
            os.environ.pop("WANDB_SERVICE", None)  # this process's W&B service, if it started one, is not the copy's
            fault_driver.install(fault, n)
            try:
                fault_driver.run([script, *args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except KeyboardInterrupt:
                code = 130
        except BaseException:  # noqa: BLE001 (on the copy's stderr, as a crashing command would show it)
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    return pid, os.fdopen(read_end, "r"), err_path, tmp


def _finish(pid: int, out, err_path: Path, tmp, timeout: float, name: list[str]) -> subprocess.CompletedProcess:
    """Read the copy's output to the end, wait for it (a watchdog kills it after ``timeout``)."""
    import signal
    import threading

    watchdog = threading.Timer(timeout, lambda: os.kill(pid, signal.SIGKILL))
    watchdog.start()
    try:
        stdout = out.read()
        _, status = os.waitpid(pid, 0)
    finally:
        watchdog.cancel()
        out.close()
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    stderr = err_path.read_text()
    tmp.cleanup()
    return subprocess.CompletedProcess(name, code, stdout, stderr)


def signal_at(script: str, args: list[str], sig: int, *, line: str | None = None, path: Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python <script> <args>`` (a forked copy of this process, see :func:`_copy`), send
    ``sig`` at an event (the first stdout line holding ``line``, or ``path`` existing) and return
    the finished process. SIGINT arrives as from a terminal (Python's ``KeyboardInterrupt``). A
    watchdog kills a process that never gets to the event after ``timeout`` seconds: the test
    fails, the suite goes on."""
    import signal
    import threading

    pid, out, err_path, tmp = _copy(script, args)
    watchdog = threading.Timer(timeout, lambda: os.kill(pid, signal.SIGKILL))
    watchdog.start()
    seen = []
    try:
        if line is not None:
            for out_line in out:  # logging flushes each line
                seen.append(out_line)
                if line in out_line:
                    break
        else:
            while not Path(path).exists() and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                threading.Event().wait(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    finally:
        watchdog.cancel()
    proc = _finish(pid, out, err_path, tmp, timeout, [script, *args])
    proc.stdout = "".join(seen) + proc.stdout
    return proc


def drive(fault: str, n: int, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python search.py <args>`` (or ``train.py`` when ``args[0]`` is ``train.py``) killed
    (SIGKILL) at the n-th ``fault`` point of tests/fault_driver.py, in a forked copy of this
    process (:func:`_copy`)."""
    script = args[0] if args and args[0].endswith(".py") else "search.py"
    args = args[1:] if args and args[0].endswith(".py") else args
    pid, out, err_path, tmp = _copy(script, list(args), fault, n)
    return _finish(pid, out, err_path, tmp, timeout, [fault, str(n), script, *args])


def run_entry(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python <script> <args>`` (or ``python -m <module> <args>``) in this process: the same ``__main__`` code, Hydra
    composition, error reporting and exit status as :func:`run_cli`, without starting a Python
    that imports torch and Hydra again (about 4 s a call). What the entry point changes in the
    process (Hydra's global state, logging handlers, torch threads) is put back afterwards; keep
    real commands (:func:`run_cli`) for what must be a process of its own: kills, signals, W&B.

    Returns a ``CompletedProcess`` (``returncode`` from ``SystemExit``, captured stdout/stderr).
    """
    from hydra.core.global_hydra import GlobalHydra

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    out, err = io.StringIO(), io.StringIO()
    argv, code = sys.argv, 0
    sys.argv = [str(REPO / script) if script.endswith(".py") else script, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if script.endswith(".py"):
                    runpy.run_path(str(REPO / script), run_name="__main__")
                else:
                    with warnings.catch_warnings():  # "found in sys.modules": imported by an earlier test, harmless here
                        warnings.filterwarnings("ignore", ".*found in sys.modules.*", RuntimeWarning)
                        runpy.run_module(script, run_name="__main__", alter_sys=True)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
        for handler in root.handlers[:]:  # Hydra's job logging: back to what the test had
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        if threads is not None:
            torch.set_num_threads(threads)
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


def compose(config_name: str, overrides: list[str]):
    """The composed config (the real tree), as the entry point would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    """A CSV file with ``header`` and ``rows`` (results tables made by the tests)."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def without_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History records with wall times and the Ray node removed (what must be identical across runs)."""
    out = []
    for r in records:
        r = dict(r)
        r.pop("seconds", None)
        r["metrics"] = {k: v for k, v in r.get("metrics", {}).items() if k not in ("train_seconds", "ray_node")}
        out.append(r)
    return out


def read_wandb_records(path: Path) -> list[Any]:
    """Parse a W&B ``.wandb`` file (LevelDB-log framing: 7-byte file header, 32 KiB blocks,
    7-byte chunk headers ``<crc u32, len u16, type u8>``) into protobuf ``Record`` objects; the
    records whole so far (a file still being written ends at its last whole chunk)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    block = 32768
    pos, records, buf = 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # a chunk W&B is still writing (read while the run ends): not yet a record
            break
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # full
            payloads = [chunk]
        elif kind == 2:  # first
            buf, payloads = chunk, []
        elif kind == 3:  # middle
            buf, payloads = buf + chunk, []
        elif kind == 4:  # last
            payloads, buf = [buf + chunk], b""
        else:
            break
        for p in payloads:
            rec = pb.Record()
            rec.ParseFromString(p)
            records.append(rec)
    return records


def wandb_run(run_dir: Path) -> dict[str, Any]:
    """History rows, config, summary, group and run id of the single offline W&B run in ``run_dir``."""
    files = sorted(Path(run_dir).glob("wandb/offline-run-*/*.wandb"))
    assert len(files) == 1, f"expected one offline W&B run in {run_dir}, found {files}"
    # run.finish() in this process can return before W&B's service has written the file out
    # (its last record is the run's exit): wait for it a little
    deadline = time.monotonic() + 30
    while (not any(r.WhichOneof("record_type") == "exit" for r in read_wandb_records(files[0]))
           and time.monotonic() < deadline):
        time.sleep(0.1)
    out: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "group": None, "id": None, "name": None, "metrics": {},
                           "artifacts": []}

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    for rec in read_wandb_records(files[0]):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "run":
            out["group"] = rec.run.run_group
            out["id"] = rec.run.run_id
            out["name"] = rec.run.display_name
            for i in rec.run.config.update:
                out["config"][key(i)] = json.loads(i.value_json)
        elif kind == "config":
            for i in rec.config.update:
                out["config"][key(i)] = json.loads(i.value_json)
        elif kind == "metric":  # define_metric: name (or glob) -> its step metric
            out["metrics"][rec.metric.name or rec.metric.glob_name] = rec.metric.step_metric
        elif kind == "artifact":
            out["artifacts"].append({"name": rec.artifact.name, "type": rec.artifact.type,
                                     "files": [e.path for e in rec.artifact.manifest.contents],
                                     "metadata": json.loads(rec.artifact.metadata or "{}")})
    return out


def constant_key(arch: dict[str, Any]) -> str:
    """A ``search_space.canonical`` hook that keys every architecture alike (tests: a search
    that runs out of new architectures at once)."""
    return "one"
