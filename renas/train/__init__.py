"""Training: the LightningModule shared by proxy and final training, and model profiling.

Imported lazily so that reading a config or a genotype does not pay for Lightning.
"""

__all__ = ["ClassifierModule", "DivergedError", "count_flops", "count_params"]


def __getattr__(name):
    if name in ("ClassifierModule", "DivergedError"):
        # deferred: lazy attribute (PEP 562): Lightning loads on first use
        from renas.train import module

        return getattr(module, name)
    if name in ("count_flops", "count_params"):
        # deferred: lazy attribute (PEP 562): torch loads on first use
        from renas.train import profile

        return getattr(profile, name)
    raise AttributeError(name)
