"""train.py's work: train one architecture fully, evaluate validation and test accuracy."""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra import compose
from hydra.errors import HydraException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from renas.build import build, build_datamodule, build_space, run_name, sweep_group
from renas.config import check_schema, flatten, group_choices, load_saved, missing_folders_unwarned, moved_folders_hint, plain, saved_searchpath, searchpath_override
from renas.errors import ConfigError, GenotypeError, command, one_line
from renas.space import SPACES
from renas.tracking.files import atomic_write_json
from renas.tracking.loggers import Sink
from renas.tracking.run_folder import CHECKPOINTS, TRAIN_STATE, check_is_folder, run_folder_kind, saved_hydra_dir
from renas.tracking.versions import versions, warn_changed_versions
from renas.train.checks import check_optim, check_trainer
from renas.train.profile import count_flops, count_params, torch_threads, trains_on_cpu

log = logging.getLogger("renas.train")


def _search_artifact(cfg: DictConfig) -> str | None:
    """``search-<W&B run id>``: the W&B artifact of the search ``arch_from`` names, if it logged one."""
    if not cfg.get("arch_from"):
        return None
    try:
        run_id = json.loads((Path(str(cfg.arch_from)).expanduser() / "summary.json").read_text()).get("wandb_run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return f"search-{run_id}" if run_id else None


def _space_settings_hint(run: Path, cfg: DictConfig) -> str:
    """The ``search_space.*`` settings of the search in ``run`` that differ from this training's,
    as overrides to add (or, when they cannot be read, where they are)."""
    try:
        saved = saved_hydra_dir(run) / "config.yaml"
        then = flatten(plain(OmegaConf.load(saved).search_space))
        now = flatten(plain(cfg.search_space))
        keys = [k for k in sorted(then) if k in now and now[k] != then[k]]
    except Exception:  # (no readable config: name the file)
        keys = []
    # a scalar as an override; a list or mapping (a genes space's genes) is named, to copy from the file
    diff = [f"search_space.{k}={then[k] if isinstance(then[k], str) else json.dumps(then[k])}" for k in keys
            if not isinstance(then[k], (list, dict))]
    if diff and len(diff) == len(keys):
        return f"that search had {' '.join(diff)}: add {'it' if len(diff) == 1 else 'them'}"
    if keys:
        return (f"that search had other {', '.join(f'search_space.{k}' for k in keys)}: give train.py its settings "
                f"({saved} lists them{'; ' + ' '.join(diff) if diff else ''})")
    return "give train.py that search's search_space.* settings (its .hydra/config.yaml lists them)"


def resolve_arch(cfg: DictConfig, space) -> tuple[Any, str]:
    """The genotype to train and where it came from."""
    if cfg.get("arch_from") and cfg.get("arch") is not None:
        raise ConfigError(f"arch={cfg.arch} and arch_from={cfg.arch_from}: give one of them "
                          "(arch_from trains the best architecture of that search)")
    if cfg.get("arch_from"):
        run = Path(str(cfg.arch_from)).expanduser()
        summary = run / "summary.json"
        if not summary.is_file():
            if run_folder_kind(run) == "search":  # killed before it wrote its summary
                raise ConfigError(f"arch_from={run}: that search did not finish (no summary.json); continue it "
                                  f"with: {command('search')} resume={run}, then train its best")
            raise ConfigError(f"arch_from={run}: no summary.json there (is it a search run folder?)")
        try:
            data = json.loads(summary.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise ConfigError(f"arch_from={run}: its summary.json cannot be read (not JSON: cut short, or not a "
                              f"search's)") from None
        best = data.get("best") if isinstance(data, dict) else None
        if isinstance(data, dict) and best is None and "best" in data:
            if not data.get("evaluations"):
                raise ConfigError(f"arch_from={run}: that search stopped before its first child was evaluated "
                                  f"(stopped: {data.get('stopped')}); continue it with: {command('search')} resume={run}")
            raise ConfigError(f"arch_from={run}: that search has no result: every one of its "
                              f"{data.get('evaluations', '?')} children failed (their errors are in its history.jsonl)")
        if not (isinstance(best, dict) and isinstance(best.get("arch"), str)):
            raise ConfigError(f"arch_from={run}: its summary.json is not a search's (no best architecture)")
        arch = best["arch"]
        searched = data.get("search_space")
        if searched and searched != space.name:
            how = f"add search_space={searched}" if searched in SPACES and searched != "genes" else \
                ("give train.py that search's search_space=<option> and search_space.* settings on the command line "
                 "(its .hydra/config.yaml lists them; train.py takes no experiment=)")
            raise ConfigError(f"arch_from={run}: that search used the {searched} space, not {space.name}; {how}")
        try:
            genotype = space.parse(arch)
        except GenotypeError as e:  # the same space with other settings (shared_reduction, blocks, genes ...)
            raise ConfigError(f"arch_from={run}: its best architecture does not fit this {space.name} space ({e}); "
                              f"{_space_settings_hint(run, cfg)}") from None
        if data.get("finished") is False:
            short = data.get("stopped") in ("exhausted", "no new architecture")  # a resume would end the same way
            log.warning("arch_from=%s: that search did not finish (%s after %s of %s evaluations): training the best "
                        "it found%s", run, data.get("stopped") or "stopped", data.get("evaluations"), data.get("budget"),
                        "" if short else f" so far; continue it with: {command('search')} resume={run} for the whole search")
        return genotype, f"best of {run}"
    if cfg.get("arch") is not None:
        return space.parse(cfg.arch), "arch="
    return space.reference(), "reference architecture"


def other_dataset(cfg: DictConfig) -> str | None:
    """A new ``train.py arch_from=<search>`` on another data set than that search's (a cell
    found on ``cifar10_subset`` trained on ``cifar10`` can be meant, or a forgotten
    ``dataset=``): the line that says so, else ``None``. Both are the ``dataset`` group's
    options: the search's as its ``summary.json`` records it (none for a table search), this
    command's as Hydra composed it (unknown outside a Hydra app)."""
    training = group_choices().get("dataset")
    if not cfg.get("arch_from") or not training:
        return None
    try:
        searched = json.loads((Path(str(cfg.arch_from)).expanduser() / "summary.json").read_text()).get("dataset")
    except (OSError, ValueError, AttributeError):  # resolve_arch has read it already; nothing more to say here
        return None
    if not searched:
        return None
    if searched != training:
        return (f"arch_from={cfg.arch_from}: that search ran on dataset={searched}; this training uses "
                f"dataset={training} (add dataset={searched} to train on the search's data)")
    return other_test_split(cfg)


def other_test_split(cfg: DictConfig) -> str | None:
    """``train.py arch_from=<search>`` on the search's data set, one that holds its test split
    out of its images (``digits``, an image folder without ``train/`` and ``test/``), with
    another ``test_fraction`` than the search: the test images reported may be among those the
    search trained or validated on. The line that says so, else ``None`` (also where the
    search's ``.hydra/config.yaml`` cannot be read). ``split_seed`` moves the validation split
    only; a data set with a test split of its own has nothing to compare."""
    # deferred: renas.data imports Lightning, which train.py's checks run without (see train_architecture)
    from renas.data.base import HoldoutDataModule

    try:
        if not issubclass(get_class(str(cfg.dataset._target_)), HoldoutDataModule):
            return None
        root = cfg.dataset.get("root")
        if root and all((Path(str(root)).expanduser() / part).is_dir() for part in ("train", "test")):
            return None  # an image folder's own test/
        searched = OmegaConf.load(Path(str(cfg.arch_from)).expanduser() / ".hydra" / "config.yaml").dataset
        old, new = float(searched.test_fraction), float(cfg.dataset.test_fraction)
    except Exception:  # a search from elsewhere, a config that no longer composes: nothing to compare
        return None
    if old == new:
        return None
    return (f"arch_from={cfg.arch_from}: that search held out dataset.test_fraction={old:g} (this training: {new:g}), "
            f"so this training's test split is not the one it held out and may hold images it trained or validated "
            f"on (add dataset.test_fraction={old:g} to test on its held-out images)")


def _checkpoint_callbacks(run_dir: Path) -> list[Any]:
    # deferred: Lightning (~4 s) stays off train.py's bad-input checks
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    class SaveOnInterrupt(pl.Callback):
        """Ctrl-C or SIGTERM during ``fit``: save where training is, so resume loses nothing."""

        def on_exception(self, trainer, pl_module, exception) -> None:
            if isinstance(exception, KeyboardInterrupt):
                trainer.save_checkpoint(str(Path(run_dir) / CHECKPOINTS / "last.ckpt"), weights_only=False)  # all: resumable

    best = ModelCheckpoint(dirpath=str(Path(run_dir) / CHECKPOINTS), filename="best", monitor="val/acc", mode="max",
                           save_top_k=1, save_last=True, enable_version_counter=False)
    return [best, SaveOnInterrupt()]


def prepare_train_resume(folder: str | Path) -> tuple[DictConfig, Path, Path | None]:
    """``python train.py resume=<train run folder>``: the folder's own config, the folder, and
    the checkpoint to continue from (``None``: the training finished, ``result.json`` is there)."""
    run_dir = Path(str(folder)).expanduser().resolve()
    check_is_folder(run_dir, "resume", "training")
    if run_folder_kind(run_dir) == "search":
        raise ConfigError(f"resume={run_dir}: that is a search run folder, not a training; train its best "
                          f"architecture with: {command('train')} arch_from={run_dir}")
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        raise ConfigError(f"resume={run_dir}: not a train.py run folder (no .hydra/overrides.yaml)")
    old = [str(o) for o in load_saved(overrides, list) if not str(o).startswith(("hydra.", "resume="))]
    folders = saved_searchpath(run_dir / ".hydra")  # a user's own config folders (hydra.searchpath)
    old = [searchpath_override(folders), *old] if folders else old
    try:
        with missing_folders_unwarned():  # the error below names them
            cfg = compose(config_name="train", overrides=old)
    except (HydraException, OmegaConfBaseException) as e:  # not train.py's overrides, or an older version's
        mine = f"; {moved_folders_hint(folders)}" if folders else ""
        raise ConfigError(f"resume={run_dir}: its saved overrides do not compose with train.py's config "
                          f"({one_line(e)}){mine}; is it a train.py run folder?") from None
    if (run_dir / "result.json").is_file():
        return cfg, run_dir, None
    last = run_dir / CHECKPOINTS / "last.ckpt"
    if not last.is_file():
        raise ConfigError(f"resume={run_dir}: no {CHECKPOINTS}/last.ckpt (it stopped before its first epoch "
                          f"ended, or save_checkpoint=false): train it again")
    if not _whole_checkpoint(last):
        # Lightning writes checkpoints atomically, but a copied or truncated folder can hold a
        # torn file: continue from the best checkpoint (an earlier epoch) rather than fail
        best = run_dir / CHECKPOINTS / "best.ckpt"
        if not _whole_checkpoint(best):
            raise ConfigError(f"resume={run_dir}: {CHECKPOINTS}/last.ckpt is damaged (not a complete checkpoint) "
                              f"and there is no whole best.ckpt to fall back on: train it again")
        log.warning("%s is damaged (not a complete checkpoint); resuming from %s, an earlier epoch", last, best)
        return cfg, run_dir, best
    return cfg, run_dir, last


def _saved_run(state_file: Path) -> dict[str, Any]:
    """The W&B run a stopped training saved (``run_id``, and the ``group``, ``name`` and
    ``choices`` it started with), so its resume continues that run as it was: a sweep job's stays
    in its sweep's group; an unreadable file (torn by a kill) starts a new W&B run, with a warning."""
    if not state_file.is_file():
        return {}
    try:
        saved = json.loads(state_file.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a mapping")
        return saved
    except (OSError, ValueError) as e:
        log.warning("%s cannot be read (%s); the resumed training logs to a new W&B run", state_file, type(e).__name__)
        return {}


def check_resume_checkpoint(path: Path, module: Any) -> int | None:
    """A checkpoint to resume from must be a Lightning checkpoint of this network: one line, not
    Lightning's traceback, for a foreign file (another program's ``torch.save``, a training of
    another architecture copied in). Returns its global step (``None`` where it was not read)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickled objects weights_only refuses: Lightning reads it (and says what is wrong)
        log.debug("%s not checked before resuming: %s", path, e)
        return None
    missing = [k for k in ("state_dict", "epoch", "global_step", "pytorch-lightning_version", "loops")
               if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ConfigError(f"resume: {path} is not a checkpoint of a training (no {', '.join(missing)}): train it again")
    have = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items() if hasattr(v, "shape")}
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    if have != want:
        diff = sorted(set(have) ^ set(want)) or [k for k in want if have[k] != want[k]]
        raise ConfigError(f"resume: {path} holds another network's weights (first difference: {diff[0]}); "
                          f"it is not this training's checkpoint: train it again")
    return int(ckpt["global_step"])


def _whole_checkpoint(path: Path) -> bool:
    """A complete ``torch.save`` file: a zip archive whose every member reads back with its CRC."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def prepare_training(cfg: DictConfig) -> tuple[Any, Any, str]:
    """Everything ``train.py`` checks before it imports Lightning or writes a file: every setting,
    the space and the architecture. Returns ``(space, genotype, where the architecture came from)``."""
    check_schema(cfg)
    check_trainer(cfg.trainer)
    check_optim(cfg.optim)
    space = build_space(cfg.search_space)
    genotype, source = resolve_arch(cfg, space)
    return space, genotype, source


def train_architecture(cfg: DictConfig, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train ``cfg.arch`` (or the reference / ``arch_from``) and write ``result.json``;
    ``resume_from``: a checkpoint of this run folder to continue from (``train.py resume=``)."""
    space, genotype, source = prepare_training(cfg)
    if resume_from is None and (line := other_dataset(cfg)):  # (a resume's own command composes no dataset)
        log.warning(line)

    import lightning.pytorch as pl  # after the checks: bad input fails before this slow import

    # deferred: renas.train.module imports Lightning, as above
    from renas.train.module import build_module

    arch = space.format(genotype)
    dm = build_datamodule(cfg.dataset)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    net = space.build(genotype, dm.in_channels, dm.num_classes)
    params = count_params(net)
    flops = count_flops(net, dm.in_channels, dm.input_size)
    dataset_name = getattr(dm, "name", "dataset")
    log.info("training %s (%s): %s params, %.1fM FLOPs on %s", arch, source, f"{params:,}", flops / 1e6, dataset_name)
    meta = {"arch": arch, "search_space": space.name, "dataset": dataset_name,
            # what load_trained needs to build the same network again
            "space_config": plain(cfg.search_space),
            "in_channels": int(dm.in_channels), "num_classes": int(dm.num_classes)}
    module = build_module(net, dm.num_classes, cfg.optim, meta=meta)

    # deferred: Lightning, after the checks (as above)
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    # With several devices (trainer.devices=2, DDP) Lightning runs this function once per
    # process; process 0 alone opens the W&B run and writes the run folder's files.
    lead = rank_zero_only.rank == 0
    sink = build(cfg.logger, "logger") if lead else Sink()
    state_file = Path(run_dir) / TRAIN_STATE
    saved = _saved_run(state_file) if resume_from else {}
    # (the epochs to come train with the same count; the busy-machine warning once, on the CPU)
    threads = torch_threads(cfg.get("threads"), saved.get("threads"), trains_here=lead and trains_on_cpu(cfg.trainer))
    resumed_step = None
    if resume_from is not None:
        resumed_step = check_resume_checkpoint(resume_from, module)  # before a W&B run or a Trainer exists
    # a resume's own command composes none of these: the run's are saved with its id
    name = run_name("train", dataset_name, f"s{cfg.seed}")
    wandb_run = {"group": saved.get("group"), "name": saved.get("name") or name, "choices": saved.get("choices", {})} \
        if resume_from is not None else {"group": sweep_group(), "name": name, "choices": group_choices()}
    if resume_from is not None:
        warn_changed_versions(saved.get("versions"), run_dir)
    sink.start(run_dir, {**plain(cfg), "choices": wandb_run["choices"], "versions": versions()}, name=wandb_run["name"], job_type="train",
               group=wandb_run["group"], resume_id=saved.get("run_id"))
    search_artifact = _search_artifact(cfg)
    if search_artifact:
        sink.use_artifact(search_artifact)
    exit_code = 1
    try:
        keep = bool(cfg.get("save_checkpoint", True))
        if lead:
            atomic_write_json(state_file, {"run_id": sink.run_id, **wandb_run, "threads": threads, "versions": versions()})
        trainer = instantiate(cfg.trainer, logger=sink.lightning(resumed_step), default_root_dir=str(run_dir),
                              enable_checkpointing=keep, callbacks=_checkpoint_callbacks(run_dir) if keep else None)
        if resume_from is not None:
            log.info("resuming the training in %s from %s", run_dir, resume_from)
        try:
            with warnings.catch_warnings():
                if resume_from is not None:  # the folder holds this run's own checkpoints: expected
                    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
                trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from is not None else None)
            # with every epoch done before a resume (stopped in the test), fit restores and validates nothing
            seconds = module.training_seconds()  # all sessions' training
            val = trainer.callback_metrics.get("val/acc")
            if val is None:
                val = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/acc"]
            val_acc = float(val)
            test_acc = float(trainer.test(module, datamodule=dm, verbose=False)[0]["test/acc"])
        except SystemExit:  # Lightning's own shutdown after Ctrl-C / SIGTERM (in fit: the checkpoint is saved)
            raise KeyboardInterrupt from None
        result = {
            "arch": arch,
            "source": source,
            "search_space": space.name,
            "dataset": dataset_name,
            "epochs": int(trainer.current_epoch),
            "val_acc": val_acc,
            "test_acc": test_acc,
            "params": params,
            "flops": flops,
            "seconds": seconds,
            "seed": int(cfg.seed),
            "threads": torch.get_num_threads(),  # what fit trained with (Lightning's DDP launcher sets its own count)
            "versions": versions(),
        }
        if cfg.get("save_checkpoint", True):
            trainer.save_checkpoint(str(run_dir / "model.ckpt"), weights_only=False)  # collective: process 0 writes
            result["checkpoint"] = "model.ckpt"
        if lead:
            atomic_write_json(run_dir / "result.json", result)
        sink.summary({k: v for k, v in result.items() if k != "source"})
        if result.get("checkpoint"):  # the trained network, with what it is and where it came from
            sink.artifact(f"model-{sink.run_id or 'run'}", "model", [run_dir / "model.ckpt", run_dir / "result.json"],
                          {**{k: result[k] for k in ("arch", "source", "search_space", "dataset", "val_acc", "test_acc",
                                                     "params", "epochs")}, "search_artifact": search_artifact})
        exit_code = 0
        return result
    finally:
        sink.finish(exit_code)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a ``model.ckpt`` written by train.py: ``(network, meta)``.

    The network is built again from the checkpoint's own record (search-space settings,
    genotype, input channels, classes), gets the trained weights and is returned in eval mode;
    ``meta`` holds ``arch``, ``search_space``, ``dataset``, ``in_channels``, ``num_classes`` and
    ``space_config``. The file is read with ``weights_only=True``: loading never runs code.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        meta = dict(ckpt["hyper_parameters"]["meta"] or {})
        state = ckpt["state_dict"]
    except Exception as e:
        raise ConfigError(f"checkpoint {path} is corrupt or not a renas checkpoint ({type(e).__name__})") from None
    missing = [k for k in ("arch", "space_config", "in_channels", "num_classes") if k not in meta]
    if missing:
        raise ConfigError(f"checkpoint {path} does not record {', '.join(missing)} (written by an older train.py): "
                          f"it cannot be rebuilt; train the architecture again")
    space = build_space(OmegaConf.create(meta["space_config"]))
    net = space.build(space.parse(meta["arch"]), int(meta["in_channels"]), int(meta["num_classes"]))
    weights = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        raise ConfigError(f"checkpoint {path}: its weights do not fit the network it records ({str(e).splitlines()[0]})") from None
    return net.eval(), meta
