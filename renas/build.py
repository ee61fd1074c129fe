"""Building configured parts with ``hydra.utils.instantiate``, with one-line errors.

Kept free of heavy imports (Lightning, W&B) so that bad input is reported quickly.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from renas.config import plain
from renas.errors import ConfigError, RenasError, moved_key, one_line, why_not_importable


def locate_class(target: Any) -> type | None:
    """The class a ``_target_`` names, or ``None`` when it names none (quietly: for a check that
    words its own error; ``hydra.utils.get_class`` logs its own lines first)."""
    module, _, name = str(target).rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name) if module else None
    except Exception:  # not importable, or no such attribute
        return None
    return found if isinstance(found, type) else None


def as_config_error(e: Exception, cfg: Any, group: str) -> RenasError:
    """An error raised while building ``cfg`` (a ``group`` option), as one line: ours keep their
    message; an unknown ``_target_``, a key the class does not take and anything else become a
    :class:`ConfigError` naming the group."""
    cause = e.__cause__ or e  # Hydra wraps constructor errors in InstantiationException
    if isinstance(cause, RenasError):
        return cause
    target = str(cfg.get("_target_", "?")) if hasattr(cfg, "get") else "?"
    if isinstance(cause, ImportError) and str(cause).startswith("Error loading"):  # Hydra's: the _target_
        return ConfigError(f"{group}._target_={target}: {why_not_importable(target) or str(cause).splitlines()[0]}")
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    unknown = re.search(r"got an unexpected keyword argument '([^']+)'", text)
    if isinstance(cause, TypeError) and unknown:  # a key of another option left in the config
        key = f"{group}.{unknown.group(1)}"
        moved = moved_key(key) if group == "evaluator" else None
        hint = f"it is {moved} since renas 0.2" if moved else f"a key of another {group} option?"
        return ConfigError(f"{key} is not a setting of {target.rsplit('.', 1)[-1]} ({hint})")
    missing = re.fullmatch(r"Missing mandatory value: ([\w.]+)", text)
    if missing:  # OmegaConf names the key relative to the node it read (table, or dataset.root)
        key = missing.group(1) if missing.group(1).startswith(group + ".") else f"{group}.{missing.group(1)}"
        return ConfigError(f"{key} is not set: give it on the command line ({key}=...)")
    return ConfigError(f"{group}: {text}")


def build(cfg: DictConfig, group: str, **kwargs: Any) -> Any:
    """Instantiate ``cfg``; errors raised by our constructors keep their message, anything
    else becomes ``ConfigError("<group>: ...")`` (:func:`as_config_error`)."""
    try:
        return instantiate(cfg, **kwargs)
    except RenasError:
        raise
    except Exception as e:
        raise as_config_error(e, cfg, group) from None


#: search_space keys that name a function (``{_target_: pkg.mod.fn}``, extra keys bound as
#: keyword arguments): given to the space as callables, not called while it is built
SPACE_HOOKS = ("canonical", "valid", "build")


def build_space(cfg_space: DictConfig):
    # deferred: renas.space pulls torch (~3 s); renas.build stays light for bad input
    from renas.space.genes import resolve_hook

    hooks: dict[str, Any] = {}
    if OmegaConf.is_dict(cfg_space):
        cfg_space = cfg_space.copy()
        for key in SPACE_HOOKS:
            hook = cfg_space.get(key)
            if OmegaConf.is_dict(hook) and "_target_" in hook:
                hooks[key] = resolve_hook(key, plain(hook))
                with open_dict(cfg_space):
                    del cfg_space[key]
    return build(cfg_space, "search_space", **hooks)


def build_datamodule(cfg_data: DictConfig):
    return build(cfg_data, "dataset")


def sweep_group() -> str | None:
    """W&B group of a Hydra multirun job: the sweep folder's date and time; ``None`` otherwise."""
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        return "_".join(Path(hc.sweep.dir).parts[-2:])
    return None


def run_name(*parts: Any) -> str:
    """A W&B run's name: ``parts`` joined by ``-`` (the algorithm and seed of a search:
    ``rea-s0``), with the job's number in a Hydra multirun (``rea-s0-3``), so the runs of one
    sweep are told apart in W&B's list."""
    parts = tuple(p for p in parts if p not in (None, ""))
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        parts = (*parts, HydraConfig.get().job.num)
    return "-".join(str(p) for p in parts)


#: evaluator.* keys the search reads (the rest go to the evaluator's constructor)
LOOP_KEYS = ("name", "failure_fitness")


def build_evaluator(cfg: DictConfig, space, run_dir: Path):
    """The evaluator of ``cfg.evaluator`` (the Lightning one also gets data, trainer, optim)."""
    ev = plain(cfg.evaluator)
    for k in LOOP_KEYS:
        ev.pop(k, None)
    extra: dict[str, Any] = {"space": space}
    if cfg.evaluator.get("name") == "train":
        extra.update(dataset=cfg.dataset, trainer=cfg.trainer, optim=cfg.optim, weights_dir=Path(run_dir) / "weights")
    evaluator = build(ev, "evaluator", **extra, _recursive_=False)
    if cfg.evaluator.get("name"):
        evaluator.name = str(cfg.evaluator.name)  # the config's name is the one in summaries
    return evaluator


#: the annotations :func:`check_annotated` checks a setting against (others are the class's own business)
_PLAIN_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def _plain_kinds(annotation: Any) -> set[type] | None:
    """The plain types an ``__init__`` annotation allows (``int``, ``float | None``, also written
    as strings under ``from __future__ import annotations``), or ``None`` for anything else."""
    if isinstance(annotation, str):
        parts = [p.strip() for p in annotation.removeprefix("Optional[").removesuffix("]").split("|")]
        kinds = {_PLAIN_TYPES.get(p) for p in parts}
        if annotation.startswith("Optional["):
            kinds.add(type(None))
        return None if None in kinds else kinds
    if annotation in _PLAIN_TYPES.values():
        return {annotation}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # int | None, Optional[int] (not list[int])
        args = typing.get_args(annotation)
        if all(a in _PLAIN_TYPES.values() for a in args):
            return set(args)
    return None


def _fits(value: Any, kinds: set[type]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int):
        return int in kinds or float in kinds
    return any(isinstance(value, k) for k in kinds - {bool, int})


def check_annotated(cls: type, settings: dict[str, Any], group: str) -> None:
    """A user's class takes its settings unchecked (no schema of renas's knows its keys): each
    one whose ``__init__`` parameter is annotated with a plain type (``n_init: int``,
    ``rate: float | None``) must be of it, in one line before anything runs (a string for an
    ``int`` ran, or failed inside the class with its traceback)."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return
    names = {int: "an int", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    for key, value in settings.items():
        kinds = _plain_kinds(parameters[key].annotation) if key in parameters else None
        if kinds and value is None and parameters[key].default is None:  # n: int = None: None is meant
            continue
        if kinds and not _fits(value, kinds):
            takes = " or ".join(names[k] for k in (int, float, bool, str, type(None)) if k in kinds)
            raise ConfigError(f"{group}.{key}={value!r}: {cls.__name__} takes {takes} (its __init__'s annotation)")


def build_strategy(cfg: DictConfig, space):
    """The search algorithm of ``cfg.algorithm`` (its ``_target_`` class, given the space, the
    ``ga`` and ``controller`` configs, the seed and the bundle's own settings)."""
    algo = cfg.algorithm
    if "_target_" not in algo:
        raise ConfigError("algorithm has no _target_ (choose one with algorithm=renas|evolution|rea|rea_tuned|local|ga|reinforce|random|tpe)")
    reason = why_not_importable(str(algo._target_))
    if reason:  # (before get_class, which logs its own lines)
        raise ConfigError(f"algorithm._target_={algo._target_}: {reason}")
    try:
        kwargs = {k: v for k, v in algo.items() if k not in ("_target_", "name")}
    except OmegaConfBaseException as e:  # a user's own bundle: a value left ???
        raise ConfigError(f"algorithm: {one_line(e)}") from None
    try:
        cls = get_class(algo._target_)
    except ValueError as e:  # "Located non-class of type 'function' ...": an algorithm is a class
        raise ConfigError(f"algorithm._target_={algo._target_}: not a class ({one_line(e)}); an algorithm is a "
                          f"subclass of renas.search.strategies.Strategy") from None
    check_annotated(cls, kwargs, "algorithm")
    try:
        return cls(space=space, ga=cfg.ga, controller=cfg.get("controller"), seed=int(cfg.seed), name=algo.get("name"),
                   **kwargs)
    except TypeError as e:
        if e.__traceback__ is not None and e.__traceback__.tb_next is None:  # the call's own arguments: a bundle's key
            raise as_config_error(e, algo, "algorithm") from None
        raise  # an error inside the class: its traceback
