"""Config schemas: the types of the settings of every config group and of the primary configs
(``search.yaml``, ``train.yaml``, ``benchmark.yaml``).

The ``trainer`` group has none on purpose: its keys are Lightning ``Trainer`` keyword
arguments, any of which a user may add (``+trainer.limit_train_batches=0.1``); the same holds
for ``optim.optimizer`` (any ``torch.optim`` class with its own arguments).

Each is a dataclass registered in Hydra's ConfigStore under the ``schema`` group; the group's
YAML files start from it (``defaults: [/schema/<name>@_here_, _self_]``). The YAML files keep
the values and their comments (the defaults, each in one place); the schema gives each key its
type, and a setting with a fixed set of values a :class:`Choice` type (:func:`choice`), so a
wrong type, a value that is not one of the choices or an unknown key fails when the config is
composed, before any run folder exists (``--cfg job`` too)::

    python search.py ga.mutation_rate=abc --cfg job    # Value 'abc' could not be converted to Float
    python search.py ga.selection=best --cfg job       # ga.selection='best' is not one of: tournament, roulette

Ranges sit next to the types (:func:`rule`: ``ga.mutation_rate`` in [0, 1]) and are checked
right after composition, before Hydra makes the run folder (the ``renas.cli.CheckFirst``
callback), by :func:`renas.config.check_schema`, with one line naming the key, the value and
what is allowed. Rules between keys (the sample no larger than the population, the budget no larger
than the space) are in ``renas.search.run.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

#: Booleans are typed ``Any`` here: OmegaConf's bool node turns ``2`` or ``"yes"`` into True,
#: where :func:`renas.config.check_bool` refuses anything but true / false in one line.


def rule(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False,
         boolean: bool = False) -> Any:
    """A schema field with its range, checked right after composition by
    :func:`renas.config.check_schema` (one line naming the key, the value and what is allowed):
    a number in ``[low, high]`` (an open end with ``low_open`` / ``high_open``; an integer where the field
    is typed ``int``), or true / false (``boolean``). ``None`` passes where the field is
    ``Optional``. The value comes from the group's YAML file (the default, in one place); the
    field has none. (Choices are types: :func:`choice`.)"""
    check: dict[str, Any] = {"boolean": True} if boolean else {"low": low, "high": high, "low_open": low_open,
                                                                 "high_open": high_open}
    return field(default=MISSING, metadata={"check": check})


class Choice(str, Enum):
    """A setting with a fixed set of values (:func:`choice`): OmegaConf refuses any other value
    when the config is composed (``--cfg job`` too). A member *is* its value as far as the code
    can tell: a ``str`` that compares, hashes, prints and serialises (``str()``, JSON, YAML
    through ``OmegaConf.to_yaml``; not ``yaml.safe_dump``, which refuses a ``str`` subclass) as
    the plain string, so ``cfg.ga.selection == "tournament"`` and
    ``{"worst": ...}[cfg.loop.on_failure]`` work as they did with ``str`` fields. Where a value
    leaves the config for a file that is loaded with ``weights_only=True`` it goes through
    ``str()`` or :func:`renas.config.plain`."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)

    __hash__ = str.__hash__


def choice(name: str, *values: str) -> Any:
    """A :class:`Choice` type whose members are ``values`` (each named as its value)."""
    return Choice(name, {v: v for v in values}, module=__name__, qualname=name)


Selection = choice("Selection", "tournament", "roulette")
Removal = choice("Removal", "worst", "oldest")
Encoder = choice("Encoder", "lstm", "none")
Learner = choice("Learner", "reinforce", "least_squares")
Prior = choice("Prior", "none", "least_squares")
WandbMode = choice("WandbMode", "offline", "online", "disabled")
Console = choice("Console", "off", "wrap", "redirect", "auto", "wrap_raw", "wrap_emu")
Move = choice("Move", "first", "best")
Scheduler = choice("Scheduler", "cosine", "none")
Stem = choice("Stem", "cifar", "imagenet")
Direction = choice("Direction", "max", "min")
Duplicates = choice("Duplicates", "error", "mean", "first")
ExtraRows = choice("ExtraRows", "error", "skip")
Dedup = choice("Dedup", "exact", "isomorphic")
OnFailure = choice("OnFailure", "worst", "skip")
LocalExecutorName = choice("LocalExecutorName", "local")
RayExecutorName = choice("RayExecutorName", "ray")
Progress = choice("Progress", "eval", "generation", "none")


@dataclass
class GASchema:
    """``ga``: the evolution settings (conf/ga/default.yaml)."""

    population_size: int = rule(1)
    sample_size: int = rule(1)
    selection: Selection = MISSING
    removal: Removal = MISSING
    mutation_rate: float = rule(0.0, 1.0)
    crossover_rate: float = rule(0.0, 1.0)
    budget: int = rule(1)


@dataclass
class NoControllerSchema:
    """``controller=none``: random edits (RENAS's ablation)."""

    name: str = MISSING


@dataclass
class SamplerControllerSchema(NoControllerSchema):
    """``controller=sampler``: the REINFORCE baseline's architecture sampler (its network and
    its REINFORCE learner and the masked log-probability, which RENAS's controller has too)."""

    embed: int = rule(1, 4096)
    hidden: int = rule(1, 4096)
    lr: float = rule(0.0, 10.0, low_open=True)
    batch: int = rule(1, 100000)
    entropy_weight: float = rule(0.0, 100.0)
    baseline_decay: float = rule(0.0, 1.0)
    normalize: Any = rule(boolean=True)  # bool
    mask_logprob: Any = rule(boolean=True)  # bool


@dataclass
class EditControllerSchema(SamplerControllerSchema):
    """``controller=renas`` / ``lstm`` / ``least_squares``: RENAS's mutation controller: the
    sampler's settings plus its own (what it scores, hindsight replay, how it learns)."""

    encoder: Encoder = MISSING
    utility: Any = rule(boolean=True)  # bool
    gene_preferences: Any = rule(boolean=True)  # bool
    interactions: int = rule(0, 1024)
    replay: Any = MISSING  # a number of genes, or "all"
    replay_pairs: int = rule(1)
    replay_weight: float = rule(0.0, 1000.0)
    memory: int = rule(0)
    memory_sample: int = rule(0)
    steps: int = rule(1, 1000)
    learner: Learner = MISSING
    prior: Prior = MISSING
    temperature: float = rule(0.0, 100.0, low_open=True)
    ridge: float = rule(0.0, 1e6, low_open=True)


@dataclass
class LstmControllerSchema(EditControllerSchema):
    """``controller=lstm``: RENAS's mutation controller with a bidirectional LSTM over the
    parent, whose scores are bounded (``bound * tanh(score / bound)``)."""

    encoder_bound: float = rule(0.0, 1000.0, low_open=True)


@dataclass
class SinkSchema:
    """``logger=csv`` / ``none``: a sink without settings."""

    _target_: str = MISSING


@dataclass
class WandbLoggerSchema(SinkSchema):
    """``logger=wandb``."""

    project: str = MISSING
    entity: Optional[str] = MISSING
    mode: Optional[WandbMode] = MISSING
    console: Console = MISSING
    system_metrics: Any = rule(boolean=True)  # bool
    artifacts: Any = rule(boolean=True)  # bool
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

    restart: Any = rule(boolean=True)  # bool
    patience: int = rule(0)


@dataclass
class LocalAlgorithmSchema(AlgorithmSchema):
    """``algorithm=local``."""

    n_init: int = rule(1)
    move: Move = MISSING


@dataclass
class TPEAlgorithmSchema(AlgorithmSchema):
    """``algorithm=tpe``."""

    n_startup_trials: int = rule(0)
    multivariate: Any = MISSING  # bool or null (the installed Optuna's default)
    constant_liar: Any = MISSING  # bool or null


@dataclass
class OptimSchema:
    """``optim``: the optimizer (any ``torch.optim`` class with its own keyword arguments, so
    left open) and the settings around it."""

    optimizer: Any = MISSING
    scheduler: Scheduler = MISSING
    label_smoothing: float = rule(0.0, 1.0)
    aux_weight: float = rule(0.0)


@dataclass
class RenasCellSpaceSchema:
    """``search_space=renas_cell``: the RENAS / NASNet cell space."""

    _target_: str = MISSING
    blocks: int = rule(1, 20)
    shared_reduction: Any = rule(boolean=True)  # bool
    cells_per_stage: int = rule(1, 100)
    channels: int = rule(1, 4096)
    stem: Stem = MISSING
    stem_channels: Optional[int] = rule(1, 4096)
    auxiliary: Any = rule(boolean=True)  # bool
    drop_path: float = rule(0.0, 0.99)
    dropout: float = rule(0.0, 0.99)
    concat_prev: Any = rule(boolean=True)  # bool


@dataclass
class NASBench201SpaceSchema:
    """``search_space=nasbench201``."""

    _target_: str = MISSING
    channels: int = rule(1, 4096)
    cells_per_stage: int = rule(1, 100)


@dataclass
class GenesSpaceSchema:
    """``search_space=genes`` (and the spaces built on it, e.g. ``digits_cnn``): the genes are a
    list of ``{name, choices, kind}`` or a mapping ``name -> choices`` (checked by the space);
    the hooks are ``{_target_: pkg.mod.fn, ...}`` with the function's own keyword arguments."""

    _target_: str = MISSING
    name: str = MISSING
    genes: Any = MISSING
    valid: Any = MISSING
    canonical: Any = MISSING
    build: Any = MISSING
    reference: Optional[str] = MISSING


@dataclass
class DataSchema:
    """``dataset``: the settings every data module has."""

    _target_: str = MISSING
    batch_size: int = rule(1)
    num_workers: int = rule(0)
    val_fraction: float = rule(0.0, 1.0, low_open=True, high_open=True)
    subset: float = rule(0.0, 1.0, low_open=True)
    split_seed: int = rule(0, 2**32 - 1)  # numpy's and scikit-learn's seeds are 32-bit
    image_size: Optional[int] = rule(1)
    normalize: Any = rule(boolean=True)  # bool
    mean: Optional[List[float]] = MISSING
    std: Optional[List[float]] = MISSING
    augment: Any = rule(boolean=True)  # bool


@dataclass
class TorchvisionDataSchema(DataSchema):
    """``dataset=mnist`` / ``fashion_mnist`` / ``cifar10`` / ``cifar100``: torchvision's files in ``root``."""

    root: str = MISSING
    download: Any = rule(boolean=True)  # bool


@dataclass
class NPZDataSchema(DataSchema):
    """``dataset=cifar10_subset``: arrays in one ``.npz`` file."""

    path: str = MISSING


@dataclass
class DigitsDataSchema(DataSchema):
    """``dataset=digits``: scikit-learn's digits, split here."""

    test_fraction: float = rule(0.0, 1.0, low_open=True, high_open=True)


@dataclass
class ImageFolderDataSchema(DataSchema):
    """``dataset=image_folder``: your own images."""

    root: str = MISSING
    test_fraction: float = rule(0.0, 1.0, low_open=True, high_open=True)


@dataclass
class TrainEvaluatorSchema:
    """``evaluator=train``: proxy training with Lightning."""

    name: str = MISSING
    _target_: str = MISSING
    inherit_weights: Any = rule(boolean=True)  # bool
    finetune_epochs: Optional[int] = rule(1)
    bn_recalibration: int = rule(0)
    report_test: Any = rule(boolean=True)  # bool
    failure_fitness: Optional[float] = rule()


@dataclass
class TableEvaluatorSchema:
    """``evaluator=table`` (and ``nasbench201``): look-ups in a CSV of results."""

    name: str = MISSING
    _target_: str = MISSING
    table: str = MISSING
    key_column: Optional[str] = MISSING
    key_columns: Any = MISSING  # null, a list of columns in gene order, or "genes"
    metric: str = MISSING
    report: List[str] = MISSING
    direction: Direction = MISSING
    duplicates: Duplicates = MISSING
    extra_rows: ExtraRows = MISSING
    failure_fitness: Optional[float] = rule()


@dataclass
class LoopSchema:
    """``loop``: how the search loop treats repeats and failures."""

    dedup: Dedup = MISSING
    on_failure: OnFailure = MISSING
    max_failures: int = rule(1)


@dataclass
class LocalExecutorSchema:
    """``executor=local``."""

    name: LocalExecutorName = MISSING
    workers: int = rule(1, 4096)
    threads_per_worker: Optional[int] = rule(1, 1024)


@dataclass
class RayExecutorSchema:
    """``executor=ray``."""

    name: RayExecutorName = MISSING
    workers: int = rule(1, 4096)
    address: Optional[str] = MISSING
    num_cpus: float = rule(0.0)
    num_gpus: float = rule(0.0)
    log_to_driver: Any = rule(boolean=True)  # bool
    runtime_env: Any = MISSING  # a mapping given to Ray as it is


@dataclass
class SnapshotSchema:
    every: int = rule(1)
    seconds: float = rule(0.0)


@dataclass
class NetworkGroups:
    """The groups every primary config composes (then ``logger``, last of the groups), each with
    its own schema (the trainer's Lightning keyword arguments left open): ``Any`` here."""

    search_space: Any = MISSING
    dataset: Any = MISSING
    trainer: Any = MISSING
    optim: Any = MISSING


@dataclass
class SearchGroups(NetworkGroups):
    """The groups of a search (``search.yaml``, ``benchmark.yaml``) besides those."""

    ga: Any = MISSING
    controller: Any = MISSING
    evaluator: Any = MISSING
    executor: Any = MISSING
    loop: Any = MISSING
    logger: Any = MISSING


@dataclass
class SearchSchema(SearchGroups):
    """``search.yaml``, the primary config of ``search.py``: its own keys typed."""

    algorithm: Any = MISSING
    seed: int = rule(0, 2**31 - 1)
    threads: Optional[int] = rule(1, 1024)
    progress: Progress = MISSING
    resume: Optional[str] = MISSING
    snapshot: SnapshotSchema = MISSING


@dataclass
class TrainSchema(NetworkGroups):
    """``train.yaml``, the primary config of ``train.py``."""

    logger: Any = MISSING
    arch: Any = MISSING  # a genotype string or the paper's [[op, input], ...] list
    arch_from: Optional[str] = MISSING
    seed: int = rule(0, 2**31 - 1)
    threads: Optional[int] = rule(1, 1024)
    save_checkpoint: Any = rule(boolean=True)  # bool
    resume: Optional[str] = MISSING


@dataclass
class BenchmarkSchema(SearchGroups):
    """``benchmark.yaml``, the primary config of ``python -m renas.benchmark``: the groups of
    ``search.yaml`` (``algorithm`` set per entry of ``algorithms``) and the benchmark's own keys
    (``seeds`` and ``budget`` take a number or a list, checked by :mod:`renas.benchmark.plan`)."""

    algorithm: Any = None
    algorithms: Any = MISSING
    reference: Optional[str] = MISSING
    seeds: Any = MISSING
    budget: Any = MISSING
    max_duplicates: Optional[int] = rule(1)
    threads: Optional[int] = rule(1, 1024)
    progress: Progress = MISSING
    seed: Optional[int] = MISSING


SCHEMAS = {
    "search": SearchSchema,
    "train": TrainSchema,
    "benchmark": BenchmarkSchema,
    "space_renas_cell": RenasCellSpaceSchema,
    "space_nasbench201": NASBench201SpaceSchema,
    "space_genes": GenesSpaceSchema,
    "dataset_torchvision": TorchvisionDataSchema,
    "dataset_npz": NPZDataSchema,
    "dataset_digits": DigitsDataSchema,
    "dataset_image_folder": ImageFolderDataSchema,
    "evaluator_train": TrainEvaluatorSchema,
    "evaluator_table": TableEvaluatorSchema,
    "loop": LoopSchema,
    "executor_local": LocalExecutorSchema,
    "executor_ray": RayExecutorSchema,
    "ga": GASchema,
    "controller_edits": EditControllerSchema,
    "controller_lstm": LstmControllerSchema,
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


#: ``_target_`` -> schema name, to check an option file written without a schema (a user's own)
TARGETS = {
    "renas.space.renas_cell.RenasCellSpace": "space_renas_cell",
    "renas.space.nasbench201.NASBench201Space": "space_nasbench201",
    "renas.space.genes.GenesSpace": "space_genes",
    "renas.data.DigitsDataModule": "dataset_digits",
    "renas.data.MNISTDataModule": "dataset_torchvision",
    "renas.data.FashionMNISTDataModule": "dataset_torchvision",
    "renas.data.CIFARDataModule": "dataset_torchvision",
    "renas.data.CIFAR100DataModule": "dataset_torchvision",
    "renas.data.NPZDataModule": "dataset_npz",
    "renas.data.ImageFolderDataModule": "dataset_image_folder",
    "renas.evaluate.lightning_eval.TrainEvaluator": "evaluator_train",
    "renas.evaluate.table.TableEvaluator": "evaluator_table",
}


def register() -> None:
    """Put the schemas in Hydra's ConfigStore (group ``schema``); done when ``renas`` is
    imported."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(group="schema", name=name, node=node)
