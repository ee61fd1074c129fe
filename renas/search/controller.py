"""The RL parts: RENAS's mutation controller and the REINFORCE architecture sampler.

Both are small LSTMs trained with REINFORCE (Williams, 1992) by :class:`Reinforce`:
advantage = reward - moving-average baseline (optionally divided by a running standard
deviation), loss = -(advantage * log-prob) - entropy_weight * entropy, Adam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from renas.search.mutation import Edit
from renas.space.base import Gene


def _gene_tables(genes: Sequence[Gene]) -> tuple[torch.Tensor, torch.Tensor, int]:
    arity = torch.tensor([g.arity for g in genes], dtype=torch.long)
    offset = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), arity[:-1]]), 0)
    return arity, offset, int(arity.max())


class MutationController(nn.Module):
    """RENAS's mutation controller: looks at the parent and picks which genes to change and how.

    The parent genotype is read as a sequence of gene tokens (embedding of the gene's position
    plus embedding of its value) by a bidirectional LSTM. A position head scores every gene;
    ``k`` genes are drawn without replacement from that softmax. For each chosen gene a value
    head scores its legal values (never the current one) against the value embeddings, and a
    new value is drawn. The log-probability of the whole edit is what REINFORCE trains.

    Args:
        genes: the search space's genes.
        embed: token embedding size.
        hidden: LSTM hidden size (per direction).
    """

    def __init__(self, genes: Sequence[Gene], embed: int = 32, hidden: int = 64) -> None:
        super().__init__()
        arity, offset, max_arity = _gene_tables(genes)
        self.register_buffer("arity", arity, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.n_genes, self.max_arity = len(genes), max_arity
        self.pos_embed = nn.Embedding(len(genes), embed)
        self.val_embed = nn.Embedding(int(arity.sum()), embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.pos_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.val_query = nn.Linear(2 * hidden, embed)
        self.val_bias = nn.Parameter(torch.zeros(int(arity.sum())))
        # value slots j of gene i: global index offset[i] + j, padded to max_arity
        j = torch.arange(max_arity)
        self.register_buffer("slot_valid", j[None, :] < arity[:, None], persistent=False)
        self.register_buffer(
            "slot_index", (offset[:, None] + j[None, :]).clamp_max(int(arity.sum()) - 1), persistent=False
        )

    def logits(self, parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Position logits (B, n) and value logits (B, n, max_arity) for parent values (B, n)."""
        pos = torch.arange(self.n_genes, device=parents.device)
        tokens = self.pos_embed(pos)[None] + self.val_embed(parents + self.offset[None])
        h, _ = self.lstm(tokens)
        pos_logits = self.pos_head(h).squeeze(-1)
        pos_logits = pos_logits.masked_fill((self.arity < 2)[None], float("-inf"))
        q = self.val_query(h)  # (B, n, embed)
        emb = self.val_embed(self.slot_index)  # (n, A, embed)
        val_logits = torch.einsum("bne,nae->bna", q, emb) + self.val_bias[self.slot_index][None]
        invalid = ~self.slot_valid[None] | torch.nn.functional.one_hot(parents, self.max_arity).bool()
        return pos_logits, val_logits.masked_fill(invalid, float("-inf"))

    def log_prob(
        self, parents: torch.Tensor, positions: list[list[int]], values: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability (B,) of each edit list and the mean entropy (B,) of its choices.

        Edits are scored in order: each gene is drawn from the position softmax without the
        genes drawn before it, then its value from the value softmax.
        """
        pos_logits, val_logits = self.logits(parents)
        batch = parents.shape[0]
        k_max = max(len(p) for p in positions)
        pos = torch.full((batch, k_max), -1, dtype=torch.long)
        val = torch.zeros((batch, k_max), dtype=torch.long)
        for b, (ps, vs) in enumerate(zip(positions, values)):
            pos[b, : len(ps)] = torch.tensor(ps, dtype=torch.long)
            val[b, : len(vs)] = torch.tensor(vs, dtype=torch.long)
        present = pos >= 0
        safe_pos = pos.clamp_min(0)
        val_logp_all = torch.log_softmax(val_logits, -1)  # (B, n, A)
        val_p_all = val_logp_all.exp()
        val_ent_all = -(val_p_all * val_logp_all.nan_to_num(neginf=0.0)).sum(-1)  # (B, n)
        taken = torch.zeros_like(pos_logits, dtype=torch.bool)
        logp = pos_logits.new_zeros(batch)
        ent = pos_logits.new_zeros(batch)
        rows = torch.arange(batch)
        for j in range(k_max):
            lp = torch.log_softmax(pos_logits.masked_fill(taken, float("-inf")), -1)
            p_ent = -(lp.exp() * lp.nan_to_num(neginf=0.0)).sum(-1)
            step_lp = lp[rows, safe_pos[:, j]] + val_logp_all[rows, safe_pos[:, j], val[:, j]]
            step_ent = p_ent + val_ent_all[rows, safe_pos[:, j]]
            logp = logp + torch.where(present[:, j], step_lp, torch.zeros_like(step_lp))
            ent = ent + torch.where(present[:, j], step_ent, torch.zeros_like(step_ent))
            taken = taken | (torch.nn.functional.one_hot(safe_pos[:, j], self.n_genes).bool() & present[:, j, None])
        return logp, ent / present.sum(1).clamp_min(1)

    @torch.no_grad()
    def propose(
        self,
        parent: Sequence[int],
        k: int,
        generator: torch.Generator,
        known: Callable[[tuple[int, ...]], bool] | None = None,
    ) -> list[Edit] | None:
        """Draw ``k`` edits for ``parent`` (distinct genes, each to a different legal value).

        The first ``k - 1`` edits are drawn from the policy; the last one is drawn from the
        policy restricted to edits whose child is not ``known`` (already evaluated or in
        evaluation), so a proposal never repeats an architecture of the search's history.
        Returns ``None`` when every such edit leads to a known child.
        """
        x = torch.tensor([list(parent)], dtype=torch.long)
        pos_logits, val_logits = self.logits(x)
        pos_logp = torch.log_softmax(pos_logits[0], -1)
        val_logp = torch.log_softmax(val_logits[0], -1)
        k = max(1, min(k, int(torch.isfinite(pos_logp).sum())))
        edits: list[Edit] = []
        child = list(parent)
        taken = torch.zeros(self.n_genes, dtype=torch.bool)
        for _ in range(k - 1):
            p = int(torch.multinomial(torch.softmax(pos_logits[0].masked_fill(taken, float("-inf")), -1), 1, generator=generator))
            v = int(torch.multinomial(val_logp[p].exp(), 1, generator=generator))
            edits.append((p, child[p], v))
            child[p] = v
            taken[p] = True
        # the last edit: the joint distribution over (gene, value), known children masked
        joint = torch.log_softmax(pos_logits[0].masked_fill(taken, float("-inf")), -1)[:, None] + val_logp
        if known is not None:
            for i in range(self.n_genes):
                if taken[i] or not torch.isfinite(joint[i]).any():
                    continue
                for v in range(self.max_arity):
                    if torch.isfinite(joint[i, v]):
                        cand = list(child)
                        cand[i] = v
                        if known(tuple(cand)):
                            joint[i, v] = float("-inf")
        flat = joint.flatten()
        if not torch.isfinite(flat).any():
            return None
        idx = int(torch.multinomial(torch.softmax(flat, -1), 1, generator=generator))
        p, v = divmod(idx, self.max_arity)
        edits.append((p, child[p], v))
        return edits

    def edit_probability(self, parent: Sequence[int], gene: int, value: int) -> float:
        """Probability that a single-edit proposal for ``parent`` is exactly ``gene := value``."""
        with torch.no_grad():
            pos_logits, val_logits = self.logits(torch.tensor([list(parent)], dtype=torch.long))
            return float(torch.softmax(pos_logits[0], -1)[gene] * torch.softmax(val_logits[0, gene], -1)[value])

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
             blocked: Callable[[tuple[int, ...]], bool] | None = None):
        """Teacher-forced (values given, (B, n)) or sampled (B = 1) pass."""
        batch = 1 if values is None else values.shape[0]
        x = self.start.expand(batch, -1)
        state = None
        out, logps, ents = [], [], []
        prefix: tuple[int, ...] = ()
        for i in range(self.n_genes):
            state = self.cell(x, state)
            dist = torch.distributions.Categorical(logits=self.heads[i](state[0]))
            if values is None:
                probs = dist.probs
                if blocked is not None:
                    free = torch.tensor([not blocked(prefix + (v,)) for v in range(probs.shape[1])])
                    if bool(free.any()):
                        probs = probs * free.to(probs.dtype)
                v = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                prefix += (int(v[0]),)
            else:
                v = values[:, i]
            out.append(v)
            logps.append(dist.log_prob(v))
            ents.append(dist.entropy())
            x = self.val_embed(v + self.offset[i])
        return torch.stack(out, 1), torch.stack(logps, 1).sum(1), torch.stack(ents, 1).mean(1)

    @torch.no_grad()
    def sample(self, generator: torch.Generator,
               blocked: Callable[[tuple[int, ...]], bool] | None = None) -> tuple[int, ...]:
        """One architecture; ``blocked(prefix)`` (optional) is true for gene-value prefixes
        whose every completion is known already, which are then not sampled."""
        values, _, _ = self._run(None, generator, blocked)
        return tuple(int(v) for v in values[0])

    def log_prob(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, logp, ent = self._run(values, None)
        return logp, ent


@dataclass
class Experience:
    """One action and its reward: for the mutation controller ``parent`` + edits; for the
    architecture sampler ``values``."""

    reward: float
    parent: tuple[int, ...] | None = None
    positions: tuple[int, ...] = ()
    new_values: tuple[int, ...] = ()
    values: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reward": self.reward,
            "parent": None if self.parent is None else list(self.parent),
            "positions": list(self.positions),
            "new_values": list(self.new_values),
            "values": None if self.values is None else list(self.values),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Experience":
        return cls(
            float(d["reward"]),
            None if d["parent"] is None else tuple(d["parent"]),
            tuple(d["positions"]),
            tuple(d["new_values"]),
            None if d["values"] is None else tuple(d["values"]),
        )


class Reinforce:
    """REINFORCE with a moving-average baseline, an entropy bonus and Adam.

    Args:
        policy: a :class:`MutationController` or :class:`ArchitectureSampler`.
        lr: Adam learning rate.
        batch: rewards per update.
        entropy_weight: weight of the entropy bonus.
        baseline_decay: decay of the exponential moving-average baseline.
        normalize: divide advantages by a running standard deviation of rewards.
    """

    def __init__(
        self,
        policy: nn.Module,
        lr: float = 3e-3,
        batch: int = 1,
        entropy_weight: float = 1e-3,
        baseline_decay: float = 0.9,
        normalize: bool = False,
    ) -> None:
        self.policy = policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        self.batch = batch
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.normalize = normalize
        self.baseline: float | None = None
        self.var = 1.0
        self.buffer: list[Experience] = []
        self.updates = 0

    def observe(self, exp: Experience) -> dict[str, float] | None:
        """Add one reward; update when a batch is full. Returns the update's statistics."""
        self.buffer.append(exp)
        if len(self.buffer) < self.batch:
            return None
        batch, self.buffer = self.buffer, []
        return self.update(batch)

    def observe_many(self, experiences: list[Experience]) -> dict[str, float] | None:
        """Add several rewards; update once if the batch is full."""
        self.buffer.extend(experiences)
        if not self.buffer or len(self.buffer) < self.batch:
            return None
        batch, self.buffer = self.buffer, []
        return self.update(batch)

    def update(self, batch: list[Experience]) -> dict[str, float]:
        rewards = np.array([e.reward for e in batch], dtype=np.float64)
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        advantages = rewards - self.baseline
        if self.normalize:
            self.var = self.baseline_decay * self.var + (1 - self.baseline_decay) * float((advantages**2).mean())
            advantages = advantages / max(np.sqrt(self.var), 1e-8)
        if batch[0].values is not None:
            logp, ent = self.policy.log_prob(torch.tensor([e.values for e in batch], dtype=torch.long))
        else:
            parents = torch.tensor([e.parent for e in batch], dtype=torch.long)
            logp, ent = self.policy.log_prob(parents, [list(e.positions) for e in batch],
                                             [list(e.new_values) for e in batch])
        adv = torch.tensor(advantages, dtype=torch.float32)
        loss = -(adv * logp).mean() - self.entropy_weight * ent.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        stats = {
            "reward_mean": float(rewards.mean()),
            "loss": float(loss.detach()),
            "entropy": float(ent.detach().mean()),
            "baseline": float(self.baseline),
        }
        # the baseline moves after the update, so the advantage compares with past rewards only
        for r in rewards:
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * float(r)
        self.updates += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "var": self.var,
            "buffer": [e.to_dict() for e in self.buffer],
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        self.var = float(state["var"])
        self.buffer = [Experience.from_dict(d) for d in state["buffer"]]
        self.updates = int(state["updates"])
