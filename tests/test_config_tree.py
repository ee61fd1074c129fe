"""Every option of every config group composes with its entry point's config and passes the
search's own checks (a broken or stale option file fails here, not in a user's first run)."""

from __future__ import annotations

from dataclasses import is_dataclass

import pytest
from omegaconf import OmegaConf

from helpers import REPO, compose
from renas.schema import SCHEMAS, TARGETS

#: groups that search.yaml composes (hydra/launcher and hparams_search are checked by test_sweeps)
SEARCH_GROUPS = ("search_space", "dataset", "trainer", "optim", "ga", "controller", "evaluator", "executor", "loop",
                 "logger", "algorithm", "experiment")
#: options that only make sense with another choice (alone, each is a one-line error by design)
COMPANIONS = {
    ("evaluator", "nasbench201"): ["search_space=nasbench201"],  # the table scores NAS-Bench-201 cells only
    ("controller", "sampler"): ["algorithm=reinforce"],  # REINFORCE's whole-architecture sampler
    ("search_space", "genes"): ["search_space.genes={a: [1, 2, 3, 4, 5, 6], b: [x, y, z, u, v, w]}"],  # genes from config
}
#: groups without a schema: the trainer's keys are Lightning's (any may be added); experiments set other groups
SCHEMALESS = ("trainer", "experiment")
CASES = [(group, f.stem) for group in SEARCH_GROUPS for f in sorted((REPO / "conf" / group).glob("*.yaml"))]


def test_every_group_has_options():
    assert {g for g, _ in CASES} == set(SEARCH_GROUPS)


@pytest.mark.parametrize("group,option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes_and_validates(group, option):
    from renas.build import build_space, build_strategy
    from renas.search.run import validate

    cfg = compose("search", [f"{group}={option}", *COMPANIONS.get((group, option), [])])
    if group != "experiment":  # experiments are @package _global_: they set keys of other groups
        assert cfg[group] is not None
    if group not in SCHEMALESS:  # types checked when composed (renas/schema.py)
        assert is_dataclass(OmegaConf.get_type(cfg[group])), f"conf/{group}/{option}.yaml does not start from a schema"
        target = cfg[group].get("_target_")
        if target in TARGETS:  # a user's file for the same class gets the same checks
            assert OmegaConf.get_type(cfg[group]) is SCHEMAS[TARGETS[target]], (target, TARGETS[target])
    space = build_space(cfg.search_space)
    validate(cfg, space)
    if group in ("algorithm", "controller", "ga", "experiment"):  # the strategy (and its controller) builds
        assert build_strategy(cfg, space).name


@pytest.mark.parametrize("config_name", ["train", "benchmark"])
def test_the_other_entry_points_compose(config_name):
    cfg = compose(config_name, [])
    assert cfg.search_space is not None
    assert is_dataclass(OmegaConf.get_type(cfg))  # the primary config's own keys are typed too


def test_the_loops_code_defaults_are_the_configs():
    """``LoopSettings`` (for code that builds a search without a config) and conf/loop/default.yaml agree."""
    from renas.search.loop import LoopSettings

    cfg = compose("search", [])
    code = LoopSettings()
    assert {k: getattr(code, k) for k in cfg.loop} == dict(cfg.loop)


def test_an_option_file_without_a_schema_is_checked_against_its_targets():
    """A user's own option file (no ``/schema/...`` in its defaults) gets the rules of the schema of
    its ``_target_``: types, unknown keys and ranges, with the key named."""
    from renas.config import check_schema
    from renas.errors import ConfigError

    def error(dataset: dict) -> str:
        with pytest.raises(ConfigError) as e:
            check_schema(OmegaConf.create({"dataset": {"_target_": "renas.data.DigitsDataModule", **dataset}}))
        return str(e.value)

    assert error({"batch_size": 0}) == "dataset.batch_size=0 is out of range: must be an integer >= 1"
    assert "Value 'x' of type 'str' could not be converted to Integer" in error({"batch_size": "x"})
    assert "Key 'bogus' not in 'DigitsDataSchema'" in error({"bogus": 1})
    check_schema(OmegaConf.create({"dataset": {"_target_": "renas.data.DigitsDataModule", "batch_size": 3}}))
