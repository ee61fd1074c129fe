"""Train one architecture fully: ``python train.py arch='<genotype>' dataset=... trainer.max_epochs=...``.

Without ``arch=`` it trains the search space's reference architecture (RENASNet for
``renas_cell``); ``arch_from=<search run folder>`` trains the best architecture of a search;
``resume=<train run folder>`` continues a stopped training. The same command is installed as
``renas-train`` (:func:`renas.main.train`).
"""

from renas.main import train

if __name__ == "__main__":
    train()
