"""Every option of every config group composes with its entry point's config and passes the
search's own checks (a broken or stale option file fails here, not in a user's first run)."""

from __future__ import annotations

from dataclasses import is_dataclass

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
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


@pytest.mark.parametrize("config_name", ["search", "train", "benchmark"])
def test_the_hydra_settings_of_each_entry_point_are_where_hydra_reads_them(config_name):
    """``hydra.job_logging`` is handed to ``logging.config.dictConfig`` as it is, so a key that
    slipped into it (``chdir`` under ``job_logging`` instead of ``job``) would pass unnoticed."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        hydra = hydra_compose(config_name=config_name, return_hydra_config=True).hydra
    allowed = {"version", "formatters", "filters", "handlers", "loggers", "root", "incremental",
               "disable_existing_loggers"}
    assert set(hydra.job_logging) <= allowed and set(hydra.hydra_logging) <= allowed
    assert hydra.job.chdir is False and hydra.job.name == config_name


def test_help_lists_the_groups_to_pick_from_but_not_the_schemas():
    """``--help`` lists every config group with its options, as Hydra's template did, but not the
    ``schema`` group (the settings' types in Hydra's ConfigStore, which option files start from;
    nobody picks one): ``conf/hydra/help/renas.yaml``, ``renas.config.config_groups``."""
    from helpers import run_entry

    proc = run_entry("search.py", "--help")
    assert proc.returncode == 0, proc.stderr
    head, groups = proc.stdout.split("== Config ==")[0].split("== Configuration groups ==")
    assert "python search.py resume=<run folder>" in head  # the entry point's own header (hydra.help.header)
    listed = dict(line.split(": ", 1) for line in groups.splitlines() if ": " in line)
    ours = {p.name for p in (REPO / "conf").iterdir() if p.is_dir() and p.name != "hydra" and any(p.glob("*.yaml"))}
    assert set(listed) == ours, groups
    assert not any(line.startswith("schema") for line in groups.splitlines())
    assert listed["algorithm"].startswith("evolution, ga, local") and "lstm, none, renas" in listed["controller"]


def test_hydras_group_lists_are_made_when_a_help_template_names_them():
    """renas's ``--help`` skips Hydra's ``$APP_CONFIG_GROUPS`` / ``$HYDRA_CONFIG_GROUPS``, which its
    template does not use (2 s of 3); a template that names them, a user's own (as here) or
    ``--hydra-help``'s (the same branch), still gets them."""
    from helpers import run_entry

    own = run_entry("search.py", "--help", 'hydra.help.template="groups: $APP_CONFIG_GROUPS"')
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith("groups: algorithm: evolution, ga, local") and "\nexecutor: local, ray\n" in own.stdout


def test_help_lists_the_options_of_the_users_own_config_folders(tmp_path):
    """Hydra's own group list leaves out ``hydra.searchpath``'s folders; ours lists their options
    in the groups they add to and the groups they add (search.py and train.py, whose list is its
    defaults list's groups: a new group is not one of them)."""
    from helpers import run_entry

    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\nga:\n  budget: 5\n")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "my_data.yaml").write_text("defaults: [digits]\n")
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "wide.yaml").write_text("{}\n")
    for script in ("search.py", "train.py"):
        proc = run_entry(script, f"hydra.searchpath=[file://{tmp_path}]", "--help")
        assert proc.returncode == 0, proc.stderr
        groups = proc.stdout.split("== Config ==")[0].split("== Configuration groups ==")[1]
        listed = dict(line.split(": ", 1) for line in groups.splitlines() if ": " in line)
        assert "my_data" in listed["dataset"].split(", ") and "digits" in listed["dataset"], groups
        if script == "search.py":
            assert "mine" in listed["experiment"].split(", ") and listed["sweeps"] == "wide", groups
        else:
            assert "experiment" not in listed and "sweeps" not in listed, groups


@pytest.mark.parametrize("config_name", ["search", "train", "benchmark"])
def test_every_entry_point_uses_the_help_without_the_schemas(config_name):
    """train.py and renas.benchmark get the same ``--help`` template (each its own header); their
    ``--help`` is search.py's code path, tested above."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        hydra = hydra_compose(config_name=config_name, return_hydra_config=True).hydra
    assert hydra.runtime.choices["hydra/help"] == "renas"
    assert "${renas.config_groups:}" in OmegaConf.to_container(hydra.help)["template"]
    assert "$APP_CONFIG_GROUPS" not in OmegaConf.to_container(hydra.help)["template"]


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
    with pytest.raises(ConfigError, match=r"^search_space\.stem='bogus' is not one of: cifar, imagenet$"):
        check_schema(OmegaConf.create({"search_space": {"_target_": "renas.space.renas_cell.RenasCellSpace", "stem": "bogus"}}))
    check_schema(OmegaConf.create({"dataset": {"_target_": "renas.data.DigitsDataModule", "batch_size": 3}}))


def test_a_value_outside_a_settings_choices_fails_while_composing_also_with_cfg_job(tmp_path):
    """Choices are types (``renas.schema.choice``): OmegaConf refuses another value while Hydra
    composes, so ``--cfg job`` (which runs no callback) refuses it too, in the same one line as a
    range; a user's option file with a bad choice is named."""
    from helpers import run_entry

    proc = run_entry("search.py", "ga.selection=best", "--cfg", "job")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: ga.selection='best' is not one of: tournament, roulette"
    assert proc.stdout == ""
    proc = run_entry("train.py", "optim.scheduler=step", "--cfg", "job")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: optim.scheduler='step' is not one of: cosine, none"
    (tmp_path / "ga").mkdir()
    (tmp_path / "ga" / "mine.yaml").write_text("defaults:\n  - default\n  - _self_\nremoval: youngest\n")
    proc = run_entry("search.py", f"hydra.searchpath=[file://{tmp_path}]", "ga=mine", "--cfg", "job")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: In 'ga/mine': ga.removal='youngest' is not one of: worst, oldest"
    proc = run_entry("search.py", "ga.selection=1.5", "--cfg", "job")  # not a string: the same line
    assert proc.returncode == 2 and proc.stderr.strip() == "error: ga.selection=1.5 is not one of: tournament, roulette"
    proc = run_entry("search.py", "ga.selection=roulette", "--cfg", "job")
    assert proc.returncode == 0 and "selection: roulette" in proc.stdout, proc.stderr


def test_a_choice_is_its_plain_string_to_the_code():
    """A Choice member compares, hashes, prints and serialises as its string, and leaves the
    config as a plain ``str`` (``renas.config.plain``, ``str()``): state files and checkpoints are
    read with ``weights_only=True``, which would refuse an enum."""
    import io
    import json
    import pickle

    import torch

    import renas.config
    import renas.schema
    from renas.schema import Choice

    cfg = compose("search", ["ga.selection=roulette", "loop.on_failure=skip"])
    value = cfg.ga.selection
    assert isinstance(value, Choice) and value == "roulette" and value != "tournament"
    assert {"roulette": 1}[value] == 1 and value in ("roulette",)
    assert (str(value), f"{value}", repr(value), json.dumps(value)) == ("roulette", "roulette", "'roulette'", '"roulette"')
    assert type(str(value)) is str and pickle.loads(pickle.dumps(value)) is value
    plain = renas.config.plain(cfg.loop)
    assert plain["on_failure"] == "skip" and type(plain["on_failure"]) is str
    buf = io.BytesIO()
    torch.save({"selection": str(value), **plain}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["on_failure"] == "skip"
    choices = [t for t in vars(renas.schema).values() if isinstance(t, type) and issubclass(t, Choice) and t is not Choice]
    assert len(choices) >= 15 and all(m.name == m.value for t in choices for m in t)  # the YAML's string is the member's name


def test_compose_outside_a_hydra_app_checks_the_values_as_the_commands_do():
    from renas.config import compose
    from renas.errors import ConfigError, one_line

    cfg = compose("search", ["ga.mutation_rate=0.2"])
    assert cfg.ga.mutation_rate == 0.2 and "algorithm" in cfg
    assert compose("train", []).trainer.max_epochs >= 1
    with pytest.raises(ConfigError) as e:
        compose("search", ["ga.mutation_rate=2"])
    assert one_line(e.value).startswith("ga.mutation_rate=2")
    assert compose("search", ["ga.mutation_rate=2"], check=False).ga.mutation_rate == 2  # the caller checks later
