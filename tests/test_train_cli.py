"""train.py end to end, as a user runs it: result files, W&B offline run, clear errors.

Most cases run ``train.py`` in this process (:func:`helpers.run_entry`: the same ``__main__``
and exit status, without a new interpreter); the W&B one runs it as a real command."""

from __future__ import annotations

import json
import shlex

import pytest

from helpers import REPO, compose, run_cli, run_entry, wandb_run
from renas.tracking.versions import versions

RESULT_FIELDS = {"arch", "search_space", "dataset", "epochs", "val_acc", "test_acc", "params", "flops", "seconds", "threads"}
RENASNET_STR = (
    "|sep_conv_5x5~0|sep_conv_3x3~1|+|identity~1|sep_conv_3x3~1|+|sep_conv_3x3~0|avg_pool_3x3~0|"
    "+|sep_conv_5x5~1|sep_conv_3x3~0|+|identity~2|sep_conv_3x3~2|"
)
CNN_ARCH = "depth:2|width1:16|width2:32|width3:8|act1:relu|act2:gelu|act3:relu"  # examples/digits_cnn.py
NB201_ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
# one thread: two threads on a busy 2-core machine can make an epoch 50x slower
FAST = ["threads=1", "trainer.enable_progress_bar=false"]


def train(tmp_path, *overrides: str, shell: bool = False):
    """``python train.py`` (``shell``: as a real command; else in this process)."""
    run_dir = tmp_path / "run"
    args = (*FAST, f"hydra.run.dir={run_dir}", *overrides)
    proc = run_cli("train.py", *args, timeout=600) if shell else run_entry("train.py", *args)
    return proc, run_dir


def result_of(proc, run_dir) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run_dir / "result.json").read_text())


@pytest.mark.slow
def test_trains_renasnet_on_digits(tmp_path):
    """A few epochs of the reference architecture learn digits (3 epochs reach 0.93-0.99 on
    seeds 0-4 with F=8: the cosine schedule ends at lr 0, so BatchNorm's running statistics
    catch up; after 1-2 epochs validation accuracy is still erratic). The architecture is given
    in the paper's list form, as an ``arch=`` override: it is RENASNet."""
    proc, run_dir = train(tmp_path, "trainer.max_epochs=3", "search_space.channels=8", "logger=none",
                          "arch=[[1,0],[0,1],[7,1],[0,1],[0,0],[3,0],[1,1],[0,0],[7,2],[0,2]]")
    result = result_of(proc, run_dir)
    assert RESULT_FIELDS <= set(result)
    assert result["val_acc"] > 0.80 and result["test_acc"] > 0.80
    assert result["arch"] == RENASNET_STR
    assert (result["search_space"], result["dataset"], result["epochs"]) == ("renas_cell", "digits", 3)
    assert result["params"] > 0 and result["flops"] > 0 and result["seconds"] > 0
    assert (run_dir / "model.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert not (run_dir / "wandb").exists()
    assert f"val_acc={result['val_acc']:.4f}" in proc.stdout

    # the checkpoint gives back a ready network: in eval mode, the trained weights, the same test accuracy
    import torch

    from helpers import compose
    from renas.build import build_datamodule
    from renas.train.final import load_trained

    net, meta = load_trained(run_dir / "model.ckpt")
    assert not net.training and meta["arch"] == RENASNET_STR and meta["num_classes"] == 10
    dm = build_datamodule(compose("train", ["logger=none"]).dataset)  # the data train.py used
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    correct = total = 0
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            correct += int((net(dm.transform(x, train=False)).argmax(1) == y).sum())
            total += len(y)
    assert correct / total == pytest.approx(result["test_acc"], abs=1e-6)


@pytest.mark.slow
def test_default_logger_writes_one_offline_wandb_run_also_with_two_devices(tmp_path):
    """The default logger is W&B offline; the trained model is kept as an artifact that says what
    it is. Trained on two devices (DDP on two CPU processes: Lightning starts the command again
    for the second one), it is still one W&B run, one result line and one result.json, written
    by process 0. Started with ``arch_from``, it records the search's W&B artifact
    (``search-<its run id>``, from the search's summary.json) in its config and in the model's
    metadata. (The small CNN of the digits_cnn example: the claim is not about the space.)"""
    search = tmp_path / "search"
    search.mkdir()
    (search / "summary.json").write_text(json.dumps({"best": {"arch": CNN_ARCH}, "search_space": "digits_cnn",
                                                     "wandb_run_id": "abc123"}))
    proc, run_dir = train(
        tmp_path,
        "trainer.max_epochs=1",
        "search_space=digits_cnn",
        f"arch_from={search}",
        "dataset.subset=0.3",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        shell=True,
    )
    result = result_of(proc, run_dir)
    assert result["arch"] == CNN_ARCH
    assert proc.stdout.count("val_acc=") == 1
    assert (run_dir / "train_ddp_process_1.log").is_file()  # the second process did run
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    run = wandb_run(run_dir)
    assert run["summary"]["val_acc"] == pytest.approx(result["val_acc"])
    assert run["summary"]["arch"] == CNN_ARCH
    assert run["config"]["trainer"]["max_epochs"] == 1
    recorded = run["config"]["versions"]
    assert recorded.get("value", recorded) == versions() == result["versions"]
    assert not {"meta", "num_classes", "scheduler", "aux_weight"} & set(run["config"])  # the module's, not logged
    assert any("val/acc" in row for row in run["history"])
    (model,) = [x for x in run["artifacts"] if x["type"] == "model"]
    assert model["name"] == f"model-{run['id']}" and set(model["files"]) == {"model.ckpt", "result.json"}
    recorded = run["config"]["search_artifact"]
    assert (recorded.get("value") if isinstance(recorded, dict) else recorded) == "search-abc123"
    assert model["metadata"]["search_artifact"] == "search-abc123" and str(search) in model["metadata"]["source"]
    assert model["metadata"]["arch"] == CNN_ARCH and model["metadata"]["test_acc"] == pytest.approx(result["test_acc"])


@pytest.mark.slow
def test_trains_a_nasbench201_cell(tmp_path):
    proc, run_dir = train(
        tmp_path,
        "search_space=nasbench201",
        "search_space.channels=4",
        "search_space.cells_per_stage=1",
        f"arch={NB201_ARCH}",
        "trainer.max_epochs=1",
        "logger=none",
        "save_checkpoint=false",
    )
    result = result_of(proc, run_dir)
    assert (result["arch"], result["search_space"], result["epochs"]) == (NB201_ARCH, "nasbench201", 1)
    assert 0.0 <= result["val_acc"] <= 1.0
    assert not (run_dir / "model.ckpt").exists() and not (run_dir / "checkpoints").exists()


# (overrides, what stderr must say); genotype messages are covered in test_spaces.py
BAD_INPUT = {
    "unknown-dataset": (["dataset=nope"], ["Could not find 'dataset/nope'"]),
    "missing-files": (
        ["dataset=mnist", "dataset.root={empty}", "dataset.download=false"],
        ["error: MNIST files train-images-idx3-ubyte.gz", "{empty}", "put them there"],
    ),
    "bad-arch": (
        ["arch=|sep_conv_3x3~0|sep_conv_3x3~1|+|max_pool_3x3~0|conv_3x3~1|"],
        ["error: normal cell: expected 5 blocks joined by '+', got 2"],
    ),
    "negative-epochs": (["trainer.max_epochs=-1"], ["error: trainer.max_epochs=-1 is out of range"]),
    # both would be trained: refused before either is read (arch_from's folder need not exist)
    "arch-and-arch_from": (["arch_from={empty}", f"arch={RENASNET_STR}"], ["error: arch=", "arch_from={empty}: give one of them"]),
    # a group of search.py's config: the group is named, not ga.budget as a setting of a `ga`
    "search-group": (["ga.budget=5"], ["error: ga is not a setting of train.py's config (settings: search_space, dataset"]),
}


@pytest.mark.parametrize("overrides, words", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_clear_line(tmp_path, overrides, words):
    """Non-zero exit, no traceback, no run folder; our errors are one line ``error: ...``
    (Hydra's own config errors keep Hydra's message)."""
    empty = tmp_path / "no_data"
    empty.mkdir()
    proc, run_dir = train(tmp_path, "logger=none", *(o.format(empty=empty) for o in overrides))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word.format(empty=empty) in proc.stderr, proc.stderr
    if words[0].startswith("error:"):
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint", "is corrupt or not a renas checkpoint"),
    ({"hyper_parameters": {"meta": {"arch": "x"}}, "state_dict": {}}, "does not record space_config, in_channels, num_classes"),
])
def test_load_trained_refuses_what_it_cannot_rebuild_in_one_line(tmp_path, content, message):
    import torch

    from renas.errors import ConfigError
    from renas.train.final import load_trained

    path = tmp_path / "model.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ConfigError, match=message):
        load_trained(path)


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_checkpoint_to_the_same_epochs(tmp_path):
    """SIGKILL in the second epoch (digits: 18 steps an epoch, the 25th step is in epoch 2), then
    ``train.py resume=<folder>``: the training continues from checkpoints/last.ckpt (epoch 1), in
    the same folder, to max_epochs."""
    import signal

    from helpers import drive

    run_dir = tmp_path / "run"
    # the digits CNN space (its reference architecture): epochs of half a second, the same steps per epoch
    args = ["train.py", *FAST, "trainer.max_epochs=2", "search_space=digits_cnn", "logger=csv", f"hydra.run.dir={run_dir}"]
    proc = drive("train", 25, *args)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and not (run_dir / "result.json").exists()
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    result = result_of(proc, run_dir)
    assert result["epochs"] == 2 and result["val_acc"] > 0.3
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "model.ckpt").is_file()
    assert not (tmp_path / "new").exists()  # it continued in its own folder
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'again'}")
    assert proc.returncode == 0 and "finished" in proc.stdout
    # a setting on the resume command was silently not taken (trainer.max_epochs=5: it trained to 2)
    proc = run_entry("train.py", f"resume={run_dir}", "trainer.max_epochs=5", f"hydra.run.dir={tmp_path / 'more'}")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: resume={run_dir}: a training continues with its own settings, and trainer.max_epochs=5 would not be "
        f"taken (only threads= may change on a resume): leave it out, or start a new training"), proc.stderr
    assert not (tmp_path / "more").exists()
    # resumed from an epoch's end, it draws the same batches as a training never stopped (the
    # checkpoint carries the random streams: the loader's shuffle drew another order before)
    whole = tmp_path / "whole"
    uninterrupted = result_of(run_entry(*args[:-1], f"hydra.run.dir={whole}"), whole)
    assert (result["val_acc"], result["test_acc"]) == (uninterrupted["val_acc"], uninterrupted["test_acc"])
    assert result["seconds"] > 0
    # metrics.csv holds every epoch (Lightning's CSV writer deleted the file it found: epoch 0 was lost), the
    # same rows as the training never stopped (the killed run's rows after its checkpoint are not kept twice)
    import csv

    def rows(folder):
        with open(folder / "metrics.csv", newline="") as f:
            return [{k: v for k, v in row.items() if "time" not in k and "seconds" not in k} for row in csv.DictReader(f)]

    assert rows(run_dir) == rows(whole) and {"0", "1"} <= {r["epoch"] for r in rows(run_dir)}


def test_a_training_stopped_in_its_final_test_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Ctrl-C / SIGTERM during the test after the last epoch (Lightning's own shutdown, a
    ``SystemExit``) was status 1 with no message, and its resume a KeyError: now the resume
    command, and a resume that validates and tests the last epoch's weights."""
    from renas.train import module

    args = [*FAST, "trainer.max_epochs=1", "search_space=digits_cnn", "logger=none"]
    whole = tmp_path / "whole"
    uninterrupted = result_of(run_entry("train.py", *args, f"hydra.run.dir={whole}"), whole)
    original = module.ClassifierModule.test_step

    def test_step(self, *a, **k):  # Ctrl-C as it reaches Lightning, in the first test batch
        raise KeyboardInterrupt

    monkeypatch.setattr(module.ClassifierModule, "test_step", test_step)
    run_dir = tmp_path / "run"
    proc = run_entry("train.py", *args, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 130 and f"resume={run_dir}" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (run_dir / "result.json").exists()
    monkeypatch.setattr(module.ClassifierModule, "test_step", original)
    result = result_of(run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}"), run_dir)
    assert (result["epochs"], result["val_acc"], result["test_acc"]) == (
        uninterrupted["epochs"], uninterrupted["val_acc"], uninterrupted["test_acc"])


def test_a_foreign_checkpoint_or_state_file_is_one_line_or_a_warning(tmp_path):
    """A whole file that is not this training's checkpoint (another program's ``torch.save``,
    another network's training) is one line, not Lightning's traceback; a torn
    ``.train_state.json`` only starts a new W&B run."""
    import torch

    args = [*FAST, "trainer.max_epochs=1", "search_space=digits_cnn", "logger=none"]
    run_dir = tmp_path / "run"
    result_of(run_entry("train.py", *args, f"hydra.run.dir={run_dir}"), run_dir)
    (run_dir / "result.json").unlink()  # as if stopped before the end: resume reads last.ckpt
    last = run_dir / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    torch.save({"foo": torch.zeros(3)}, last)
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [
        f"error: resume: {last} is not a checkpoint of a training (no state_dict, epoch, global_step, "
        f"pytorch-lightning_version, loops): train it again"], proc.stderr[-2000:]
    ckpt = torch.load(io_bytes(good), weights_only=True)
    ckpt["state_dict"] = {k + "_other": v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, last)
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and "holds another network's weights (first difference: " in proc.stderr
    last.write_bytes(good)
    state = json.loads((run_dir / ".train_state.json").read_text())
    (run_dir / ".train_state.json").write_text(json.dumps({**state, "versions": {**state["versions"], "torch": "0.0.1"}}))
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and (run_dir / "result.json").is_file(), proc.stderr[-2000:]
    assert f"was run with other versions than this process's (torch 0.0.1 -> {versions()['torch']})" in (
        run_dir / "train.log").read_text()
    (run_dir / "result.json").unlink()
    (run_dir / ".train_state.json").write_text('{"run_')  # torn
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and (run_dir / "result.json").is_file(), proc.stderr[-2000:]
    assert ".train_state.json cannot be read (JSONDecodeError); the resumed training logs to a new W&B run" in (
        run_dir / "train.log").read_text()


def io_bytes(data: bytes):
    import io

    return io.BytesIO(data)



def test_a_training_that_diverges_or_whose_network_fails_is_one_line(tmp_path, monkeypatch):
    """A learning rate far too high (NaN loss) and a network that raises in training ended train.py
    in a page of traceback (44 frames). Both are now one line, status 2, naming what failed and
    where; the run folder keeps its log."""
    proc, run_dir = train(tmp_path, "logger=none", "trainer.max_epochs=1", "dataset.subset=0.3",
                          "optim.optimizer.lr=1e12")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith("error: the training diverged: training loss is nan at epoch 0")
    assert lines[0].endswith("; lower optim.optimizer.lr and train it again")
    assert (run_dir / "train.log").is_file()

    from renas.train.module import ClassifierModule

    def broken(self, batch, batch_idx):
        raise ValueError("a user's op broke\non two lines")

    monkeypatch.setattr(ClassifierModule, "training_step", broken)
    proc, run_dir = train(tmp_path / "broken", "logger=none", "trainer.max_epochs=1", "dataset.subset=0.3")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0] == ("error: the training failed: ValueError: a user's op broke (at test_train_cli.py:"
                        f"{broken.__code__.co_firstlineno + 1}); RENAS_DEBUG=1 shows the traceback")

def test_resume_of_a_folder_without_a_checkpoint_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_entry("train.py", f"resume={tmp_path / 'a_file'}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: resume={tmp_path / 'a_file'}: a file, not a run folder (give the folder that holds the training)")
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text("- logger=none\n")
    proc = run_entry("train.py", f"resume={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and "no checkpoints/last.ckpt" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


def test_a_torn_last_checkpoint_falls_back_on_best_or_is_one_line(tmp_path):
    """A truncated last.ckpt (a folder copied while it was written, a full disk) is never loaded:
    resume continues from a whole best.ckpt, and without one says so in one line."""
    import io

    import torch
    from hydra import initialize_config_dir

    from renas.train.final import prepare_train_resume

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- logger=none\n")
    (run / "checkpoints").mkdir()
    buf = io.BytesIO()
    torch.save({"epoch": 3, "state_dict": {"w": torch.zeros(1000)}}, buf)
    (run / "checkpoints" / "last.ckpt").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    proc = run_entry("train.py", f"resume={run}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and "last.ckpt is damaged" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1

    (run / "checkpoints" / "best.ckpt").write_bytes(buf.getvalue())
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        _, folder, start = prepare_train_resume(run)
    assert folder == run.resolve() and start == run.resolve() / "checkpoints" / "best.ckpt"


@pytest.mark.slow
# the signal lands mid-epoch, so the resume starts mid-epoch (Lightning says so: the data loader
# starts its epoch again; the README's train.py section says what that means)
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_sigterm_checkpoints_and_prints_the_resume_command(tmp_path):
    """What a scheduler sends at a job's time limit: the training saves where it is, exits 143
    with the resume command, and the resume finishes the epochs."""
    import signal

    from helpers import signal_at

    run_dir = tmp_path / "run"
    # the digits CNN space: half a second an epoch, so 8 epochs leave the signal plenty of training to land in
    proc = signal_at("train.py", [*FAST, "trainer.max_epochs=8", "search_space=digits_cnn", "logger=none",
                                  f"hydra.run.dir={run_dir}"], signal.SIGTERM,
                     path=run_dir / "checkpoints" / "last.ckpt")  # the event: the first epoch's checkpoint
    err = proc.stderr
    assert proc.returncode == 143, err[-2000:]
    assert f"python train.py resume={run_dir}" in err and "Traceback" not in err
    assert not (run_dir / "result.json").exists()
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert result_of(proc, run_dir)["epochs"] == 8


def test_help_lists_only_the_groups_train_py_takes():
    """train.py's ``--help`` lists the groups of its own config (its defaults list), not
    search.py's algorithm, controller, evaluator, ... (which it refuses); search.py and
    renas.benchmark its own config's (all but ``hparams_search``, a sweeper of search.py's);
    search.py lists every group (conf/hydra/help/renas.yaml: ``groups``)."""

    def groups(*command: str) -> set[str]:
        proc = run_entry(*command, "--help")
        assert proc.returncode == 0, proc.stderr
        listed = proc.stdout.split("== Config ==")[0].split("== Configuration groups ==")[1]
        return {line.split(": ", 1)[0] for line in listed.splitlines() if ": " in line}

    choices = compose("train", []).keys()  # the composed config: its groups and its own keys
    train_groups = groups("train.py")
    assert train_groups == {"search_space", "dataset", "trainer", "optim", "logger"} and train_groups <= set(choices)
    everything = groups("search.py")
    assert {"algorithm", "controller", "evaluator", "executor", "experiment", "ga", "hparams_search"} <= everything
    assert train_groups < everything and groups("renas.benchmark") == everything - {"hparams_search"}


def _fake_run(folder, files: dict[str, str]):
    """A run folder as train.py or search.py leaves it (the files that mark it, small stand-ins)."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def _digest(folder) -> dict[str, bytes]:
    """Every file's bytes; the lock a command takes on the folder (.renas.lock, empty) aside."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".renas.lock"}


FINISHED_TRAINING = {".hydra/overrides.yaml": "- logger=none\n", ".hydra/config.yaml": "seed: 0\n", "result.json": '{"val_acc": 0.5}',
                     "model.ckpt": "weights", ".train_state.json": '{"run_id": null}', "checkpoints/last.ckpt": "last"}
STOPPED_TRAINING = {k: v for k, v in FINISHED_TRAINING.items() if k not in ("result.json", "model.ckpt")}
SEARCH = {".hydra/overrides.yaml": "- ga.budget=20\n- algorithm=rea\n", ".hydra/search/overrides.yaml": "- ga.budget=20\n",
          "state.pt": "state", "history.jsonl": "", "summary.json": '{"best": null}'}
BENCHMARK = {".hydra/overrides.yaml": "- seeds=2\n", "benchmark.json": "{}", "benchmark.md": "", "benchmark.log": ""}


@pytest.mark.parametrize("script, files, expected", [
    ("train.py", FINISHED_TRAINING, "already holds a finished training (result.json); choose another hydra.run.dir; nothing in it was changed"),
    ("train.py", STOPPED_TRAINING, "already holds a training; continue it with: python train.py resume={run} (or choose another"),
    ("train.py", SEARCH, "holds a search; train its best architecture with: python train.py arch_from={run} (or choose another"),
    ("search.py", FINISHED_TRAINING, "already holds a training (train.py); choose another hydra.run.dir"),
    ("train.py", BENCHMARK, "already holds a benchmark (benchmark.json); choose another hydra.run.dir for the training"),
], ids=["train-in-finished-training", "train-in-stopped-training", "train-in-search", "search-in-training",
        "train-in-benchmark"])
def test_a_new_run_in_a_folder_that_holds_one_is_refused_and_changes_nothing(tmp_path, script, files, expected):
    """``hydra.run.dir=<an earlier run's folder>``: refused before Hydra writes its files there
    (its .hydra/ is what resume reads), in one line that says what to do instead."""
    run = _fake_run(tmp_path / "run", files)
    before = _digest(run)
    proc = run_entry(script, "logger=none", "threads=1", f"hydra.run.dir={run}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"error: {run} ") and expected.format(run=run) in lines[0] and "nothing in it was changed" in lines[0]
    assert _digest(run) == before


def test_resume_still_uses_the_training_folder_and_only_that(tmp_path):
    """``resume=<training>`` is not a new run in it; with ``hydra.run.dir`` at the same folder
    Hydra would overwrite the overrides resume reads: refused."""
    run = _fake_run(tmp_path / "run", FINISHED_TRAINING)
    proc = run_entry("train.py", f"resume={run}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 0 and "is finished (result.json); nothing to resume" in proc.stdout, proc.stderr[-2000:]
    before = _digest(run)  # the resume logs into the folder's own train.log
    proc = run_entry("train.py", f"resume={run}", f"hydra.run.dir={run}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "leave hydra.run.dir out" in lines[0], proc.stderr[-2000:]
    assert _digest(run) == before and not (tmp_path / "new").exists()


def test_resume_of_a_search_folder_points_at_arch_from_and_leaves_no_folder(tmp_path, monkeypatch):
    """A search's folder as ``resume=``: one line (it was a 94-line ConfigCompositionException
    about ga.budget), and no ``outputs/train/<date>/<time>`` left in the working folder; a
    folder whose overrides are not train.py's is one line too."""
    monkeypatch.chdir(tmp_path)
    search = _fake_run(tmp_path / "search", SEARCH)
    proc = run_entry("train.py", f"resume={search}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    # (from another folder than the script's, the command names the script's path: run_entry's is absolute)
    assert lines[0] == (f"error: resume={search}: that is a search run folder, not a training; train its best "
                        f"architecture with: python {shlex.quote(str(REPO / 'train.py'))} arch_from={search}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search"]
    other = _fake_run(tmp_path / "other", {".hydra/overrides.yaml": "- ga.budget=20\n"})
    proc = run_entry("train.py", f"resume={other}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "do not compose with train.py's config" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "search"]


def test_arch_from_of_a_space_of_its_own_says_what_train_py_takes(tmp_path):
    """A search of a space from an experiment (toy_table's genes space, named ``toy``): the
    message names settings train.py accepts, not ``experiment=``, which train.py refuses."""
    search = _fake_run(tmp_path / "search", {"summary.json": '{"best": {"arch": "op1:conv3"}, "search_space": "toy"}'})
    proc = run_entry("train.py", "logger=none", f"arch_from={search}", f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "used the toy space" in lines[0] and "search_space=<option> and search_space.* settings" in lines[0]
    assert "(or experiment)" not in lines[0] and "train.py takes no experiment=" in lines[0]
    assert not (tmp_path / "run").exists()


def test_arch_from_a_search_with_other_space_settings_or_unfinished_says_so(tmp_path, caplog):
    """A search with ``search_space.shared_reduction=false``: its best (two cells) did not parse
    and the line did not say which setting to add. A search stopped short (SIGTERM:
    ``finished: false``) was trained without a word."""
    from renas.build import build_space
    from renas.config import compose
    from renas.errors import ConfigError
    from renas.train.final import resolve_arch

    two = RENASNET_STR + ";" + RENASNET_STR.replace("sep_conv_5x5", "conv_3x3")
    search = _fake_run(tmp_path / "search", {
        "summary.json": json.dumps({"best": {"arch": two}, "search_space": "renas_cell", "finished": True}),
        ".hydra/config.yaml": "search_space:\n  name: renas_cell\n  shared_reduction: false\n"})
    cfg = compose("train", [f"arch_from={search}"])
    with pytest.raises(ConfigError) as e:
        resolve_arch(cfg, build_space(cfg.search_space))
    assert str(e.value).startswith(f"arch_from={search}: its best architecture does not fit this renas_cell space (")
    assert str(e.value).endswith("that search had search_space.shared_reduction=false: add it")
    (search / "summary.json").write_text(json.dumps({"best": {"arch": RENASNET_STR}, "search_space": "renas_cell",
                                                     "finished": False, "stopped": "terminated", "evaluations": 12,
                                                     "budget": 30}))
    with caplog.at_level("WARNING", logger="renas.train"):
        genotype, where = resolve_arch(cfg, build_space(cfg.search_space))
    assert where == f"best of {search}"
    assert (f"arch_from={search}: that search did not finish (terminated after 12 of 30 evaluations): training the best "
            f"it found so far; continue it with: ") in caplog.text


@pytest.mark.parametrize("searched", ["mnist", "digits"])
def test_arch_from_a_search_on_another_dataset_says_so(tmp_path, searched):
    """The cell of a search on another data set is trained on train.py's (it can be meant: a
    subset then the full set), and the log says which data set each used; the same data set,
    or a table search (no data set), says nothing."""
    search = _fake_run(tmp_path / "search", {"summary.json": json.dumps(
        {"best": {"arch": CNN_ARCH}, "search_space": "digits_cnn", "dataset": searched})})
    proc, run_dir = train(tmp_path, "logger=none", "search_space=digits_cnn", f"arch_from={search}",
                          "trainer.max_epochs=1", "dataset.subset=0.2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = (f"arch_from={search}: that search ran on dataset=mnist; this training uses dataset=digits "
            f"(add dataset=mnist to train on the search's data)")
    assert (line in (run_dir / "train.log").read_text()) == (searched == "mnist")


def test_arch_from_a_search_that_held_out_another_test_split_says_so(tmp_path):
    """Same data set, another ``test_fraction``: train.py's test split is not the one the search
    held out, so its images may be ones the search trained or validated on. ``split_seed``
    (it moves the validation split only), a ``test_fraction`` written otherwise, and data sets
    with a test split of their own (MNIST, an image folder's ``test/``) say nothing."""
    from omegaconf import OmegaConf

    from renas.train.final import other_test_split

    search = tmp_path / "search"
    (search / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose("search", ["dataset.test_fraction=0.3", "dataset.split_seed=5"]), search / ".hydra" / "config.yaml")
    line = other_test_split(compose("train", [f"arch_from={search}"]))
    assert line == (f"arch_from={search}: that search held out dataset.test_fraction=0.3 (this training: 0.2), so "
                    f"this training's test split is not the one it held out and may hold images it trained or "
                    f"validated on (add dataset.test_fraction=0.3 to test on its held-out images)")
    assert other_test_split(compose("train", [f"arch_from={search}", "dataset.test_fraction=0.30"])) is None
    assert other_test_split(compose("train", [f"arch_from={search}", "dataset=mnist"])) is None
    images = tmp_path / "images"
    for part in ("train", "test"):
        (images / part).mkdir(parents=True)
    OmegaConf.save(compose("search", ["dataset=image_folder", f"dataset.root={images}"]), search / ".hydra" / "config.yaml")
    folder = ["dataset=image_folder", f"dataset.root={images}", "dataset.test_fraction=0.5"]
    assert other_test_split(compose("train", [f"arch_from={search}", *folder])) is None  # its own test/
    (images / "test").rmdir()
    assert "held out dataset.test_fraction=0.2 (this training: 0.5)" in other_test_split(
        compose("train", [f"arch_from={search}", *folder]))
    (search / ".hydra" / "config.yaml").write_text("{not: [yaml")  # unreadable: nothing to compare, no error
    assert other_test_split(compose("train", [f"arch_from={search}", "dataset.test_fraction=0.5"])) is None


def test_arch_from_an_unfinished_search_says_how_to_finish_it(tmp_path):
    search = tmp_path / "search"
    search.mkdir()
    (search / "history.jsonl").write_text('{"step": 0}\n')  # killed before it wrote summary.json
    proc = run_entry("train.py", "logger=none", f"arch_from={search}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: arch_from={search}: that search did not finish (no summary.json); continue it with: "
        f"python search.py resume={search}, then train its best"), proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_training_of_a_users_config_folder_resumes_from_anywhere(tmp_path, monkeypatch):
    """A training composed from the user's own config folder (``hydra.searchpath``: a data set
    option of theirs) resumes from another folder with the command it printed: the saved
    overrides were composed without that folder ("Could not find 'dataset/mydigits'")."""
    import signal

    from helpers import drive

    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / "mydigits.yaml").write_text("defaults:\n  - digits\n  - _self_\n")
    run_dir = tmp_path / "run"
    proc = drive("train", 25, "train.py", *FAST, "trainer.max_epochs=2", "logger=none", "dataset=mydigits",
                 f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.run.dir={run_dir}")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    monkeypatch.chdir(tmp_path)
    proc = run_entry("train.py", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'new'}")
    assert result_of(proc, run_dir)["epochs"] == 2


@pytest.mark.parametrize("summary, message", [
    ('{"best": null, "evaluations": 0, "finished": false, "stopped": "terminated"}',
     "that search stopped before its first child was evaluated (stopped: terminated); continue it with: python "
     "search.py resume={run}"),
    ('{"best": null, "evaluations": 3, "finished": true}',
     "that search has no result: every one of its 3 children failed (their errors are in its history.jsonl)"),
    ('{"best": "x"}', "its summary.json is not a search's (no best architecture)"),
    ('{"best": {"arch', "its summary.json cannot be read (not JSON: cut short, or not a search's)"),
])
def test_arch_from_a_search_without_a_result_says_so(tmp_path, summary, message):
    """``arch_from`` of a search whose every child failed said "summary.json has no best
    architecture ('NoneType' object is not subscriptable)"."""
    run = tmp_path / "search"
    run.mkdir()
    (run / "summary.json").write_text(summary)
    proc = run_entry("train.py", *FAST, f"arch_from={run}", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: arch_from={run}: {message.format(run=run)}", \
        proc.stderr[-2000:]
    assert not (tmp_path / "new").exists()
