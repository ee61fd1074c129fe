"""Training: the LightningModule shared by proxy and final training, and model profiling."""

from renas.train.module import ClassifierModule, DivergedError
from renas.train.profile import count_flops, count_params

__all__ = ["ClassifierModule", "DivergedError", "count_flops", "count_params"]
