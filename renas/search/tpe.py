"""Optuna's TPE sampler over the same genes, driven through the same ask / tell loop.

One categorical parameter per gene (its legal value labels). Optuna's ask-and-tell interface
lets the search loop, its cache, budget, history and logging stay exactly as for the other
algorithms, so TPE runs side by side with RENAS.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from renas.config import check_bool
from renas.errors import RenasError
from renas.search.strategies import Feedback, Proposal, Strategy
from renas.space.base import SearchSpace

#: TPE suggestions a space's `valid` hook may reject in a row before a random allowed one is taken
MAX_INVALID_TRIALS = 100


class TPESearch(Strategy):
    """Tree-structured Parzen estimator (Bergstra et al., 2011) as implemented by Optuna.

    Args:
        n_startup_trials: random trials before TPE models the results (Optuna's default 10).
        multivariate: model the genes jointly (Optuna's ``multivariate=True``) or independently;
            ``None``: the installed Optuna's default.
        constant_liar: with several children in flight, treat pending ones as bad results so
            that concurrent proposals differ; ``None``: the installed Optuna's default.
    """

    name = "tpe"
    initial = None  # no population (its n_startup_trials random trials do not need the budget to cover them)

    def __init__(
        self,
        space: SearchSpace,
        ga: Any,
        controller: Any,
        seed: int,
        name: str | None = None,
        n_startup_trials: int = 10,
        multivariate: bool | None = None,
        constant_liar: bool | None = None,
    ) -> None:
        super().__init__(space, ga, controller, seed, name)
        logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna 2.x imports it; its INFO lines are noise
        # deferred: optuna (1-3 s) only for algorithm=tpe, and after alembic's logger is quieted
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.optuna = optuna

        # None leaves a setting at the installed Optuna's default (TPESampler(seed=s) exactly:
        # Optuna 2.10: multivariate=False, constant_liar=False; Optuna 5.0: multivariate=None (its own
        # default), constant_liar=True)
        self.sampler_kwargs: dict[str, Any] = {
            "n_startup_trials": int(n_startup_trials)}
        for key, value in (("multivariate", multivariate), ("constant_liar", constant_liar)):
            if value is not None:
                self.sampler_kwargs[key] = check_bool(f"algorithm.{key}", value)
        self.seed = int(seed)
        self.dists = {
            g.name: optuna.distributions.CategoricalDistribution(list(g.choices)) for g in self.genes
        }
        self._new_study()

    def _new_study(self) -> None:
        sampler = self.optuna.samplers.TPESampler(seed=self.seed, **self.sampler_kwargs)
        self.study = self.optuna.create_study(direction="maximize", sampler=sampler)
        self.trials: dict[int, Any] = {}
        #: every call made to the study, in order: replayed into a fresh study with the same
        #: seed on resume, which leaves it exactly as it was (Optuna's public API only)
        self.events: list[list[Any]] = []

    def _ask(self, fixed: list[Any] | None = None) -> Any:
        if fixed is not None:
            self.study.enqueue_trial({g.name: c for g, c in zip(self.genes, fixed)})
        trial = self.study.ask(self.dists)
        self.trials[trial.number] = trial
        self.events.append(["ask", fixed])
        return trial

    def _tell(self, number: int, fitness: float | None, pruned: bool = False) -> None:
        """A result; ``None`` a failed evaluation (TPE ignores it) or, ``pruned``, an architecture
        the space does not allow (a pruned trial without a value: TPE's model ranks it below
        every result, so it learns to avoid the region, whatever the fitness scale)."""
        trial = self.trials.pop(number)
        if pruned:
            self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
        elif fitness is None:
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, float(fitness))
        self.events.append(["tell", number, None if fitness is None else float(fitness)] + (["pruned"] if pruned else []))

    def ask(self) -> Proposal:
        for _ in range(MAX_INVALID_TRIALS):
            trial = self._ask()
            values = tuple(g.choices.index(trial.params[g.name]) for g in self.genes)
            if self.space.is_valid(values):
                return Proposal(values, "tpe", info={"trial": trial.number})
            self._tell(trial.number, None, pruned=True)  # not allowed: TPE counts it as bad, and asks again
        return self.fallback()

    def fallback(self) -> Proposal:
        """A random architecture as an Optuna trial of its own (enqueued, then asked), so that
        it is told like any other."""
        values = self.random_values()
        trial = self._ask([g.choices[v] for g, v in zip(self.genes, values)])
        return Proposal(tuple(g.choices.index(trial.params[g.name]) for g in self.genes), "fallback",
                        info={"trial": trial.number})

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        self._tell(proposal.info["trial"], fitness)
        return None

    # --- state: the calls made to the study, replayed on load (no pickles, no private API) --
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["events"] = [list(e) for e in self.events]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A fresh study with the same seed, given the same asks and tells in the same order,
        proposes exactly what the saved one would next (TPE's sampling depends only on its seed
        and on that sequence)."""
        super().load_state_dict(state)
        if "events" not in state:
            raise RenasError("this TPE search state was written by an older renas (Optuna's private sampler state); "
                             "resume it with that version or start the search again")
        self._new_study()
        for event in state["events"]:
            if event[0] == "ask":
                self._ask(None if event[1] is None else list(event[1]))
            else:
                self._tell(int(event[1]), event[2], pruned=len(event) > 3)
