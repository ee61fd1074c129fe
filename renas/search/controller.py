"""The RL parts: RENAS's mutation controller, the REINFORCE architecture sampler, and the
REINFORCE learner that trains both.

A mutation is a list of single-gene edits of a parent. An :class:`EditPolicy` scores every
legal edit of a parent, ``scores(parents) -> (B, genes, max_arity)``; :func:`propose` draws
``k`` edits from those scores (distinct genes; the last edit restricted to children that are
not known yet) and :func:`log_prob` gives the log-probability of a mutation under exactly the
distribution it was drawn from (the same mask). :class:`UniformEdits` scores every edit alike:
RENAS with it is RENAS's ablation, the same evolution with random edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from renas.config import check_choice
from renas.errors import ConfigError
from renas.search.mutation import Edit
from renas.space.base import Gene

Known = Callable[[tuple[int, ...]], bool]


def _gene_tables(genes: Sequence[Gene]) -> tuple[torch.Tensor, torch.Tensor, int]:
    arity = torch.tensor([g.arity for g in genes], dtype=torch.long)
    offset = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), arity[:-1]]), 0)
    return arity, offset, int(arity.max())


def torch_generator(seed: int) -> torch.Generator:
    """The controller's own sampling generator (independent of torch's global one)."""
    g = torch.Generator()
    g.manual_seed(int(seed) * 7919 + 17)
    return g


# --- edit policies ---------------------------------------------------------------------------
class EditPolicy(nn.Module):
    """Scores every single-gene edit ``gene i := value v`` of a parent.

    Slot ``(i, v)`` is legal when ``v`` is one of gene ``i``'s values and not its current one.
    """

    #: whether the policy has parameters to train
    learnable = True

    def __init__(self, genes: Sequence[Gene]) -> None:
        super().__init__()
        arity, offset, max_arity = _gene_tables(genes)
        self.register_buffer("arity", arity, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.n_genes, self.max_arity = len(genes), max_arity
        j = torch.arange(max_arity)
        # value slots j of gene i: global index offset[i] + j (padded slots point at a valid one)
        self.register_buffer("slot_valid", j[None, :] < arity[:, None], persistent=False)
        self.register_buffer("slot_index", (offset[:, None] + j[None, :]).clamp_max(int(arity.sum()) - 1), persistent=False)

    def legal(self, parents: torch.Tensor) -> torch.Tensor:
        """(B, n, A) bool: the legal edits of each parent."""
        current = torch.nn.functional.one_hot(parents, self.max_arity).bool()
        return self.slot_valid[None] & ~current

    def raw_scores(self, parents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, parents: torch.Tensor) -> torch.Tensor:
        """(B, n, A) edit logits for parent values (B, n); ``-inf`` where an edit is illegal."""
        return self.raw_scores(parents).masked_fill(~self.legal(parents), float("-inf"))


class UniformEdits(EditPolicy):
    """Every legal edit equally likely: RENAS's ablation (``controller=none``)."""

    learnable = False

    def raw_scores(self, parents: torch.Tensor) -> torch.Tensor:
        return torch.zeros(parents.shape[0], self.n_genes, self.max_arity)


class MutationController(EditPolicy):
    """RENAS's mutation controller: reads the parent and scores every edit.

    Two parts, each optional:

    - ``encoder=lstm``: the parent's genes are read as tokens (embedding of the position plus
      embedding of the value) by a bidirectional LSTM; an edit's score is a position term
      from the gene's hidden state plus the match of that state with the new value's
      embedding. This conditions every choice on the whole parent.
    - ``utility=true``: an additive preference for values, per gene and shared between genes
      of the same kind with the same label (``nor_conv_3x3`` on any edge, input ``0`` of any
      block); an edit scores the preference of the new value minus that of the old one. It
      carries what one reward teaches to every parent and gene where the same change is
      possible, which is what makes the controller learn within a short search.

    Args:
        genes: the search space's genes.
        embed: token embedding size.
        hidden: LSTM hidden size (per direction).
        encoder: ``lstm`` or ``none``.
        utility: add the value-preference terms.
        interactions: rank of pairwise value preferences (0: none).
        gene_preferences: train one preference per gene and value as well as the shared labels.
        prior: also add preferences that a fitted reward model sets (:class:`LeastSquares`
            with ``into="prior"``); the trained ones learn on top of them.
    """

    def __init__(self, genes: Sequence[Gene], embed: int = 32, hidden: int = 64, encoder: str = "lstm",
                 utility: bool = True, interactions: int = 0, gene_preferences: bool = True, prior: bool = False,
                 encoder_bound: float | None = None) -> None:
        super().__init__(genes)
        slots = int(self.arity.sum())
        self.encoder, self.utility, self.interactions = encoder, utility, interactions
        self.encoder_bound = None if encoder_bound is None else float(encoder_bound)
        if encoder == "lstm":
            self.pos_embed = nn.Embedding(len(genes), embed)
            self.val_embed = nn.Embedding(slots, embed)
            self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
            self.pos_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
            self.val_query = nn.Linear(2 * hidden, embed)
            self.val_bias = nn.Parameter(torch.zeros(slots))
        if utility:
            labels: dict[tuple[str, str], int] = {}
            ids = torch.zeros(len(genes), self.max_arity, dtype=torch.long)
            for i, g in enumerate(genes):
                for v, c in enumerate(g.choices):
                    ids[i, v] = labels.setdefault((g.kind, str(c)), len(labels))
            self.register_buffer("label_index", ids, persistent=False)
            # per gene and value (off: only the labels shared between genes, the strongest sharing)
            self.slot_pref = nn.Parameter(torch.zeros(slots), requires_grad=gene_preferences)
            self.label_pref = nn.Parameter(torch.zeros(len(labels)))
        if interactions:
            # pairwise preferences <V[i, a], V[j, b]> (a factorization machine of rank `interactions`)
            self.pair = nn.Parameter(0.01 * torch.randn(slots, interactions))
        self.prior = bool(prior)
        if self.prior:  # preferences set by a fitted reward model (LeastSquares), not trained
            if not utility:
                raise ConfigError("controller.prior=least_squares fits value preferences: it needs controller.utility=true")
            self.register_buffer("prior_label", torch.zeros(len(labels)))
            self.register_buffer("prior_slot", torch.zeros(slots))

    def raw_scores(self, parents: torch.Tensor) -> torch.Tensor:
        batch = parents.shape[0]
        s = torch.zeros(batch, self.n_genes, self.max_arity)
        rows = torch.arange(self.n_genes)
        if self.encoder == "lstm":
            tokens = self.pos_embed(rows)[None] + self.val_embed(parents + self.offset[None])
            h, _ = self.lstm(tokens)
            q = self.val_query(h)  # (B, n, embed)
            emb = self.val_embed(self.slot_index)  # (n, A, embed)
            enc = self.pos_head(h) + torch.einsum("bne,nae->bna", q, emb) + self.val_bias[self.slot_index][None]
            if self.encoder_bound is not None:  # the encoder's scores stay within +-bound
                enc = self.encoder_bound * torch.tanh(enc / self.encoder_bound)
            s = s + enc
        if self.utility:
            pref = self.slot_pref[self.slot_index] + self.label_pref[self.label_index]  # (n, A)
            if self.prior:
                pref = pref + self.prior_slot[self.slot_index] + self.prior_label[self.label_index]
            current = pref[rows[None, :], parents]  # (B, n)
            s = s + pref[None] - current[..., None]
        if self.interactions:
            v = self.pair[self.slot_index]  # (n, A, d)
            mine = v[rows[None, :], parents]  # (B, n, d): each gene's current value
            others = mine.sum(1, keepdim=True) - mine  # (B, n, d): the rest of the parent
            s = s + torch.einsum("nad,bnd->bna", v, others) - (mine * others).sum(-1)[..., None]
        return s


# --- drawing and scoring mutations ---------------------------------------------------------------
@dataclass
class Mutation:
    """Edits drawn by :func:`propose`, with what is needed to score them again: ``masked`` are
    the slots ``i * max_arity + v`` excluded from the last edit's distribution because their
    child was known."""

    edits: list[Edit]
    masked: list[int] = field(default_factory=list)


@torch.no_grad()
def propose(policy: EditPolicy, parent: Sequence[int], k: int, generator: torch.Generator,
            known: Known | None = None, dry: bool = False) -> Mutation | None:
    """Draw ``k`` edits of ``parent`` (distinct genes, each to another legal value).

    Edits are drawn one after another from the softmax over all legal edits of genes not
    edited yet. The last one is drawn from that softmax restricted to edits whose child is not
    ``known`` (evaluated already or in evaluation), so a proposal never repeats an architecture.
    Returns ``None`` when every such edit leads to a known child. ``dry=True`` only answers
    whether a child exists (a non-``None`` empty mutation), without drawing anything.
    """
    if dry:
        for i, v in policy.legal(torch.tensor([list(parent)], dtype=torch.long))[0].nonzero().tolist():
            cand = list(parent)
            cand[i] = v
            if known is None or not known(tuple(cand)):
                return Mutation([])
        return None
    scores = policy.scores(torch.tensor([list(parent)], dtype=torch.long))[0]
    k = max(1, min(k, int(torch.isfinite(scores).any(1).sum())))
    child = list(parent)
    edits: list[Edit] = []
    for step in range(k):
        logits = scores.clone()
        for i, _, _ in edits:
            logits[i] = float("-inf")
        masked: list[int] = []
        if step == k - 1 and known is not None:
            for i, v in torch.isfinite(logits).nonzero().tolist():
                cand = list(child)
                cand[i] = v
                if known(tuple(cand)):
                    logits[i, v] = float("-inf")
                    masked.append(i * policy.max_arity + v)
        flat = logits.flatten()
        if not torch.isfinite(flat).any():
            return None
        idx = int(torch.multinomial(torch.softmax(flat, -1), 1, generator=generator))
        i, v = divmod(idx, policy.max_arity)
        edits.append((i, child[i], v))
        child[i] = v
    return Mutation(edits, masked)


def slot_mask(batch: int, width: int, masked: Sequence[Sequence[int]]) -> torch.Tensor:
    """(batch, width) booleans, true at each row's ``masked`` slots (``gene * max_arity + value``)."""
    mask = torch.zeros(batch, width, dtype=torch.bool)
    cells = [(b, j) for b, slots in enumerate(masked) for j in slots]
    if cells:
        rows, cols = zip(*cells)
        mask[list(rows), list(cols)] = True
    return mask


def log_prob(policy: EditPolicy, parents: torch.Tensor, mutations: Sequence[Mutation]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability (B,) of each mutation under the distribution :func:`propose` drew it
    from (genes edited before excluded, the last edit's ``masked`` slots excluded), and the
    mean entropy (B,) of those distributions."""
    scores = policy.scores(parents).flatten(1)  # (B, n*A)
    batch, width = scores.shape
    A = policy.max_arity
    lengths = [len(m.edits) for m in mutations]
    k = torch.tensor(lengths)
    k_max = max(lengths)
    flat = [[i * A + v for i, _, v in m.edits] + [0] * (k_max - len(m.edits)) for m in mutations]
    idx = torch.tensor(flat, dtype=torch.long)
    last_mask = slot_mask(batch, width, [m.masked for m in mutations])
    taken = torch.zeros(batch, width, dtype=torch.bool)
    gene_of = torch.arange(width) // policy.max_arity
    rows = torch.arange(batch)
    logp = scores.new_zeros(batch)
    ent = scores.new_zeros(batch)
    for j in range(k_max):
        present = j < k
        is_last = (k - 1) == j
        logits = scores.masked_fill(taken | (last_mask & is_last[:, None]), float("-inf"))
        lp = torch.log_softmax(logits, -1)
        step_ent = -(lp.exp() * lp.nan_to_num(neginf=0.0)).sum(-1)
        step_lp = lp[rows, idx[:, j]]
        logp = logp + torch.where(present, step_lp, torch.zeros_like(step_lp))
        ent = ent + torch.where(present, step_ent, torch.zeros_like(step_ent))
        gene = gene_of[idx[:, j]]
        taken = taken | ((gene_of[None, :] == gene[:, None]) & present[:, None])
    return logp, ent / k.clamp_min(1)


def edit_probability(policy: EditPolicy, parent: Sequence[int], gene: int, value: int) -> float:
    """Probability that a single-edit proposal for ``parent`` is exactly ``gene := value``."""
    with torch.no_grad():
        scores = policy.scores(torch.tensor([list(parent)], dtype=torch.long))[0]
        return float(torch.softmax(scores.flatten(), -1)[gene * policy.max_arity + value])


# --- the REINFORCE architecture sampler --------------------------------------------------------
class ArchitectureSampler(nn.Module):
    """An LSTM that samples whole architectures gene by gene (the REINFORCE baseline of
    NAS-Bench-201 / Zoph & Le). Each step feeds the previous gene's value embedding and
    scores the current gene's legal values."""

    def __init__(self, genes: Sequence[Gene], embed: int = 32, hidden: int = 64) -> None:
        super().__init__()
        arity, offset, max_arity = _gene_tables(genes)
        self.register_buffer("arity", arity, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.n_genes, self.max_arity = len(genes), max_arity
        self.start = nn.Parameter(torch.zeros(1, embed))
        self.val_embed = nn.Embedding(int(arity.sum()), embed)
        self.cell = nn.LSTMCell(embed, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, g.arity) for g in genes)

    def _run(self, values: torch.Tensor | None, generator: torch.Generator | None,
             blocked: Callable[[tuple[int, ...]], bool] | None = None,
             masked: Sequence[Sequence[int]] | None = None):
        """Teacher-forced (``values`` given, (B, n), with each row's ``masked`` slots) or
        sampled (B = 1, never sampling a value ``blocked`` rules out) pass. A slot is
        ``gene * max_arity + value``; the log-probabilities and entropies are those of the
        distributions the values are (or were) drawn from, the masked slots excluded.
        Returns the values, their log-probability (B,), the mean entropy (B,) and the slots
        masked while sampling."""
        batch = 1 if values is None else values.shape[0]
        A = self.max_arity
        mask = slot_mask(batch, self.n_genes * A, masked or [])
        x = self.start.expand(batch, -1)
        state = None
        out, logps, ents = [], [], []
        drawn_mask: list[int] = []
        prefix: tuple[int, ...] = ()
        for i in range(self.n_genes):
            state = self.cell(x, state)
            logits = self.heads[i](state[0])
            arity = logits.shape[1]
            if values is None:
                probs = torch.distributions.Categorical(logits=logits).probs
                if blocked is not None:
                    free = torch.tensor([not blocked(prefix + (v,)) for v in range(arity)])
                    if bool(free.any()) and not bool(free.all()):
                        drawn_mask += [i * A + v for v in range(arity) if not free[v]]
                        mask[0, i * A: i * A + arity] = ~free
                        masked_probs = probs * free.to(probs.dtype)
                        # a collapsed sampler gives the free values probability 0.0 in float32:
                        # renormalise among them in log space instead
                        probs = masked_probs if float(masked_probs.sum()) > 0 else torch.softmax(
                            logits.masked_fill(~free[None], float("-inf")), -1)
                v = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                prefix += (int(v[0]),)
            else:
                v = values[:, i]
            dist = torch.distributions.Categorical(logits=logits.masked_fill(mask[:, i * A: i * A + arity], float("-inf")))
            out.append(v)
            logps.append(dist.log_prob(v))
            ents.append(dist.entropy())
            x = self.val_embed(v + self.offset[i])
        return torch.stack(out, 1), torch.stack(logps, 1).sum(1), torch.stack(ents, 1).mean(1), drawn_mask

    @torch.no_grad()
    def sample(self, generator: torch.Generator,
               blocked: Callable[[tuple[int, ...]], bool] | None = None) -> tuple[tuple[int, ...], list[int]]:
        """One architecture, and the slots (``gene * max_arity + value``) masked while drawing
        it: ``blocked(prefix)`` (optional) is true for gene-value prefixes whose every
        completion is known already, which are then not sampled."""
        values, _, _, drawn_mask = self._run(None, generator, blocked)
        return tuple(int(v) for v in values[0]), drawn_mask

    def log_prob(self, values: torch.Tensor, masked: Sequence[Sequence[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability (B,) of each architecture ``values`` (B, n) under the distribution
        it was drawn from (its ``masked`` slots excluded), and the mean entropy (B,) of those
        distributions."""
        _, logp, ent, _ = self._run(values, None, masked=masked)
        return logp, ent

# --- REINFORCE ---------------------------------------------------------------------------------
@dataclass
class Experience:
    """One action and its reward: for the mutation controller ``parent`` + its ``mutation``;
    for the architecture sampler ``values`` and the slots ``masked`` while drawing them."""

    reward: float
    parent: tuple[int, ...] | None = None
    mutation: Mutation | None = None
    values: tuple[int, ...] | None = None
    masked: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reward": self.reward,
            "parent": None if self.parent is None else list(self.parent),
            "edits": None if self.mutation is None else [list(e) for e in self.mutation.edits],
            "masked": None if self.mutation is None else list(self.mutation.masked),
            "values": None if self.values is None else list(self.values),
            "values_masked": list(self.masked),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Experience":
        mutation = None if d["edits"] is None else Mutation([tuple(e) for e in d["edits"]], list(d["masked"]))
        return cls(
            float(d["reward"]),
            None if d["parent"] is None else tuple(d["parent"]),
            mutation,
            None if d["values"] is None else tuple(d["values"]),
            list(d.get("values_masked", [])),  # (states of renas 0.3.0 have none: unmasked)
        )


class Reinforce:
    """REINFORCE (Williams, 1992) with a moving-average baseline, an entropy bonus and Adam.

    On-policy experiences (what the policy itself proposed) are collected ``batch`` at a time;
    then one update minimises::

        - mean_on(A * log p) - replay_weight * mean_replay(A_r * log p) - entropy_weight * H

    where ``A = reward - baseline`` (the baseline is a moving average of on-policy rewards,
    updated after the step so that an advantage compares with past rewards only) and
    ``A_r`` is a replayed experience's reward against a baseline of 0 (replayed pairs come
    in both directions, +gain and -gain, so their mean is 0 by construction). Replayed
    experiences are hindsight edits from the search's history, not drawn by the policy; they
    get their own term and weight so that they inform the policy without drowning the
    on-policy signal. With ``normalize``, advantages are divided by a running root mean square
    of advantages, started from the first batch (so rewards in [0, 1] and in percent behave
    the same).

    Args:
        policy: a :class:`MutationController` or :class:`ArchitectureSampler`.
        lr: Adam learning rate.
        batch: on-policy rewards per update.
        entropy_weight: weight of the entropy bonus.
        baseline_decay: decay of the baseline and of the running scale.
        normalize: divide advantages by the running scale.
        replay_weight: weight of the replayed experiences' term.
    """

    def __init__(
        self,
        policy: nn.Module,
        lr: float = 3e-3,
        batch: int = 1,
        entropy_weight: float = 1e-3,
        baseline_decay: float = 0.9,
        normalize: bool = False,
        replay_weight: float = 1.0,
        memory: int = 0,
        memory_sample: int = 0,
        steps: int = 1,
        seed: int = 0,
    ) -> None:
        self.policy = policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        self.batch = batch
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.normalize = normalize
        self.replay_weight = replay_weight
        self.memory_size, self.memory_sample, self.steps = memory, memory_sample, steps
        self.memory: list[Experience] = []  # replayed experiences kept for later updates
        self.rng = np.random.default_rng([int(seed), 2])
        self.baseline: float | None = None
        self.scale2: float | None = None  # running mean square of advantages (normalize)
        self.buffer: list[Experience] = []
        self.replay: list[Experience] = []
        self.updates = 0

    def observe(self, exp: Experience | None, replay: Sequence[Experience] = ()) -> dict[str, float] | None:
        """Add one on-policy experience (or none) and replayed ones; update when ``batch``
        on-policy experiences are in. Returns the update's statistics."""
        if exp is not None:
            self.buffer.append(exp)
        self.replay.extend(replay)
        if len(self.buffer) < self.batch:
            return None
        on, rep = self.buffer, self.replay
        self.buffer, self.replay = [], []
        return self.update(on, rep)

    def _scores(self, batch: list[Experience]) -> tuple[torch.Tensor, torch.Tensor]:
        if batch[0].values is not None:
            return self.policy.log_prob(torch.tensor([e.values for e in batch], dtype=torch.long),
                                        [e.masked for e in batch])
        parents = torch.tensor([e.parent for e in batch], dtype=torch.long)
        return log_prob(self.policy, parents, [e.mutation for e in batch])

    def update(self, on: list[Experience], replay: Sequence[Experience] = ()) -> dict[str, float]:
        rewards = np.array([e.reward for e in on], dtype=np.float64)
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        adv_on = rewards - self.baseline
        adv_rep = np.array([e.reward for e in replay], dtype=np.float64)
        if self.normalize:
            both = np.concatenate([adv_on, adv_rep])
            square = float((both**2).mean())
            if self.scale2 is None or self.scale2 <= 0:
                self.scale2 = square
            else:
                self.scale2 = self.baseline_decay * self.scale2 + (1 - self.baseline_decay) * square
            scale = np.sqrt(self.scale2) if self.scale2 > 0 else 1.0
            adv_on, adv_rep = adv_on / scale, adv_rep / scale
        else:
            scale = 1.0
        replay = list(replay)
        if self.memory_sample and self.memory:
            picks = self.rng.choice(len(self.memory), size=min(self.memory_sample, len(self.memory)), replace=False)
            old = [self.memory[i] for i in sorted(picks)]
            adv_rep = np.concatenate([adv_rep, np.array([e.reward for e in old]) / scale])
        else:
            old = []
        if self.memory_size:
            self.memory = (self.memory + replay)[-self.memory_size:]
        batch = list(on) + replay + old
        n = len(on)
        a_on = torch.tensor(adv_on, dtype=torch.float32)
        a_rep = torch.tensor(adv_rep, dtype=torch.float32)
        for _ in range(self.steps):
            logp, ent = self._scores(batch)
            loss = -(a_on * logp[:n]).mean() - self.entropy_weight * ent[:n].mean()
            if len(batch) > n and self.replay_weight > 0:
                loss = loss - self.replay_weight * (a_rep * logp[n:]).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        stats = {
            "reward_mean": float(rewards.mean()),
            "loss": float(loss.detach()),
            "entropy": float(ent[:n].detach().mean()),
            "baseline": float(self.baseline),
            "replayed": float(len(batch) - n),
        }
        for r in rewards:  # the baseline moves after the update
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * float(r)
        self.updates += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "scale2": self.scale2,
            "buffer": [e.to_dict() for e in self.buffer],
            "replay": [e.to_dict() for e in self.replay],
            "memory": [e.to_dict() for e in self.memory],
            "rng": self.rng.bit_generator.state,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        self.scale2 = state["scale2"]
        self.buffer = [Experience.from_dict(d) for d in state["buffer"]]
        self.replay = [Experience.from_dict(d) for d in state["replay"]]
        self.memory = [Experience.from_dict(d) for d in state["memory"]]
        self.rng.bit_generator.state = state["rng"]
        self.updates = int(state["updates"])


class LeastSquares:
    """The controller's value preferences fitted to every reward at once (``controller.learner=least_squares``).

    After each evaluation, fitness is regressed on the architecture's value labels (how many
    genes hold each shared label, plus a one-hot per gene and value with
    ``gene_preferences``) by ridge least squares over every architecture the search has
    evaluated, fitness clipped below at its lower quartile so that a few broken architectures
    do not set the scale. The coefficients, divided by ``temperature`` times the spread of
    fitness, become the controller's preferences: an edit's score is its predicted gain (the
    reward a parent would get for it) in those units, and edits are drawn from the softmax of
    the scores, as with REINFORCE. A reward model refitted from all rewards instead of a policy
    moved by one gradient step per reward: the same policy, learned from fewer evaluations.
    With ``into="prior"`` (``controller.prior=least_squares``) the fit goes into the
    controller's prior preferences instead, and REINFORCE trains its own on top of them.

    Args:
        policy: a :class:`MutationController` with ``utility`` and no encoder or interactions.
        temperature: softmax temperature over predicted gains, in units of the fitness spread.
        ridge: ridge penalty (on the scale of counts: one architecture adds 1 per label it holds).
        into: ``preferences`` (the learner) or ``prior`` (a prior under REINFORCE).
    """

    def __init__(self, policy: nn.Module, temperature: float = 0.3, ridge: float = 3.0, into: str = "preferences") -> None:
        if into == "preferences" and (not isinstance(policy, MutationController) or not policy.utility
                                      or policy.encoder != "none" or policy.interactions):
            raise ConfigError("controller.learner=least_squares fits value preferences: it needs controller.utility=true, "
                              "controller.encoder=none and controller.interactions=0")
        if into == "prior" and not getattr(policy, "prior", False):
            raise ValueError("LeastSquares(into='prior') needs a MutationController made with prior=True")
        self.policy, self.temperature, self.ridge = policy, float(temperature), float(ridge)
        self.targets = (policy.label_pref, policy.slot_pref) if into == "preferences" else (policy.prior_label, policy.prior_slot)
        self.labels = policy.label_index.numpy()  # (genes, max_arity) -> label
        self.n_labels = int(policy.label_pref.numel())
        self.per_gene = bool(policy.slot_pref.requires_grad)
        self.slots = policy.slot_index.numpy()
        self.n_slots = int(policy.slot_pref.numel())

    def features(self, values: np.ndarray) -> np.ndarray:
        """(N, labels [+ slots]) label counts [and one-hot gene values] of architectures (N, genes)."""
        rows = np.arange(values.shape[1])[None, :]
        x = np.zeros((len(values), self.n_labels + (self.n_slots if self.per_gene else 0)))
        np.add.at(x, (np.arange(len(values))[:, None], self.labels[rows, values]), 1.0)
        if self.per_gene:
            np.add.at(x, (np.arange(len(values))[:, None], self.n_labels + self.slots[rows, values]), 1.0)
        return x

    def fit(self, values: np.ndarray, fitness: np.ndarray, reward: float | None = None,
            parent: Sequence[int] | None = None) -> dict[str, float] | None:
        """Refit the preferences to the evaluated architectures ``values`` (N, genes) and their
        ``fitness`` (N,). Returns the update's statistics (``reward``: this child's, for the logs;
        ``parent``: the entropy of the refitted policy's edits of it)."""
        if len(values) < 2:
            return None
        x = self.features(np.asarray(values, dtype=np.int64))
        y = np.maximum(fitness, np.quantile(fitness, 0.25))
        y = y - y.mean()
        spread = float(y.std())
        if spread <= 0:
            return None
        w = np.linalg.solve(x.T @ x + self.ridge * np.eye(x.shape[1]), x.T @ y)
        residual = y - x @ w
        w = w / (self.temperature * spread)
        with torch.no_grad():
            self.targets[0].copy_(torch.as_tensor(w[: self.n_labels], dtype=torch.float32))
            if self.per_gene:
                self.targets[1].copy_(torch.as_tensor(w[self.n_labels:], dtype=torch.float32))
        stats = {"loss": float((residual**2).mean() / spread**2), "fitted": float(len(values))}
        if reward is not None:
            stats["reward_mean"] = float(reward)
        if parent is not None:
            with torch.no_grad():
                scores = self.policy.scores(torch.tensor([list(parent)], dtype=torch.long))[0]
                p = torch.softmax(scores[torch.isfinite(scores)], 0)
                stats["entropy"] = float(-(p * p.clamp_min(1e-12).log()).sum())
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict()}  # the fit is a function of the archive: nothing else to keep

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])  # (states of renas 0.3.0 also hold an unused "updates")


def _fits_alone(controller: Any) -> bool:
    """``controller.learner=least_squares``: the fit is the learner (default: REINFORCE)."""
    return controller.get("learner", "reinforce") == "least_squares"


def _fit_settings(controller: Any) -> dict[str, float]:
    """The least-squares fit's settings (the code defaults are ``conf/controller/renas.yaml``'s)."""
    return {"temperature": float(controller.get("temperature", 0.3)), "ridge": float(controller.get("ridge", 3.0))}


def wants_prior(controller: Any) -> bool:
    """Whether the ``controller`` config asks for REINFORCE on a fitted prior
    (``controller.prior=least_squares`` with ``controller.learner=reinforce``)."""
    return controller.get("prior", "none") == "least_squares" and not _fits_alone(controller)


def make_prior(policy: EditPolicy, controller: Any) -> LeastSquares | None:
    """The fitted prior under REINFORCE's preferences, or ``None`` when the config has none."""
    if not getattr(policy, "prior", False):
        return None
    return LeastSquares(policy, **_fit_settings(controller), into="prior")


def make_policy(genes: Sequence[Gene], controller: Any, seed: int) -> EditPolicy:
    """RENAS's edit policy for a ``controller`` config (checked): :class:`UniformEdits` for
    ``controller=none`` (the ablation), else a :class:`MutationController` initialised from ``seed``."""
    kind = check_choice("controller", controller.get("name") if controller is not None else "none",
                        ("renas", "lstm", "least_squares", "none"))
    if kind == "none":
        return UniformEdits(genes)
    if _fits_alone(controller) and controller.get("prior", "none") != "none":
        raise ConfigError(f"controller.prior={controller.get('prior')} puts a fitted prior under REINFORCE; with "
                          "controller.learner=least_squares the fit is the learner: set controller.prior=none")
    encoder = controller.get("encoder", "lstm")
    utility = bool(controller.get("utility", False))
    if encoder == "none" and not utility:
        raise ConfigError("controller.encoder=none with controller.utility=false leaves the controller nothing to learn")
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        return MutationController(
            genes,
            embed=int(controller.get("embed", 32)),
            hidden=int(controller.get("hidden", 64)),
            encoder=encoder,
            utility=utility,
            interactions=int(controller.get("interactions", 0)),
            gene_preferences=bool(controller.get("gene_preferences", True)),
            prior=wants_prior(controller),
            encoder_bound=controller.get("encoder_bound"),
        )


def make_learner(policy: nn.Module, controller: Any, seed: int = 0) -> Reinforce | LeastSquares:
    """The ``controller`` config's learner: :class:`Reinforce` (``controller.learner=reinforce``,
    the default) or :class:`LeastSquares`, with its settings."""
    if _fits_alone(controller):
        return LeastSquares(policy, **_fit_settings(controller))
    return Reinforce(
        policy,
        lr=controller.lr,
        batch=controller.batch,
        entropy_weight=controller.entropy_weight,
        baseline_decay=controller.baseline_decay,
        normalize=bool(controller.normalize),
        replay_weight=controller.get("replay_weight", 1.0),
        memory=controller.get("memory", 0),
        memory_sample=controller.get("memory_sample", 0),
        steps=controller.get("steps", 1),
        seed=seed,
    )
