"""Config schemas: the types of the settings of the ``ga``, ``controller``, ``logger``,
``algorithm`` and ``optim`` groups.

Each is a dataclass registered in Hydra's ConfigStore under the ``schema`` group; the group's
YAML files start from it (``defaults: [/schema/<name>@_here_, _self_]``). The YAML files keep
the values and their comments (the defaults, each in one place); the schema gives each key its
type, so a wrong type or an unknown key fails when the config is composed, before any run
folder exists::

    python search.py ga.mutation_rate=abc --cfg job    # Value 'abc' could not be converted to Float

Ranges and choices (``ga.mutation_rate`` in [0, 1], ``ga.selection`` one of tournament /
roulette) are checked where the values are used, before any work starts, with one line naming
the key, the value and what is allowed (:mod:`renas.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

#: Booleans are typed ``Any`` here: OmegaConf's bool node turns ``2`` or ``"yes"`` into True,
#: where :func:`renas.config.check_bool` refuses anything but true / false in one line.


@dataclass
class GASchema:
    """``ga``: the evolution settings (conf/ga/default.yaml)."""

    population_size: int = MISSING
    sample_size: int = MISSING
    selection: str = MISSING
    removal: str = MISSING
    mutation_rate: float = MISSING
    crossover_rate: float = MISSING
    budget: int = MISSING


@dataclass
class NoControllerSchema:
    """``controller=none``: random edits (RENAS's ablation)."""

    name: str = MISSING


@dataclass
class SamplerControllerSchema(NoControllerSchema):
    """``controller=sampler``: the REINFORCE baseline's architecture sampler (its network and
    its REINFORCE learner, which RENAS's controller has too)."""

    embed: int = MISSING
    hidden: int = MISSING
    lr: float = MISSING
    batch: int = MISSING
    entropy_weight: float = MISSING
    baseline_decay: float = MISSING
    normalize: Any = MISSING  # bool


@dataclass
class EditControllerSchema(SamplerControllerSchema):
    """``controller=renas`` / ``lstm``: RENAS's mutation controller: the sampler's settings plus
    its own (what it scores, hindsight replay, the masked log-probability)."""

    encoder: str = MISSING
    utility: Any = MISSING  # bool
    gene_preferences: Any = MISSING  # bool
    interactions: int = MISSING
    replay: Any = MISSING  # a number of genes, or "all"
    replay_pairs: int = MISSING
    replay_weight: float = MISSING
    memory: int = MISSING
    memory_sample: int = MISSING
    steps: int = MISSING
    mask_logprob: Any = MISSING  # bool


@dataclass
class SinkSchema:
    """``logger=csv`` / ``none``: a sink without settings."""

    _target_: str = MISSING


@dataclass
class WandbLoggerSchema(SinkSchema):
    """``logger=wandb``."""

    project: str = MISSING
    entity: Optional[str] = MISSING
    mode: Optional[str] = MISSING
    console: str = MISSING
    system_metrics: Any = MISSING  # bool
    artifacts: Any = MISSING  # bool
    group: Optional[str] = MISSING
    tags: List[str] = field(default_factory=list)
    name: Optional[str] = MISSING


@dataclass
class AlgorithmSchema:
    """``algorithm``: a bundle without settings of its own (rea, ga, random, reinforce)."""

    name: str = MISSING
    _target_: str = MISSING


@dataclass
class RenasAlgorithmSchema(AlgorithmSchema):
    """``algorithm=renas`` (and its ablation ``evolution``)."""

    restart: Any = MISSING  # bool
    patience: int = MISSING


@dataclass
class LocalAlgorithmSchema(AlgorithmSchema):
    """``algorithm=local``."""

    n_init: int = MISSING
    move: str = MISSING


@dataclass
class TPEAlgorithmSchema(AlgorithmSchema):
    """``algorithm=tpe``."""

    n_startup_trials: int = MISSING
    multivariate: Any = MISSING  # bool or null (the installed Optuna's default)
    constant_liar: Any = MISSING  # bool or null


@dataclass
class OptimSchema:
    """``optim``: the optimizer (any ``torch.optim`` class with its own keyword arguments, so
    left open) and the settings around it."""

    optimizer: Any = MISSING
    scheduler: str = MISSING
    label_smoothing: float = MISSING
    aux_weight: float = MISSING


SCHEMAS = {
    "ga": GASchema,
    "controller_edits": EditControllerSchema,
    "controller_sampler": SamplerControllerSchema,
    "controller_none": NoControllerSchema,
    "logger_wandb": WandbLoggerSchema,
    "logger_sink": SinkSchema,
    "algorithm": AlgorithmSchema,
    "algorithm_renas": RenasAlgorithmSchema,
    "algorithm_local": LocalAlgorithmSchema,
    "algorithm_tpe": TPEAlgorithmSchema,
    "optim": OptimSchema,
}


def register() -> None:
    """Put the schemas in Hydra's ConfigStore (group ``schema``); done when ``renas`` is imported."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(group="schema", name=name, node=node)
