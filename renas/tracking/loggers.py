"""Where a run's metrics go: W&B (offline by default), a CSV file, or nowhere.

One sink per run (a search or a final training). ``search.py`` logs one row per generation
through :meth:`Sink.log`; ``train.py`` hands :meth:`Sink.lightning` to the Lightning Trainer.
Children's proxy training never gets a sink, so it creates no W&B runs of its own.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from renas.errors import RenasError, one_line


log = logging.getLogger("renas.tracking")


def generation_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """What a sink logs of a generation's row: its values that are set (a generation without
    controller updates has no ``controller/*``)."""
    return {k: v for k, v in row.items() if v is not None}


class Sink:
    """No-op base (``logger=none``)."""

    run_id: str | None = None
    #: tables and artifacts are kept (W&B); the others skip the work of making them
    keeps_tables = False

    def start(
        self,
        run_dir: Path,
        config: dict[str, Any],
        name: str | None = None,
        job_type: str = "search",
        group: str | None = None,
        resume_id: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def log_generation(self, row: dict[str, Any]) -> None:
        """One generation's row (a ``generations.jsonl`` line), its unset values left out."""
        self.log(generation_metrics(row), step=row["generation"])

    def log_evaluation(self, record: dict[str, Any], best_so_far: float | None) -> None:
        """One evaluation (a history record) as it finishes; the sinks that chart per
        evaluation (W&B) log it, the others keep to the per-generation rows."""

    def replay(self, records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        """A resumed search's past, once after :meth:`start`: every history record so far and
        every generation row logged before (the run folder's, which a kill never loses). A
        sink whose own file may have lost the end of it (a CSV written per row, an offline W&B
        run whose last records were still buffered) writes it again from them."""

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        pass

    def artifact(self, name: str, kind: str, files: list[Path], metadata: dict[str, Any]) -> None:
        """Files kept with the run (W&B: a versioned artifact), e.g. a search's results."""

    def use_artifact(self, name: str) -> None:
        """This run was made from artifact ``name`` (W&B: its lineage, e.g. the search whose
        best architecture train.py trains)."""

    def lightning(self, resumed_step: int | None = None):
        """A Lightning logger writing to this sink, or ``False`` for none; ``resumed_step``: the
        global step a resumed training continues from (the rows logged before it are kept)."""
        return False

    def finish(self, exit_code: int = 0) -> None:
        pass


NullSink = Sink


class CSVSink(Sink):
    """Metrics to ``metrics.csv`` in the run folder (Lightning's CSVLogger for training)."""

    def start(self, run_dir, config, name=None, job_type="search", group=None, resume_id=None) -> None:
        super().start(run_dir, config)
        self._rows: list[dict[str, Any]] = []

    def replay(self, records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        self._rows = [{"step": row["generation"], **generation_metrics(row)} for row in rows]
        if self._rows:
            self._write()

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._rows.append({"step": step, **metrics})
        self._write()

    def _write(self) -> None:
        keys: list[str] = []
        for row in self._rows:
            keys += [k for k in row if k not in keys]
        tmp = self.run_dir / "metrics.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self._rows)
        os.replace(tmp, self.run_dir / "metrics.csv")

    def lightning(self, resumed_step: int | None = None):
        # deferred: Lightning (~4 s) only when a trainer asks for the logger
        from lightning.pytorch.loggers import CSVLogger

        path = self.run_dir / "metrics.csv"
        earlier, keys, kept = self._earlier_rows(path, resumed_step)
        logger = CSVLogger(save_dir=str(self.run_dir), name="", version="")
        with warnings.catch_warnings():  # the run folder is never empty (Hydra's files): "will be deleted" misleads
            warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
            writer = logger.experiment  # made now (it would remove a metrics.csv: the earlier one is aside)
        if earlier:
            tmp = path.with_name("metrics.csv.tmp")
            with open(tmp, "w", newline="") as f:  # the steps before the resume, back: its saves add to them
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(earlier)
            os.replace(tmp, path)
            writer.metrics_keys = keys  # the file's header: a new key rewrites the file with both, rows kept
        if kept is not None and earlier:
            kept.unlink()  # written back (an unreadable one stays beside the new file, named in the warning)
        return logger

    def _earlier_rows(self, path: Path, resumed_step: int | None) -> tuple[list[dict[str, str]], list[str], Path | None]:
        """A resumed training's ``metrics.csv`` rows before ``resumed_step``, their columns (sorted,
        as Lightning's writer keeps them), and where the file was put aside (Lightning's writer
        deletes the file it finds; aside, a kill before it is written back loses nothing). Rows
        that do not read (a torn last line, an extra field) are left out; a file that does not
        read at all stays aside, with a warning."""
        if resumed_step is None or not path.is_file():
            return [], [], None
        aside = path.with_name("metrics.before-resume.csv")
        os.replace(path, aside)
        try:
            with open(aside, newline="", encoding="utf-8", errors="replace") as f:
                rows = [row for row in csv.DictReader(f) if None not in row and _step(row) is not None]
        except (csv.Error, OSError) as e:
            log.warning("%s could not be read (%s): kept as %s; metrics.csv starts again at step %d", path,
                        one_line(e), aside.name, resumed_step)
            return [], [], aside
        earlier = [row for row in rows if _step(row) < resumed_step]
        if not earlier:  # nothing to keep
            aside.unlink()
            return [], [], None
        return earlier, sorted({k for row in earlier for k in row}), aside


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return None


def wandb_mode(mode: str | None) -> str:
    """The mode a W&B run starts in: ``logger.mode`` wins; else an exported ``WANDB_MODE`` (W&B's
    own setting; its old names too); else offline."""
    env = {"dryrun": "offline", "run": "online"}.get(os.environ.get("WANDB_MODE", ""), os.environ.get("WANDB_MODE"))
    return str(mode) if mode else (env if env in ("offline", "online", "disabled") else "offline")


def online_without_login(logger_cfg: Any) -> str | None:
    """For a sweep, before its first job: a W&B logger that will run online with no API key set
    (every job would fail at its start, one after another). The line that says so, else
    ``None``. ``wandb.login(prompt=False, verify=False)`` looks for a key without the network."""
    if logger_cfg is None or not str(logger_cfg.get("_target_", "")).endswith("WandbSink"):
        return None
    if wandb_mode(logger_cfg.get("mode")) != "online":
        return None
    import wandb  # deferred: only a sweep that logs online to W&B needs it here (~0.7 s)

    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        if wandb.login(prompt=False, verify=False):
            return None
    except Exception:  # W&B could not tell: each job finds out, as a single run does
        return None
    return ("logger: W&B online needs an API key and none is set: run `wandb login` or export WANDB_API_KEY, "
            "or log offline (logger.mode=offline) and `wandb sync` later")


class WandbSink(Sink):
    """One W&B run. ``mode``: ``offline`` (default: files in ``<run>/wandb`` that
    ``wandb sync`` uploads later), ``online`` (needs an API key) or ``disabled``.

    Args:
        project, entity, tags, name: as in ``wandb.init``.
        group: W&B group; ``None`` puts the jobs of a Hydra multirun in one group named
            after the sweep, and single runs in no group.
        mode: ``offline``, ``online`` or ``disabled``; ``None``: ``$WANDB_MODE`` if it is set
            (W&B's own setting), else ``offline``.
        console: W&B's console capture (``off``, ``wrap``, ``redirect``, ``auto``).
        system_metrics: record CPU / GPU / memory use in the run.
        artifacts: keep a search's results (summary, history) and a trained model as W&B artifacts.
    """

    keeps_tables = True

    def __init__(
        self,
        project: str = "renas",
        entity: str | None = None,
        mode: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        console: str = "off",
        system_metrics: bool = False,
        artifacts: bool = True,
    ) -> None:
        self.project = project
        self.entity = entity
        self.mode = None if mode is None else str(mode)  # plain strings for W&B (the config gives Choice members)
        self.console = str(console)
        self.system_metrics = bool(system_metrics)
        self.artifacts = bool(artifacts)
        self.group = group
        self.tags = list(tags or [])
        self.name = name
        self.run = None
        self._superseded: list[Path] = []  # a resumed offline run's earlier files (replay)
        self._went_on = False

    def start(self, run_dir, config, name=None, job_type="search", group=None, resume_id=None) -> None:
        super().start(run_dir, config)
        # deferred: only the W&B sink needs wandb (~0.7 s)
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        # Always passed explicitly: a resumed offline run must not be checked against a live one.
        mode = wandb_mode(self.mode)
        try:
            self._init(wandb, mode, config, name, job_type, group, resume_id)
        except Exception as e:  # no API key, no network (after W&B's init_timeout), a bad entity
            if self.run is not None:
                with contextlib.suppress(Exception):
                    self.run.finish(exit_code=1)
                self.run = None
            login = "check the network (an API key is set)" if os.environ.get("WANDB_API_KEY") else \
                "run `wandb login` or export WANDB_API_KEY"
            hint = (f"{login}, or log offline (logger.mode=offline) and `wandb sync` later") if mode == "online" \
                else "or logger=none / logger=csv"
            raise RenasError(f"logger: W&B could not start its {mode} run ({one_line(e)}); {hint}") from None
        # a disabled run has an id of nothing: no artifact or run for train.py arch_from= to name
        self.run_id = None if mode == "disabled" else self.run.id
        if job_type == "train":  # as Lightning does for a run it makes itself: its metrics against the step
            self.run.define_metric("trainer/global_step")
            self.run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        if job_type in ("search", "benchmark"):  # (a benchmark's search logs the per-generation rows)
            # two kinds of rows, each with its own x-axis: per generation (fitness/*, controller/*)
            # and per evaluation (eval/*: every child as it finishes, x = the evaluation count);
            # W&B's own step just counts rows
            self.run.define_metric("generation")
            for prefix in ("fitness/*", "controller/*", "evaluations", "duplicates"):
                self.run.define_metric(prefix, step_metric="generation")
            self.run.define_metric("fitness/best_so_far", step_metric="generation", summary="max")
            self.run.define_metric("evaluation")
            self.run.define_metric("eval/*", step_metric="evaluation")
            self.run.define_metric("eval/best_so_far", step_metric="evaluation", summary="max")

    def _init(self, wandb: Any, mode: str, config, name, job_type, group, resume_id) -> None:
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=mode,
            dir=str(self.run_dir),
            config=config,
            name=self.name or name,
            group=self.group or group,
            job_type=job_type,
            tags=self.tags,
            id=resume_id,
            resume="allow" if resume_id else None,
            reinit="create_new",
            settings=wandb.Settings(console=self.console, x_disable_stats=not self.system_metrics, quiet=True),
        )

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self.run.log(metrics)  # the row carries its own x (generation)

    def replay(self, records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        """An offline run resumed is a new file (``offline-run-<time>-<id>``) beside the earlier
        ones, whose last records may never have reached the disk (a kill: W&B buffers them);
        this one gets the whole past, so it alone is the run, and the earlier files move to
        ``wandb/superseded/`` (kept, out of ``wandb sync <run>/wandb/offline-run-*``) when it
        finishes, having gone on from them. An online run keeps what W&B received."""
        if self.run is None or not self.run.offline or self.run_id is None:
            return
        for row in rows:
            self.log_generation(row)
        best = None
        for record in records:
            if record.get("status") == "ok" and record.get("fitness") is not None:
                best = record["fitness"] if best is None else max(best, record["fitness"])
            self.log_evaluation(record, best)
        current = Path(self.run.dir).parent.name  # <run>/wandb/offline-run-<time>-<id>/files
        self._superseded = [p for p in (self.run_dir / "wandb").glob(f"offline-run-*-{self.run_id}") if p.name != current]
        self._went_on = False
        log.info("W&B: the resumed offline run holds the search's %d evaluations and %d generations so far%s",
                 len(records), len(rows), "; the earlier file(s) go to wandb/superseded once it goes on" if self._superseded else "")

    def _retire_superseded(self) -> None:
        """The earlier files of a resumed offline run, once the resume went on from them (a resume
        refused on the way, e.g. a journal that does not belong, leaves them where they were)."""
        for folder in self._superseded:
            with contextlib.suppress(OSError):
                (self.run_dir / "wandb" / "superseded").mkdir(exist_ok=True)
                shutil.move(str(folder), str(self.run_dir / "wandb" / "superseded" / folder.name))
        self._superseded = []

    def log_evaluation(self, record: dict[str, Any], best_so_far: float | None) -> None:
        self._went_on = True
        row: dict[str, Any] = {"evaluation": int(record["step"]) + 1, "eval/ok": int(record["status"] == "ok")}
        for key, value in (("fitness", record.get("fitness")), ("reward", record.get("reward")),
                           ("seconds", record.get("seconds")), ("best_so_far", best_so_far)):
            if value is not None:
                row[f"eval/{key}"] = value
        self.run.log(row)

    def summary(self, values: dict[str, Any]) -> None:
        for k, v in values.items():
            self.run.summary[k] = v

    def table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        # deferred: only the W&B sink needs wandb
        import wandb

        self.run.log({key: wandb.Table(columns=columns, data=rows)})

    def artifact(self, name: str, kind: str, files: list[Path], metadata: dict[str, Any]) -> None:
        if not self.artifacts or self.run is None:
            return
        # deferred: only the W&B sink needs wandb
        import wandb

        art = wandb.Artifact(name, type=kind, metadata=metadata)
        for f in files:
            if Path(f).is_file():
                art.add_file(str(f))
        self.run.log_artifact(art)

    def use_artifact(self, name: str) -> None:
        self.run.config.update({"search_artifact": name}, allow_val_change=True)
        if self.artifacts and not self.run.offline:  # an offline run cannot fetch it; the name is recorded
            try:
                self.run.use_artifact(f"{name}:latest")
            except Exception as e:  # e.g. the search ran offline and was never synced
                log.warning("could not link W&B artifact %s to this run (%s); its name is in the config", name, e)

    def lightning(self, resumed_step: int | None = None):
        # deferred: Lightning (~4 s) only when a trainer asks for the logger
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(experiment=self.run, save_dir=str(self.run_dir))

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
        if self._superseded and (exit_code == 0 or self._went_on):
            self._retire_superseded()
