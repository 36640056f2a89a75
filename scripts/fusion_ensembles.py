#!/usr/bin/env python3
"""Score-level fusion variants at alpha 0.5 on the seven collections' cached arm runs.

    python scripts/fusion_ensembles.py [--arm-runs var/eval/arm-runs]

Each variant re-ranks the cached BM25 and dense lists of every judged query
(`var/eval/arm-runs`, made by ``scripts/train_fusion.py``) and prints per-collection and
mean nDCG@10 (trec_eval's cut, ties by document id as in `eval.fusion_training.grid_ndcg`):

- ``min-max`` / ``z-score``: the server's interpolations (the baselines);
- ``min-max + c z-score``: each arm's min-max score plus ``c`` times its z-score;
- ``min-max + g RRF``: plus ``g`` times the two arms' reciprocal-rank sum (k 60, scaled so
  that rank 1 in both lists adds ``g``);
- ``min-max + agreement``: plus ``b`` for a document both arms rank in their top ``K`` (as
  CombMNZ rewards agreement), with (K, b) also chosen leave-one-collection-out.

The figures are quoted in ``docs/effectiveness.md`` ("What was tried"). Deterministic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.eval.arm_runs import DEFAULT_DIR, ArmRuns, find_cached, load
from hybridsearch.eval.fusion_training import ndcg_at_10

COLLECTIONS = ("scifact", "cranfield", "cisi", "cacm", "medline", "lisa", "adi")
ALPHA = 0.5
RRF_K = 60

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Candidates:
    """One query's union of both arms' candidates, as the fusion sees them."""

    sparse_at: NDArray[np.intp]  # position in the union of each BM25 candidate, best first
    dense_at: NDArray[np.intp]
    sparse: Array  # raw scores, best first
    dense: Array
    names: NDArray[np.str_]
    id_rank: NDArray[np.int64]  # rank of each name in descending id order (ties)
    judged: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.names)

    def side(self, at: NDArray[np.intp], values: Array, floor: float) -> Array:
        out = np.full(self.size, floor)
        out[at] = values
        return out


def candidates(runs: ArmRuns) -> list[Candidates]:
    """Every judged query of ``runs``."""
    out = []
    for qid, query in runs.queries.items():
        union = np.union1d(query.sparse.ordinals, query.dense.ordinals)
        names = np.array([runs.ids[int(o)] for o in union])
        id_rank = np.empty(len(union), dtype=np.int64)
        id_rank[np.argsort(names)[::-1]] = np.arange(len(union))
        out.append(
            Candidates(
                np.searchsorted(union, query.sparse.ordinals),
                np.searchsorted(union, query.dense.ordinals),
                np.asarray(query.sparse.scores, dtype=np.float64),
                np.asarray(query.dense.scores, dtype=np.float64),
                names,
                id_rank,
                runs.qrels.get(qid, {}),
            )
        )
    return out


def min_max(x: Array) -> Array:
    low, high = float(x.min()), float(x.max())
    return np.ones_like(x) if high <= low else (x - low) / (high - low)


def z_score(x: Array) -> Array:
    std = float(x.std())
    return np.zeros_like(x) if std <= 0 else (x - float(x.mean())) / std


Scorer = Callable[[Candidates], Array]


def interpolation(normalize: Callable[[Array], Array], floor_at_min: bool) -> Scorer:
    def score(q: Candidates) -> Array:
        s, d = normalize(q.sparse), normalize(q.dense)
        s_side = q.side(q.sparse_at, s, float(s.min()) if floor_at_min else 0.0)
        d_side = q.side(q.dense_at, d, float(d.min()) if floor_at_min else 0.0)
        return (1 - ALPHA) * s_side + ALPHA * d_side

    return score


MIN_MAX = interpolation(min_max, floor_at_min=False)
Z_SCORE = interpolation(z_score, floor_at_min=True)


def plus_z(c: float) -> Scorer:
    def score(q: Candidates) -> Array:
        return MIN_MAX(q) + c * Z_SCORE(q)

    return score


def plus_rrf(g: float) -> Scorer:
    def score(q: Candidates) -> Array:
        rrf = np.zeros(q.size)
        rrf[q.sparse_at] += 1.0 / (RRF_K + 1 + np.arange(len(q.sparse_at)))
        rrf[q.dense_at] += 1.0 / (RRF_K + 1 + np.arange(len(q.dense_at)))
        return MIN_MAX(q) + g * rrf * (RRF_K + 1) / 2

    return score


def plus_agreement(top: int, bonus: float) -> Scorer:
    def score(q: Candidates) -> Array:
        both = np.zeros(q.size, dtype=bool)
        both[q.sparse_at[:top]] = True
        in_dense = np.zeros(q.size, dtype=bool)
        in_dense[q.dense_at[:top]] = True
        return MIN_MAX(q) + bonus * (both & in_dense)

    return score


def ndcg(queries: list[Candidates], scorer: Scorer) -> float:
    """Mean nDCG@10 of the queries ranked by ``scorer``."""
    values = []
    for q in queries:
        top = np.lexsort((q.id_rank, -scorer(q)))[:10]
        values.append(ndcg_at_10(q.names[top].tolist(), q.judged))
    return float(np.mean(values))


def table(data: dict[str, list[Candidates]], scorer: Scorer) -> dict[str, float]:
    return {name: ndcg(queries, scorer) for name, queries in data.items()}


def show(label: str, figures: dict[str, float]) -> None:
    cells = " ".join(f"{name} {value:.4f}" for name, value in figures.items())
    print(f"{label:34} {cells}  mean {np.mean(list(figures.values())):.4f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm-runs", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    data = {}
    for name in COLLECTIONS:
        found = find_cached(args.arm_runs, name)
        if found is None:
            print(f"no cached arm runs of {name}: run scripts/train_fusion.py", file=sys.stderr)
            return 1
        data[name] = candidates(load(found))
    base = table(data, MIN_MAX)
    show("min-max", base)
    show("z-score", table(data, Z_SCORE))
    for c in (0.05, 0.1, 0.2, 0.4):
        show(f"min-max + {c} z-score", table(data, plus_z(c)))
    for g in (0.1, 0.3, 0.6):
        show(f"min-max + {g} RRF", table(data, plus_rrf(g)))
    grid = {}
    for top in (3, 5, 10, 15):
        for bonus in (0.03, 0.05, 0.07, 0.1, 0.15):
            grid[top, bonus] = figures = table(data, plus_agreement(top, bonus))
            show(f"min-max + agreement K {top} b {bonus}", figures)
    chosen = {}
    for name in COLLECTIONS:
        best = max(
            grid, key=lambda k: float(np.mean([grid[k][o] for o in COLLECTIONS if o != name]))
        )
        chosen[name] = grid[best][name]
        print(f"leave-one-out {name}: K {best[0]} b {best[1]}: {chosen[name] - base[name]:+.4f}")
    show("agreement, leave-one-collection-out", chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
