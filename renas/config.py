"""Config checks: one clear message naming the key, the bad value and what is allowed."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.object_type import ObjectType
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from renas.errors import ConfigError, one_line, unknown_setting
from renas.schema import SCHEMAS, TARGETS, Choice

#: the config tree shipped in the package (``conf/`` at the project root links to it)
CONF_DIR = str(Path(__file__).resolve().parent / "conf")


#: config keys that may differ between a search and its resumption (they do not change it)
SAFE_KEYS = ("logger", "progress", "threads", "resume", "snapshot")


#: settings inside a group that a resume may change: where Ray runs and what it shows change no
#: child (a search requeued on a new Ray head joins it with executor.address=...)
SAFE_SETTINGS = ("executor.address", "executor.log_to_driver")


def may_change_on_resume(override: str) -> bool:
    """Whether a command-line override sets only what a resume may change."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split(".")[0] in SAFE_KEYS or key in SAFE_SETTINGS or key.startswith("hydra")


def resume_may_change() -> str:
    """What a resumed search takes from its command line, in words (for the refusals)."""
    return f"only {', '.join([*(k for k in SAFE_KEYS if k != 'resume'), *SAFE_SETTINGS])} may change on resume"


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping by dotted key: ``{"ga": {"budget": 30}}`` as ``{"ga.budget": 30}`` (an
    empty mapping stays a value: ``{"x": {}}`` as ``{"x": {}}``)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: d}


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"


def load_saved(path: str | Path, kind: type = object) -> Any:
    """A run folder's saved Hydra file (``.hydra/overrides.yaml``, ``config.yaml``) for a resume:
    a damaged one (not YAML, cut short, not a ``kind``) is one line that names it."""
    try:
        loaded = OmegaConf.load(path)
    except Exception as e:
        raise ConfigError(f"{path} is damaged and cannot be read ({one_line(e)}); the run folder was left as it is") from None
    wanted = {list: OmegaConf.is_list, dict: OmegaConf.is_dict}.get(kind)
    if wanted is not None and not wanted(loaded):
        raise ConfigError(f"{path} is damaged (not a {'list' if kind is list else 'mapping'}); the run folder was left as it is")
    return loaded


def absolute_searchpath(paths: Sequence[str], cwd: str | Path) -> list[str]:
    """The config folders ``paths`` of a ``hydra.searchpath``, a relative ``file://`` one (or a
    bare folder, which Hydra reads as one) made absolute against ``cwd`` (the folder the command
    ran in)."""
    out = []
    for path in map(str, paths):
        folder = path[len("file://"):] if path.startswith("file://") else None if "://" in path else path
        if folder is not None and not Path(folder).is_absolute():
            path = "file://" + str(Path(cwd) / folder)
        out.append(path)
    return out


def searchpath_override(paths: Sequence[str]) -> str:
    """``hydra.searchpath=[...]`` of ``paths``, for Hydra's compose API."""
    return f"hydra.searchpath=[{','.join(_quoted(str(p)) for p in paths)}]"


def running_searchpath() -> list[str]:
    """The running Hydra app's ``hydra.searchpath`` (a user's own config folders), absolute: the
    compose API does not see it unless given; ``[]`` outside an app or without one."""
    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    return absolute_searchpath(list(hydra.searchpath or []), hydra.runtime.cwd)


def saved_searchpath(hydra_dir: str | Path) -> list[str]:
    """The config folders a resumed run composes from: the resume command's
    ``hydra.searchpath``, else the one the run started with (``<hydra_dir>/hydra.yaml``; a
    relative folder is taken from where it started); none: ``[]``."""
    current = running_searchpath()
    if current:
        return current
    try:
        saved = OmegaConf.load(Path(hydra_dir) / "hydra.yaml").hydra
        return absolute_searchpath(list(saved.get("searchpath") or []), str(saved.runtime.cwd))
    except Exception:  # an older or hand-edited hydra.yaml: the package's own configs only
        return []


def group_choices(choices: Any = None) -> dict[str, str | None]:
    """The option of each config group (``dataset: mnist``), Hydra's own groups left out: of
    ``choices`` (a composed config's ``hydra.runtime.choices``), by default the running app's
    (``{}`` outside one). What a run's W&B config records as ``choices``."""
    if choices is None:
        if not HydraConfig.initialized():
            return {}
        choices = HydraConfig.get().runtime.choices
    return {str(k): None if v is None else str(v) for k, v in choices.items() if not str(k).startswith("hydra/")}


def moved_folders_hint(folders: Sequence[str]) -> str:
    """What a resume that does not compose says of the run's own config folders ("" for none)."""
    return (f"its config folders ({', '.join(folders)}) must still hold the files it started with "
            f"(give hydra.searchpath=[...] if they moved)") if folders else ""


@contextlib.contextmanager
def missing_folders_unwarned():
    """Hydra's warning for a ``hydra.searchpath`` folder that is not there left out, where the
    caller's own error names the folder (a resumed run whose config folder moved)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="provider=hydra.searchpath", category=UserWarning)
        yield


#: groups ``--help`` leaves out: Hydra's own (as Hydra's ``$APP_CONFIG_GROUPS`` does) and the
#: ``schema`` group (the settings' types, for option files to start from; not options to pick)
HIDDEN_GROUPS = ("hydra", "schema")


def config_groups(which: str = "") -> str:
    """The config groups a user picks options of, one ``group: option, option`` line each: what
    Hydra's ``$APP_CONFIG_GROUPS`` lists, without the ``schema`` group (:data:`HIDDEN_GROUPS`),
    with the options of the command line's ``hydra.searchpath`` (the user's own config folders,
    which Hydra's list leaves out). The ``--help`` template of search.py, train.py and
    renas.benchmark (``conf/hydra/help/renas.yaml``) writes it as ``${renas.config_groups:}``
    (the resolver :func:`register_resolvers` adds); empty when no Hydra app is initialised (a
    saved ``hydra.yaml`` resolved elsewhere). ``which``, by default the app's
    ``hydra.help.groups``: ``all`` (search.py, renas.benchmark) or ``defaults``, only the groups
    of the composed primary config's defaults list (Hydra's ``hydra.runtime.choices``:
    train.py, which refuses the others)."""
    if not GlobalHydra.instance().is_initialized():
        return ""
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    which = which or (str(hydra_cfg.help.get("groups", "all")) if hydra_cfg is not None else "all")
    used = None
    if which == "defaults" and hydra_cfg is not None:
        used = {str(name).split("/")[0] for name in hydra_cfg.runtime.choices}
    searchpath = list(hydra_cfg.searchpath or []) if hydra_cfg is not None else []
    overrides = [searchpath_override(searchpath)] if searchpath else []  # the folders as given: --help runs where they are
    loader = GlobalHydra.instance().config_loader()  # each query copies the ConfigStore: ask once per group
    groups: dict[str, list[str]] = {}

    def walk(parent: str) -> None:
        for group in loader.get_group_options(parent, ObjectType.GROUP, overrides=overrides):
            name = f"{parent}/{group}" if parent else group
            if name.split("/")[0] in HIDDEN_GROUPS or (used is not None and name.split("/")[0] not in used):
                continue
            options = loader.get_group_options(name, ObjectType.CONFIG, overrides=overrides)
            if options:
                groups[name] = sorted(options)
            walk(name)

    with missing_folders_unwarned():
        walk("")
    return "\n".join(f"{name}: {', '.join(groups[name])}" for name in sorted(groups))


def register_resolvers() -> None:
    """:func:`config_groups` as the resolver ``renas.config_groups`` (the ``--help`` template's);
    done when ``renas`` is imported."""
    if not OmegaConf.has_resolver("renas.config_groups"):
        OmegaConf.register_new_resolver("renas.config_groups", config_groups)


def _sets_searchpath(overrides: Sequence[str]) -> bool:
    return any(str(o).lstrip("+~").startswith("hydra.searchpath") for o in overrides)


def compose(config_name: str, overrides: Sequence[str] = (), check: bool = True) -> DictConfig:
    """``conf/<config_name>.yaml`` composed with ``overrides`` as its command would compose it
    (``python search.py <overrides>`` for ``search``), from a script or a test: inside a running
    Hydra app with that app's search path (its ``hydra.searchpath`` included, unless
    ``overrides`` set one), else from :data:`CONF_DIR`; with ``check``, every value
    checked against its schema's rule (:func:`check_schema`) as the commands check them. Hydra's,
    OmegaConf's and renas's errors propagate (:func:`renas.errors.one_line` makes each one line)."""
    overrides = list(overrides)
    searchpath = [] if _sets_searchpath(overrides) else running_searchpath()
    if searchpath:
        overrides.insert(0, searchpath_override(searchpath))

    def composed() -> DictConfig:
        cfg = hydra_compose(config_name=config_name, overrides=overrides)
        if check:
            check_schema(cfg)
        return cfg

    if GlobalHydra.instance().is_initialized():
        return composed()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return composed()


def group_options(group: str, config_name: str, hydra_overrides: Sequence[str] | None = None) -> list[str]:
    """The options of config group ``group`` as a command composes it: its primary config and
    ``hydra.searchpath`` (in ``hydra_overrides``, Hydra's overrides of the command line; by
    default the running app's), inside a Hydra app; else the files in :data:`CONF_DIR`."""
    if not GlobalHydra.instance().is_initialized():
        return sorted(p.stem for p in Path(CONF_DIR, group).glob("*.yaml"))
    if hydra_overrides is None:
        searchpath = running_searchpath()
        hydra_overrides = [searchpath_override(searchpath)] if searchpath else []
    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options(group, config_name=config_name, overrides=list(hydra_overrides)))


def plain(node: Any) -> Any:
    """A config node as plain Python, resolved: dicts, lists and ``str`` for a choice's value
    (a :class:`renas.schema.Choice` member would not load from a ``weights_only=True`` file).
    What leaves the config for files, worker processes and W&B goes through here."""
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


def check_number(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    low_open: bool = False,
    high_open: bool = False,
) -> float | int:
    """Return ``value`` if it is a number in ``[low, high]`` (an open end where ``low_open`` /
    ``high_open``)."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} must be {kind}{_range(low, high, low_open, high_open)}")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{key}={value!r} must be {kind}{_range(low, high, low_open, high_open)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ConfigError(f"{key}={value!r} is out of range: must be {kind}{_range(low, high, low_open, high_open)}")
    return int(value) if integer else value


def _range(low, high, low_open, high_open=False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def check_choice(key: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(choices)}")
    return value


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be true or false")
    return value


def check_schema(cfg: Any, path: str = "") -> None:
    """Check every value whose schema field declares a rule (:func:`renas.schema.rule`) or is a
    choice (:func:`renas.schema.choice`: its value read, so an interpolation is resolved and
    typed) in ``cfg`` and the groups below it; the first bad one raises :class:`ConfigError`
    naming its key.

    A group written without a schema (a user's option file) is checked against the schema of
    its ``_target_`` when renas has one (:data:`renas.schema.TARGETS`). A schema without
    ``_target_`` (``ga``, ``loop``, ``executor``, the primary configs) is closed: a key added
    with ``+`` that it does not know is refused (a typo such as ``+loop.max_failure=3``)."""
    node_type = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(node_type) and isinstance(cfg, DictConfig) and cfg.get("_target_") in TARGETS:
        try:
            typed = OmegaConf.merge(OmegaConf.structured(SCHEMAS[TARGETS[cfg._target_]]), cfg)
        except OmegaConfBaseException as e:
            text = one_line(e, prefix=path)  # a choice's line names its key from the root
            raise ConfigError(text if text.startswith(path) else f"{path.rstrip('.') or 'config'}: {text}") from None
        return check_schema(typed, path)
    hints = typing.get_type_hints(node_type) if dataclasses.is_dataclass(node_type) else {}
    if hints and "_target_" not in hints:
        unknown = [k for k in cfg if k not in hints]
        if unknown:
            raise ConfigError(unknown_setting(f"{path}{unknown[0]}", list(hints)))
    for f in dataclasses.fields(node_type) if hints else ():
        check, hint = f.metadata.get("check"), hints[f.name]
        choice = any(isinstance(t, type) and issubclass(t, Choice) for t in (hint, *typing.get_args(hint)))
        if (check is None and not choice) or OmegaConf.is_missing(cfg, f.name):
            continue
        key = f"{path}{f.name}"
        try:
            value = cfg[f.name]  # resolves an interpolation (ga.selection=${oc.env:SEL}): its type is checked here
        except OmegaConfBaseException as e:
            raise ConfigError(one_line(e, key=key)) from None
        if check is None:  # a Choice: the type was the check
            continue
        optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
        if value is None and optional:
            continue
        if "boolean" in check:
            check_bool(key, value)
        else:
            integer = int in (hint, *typing.get_args(hint))
            check_number(key, value, check["low"], check["high"], integer=integer, low_open=check["low_open"],
                         high_open=check["high_open"])
    for name in cfg if isinstance(cfg, DictConfig) else ():
        if not OmegaConf.is_missing(cfg, name) and isinstance(cfg._get_node(name), DictConfig):
            check_schema(cfg[name], f"{path}{name}.")
