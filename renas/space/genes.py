"""A search space defined in config alone: a list of genes, each a name and its choices.

``search_space=genes`` (``conf/search_space/genes.yaml``) with the genes in YAML::

    search_space:
      name: my_space
      genes:
        - {name: depth, choices: [1, 2, 3]}
        - {name: width, choices: [16, 32, 64], kind: width}
        - {name: act, choices: [relu, gelu, tanh]}

(or the short form ``genes: {depth: [1, 2, 3], width: [16, 32, 64], act: [relu, gelu, tanh]}``).
Choices are strings or numbers; ``kind`` groups genes whose equal choices mean the same thing,
so RENAS's controller shares what it learns about a choice between them. By default genes with
the same list of choices are of one kind; give a gene a ``kind`` of its own to keep it apart.

The genotype string is ``name:choice`` pairs in gene order, joined by ``|``::

    depth:2|width:32|act:relu

Names and choices may hold any character: in strings the separators and ``%`` are written
``%XX`` (``max pool`` is ``max%20pool``). :meth:`GenesSpace.parse` also reads ``name=choice`` pairs, pairs separated by ``,`` or spaces,
pairs in any order, a mapping ``{depth: 2, width: 32, act: relu}`` and a list of choices in gene
order. Numbers match numerically (``5e-4`` is ``0.0005``). The ``|``/``:`` form needs no quoting
in a Hydra override beyond the shell's: ``python train.py 'arch=depth:2|width:32|act:relu'``.

Optional hooks, each a callable named by ``_target_`` (extra keys are bound as keyword
arguments), given the architecture as a dict ``{gene name: choice}``:

- ``valid(arch) -> bool``: combinations that are not allowed. No search algorithm proposes
  one, and one given by a user (``train.py arch=...``) is a one-line error.
- ``canonical(arch) -> str | dict | any``: architectures computing the same function share
  the returned key (``loop.dedup=isomorphic``). A dict is read as an architecture and
  formatted; anything else is keyed by ``str()``.
- ``build(arch, in_channels, num_classes) -> nn.Module``: the network, so that
  ``evaluator=train`` and ``train.py`` work on the space.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import unquote

import numpy as np
from torch import nn

from renas.errors import ConfigError, GenotypeError, RenasError, missing_module
from renas.space.base import Gene, SearchSpace, lazy_modules

#: characters that separate pairs or a name from its choice in a genotype string
SEPARATORS = ":=|, \t\r\n"
#: in genotype strings these characters of names and choices are written %XX (and % itself)
_ESCAPE = {c: f"%{ord(c):02X}" for c in "%" + SEPARATORS}


def escape(text: str) -> str:
    """A name or choice as it is written in a genotype string: separators as ``%XX``, so that
    choices such as ``max pool`` or ``1,2`` round-trip (``max%20pool``)."""
    return "".join(_ESCAPE.get(c, c) for c in text)


def unescape(text: str) -> str:
    return unquote(text) if "%" in text else text
HOOKS = ("canonical", "valid", "build")
_SPLIT_PAIRS = re.compile(r"[|,\s]+")
_SPLIT_PAIR = re.compile(r"[:=]")


@dataclass(frozen=True)
class GenesGenotype:
    """The index of each gene's choice, in gene order."""

    values: tuple[int, ...]


def label(choice: Any) -> str:
    """A choice as it reads in a genotype string (``true``/``false``/``null`` as in YAML)."""
    if isinstance(choice, bool):
        return "true" if choice else "false"
    if choice is None:
        return "null"
    return str(choice)


def _is_number(choice: Any) -> bool:
    return isinstance(choice, (int, float)) and not isinstance(choice, bool)


def _as_number(choice: Any) -> float | None:
    if _is_number(choice):
        return float(choice)
    if isinstance(choice, str):
        try:
            x = float(choice)
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def _as_plain(value: Any) -> Any:
    """OmegaConf containers as plain Python (the space is also built without Hydra)."""
    try:
        # deferred: a guarded import (see the except); hoisting it would leave the try empty
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    return value


def resolve_hook(key: str, hook: Any) -> Callable[..., Any] | None:
    """A hook given as a callable (Hydra's ``_partial_`` instantiation), a ``{_target_: ...}``
    mapping (other keys bound as keyword arguments) or a dotted name; ``None`` stays ``None``."""
    hook = _as_plain(hook)
    if hook is None or callable(hook):
        return hook
    if isinstance(hook, str):
        hook = {"_target_": hook}
    if not isinstance(hook, dict) or "_target_" not in hook:
        raise ConfigError(f"search_space.{key} must name a callable with _target_, got {hook!r}")

    kwargs = {k: v for k, v in hook.items() if not k.startswith("_")}
    fn = import_function(key, str(hook["_target_"]))
    return functools.partial(fn, **kwargs) if kwargs else fn


def import_function(key: str, target: str) -> Callable[..., Any]:
    """``pkg.mod.fn`` from the Python path, or else from the folder the command runs in (where
    ``python search.py`` finds ``examples/``; a console script or ``python -m`` elsewhere may not
    have it on the path)."""
    def failed(e: Exception, where: str = "") -> ConfigError:  # the module is there: it fails to import, or lacks it
        return ConfigError(f"search_space.{key}: cannot import {target!r}{where}: {type(e).__name__}: {e}")

    try:
        return _locate(target)
    except ModuleNotFoundError as e:
        if not missing_module(e, target):  # a module it imports is missing
            raise failed(e) from None
        error: Exception = e
    except Exception as e:
        raise failed(e) from None
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
        try:
            return _locate(target)
        except Exception as e:
            sys.path.remove(cwd)
            if not (isinstance(e, ModuleNotFoundError) and missing_module(e, target)):
                raise failed(e, f" (from {cwd})") from None
    raise ConfigError(f"search_space.{key}: cannot import {target!r}: {error} (not on the Python path, "
                      f"nor under {cwd})") from None


def _locate(target: str) -> Callable[..., Any]:
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if missing_module(e, module) and i > 1:
                continue  # ``module`` is not a module: try a shorter prefix (an attribute path)
            raise
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        if not callable(obj):
            raise TypeError(f"{target} is not a function")
        return obj
    raise ModuleNotFoundError(f"{target!r} names no module", name=target)


def hook_name(hook: Callable[..., Any] | None) -> str:
    fn = hook.func if isinstance(hook, functools.partial) else hook
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class GenesSpace(SearchSpace):
    """A space of any categorical genes, from config (see the module docstring).

    Args:
        genes: a list of ``{name, choices, kind}`` (``kind`` optional) or a mapping
            ``name -> choices`` (or ``name -> {choices, kind}``).
        name: the space's name in summaries and W&B.
        canonical, valid, build: optional hooks (callables, ``{_target_: ...}`` or dotted names).
        reference: a genotype string: what ``train.py`` trains without ``arch=``.
    """

    def __init__(self, genes: Any = None, name: str = "genes", canonical: Any = None, valid: Any = None,
                 build: Any = None, reference: Any = None) -> None:
        if not isinstance(name, str) or not name or any(c in name for c in "/\\\n"):
            raise ConfigError(f"search_space.name must be a non-empty name, got {name!r}")
        self.name = name
        self._genes, self._raw = self._read_genes(_as_plain(genes))
        self._index = {g.name: i for i, g in enumerate(self._genes)}
        # choices that are numbers (or strings that read as one) match a token by value: 0.0005 is 5e-4
        self._numbers: list[dict[float, int]] = []
        for raw in self._raw:
            by_value: dict[float, int] = {}
            for v, c in enumerate(raw):
                x = _as_number(c)
                if x is not None:
                    by_value.setdefault(x, v)
            self._numbers.append(by_value)
        self._canonical = resolve_hook("canonical", canonical)
        self._valid = resolve_hook("valid", valid)
        self._build = resolve_hook("build", build)
        self.can_build = self._build is not None
        self.constrained = self._valid is not None
        self._reference = None
        if reference is not None:
            try:
                self._reference = self.parse(_as_plain(reference))
            except GenotypeError as e:
                raise ConfigError(f"search_space.reference: {e}") from None

    # --- genes from config ----------------------------------------------------------------
    @staticmethod
    def _read_genes(genes: Any) -> tuple[tuple[Gene, ...], list[tuple[Any, ...]]]:
        if genes is None or genes == "???":
            raise ConfigError("search_space.genes is not set: list the genes, e.g. "
                              "genes: [{name: depth, choices: [1, 2, 3]}, {name: act, choices: [relu, tanh]}]")
        if isinstance(genes, Mapping):
            items = []
            for k, v in genes.items():
                items.append({"name": k, **v} if isinstance(v, Mapping) else {"name": k, "choices": v})
            genes = items
        if not isinstance(genes, (list, tuple)) or not genes:
            raise ConfigError(f"search_space.genes must be a non-empty list of genes, got {genes!r}")
        out, raws, seen = [], [], set()
        for i, g in enumerate(genes):
            where = f"search_space.genes[{i}]"
            if not isinstance(g, Mapping):
                raise ConfigError(f"{where} must be a mapping with name and choices, got {g!r}")
            unknown = set(g) - {"name", "choices", "kind"}
            if unknown:
                raise ConfigError(f"{where} has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                                  f"a gene has name, choices and optionally kind")
            name = g.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{where}.name must be a non-empty string, got {name!r}")
            if name != name.strip():
                raise ConfigError(f"{where}.name {name!r} starts or ends with white space, which genotype strings "
                                  f"do not keep; leave it out")
            where = f"search_space.genes[{i}] ({name})"
            if name in seen:
                raise ConfigError(f"{where}: gene name {name!r} is used twice")
            seen.add(name)
            choices = g.get("choices")
            if not isinstance(choices, (list, tuple)) or not choices:
                raise ConfigError(f"{where}.choices must be a non-empty list, got {choices!r}")
            labels = []
            for c in choices:
                if not (c is None or isinstance(c, (str, int, float, bool))):
                    raise ConfigError(f"{where}: choice {c!r} is not a string or a number")
                text = label(c)
                if not text.strip():
                    raise ConfigError(f"{where}: choice {text!r} is empty")
                if text != text.strip():
                    raise ConfigError(f"{where}: choice {text!r} starts or ends with white space, which genotype "
                                      f"strings do not keep; leave it out")
                if _is_number(c) and not math.isfinite(float(c)):
                    raise ConfigError(f"{where}: choice {c!r} is not a finite number")
                labels.append(text)
            dup = [t for t in labels if labels.count(t) > 1]
            if dup:
                raise ConfigError(f"{where}: choice {dup[0]!r} appears twice")
            numbers = [float(c) for c in choices if _is_number(c)]
            if len(set(numbers)) < len(numbers):
                raise ConfigError(f"{where}: two choices are the same number")
            # by default genes with the same choices are of one kind: the controller shares what it
            # learns about a choice between them (as between NAS-Bench-201's six edges)
            kind = g.get("kind", "|".join(labels))
            if not isinstance(kind, str) or not kind:
                raise ConfigError(f"{where}.kind must be a non-empty string, got {kind!r}")
            out.append(Gene(name, kind, tuple(labels)))
            raws.append(tuple(choices))
        return tuple(out), raws

    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    # --- genotypes ----------------------------------------------------------------------------
    def from_values(self, values: Sequence[int]) -> GenesGenotype:
        return GenesGenotype(self.validate_values(values))

    def as_dict(self, genotype: GenesGenotype) -> dict[str, Any]:
        """``{gene name: choice}`` with the choices as written in the config (numbers stay numbers)."""
        return {g.name: raw[v] for g, raw, v in zip(self._genes, self._raw, genotype.values)}

    def choice_index(self, gene: int, token: Any) -> int:
        """The value of gene ``gene`` whose choice is ``token`` (a label, or an equal number)."""
        g = self._genes[gene]
        text = label(token) if not isinstance(token, str) else token.strip()
        if text in g.choices:
            return g.choices.index(text)
        if self._numbers[gene]:
            try:
                number = float(token)
            except (TypeError, ValueError):
                number = None
            if number is not None and number in self._numbers[gene]:
                return self._numbers[gene][number]
        if isinstance(token, str) and token.strip().lower() in ("true", "false", "null", "none"):
            low = token.strip().lower()
            alias = "null" if low == "none" else low
            if alias in g.choices:
                return g.choices.index(alias)
        raise GenotypeError(f"gene {g.name}: {label(token)!r} is not one of {', '.join(g.choices)}")

    def format(self, genotype: GenesGenotype) -> str:
        return "|".join(f"{escape(g.name)}:{escape(g.choices[v])}" for g, v in zip(self._genes, genotype.values))

    def parse(self, text: Any) -> GenesGenotype:
        text = _as_plain(text)
        if isinstance(text, Mapping):
            pairs = [(str(k), v) for k, v in text.items()]
        elif isinstance(text, (list, tuple)):
            if len(text) != len(self._genes):
                raise GenotypeError(f"{self.name}: a list of choices needs one per gene ({len(self._genes)}), got {len(text)}")
            pairs = [(g.name, c) for g, c in zip(self._genes, text)]
        elif isinstance(text, str):
            pairs = []
            for part in _SPLIT_PAIRS.split(text.strip()):
                if not part:
                    continue
                bits = _SPLIT_PAIR.split(part, maxsplit=1)
                if len(bits) != 2:
                    raise GenotypeError(f"cannot parse {text!r} as a {self.name} genotype: {part!r} is not name:choice "
                                        f"(expected like {self.format(self.from_values([0] * len(self._genes)))!r})")
                pairs.append((unescape(bits[0]), unescape(bits[1])))
        else:
            raise GenotypeError(f"a {self.name} genotype is a string like 'name:choice|...', got {text!r}")
        values: dict[int, int] = {}
        for name, token in pairs:
            if name not in self._index:
                raise GenotypeError(f"{self.name} has no gene {name!r}; genes are {', '.join(self._index)}")
            i = self._index[name]
            if i in values:
                raise GenotypeError(f"gene {name} is given twice in {text!r}")
            values[i] = self.choice_index(i, token)
        missing = [g.name for i, g in enumerate(self._genes) if i not in values]
        if missing:
            raise GenotypeError(f"{text!r} gives no choice for gene(s) {', '.join(missing)}")
        genotype = GenesGenotype(tuple(values[i] for i in range(len(self._genes))))
        if not self.is_valid(genotype.values):
            raise GenotypeError(f"{self.format(genotype)} is not allowed by search_space.valid ({hook_name(self._valid)})")
        return genotype

    # --- hooks ------------------------------------------------------------------------------
    def _call(self, key: str, hook: Callable[..., Any], genotype: GenesGenotype, *args: Any) -> Any:
        try:
            return hook(self.as_dict(genotype), *args)
        except RenasError:
            raise
        except Exception as e:
            raise RenasError(f"search_space.{key} ({hook_name(hook)}) failed on {self.format(genotype)}: "
                             f"{type(e).__name__}: {e}") from e

    def is_valid(self, values: Sequence[int]) -> bool:
        if self._valid is None:
            return True
        genotype = GenesGenotype(tuple(values))
        answer = self._call("valid", self._valid, genotype)
        if not isinstance(answer, (bool, np.bool_)):  # "yes", 0, None: a hook with a bug, not an answer
            raise RenasError(f"search_space.valid ({hook_name(self._valid)}) returned {answer!r} for "
                             f"{self.format(genotype)}; it must return True or False")
        return bool(answer)

    def canonical(self, genotype: GenesGenotype) -> str:
        if self._canonical is None:
            return self.format(genotype)
        key = self._call("canonical", self._canonical, genotype)
        if key is None:  # (a hook without its return: every architecture would be one)
            raise RenasError(f"search_space.canonical ({hook_name(self._canonical)}) returned None for "
                             f"{self.format(genotype)}: return a key (a string, or the architecture as a dict)")
        if isinstance(key, str):
            return key
        if isinstance(key, Mapping):
            try:
                return self.format(GenesGenotype(tuple(self.choice_index(self._index[n], key[n]) for n in self._index)))
            except (KeyError, GenotypeError) as e:
                raise RenasError(f"search_space.canonical ({hook_name(self._canonical)}) returned {key!r} for "
                                 f"{self.format(genotype)}, which is not an architecture of the space: {e}") from None
        return str(key)

    def build(self, genotype: GenesGenotype, in_channels: int, num_classes: int) -> nn.Module:
        if self._build is None:
            raise ConfigError(f"search_space.build is not set: the {self.name} space has no networks to train "
                              f"(search it with a table, evaluator=table, or give it a build hook)")
        net = self._call("build", self._build, genotype, int(in_channels), int(num_classes))
        if not isinstance(net, nn.Module):
            raise RenasError(f"search_space.build ({hook_name(self._build)}) returned {type(net).__name__}, not an nn.Module")
        if lazy := lazy_modules(net):  # parameters that exist only after a forward pass: no count, no optimizer
            raise RenasError(f"search_space.build ({hook_name(self._build)}) returned a network with lazy modules "
                             f"({', '.join(lazy)}): give their sizes (nn.Linear(in_features, out_features), ...)")
        return net

    def reference(self) -> GenesGenotype:
        if self._reference is None:
            raise ConfigError(f"search_space.reference is not set for the {self.name} space: give the "
                              f"architecture with arch=... (or arch_from=<search run folder>)")
        return self._reference
