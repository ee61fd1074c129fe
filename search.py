"""Run a neural architecture search: ``python search.py [overrides]``.

``python search.py`` runs RENAS on the bundled digits data with a small budget;
``python search.py resume=<run folder>`` continues a stopped search. See the README for
algorithms, evaluators, sweeps (``-m``) and the run folder. The same command is installed as
``renas-search`` (:func:`renas.main.search`).
"""

import sys

try:
    from renas.main import search
except KeyboardInterrupt:  # Ctrl-C while Python imports the package: nothing was written yet
    print("interrupted before the command started; nothing to resume: run the command again", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    search()
