"""Quiet Lightning: its banners ("GPU available: ...", tips) are noise in every child's training."""

from __future__ import annotations

import logging
import warnings


def quiet_lightning() -> None:
    """Lightning's banners and a few known-harmless warnings off, for this process."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*treespec, LeafSpec.*")
