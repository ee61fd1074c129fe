"""Optuna's TPE sampler over the same genes, driven through the same ask / tell loop.

One categorical parameter per gene (its legal value labels). Optuna's ask-and-tell interface
lets the search loop, its cache, budget, history and logging stay exactly as for the other
algorithms, so TPE runs side by side with RENAS.
"""

from __future__ import annotations

from typing import Any

from renas.search.strategies import Feedback, Proposal, Strategy
from renas.space.base import SearchSpace


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
        import logging

        logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna 2.x imports it; its INFO lines are noise
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        import warnings

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.optuna = optuna
        from renas.config import check_bool, check_number

        # None leaves a setting at the installed Optuna's default (TPESampler(seed=s) exactly:
        # Optuna 2.10: multivariate=False, constant_liar=False; Optuna 5.0: multivariate=None (its own
        # default), constant_liar=True)
        self.sampler_kwargs: dict[str, Any] = {
            "n_startup_trials": int(check_number("algorithm.n_startup_trials", n_startup_trials, 0, None, integer=True))}
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

    def ask(self) -> Proposal:
        trial = self.study.ask(self.dists)
        self.trials[trial.number] = trial
        values = tuple(g.choices.index(trial.params[g.name]) for g in self.genes)
        return Proposal(values, "tpe", info={"trial": trial.number})

    def fallback(self) -> Proposal:
        """A random architecture as an Optuna trial of its own (enqueued, then asked), so that
        it is told like any other."""
        values = self.random_values()
        self.study.enqueue_trial({g.name: g.choices[v] for g, v in zip(self.genes, values)})
        trial = self.study.ask(self.dists)
        self.trials[trial.number] = trial
        return Proposal(tuple(g.choices.index(trial.params[g.name]) for g in self.genes), "fallback",
                        info={"trial": trial.number})

    def tell(self, proposal: Proposal, fitness: float | None, step: int) -> Feedback | None:
        trial = self.trials.pop(proposal.info["trial"])
        if fitness is None:
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, fitness)
        return None

    # --- state: the told trials and the sampler's random states (no pickles) -------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        done = [
            {"params": [t.params[g.name] for g in self.genes], "value": t.value, "state": t.state.name, "number": t.number}
            for t in self.study.get_trials(deepcopy=False)
            if t.state.is_finished()
        ]
        running = [[n, [t.params[g.name] for g in self.genes]] for n, t in sorted(self.trials.items())]
        sampler = self.study.sampler
        state.update(trials=done, running=running, tpe_rng=_rs_state(_random_state(sampler)),
                     random_rng=_rs_state(_random_state(sampler._random_sampler)))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._new_study()
        Trial = self.optuna.trial
        # told trials and trials in evaluation, in their original order (TPE weighs trials by
        # age, and trial numbers must come out the same): a told trial is added, one in
        # evaluation enqueued and asked again
        trials = [(t.get("number", i), t) for i, t in enumerate(state["trials"])]
        trials += [(int(number), params) for number, params in state.get("running", [])]
        for number, t in sorted(trials, key=lambda x: x[0]):
            if isinstance(t, dict):
                params = {g.name: p for g, p in zip(self.genes, t["params"])}
                st = Trial.TrialState[t["state"]]
                value = t["value"] if st == Trial.TrialState.COMPLETE else None
                self.study.add_trial(Trial.create_trial(params=params, distributions=self.dists, value=value, state=st))
            else:  # asked, not yet told
                self.study.enqueue_trial({g.name: p for g, p in zip(self.genes, t)})
                self.trials[number] = self.study.ask(self.dists)
        sampler = self.study.sampler
        _set_rs_state(_random_state(sampler), state["tpe_rng"])
        _set_rs_state(_random_state(sampler._random_sampler), state["random_rng"])


def _random_state(sampler):
    """The sampler's numpy RandomState (Optuna 2.x holds it directly, 3.x+ in a lazy wrapper)."""
    rng = sampler._rng
    return getattr(rng, "rng", rng)


def _rs_state(rs) -> list[Any]:
    name, keys, pos, has_gauss, cached = rs.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_rs_state(rs, s: list[Any]) -> None:
    import numpy as np

    rs.set_state((s[0], np.asarray(s[1], dtype=np.uint32), s[2], s[3], s[4]))
