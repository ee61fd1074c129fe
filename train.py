"""Train one architecture fully: ``python train.py arch='<genotype>' dataset=... trainer.max_epochs=...``.

Without ``arch=`` it trains the search space's reference architecture (RENASNet for
``renas_cell``); ``arch_from=<search run folder>`` trains the best architecture of a search.
"""

import sys

import hydra
from omegaconf import DictConfig

from renas.cli import hydra_run_dir, quiet_lightning, quote_arch_overrides, report_errors, set_threads
from renas.errors import DiskFullError, as_disk_full


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float:
    from renas.train.final import train_architecture

    quiet_lightning()
    set_threads(cfg.get("threads"))
    try:
        result = train_architecture(cfg, hydra_run_dir())
    except (DiskFullError, OSError) as e:  # OSError: e.g. the checkpoint, which Lightning writes itself
        full = as_disk_full(e, hydra_run_dir(), "free space and run it again")
        if full is None:
            raise
        raise full from None
    print(f"val_acc={result['val_acc']:.4f} test_acc={result['test_acc']:.4f} -> {hydra_run_dir() / 'result.json'}")
    return result["val_acc"]


if __name__ == "__main__":
    sys.argv = quote_arch_overrides(sys.argv)
    main()
