"""The versions a run's results depend on besides its config and seed.

A seed fixes a run for one set of versions: another torch changes a child's floating-point
sums, another renas may change what a setting does. ``summary.json``, ``state.pt``, train.py's
``result.json``, ``benchmark.json`` and the W&B config record them (``versions``), and a resume
with other versions says so.
"""

from __future__ import annotations

import logging
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

log = logging.getLogger(__name__)

#: the distributions whose versions are recorded, in this order (python first)
PACKAGES = ("renas", "torch", "lightning", "torchvision", "numpy", "hydra-core", "omegaconf")


@lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """``{"python": ..., "renas": ..., "torch": ..., ...}``; ``None`` for one that is not installed
    (renas run from a source folder it was not installed from)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def differences(recorded: dict[str, str | None] | None) -> list[str]:
    """``recorded``'s versions that differ from this process's, as ``"torch 2.14.0 -> 2.14.1"``
    (an older run folder records none: nothing to compare)."""
    if not isinstance(recorded, dict):
        return []
    now = versions()
    return [f"{name} {recorded[name] or 'none'} -> {now.get(name) or 'none'}" for name in recorded
            if name in now and recorded[name] != now[name]]


def started_by(recorded: dict[str, str | None] | None) -> str:
    """`` (renas 0.3.0; this is 0.4.0)`` for a message that asks for the renas version that started
    a run; empty when the run folder records none or the same."""
    renas = recorded.get("renas") if isinstance(recorded, dict) else None
    now = versions().get("renas")
    return f" (renas {renas}; this is {now or 'renas from a source folder it was not installed from'})" \
        if renas and renas != now else ""


def warn_changed_versions(recorded: dict[str, str | None] | None, run_dir: object) -> None:
    """A resume with other versions than the run's last process had: a warning naming them (the
    resumed part may differ from what an uninterrupted run would have given)."""
    changed = differences(recorded)
    if changed:
        log.warning("%s was run with other versions than this process's (%s): what it does from here may differ from "
                    "an uninterrupted run", run_dir, ", ".join(changed))
