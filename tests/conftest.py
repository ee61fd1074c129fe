"""Shared test setup: offline W&B, quiet CPU threads, and the ``../shared`` data folder.

- ``SHARED``: the folder beside the repository that holds real third-party data
  (``../shared/data/...``); ``RENAS_SHARED`` overrides it, as it does in ``conf/``.
- ``@pytest.mark.needs_shared`` (or ``needs_shared("data/mnist")`` for a sub-path): the test
  is skipped, with the path in the reason, when that data is absent.
- Every test runs with W&B offline and silent, its files in a temporary folder, so no test
  ever touches the network or ``~/.config/wandb``; subprocesses inherit the same environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RENAS_SHARED") or REPO.parent / "shared").expanduser().resolve()

#: torch intra-op threads for in-process tests: 1 keeps a busy 2-core machine from thrashing
TEST_THREADS = int(os.environ.get("RENAS_TEST_THREADS", "1"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_shared(path='data'): needs ../shared (or $RENAS_SHARED)/<path>; skipped when absent",
    )


#: seconds each module's tests took (``pytest --durations=0``, summed per module, 2-core machine,
#: the whole suite on 2 workers, re-measured 2026-12-01 at ba5cdd0): the longest start first
MODULE_SECONDS = {
    "test_resume": 80, "test_bad_input": 67, "test_train_cli": 66, "test_benchmark": 58, "test_executors": 50,
    "test_sweeps": 37, "test_config_tree": 26, "test_genes_space": 22, "test_disk_full": 20, "test_journal": 17,
    "test_algorithms": 17, "test_resume_training": 16, "test_search_run": 15, "test_search_units": 12,
    "test_package": 11, "test_inherit": 9, "test_failures": 8, "test_ordering_bound": 8, "test_interrupts": 8,
    "test_benchmark_scripts": 7, "test_table": 6, "test_networks": 5,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first (stable otherwise): with ``--dist loadfile`` each module runs on
    one worker, and starting the long ones first lets the short ones fill the gaps at the end
    instead of one worker finishing a long module alone (longest-processing-time-first). A module
    not in :data:`MODULE_SECONDS` counts 30 s if it has slow tests, else 5 s."""
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}

    def seconds(item: pytest.Item) -> float:
        name = item.module.__name__
        return MODULE_SECONDS.get(name, 30 if name in slow_modules else 5)

    items.sort(key=lambda item: -seconds(item))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs_shared"):
        sub = mark.args[0] if mark.args else mark.kwargs.get("path", "data")
        path = SHARED / sub
        if not path.exists():
            pytest.skip(f"needs shared data at {path} (set RENAS_SHARED to the folder holding data/)")


@pytest.fixture(scope="session", autouse=True)
def _offline_environment(tmp_path_factory: pytest.TempPathFactory):
    """W&B offline and silent with all its files under a temporary folder; no debug modes."""
    wandb_home = tmp_path_factory.mktemp("wandb")
    env = {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(wandb_home),
        "WANDB_CACHE_DIR": str(wandb_home / "cache"),
        "WANDB_CONFIG_DIR": str(wandb_home / "config"),
        "WANDB_DATA_DIR": str(wandb_home / "data"),
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "RENAS_SHARED": str(SHARED),
        # processes the tests start (commands, sweep jobs, DDP ranks, Ray and local workers) use one
        # torch thread unless told otherwise: two test workers on two cores, never oversubscribed
        "OMP_NUM_THREADS": str(TEST_THREADS),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        # these change how errors are reported; tests check the user-facing behaviour
        for key in ("HYDRA_FULL_ERROR", "RENAS_DEBUG", "WANDB_API_KEY"):
            mp.delenv(key, raising=False)
        yield


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared data folder (``SHARED``); the test is skipped when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"needs shared data at {SHARED} (set RENAS_SHARED)")
    return SHARED


@pytest.fixture(autouse=True)
def _own_wandb_service():
    """A W&B run started in this process sets ``WANDB_SERVICE`` so that its children share its
    service; a later test's subprocess (a search killed and resumed) would then share it too and
    find its own run id "in use". Each command a test starts gets a service of its own, as a
    user's shell does."""
    yield
    os.environ.pop("WANDB_SERVICE", None)
