"""Compare search algorithms on a results table: ``python -m renas.benchmark [overrides]``.

Every algorithm in ``algorithms`` searches ``budget`` evaluations for every seed in ``seeds``,
in this process, against the same table evaluator (NAS-Bench-201 by default). Nothing is
written per search; the benchmark's Hydra run folder (``outputs/benchmark/<date>/<time>``) gets:

- ``benchmark.json``: settings and, per algorithm, ``runs``, ``report_mean`` / ``report_std``
  / ``report_sem`` (the ``report`` column, i.e. the first ``evaluator.report`` column, of the
  architecture with the best fitness each search found), ``fitness_mean``, ``hit_rate``
  (fraction of searches whose best-fitness architecture is the table's best-fitness
  architecture, or ties with it), ``curve`` (mean over seeds, after each evaluation, of the
  report value of the best-fitness architecture so far: length ``budget``), ``fitness_curve``
  (mean best-so-far fitness), ``seconds`` (wall time of all its searches) and
  ``overhead_ms_per_eval`` (that time per evaluation: table look-ups cost next to nothing,
  so it is the algorithm's own cost, controller included). The table optima are under
  ``report_optimum`` and ``fitness_optimum``.
  With one budget, ``results`` is keyed by algorithm; with a list (``budget=[50,100,200]``)
  ``budget`` is that list and ``results`` is keyed by budget (as a string), then algorithm.
  Each budget is a separate set of searches (never a prefix of a longer one).
  ``finished`` is false while the benchmark runs: both files are rewritten after each
  algorithm, so an interrupted benchmark keeps what it finished.
- ``benchmark.md``: the same as a table to read.
- ``regret.png``: mean regret (table optimum of the report column minus ``curve``) against
  evaluations, one line per algorithm, log scale; one panel per budget.

``curve`` follows the honest protocol (search on validation, report the test value of what
the search would return), so it is *not* monotone: a fitter architecture can test worse.
``fitness_curve`` is monotone.

How each algorithm gets its settings: ``conf/benchmark.yaml`` composes the same groups as
``search.yaml``; for each algorithm the app composes that primary config again with Hydra's
compose API, ``compose("benchmark", [f"algorithm={name}", *your_overrides])``, your overrides
being the job's own (``HydraConfig.get().overrides.task``) minus the benchmark's keys. That
is exactly what ``python search.py algorithm=<name> <overrides>`` composes: the bundle's
defaults list (``override /controller: ...``) is applied by Hydra itself, and your overrides
come after the bundle, so ``ga.mutation_rate=0.2`` applies to every algorithm and
``controller.lr=...`` to every algorithm that has a controller (the bundle chooses which
controller). Settings that exist for one algorithm only (``algorithm.n_startup_trials`` of
``tpe``) can be given when that algorithm runs alone:
``algorithms=[tpe] ++algorithm.n_startup_trials=20``. Merging ``conf/algorithm/<name>.yaml`` by hand would have to re-implement the
defaults-list semantics and would break as bundles change.

The package: :mod:`~renas.benchmark.plan` (check the keys, compose every algorithm's config,
build the table evaluator), :mod:`~renas.benchmark.runner` (run the searches, write the
files), :mod:`~renas.benchmark.stats` (means, standard errors, paired statistics) and
:mod:`~renas.benchmark.report` (``benchmark.md``, ``regret.png``).

Paired statistics: every algorithm runs the same seeds, so ``paired[<budget>][<other>]``
holds, for ``reference`` (RENAS by default) against each other algorithm, the mean paired
difference of the best fitness and of the report value, its standard error, z = mean / SE,
wins / losses / ties and a two-sided Wilcoxon signed-rank p-value. ``optuna`` is the
Optuna version TPE ran with.

Defaults (``conf/benchmark.yaml``): ``evaluator=nasbench201`` (search ``c10_valid_12ep``,
report ``c10_test_200ep``), ``ga.population_size=10`` with ``ga.sample_size=3`` (the
NAS-Bench-201 paper's evolution setting) unless the algorithm's bundle sets its own, ``threads=1``, ``logger=none``. ``max_duplicates``
passes through to the search loop (``null``: its default, as in ``search.py``); an algorithm
that keeps proposing known architectures costs time per repeat (each is answered from the
loop's cache and told to the algorithm), which ``duplicates/run`` and ms/eval show.

Examples::

    python -m renas.benchmark                                  # 8 algorithms x 100 seeds, budget 100
    python -m renas.benchmark algorithms=[renas,rea] seeds=20 budget=[50,100,200]
    python -m renas.benchmark ga.mutation_rate=0.3 controller.lr=1e-2 loop.dedup=isomorphic
    python -m renas.benchmark logger=wandb                     # plus one W&B run per search
    python -m renas.benchmark -m ga.mutation_rate=0.1,0.3      # a sweep: one benchmark folder each

``logger=wandb`` (offline unless ``logger.mode=online``) gives every search its own W&B run
(name ``<algorithm>-b<budget>-s<seed>``, all in one group named after the benchmark folder,
files under ``<folder>/runs/<name>/wandb``), logged per generation like ``search.py``'s.
It is slow and off by default (and its cost is then part of the measured times). A search is
bit-reproducible for a fixed seed: same config and seed, same history, same numbers here.
"""

from renas.benchmark.plan import DEFAULT_ALGORITHMS, plan, search_overrides
from renas.benchmark.runner import RunResult, run_benchmark, run_search_once
from renas.benchmark.stats import paired, summarize_runs

__all__ = ["DEFAULT_ALGORITHMS", "RunResult", "paired", "plan", "run_benchmark", "run_search_once",
           "search_overrides", "summarize_runs"]
