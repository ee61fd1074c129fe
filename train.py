"""Train one architecture fully: ``python train.py arch='<genotype>' dataset=... trainer.max_epochs=...``.

Without ``arch=`` it trains the search space's reference architecture (RENASNet for
``renas_cell``); ``arch_from=<search run folder>`` trains the best architecture of a search;
``resume=<train run folder>`` continues a stopped training. The same command is installed as
``renas-train`` (:func:`renas.main.train`).
"""

import sys

try:
    from renas.main import train
except KeyboardInterrupt:  # Ctrl-C while Python imports the package: nothing was written yet
    print("interrupted before the command started; nothing to resume: run the command again", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    train()
