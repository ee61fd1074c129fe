"""Run a neural architecture search: ``python search.py [overrides]``.

``python search.py`` runs RENAS on the bundled digits data with a small budget;
``python search.py resume=<run folder>`` continues a stopped search. See the README for
algorithms, evaluators, sweeps (``-m``) and the run folder. The same command is installed as
``renas-search`` (:func:`renas.main.search`).
"""

from renas.main import search

if __name__ == "__main__":
    search()
