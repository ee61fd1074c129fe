"""How much can a mutation policy buy on the NAS-Bench-201 table? A bound for RENAS's controller.

RENAS as tuned (P = S = 3, one gene per child, restart at a local optimum) is a hill-climber
whose untried single-gene edits a learned policy orders. This script runs that loop, written
without renas (plain numpy), with three orders of the parent's untried neighbours:

- ``random``: uniform, RENAS's ablation (``algorithm=evolution``);
- ``learned``: what a search can learn from its own evaluations: a ridge regression of fitness
  on one-hot edge ops plus shared op labels, refit after every evaluation (fitness clipped at
  its lower quartile so disconnected cells do not dominate), edits drawn from a softmax of the
  predicted gain at temperature 0.3 (in units of the fitness spread);
- ``oracle``: an additive model (one value per edge and op) fitted to all 15,625 cells, which
  no search has: the best any policy that scores an edit by "this op on this edge" can do.

Two variants of the loop ask whether the same learned model would do better steering more than
the order of single-gene edits: ``--restart model`` (at a local optimum, go on from a cell the
model picks among all unevaluated ones) and ``--edits 2`` (children may change two genes, the
model ordering all of them). ``--orders global`` drops the loop: after 10 random cells every
evaluation is the model's pick among all unevaluated cells (model-based search, no mutation).
``--nodes in|out`` adds terms per op and the node its edge reads from / writes to.
``--paths`` adds terms of what reaches the output (ops on the paths without a ``none``).
``--pick thompson`` draws the learned order's edit by Thompson sampling from the ridge fit's
posterior instead of a softmax of its predicted gain.

Prints the mean best ``c10_valid_12ep`` (± SE over seeds) per budget and order::

    python benchmarks/ordering_bound.py                       # seeds 100..199 (the tuning seeds)
    python benchmarks/ordering_bound.py --seeds 20 --budgets 50 100
    python benchmarks/ordering_bound.py --restart kick2 --first-seed 500 --seeds 300 --orders random learned
    python benchmarks/ordering_bound.py --edits 2 --edge-ridge inf --first-seed 500 --seeds 300 --orders learned
    python benchmarks/ordering_bound.py --pick thompson --edge-ridge inf --first-seed 500 --seeds 300 --orders learned
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_EDGES = 6


def read_table(path: Path, metric: str) -> dict[tuple[int, ...], float]:
    """``arch_str`` -> ``metric`` for every cell; ValueError (one line) on a file the loop cannot use."""
    if not path.is_file():
        raise ValueError(f"--table {path}: no such file (set RENAS_SHARED or --table)")
    table = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("arch_str", metric) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"--table {path}: no column {', '.join(missing)} (columns: {', '.join(reader.fieldnames or [])})")
        for line, row in enumerate(reader, start=2):
            tokens = [t for t in row["arch_str"].replace("+", "").strip("|").split("|") if t]
            ops = [t.split("~")[0] for t in tokens]
            if len(ops) != N_EDGES or any(o not in OPS for o in ops):
                raise ValueError(f"--table {path}, line {line}: {row['arch_str']!r} is not a NAS-Bench-201 cell")
            try:
                table[tuple(OPS.index(o) for o in ops)] = float(row[metric])
            except ValueError:
                raise ValueError(f"--table {path}, line {line}: {metric}={row[metric]!r} is not a number") from None
    if len(table) != len(OPS) ** N_EDGES:
        raise ValueError(f"--table {path}: {len(table)} cells; the loop needs all {len(OPS) ** N_EDGES}")
    return table


def features(arch: tuple[int, ...]) -> np.ndarray:
    """One-hot op per edge (30) plus the count of each op label over the edges (5)."""
    x = np.zeros(N_EDGES * len(OPS) + len(OPS))
    for i, v in enumerate(arch):
        x[i * len(OPS) + v] = 1.0
        x[N_EDGES * len(OPS) + v] += 1.0
    return x


# The cell's nodes each edge reads from and writes to (NAS-Bench-201's edge order in `arch_str`).
EDGE_IN = (0, 0, 1, 0, 1, 2)
EDGE_OUT = (1, 2, 2, 3, 3, 3)
# The cell's paths from its input (node 0) to its output (node 3), as edge indices.
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def path_terms(arch: tuple[int, ...]) -> np.ndarray:
    """What reaches the output: the count of each op on the paths without a ``none`` (an op on two
    live paths counts twice), the most convolutions on one live path, and the number of live paths."""
    x = np.zeros(len(OPS) + 2)
    for path in PATHS:
        if all(arch[e] != 0 for e in path):
            for e in path:
                x[arch[e]] += 1.0
            x[len(OPS)] = max(x[len(OPS)], sum(OPS[arch[e]].startswith("nor_conv") for e in path))
            x[len(OPS) + 1] += 1.0
    return x


@dataclass(frozen=True)
class Model:
    """The learned model's terms: the shared op labels (ridge 3), unless ``edge_ridge`` is inf one
    term per edge and op (ridge ``edge_ridge``), and with ``nodes`` ``in`` / ``out`` one term per
    op and the node its edge reads from / writes to (ridge ``node_ridge``): "which ops help on
    which inputs", shared by the edges of a node; with ``paths`` the :func:`path_terms` (ridge 3)."""

    edge_ridge: float = 3.0
    nodes: str = "none"
    node_ridge: float = 10.0
    paths: bool = False

    def x(self, arch: tuple[int, ...]) -> np.ndarray:
        f = features(arch)
        parts = [f[: N_EDGES * len(OPS)]] if np.isfinite(self.edge_ridge) else []
        if self.nodes != "none":
            node = EDGE_IN if self.nodes == "in" else [n - 1 for n in EDGE_OUT]
            g = np.zeros(3 * len(OPS))
            for e, v in enumerate(arch):
                g[node[e] * len(OPS) + v] += 1.0
            parts.append(g)
        if self.paths:
            parts.append(path_terms(arch))
        return np.concatenate(parts + [f[N_EDGES * len(OPS):]])

    def penalty(self) -> np.ndarray:
        per_edge = N_EDGES * len(OPS) if np.isfinite(self.edge_ridge) else 0
        per_node = 3 * len(OPS) if self.nodes != "none" else 0
        per_path = len(OPS) + 2 if self.paths else 0
        return np.r_[np.full(per_edge, self.edge_ridge), np.full(per_node, self.node_ridge), np.full(per_path, 3.0),
                     np.full(len(OPS), 3.0)]


def _design(seen: dict, model: Model) -> tuple[np.ndarray, np.ndarray]:
    """``model``'s terms of the evaluated cells and their fitness, clipped below at its lower
    quartile, centred and in units of its spread."""
    archs = list(seen)
    X = np.array([model.x(a) for a in archs])
    y = np.array([seen[a] for a in archs])
    y = np.maximum(y, np.quantile(y, 0.25))
    return X, (y - y.mean()) / (y.std() + 1e-9)


def explained(table: dict, model: Model) -> tuple[float, float]:
    """``model``'s terms fitted (least squares, with an intercept) to every cell of ``table``: the
    R² and the Spearman correlation of the fit with the table on its top tenth."""
    archs = list(table)
    X = np.c_[np.array([model.x(a) for a in archs]), np.ones(len(archs))]
    y = np.array([table[a] for a in archs])
    pred = X @ np.linalg.lstsq(X, y, rcond=None)[0]
    top = y > np.quantile(y, 0.9)
    ranks = [np.argsort(np.argsort(v)) for v in (pred[top], y[top])]
    return 1 - ((pred - y) ** 2).mean() / y.var(), float(np.corrcoef(*ranks)[0, 1])


def fit(seen: dict, model: Model) -> np.ndarray:
    """Ridge regression of the (lower-quartile-clipped) fitness on ``model``'s terms; weights in
    units of the fitness spread."""
    X, y = _design(seen, model)
    return np.linalg.solve(X.T @ X + np.diag(model.penalty()), X.T @ y)


def thompson_weights(rng, seen: dict, model: Model, scale: float) -> np.ndarray:
    """A draw of the weights from the ridge fit's Gaussian posterior (noise variance: the
    residuals' mean square), its covariance times ``scale``: Thompson sampling."""
    X, y = _design(seen, model)
    inv = np.linalg.inv(X.T @ X + np.diag(model.penalty()))
    w = inv @ X.T @ y
    noise = max(float(((y - X @ w) ** 2).sum()) / max(len(y) - 1, 1), 1e-3)
    cov = scale * noise * inv
    return w + np.linalg.cholesky(cov + 1e-9 * np.eye(len(w))) @ rng.standard_normal(len(w))


def softmax_pick(rng, scores: np.ndarray, temperature: float) -> int:
    p = np.exp((scores - scores.max()) / temperature)
    return int(rng.choice(len(scores), p=p / p.sum()))


_ALL_FEATURES: dict[tuple[int, Model], tuple[list, np.ndarray]] = {}  # (id(table), model) -> (its cells, their terms)


def model_pick(rng, table, seen: dict, model: Model, temperature: float) -> tuple[int, ...]:
    """An unevaluated cell of the whole table drawn from a softmax of the learned model."""
    if (id(table), model) not in _ALL_FEATURES:
        _ALL_FEATURES[id(table), model] = (list(table), np.array([model.x(a) for a in table]))
    archs, X = _ALL_FEATURES[id(table), model]
    w = fit(seen, model)
    keep = np.array([a not in seen for a in archs])
    scores = X[keep] @ w
    return [a for a, k in zip(archs, keep) if k][softmax_pick(rng, scores, temperature)]


def global_search(table, seed: int, budget: int, model: Model = Model(), n_init: int = 10,
                  temperature: float = 0.1) -> float:
    """Model-based search without mutation: ``n_init`` random cells, then each evaluation the
    learned model's pick among all unevaluated cells (softmax at ``temperature``)."""
    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], float] = {}
    while len(seen) < min(n_init, budget):
        a = tuple(int(v) for v in rng.integers(0, len(OPS), N_EDGES))
        seen[a] = table[a]
    while len(seen) < budget:
        a = model_pick(rng, table, seen, model, temperature)
        seen[a] = table[a]
    return max(seen.values())


def learned_pick(rng, untried: list, seen: dict, model: Model, pick: str = "softmax", scale: float = 1.0) -> tuple[int, ...]:
    """The learned order's next edit among ``untried``: drawn from a softmax of the fitted
    model's predicted gain (τ 0.3), or with ``pick="thompson"`` the best under one draw from the
    fit's posterior (edits with the same terms are tied; a tie is broken at random)."""
    if pick == "thompson":
        w = thompson_weights(rng, seen, model, scale)
        scores = np.array([model.x(a) @ w for a in untried])
        return untried[int(rng.choice(np.flatnonzero(scores == scores.max())))]
    w = fit(seen, model)
    return untried[softmax_pick(rng, np.array([model.x(a) @ w for a in untried]), 0.3)]


def _two_gene(arch: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every cell that differs from ``arch`` in exactly two genes."""
    out = []
    for i in range(N_EDGES):
        for j in range(i + 1, N_EDGES):
            for u in range(len(OPS)):
                for v in range(len(OPS)):
                    if u != arch[i] and v != arch[j]:
                        a = list(arch)
                        a[i], a[j] = u, v
                        out.append(tuple(a))
    return out


def _open(arch: tuple[int, ...], seen: dict) -> bool:
    """Whether ``arch`` has a single-gene neighbour not evaluated yet."""
    return any(arch[:i] + (v,) + arch[i + 1:] not in seen for i in range(N_EDGES) for v in range(len(OPS)) if v != arch[i])


def hill_climb(table, seed: int, budget: int, order: str, oracle: np.ndarray, population: int = 3,
               restart: str = "random", model: Model = Model(), edits: int = 1, pick: str = "softmax",
               scale: float = 1.0) -> float:
    """The loop; at a local optimum ``restart``: ``random`` (RENAS's: the best of ``population``
    new random cells), ``bestfirst`` (go on from the fittest evaluated cell that still has an
    untried neighbour), ``kick<k>`` (iterated local search: the best cell with k random genes
    changed) or ``model`` (once 10 cells are known, a cell the learned model picks among all
    unevaluated ones, softmax τ 0.3; before that, random). ``edits``: 1 (RENAS's) or 2 (children
    may also change two genes; a local optimum is still a parent without untried single-gene
    neighbours). ``model``: the learned order's terms (``Model()``: per-edge terms with ridge 3
    and labels; ``Model(edge_ridge=inf)``: labels only, as RENAS's prior). ``pick``: how the
    learned order draws an edit: ``softmax`` of the fitted model's predicted gain (τ 0.3) or
    ``thompson`` (the best edit under a draw from the fit's posterior, its covariance times
    ``scale``)."""
    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], float] = {}

    def random_arch() -> tuple[int, ...]:
        while True:
            a = tuple(int(v) for v in rng.integers(0, len(OPS), N_EDGES))
            if a not in seen:
                return a

    parent = None
    while len(seen) < budget:
        if parent is None and restart == "model" and len(seen) >= 10:  # the model's pick
            parent = model_pick(rng, table, seen, model, 0.3)
            seen[parent] = table[parent]
            continue
        if parent is None:  # a (re)start: the best of `population` random cells
            starts = [random_arch() for _ in range(population)]
            for a in starts[: budget - len(seen)]:
                seen[a] = table[a]
            parent = max((a for a in starts if a in seen), key=seen.get)
            continue
        untried = [parent[:i] + (v,) + parent[i + 1:] for i in range(N_EDGES) for v in range(len(OPS)) if v != parent[i]]
        untried = [a for a in untried if a not in seen]
        if edits == 2 and untried:
            untried += [a for a in _two_gene(parent) if a not in seen]
        if not untried:  # a local optimum
            if restart == "bestfirst":
                parent = next((a for a in sorted(seen, key=seen.get, reverse=True) if _open(a, seen)), None)
            elif restart.startswith("kick"):
                best = max(seen, key=seen.get)
                for _ in range(100):
                    kicked = list(best)
                    for i in rng.choice(N_EDGES, int(restart[4:]), replace=False):
                        kicked[i] = int((kicked[i] + rng.integers(1, len(OPS))) % len(OPS))
                    if tuple(kicked) not in seen:
                        break
                parent = tuple(kicked)
                seen[parent] = table[parent]
            else:  # start again
                parent = None
            continue
        if order == "random":
            child = untried[rng.integers(len(untried))]
        elif order == "oracle":
            child = max(untried, key=lambda a: float(features(a)[: N_EDGES * len(OPS)] @ oracle))
        else:
            child = learned_pick(rng, untried, seen, model, pick, scale)
        seen[child] = table[child]
        if seen[child] > seen[parent]:
            parent = child
    return max(seen.values())


def main() -> None:
    shared = Path(os.environ.get("RENAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(shared / "data/nasbench201/nb201_cifar10.csv"))
    p.add_argument("--metric", default="c10_valid_12ep")
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--seeds", type=int, default=100, help="number of seeds, from --first-seed")
    p.add_argument("--first-seed", type=int, default=100, help="default 100: the tuning seeds, not the reported ones")
    p.add_argument("--orders", nargs="+", default=["random", "learned", "oracle"],
                   choices=["random", "learned", "oracle", "global"],
                   help="global: model-based search over the whole table, no mutation (see above)")
    p.add_argument("--edits", type=int, default=1, choices=[1, 2],
                   help="genes a child may change (2: single- and two-gene edits, all ordered)")
    p.add_argument("--edge-ridge", type=float, default=3.0,
                   help="ridge penalty of the learned model's per-edge terms (inf: labels only, as RENAS's prior)")
    p.add_argument("--nodes", default="none", choices=["none", "in", "out"],
                   help="the learned model's terms per op and the node its edge reads from (in) or writes to (out)")
    p.add_argument("--node-ridge", type=float, default=10.0, help="their ridge penalty (default 10)")
    p.add_argument("--restart", default="random", choices=["random", "bestfirst", "kick2", "kick3", "model"],
                   help="what the loop does at a local optimum (default: RENAS's random restart)")
    p.add_argument("--paths", action="store_true",
                   help="the learned model's terms of what reaches the output (ops on live paths, conv depth, live paths)")
    p.add_argument("--pick", default="softmax", choices=["softmax", "thompson"],
                   help="how the learned order draws an edit: softmax of the predicted gain (τ 0.3, RENAS's) "
                        "or Thompson sampling from the fit's posterior")
    p.add_argument("--posterior-scale", type=float, default=None,
                   help="--pick thompson: the posterior covariance's multiplier (default 1; smaller: greedier)")
    args = p.parse_args()
    if args.posterior_scale is not None and args.pick != "thompson":
        p.error(f"--posterior-scale={args.posterior_scale} is used by --pick thompson only (--pick is {args.pick})")
    if args.posterior_scale is None:
        args.posterior_scale = 1.0
    if not 0 < args.posterior_scale < np.inf:
        p.error(f"--posterior-scale must be > 0 and finite, got {args.posterior_scale}")
    if not args.edge_ridge > 0:
        p.error(f"--edge-ridge must be > 0 (inf: labels only), got {args.edge_ridge}")
    if not 0 < args.node_ridge < np.inf:
        p.error(f"--node-ridge must be > 0 and finite, got {args.node_ridge}")
    if args.seeds < 2:
        p.error(f"--seeds={args.seeds}: need at least 2 (the standard error)")
    if args.first_seed < 0:
        p.error(f"--first-seed={args.first_seed} must be >= 0")
    for option, values in (("--budgets", args.budgets), ("--orders", args.orders)):
        if len(set(values)) < len(values):  # a column or row printed twice
            p.error(f"{option} {' '.join(map(str, values))}: a value is named twice")
    bad = [b for b in args.budgets if not 1 <= b <= len(OPS) ** N_EDGES]
    if bad:
        p.error(f"--budgets {bad[0]}: each budget must be in 1..{len(OPS) ** N_EDGES} (the table's cells)")
    model = Model(args.edge_ridge, args.nodes, args.node_ridge, args.paths)
    try:
        table = read_table(Path(args.table), args.metric)
    except ValueError as e:
        p.error(str(e))
    archs = list(table)
    X = np.array([features(a)[: N_EDGES * len(OPS)] for a in archs])
    y = np.array([table[a] for a in archs])
    oracle = np.linalg.lstsq(X, y, rcond=None)[0]
    r2 = 1 - ((X @ oracle - y) ** 2).mean() / y.var()
    print(f"{len(table)} cells; best {y.max():.3f}; the additive model explains R2 = {r2:.2f} of {args.metric}")
    if args.paths:
        for name, m in (("labels", Model(np.inf)), ("labels + per-edge terms", Model()),
                        ("labels + path terms", Model(np.inf, paths=True))):
            r2, rho = explained(table, m)
            print(f"fitted to all cells, {name}: R2 = {r2:.2f}, Spearman on the top tenth {rho:.2f}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for order in args.orders:
        start = time.perf_counter()
        cells = []
        for b in args.budgets:
            if order == "global":
                best = np.array([global_search(table, s, b, model) for s in seeds])
            else:
                best = np.array([hill_climb(table, s, b, order, oracle, restart=args.restart, model=model,
                                            edits=args.edits, pick=args.pick, scale=args.posterior_scale)
                                 for s in seeds])
            cells.append(f"b{b} {best.mean():.3f} ± {best.std(ddof=1) / np.sqrt(len(best)):.3f}")
        print(f"{order:<8} " + "  ".join(cells) + f"  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
