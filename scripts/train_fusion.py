#!/usr/bin/env python3
"""Train the adaptive fusion model and evaluate it leave-one-collection-out.

    python scripts/train_fusion.py [--data ../shared/data] [--model-dir var/models/...]
        [--out server/hybridsearch/fusion/adaptive_model.json] [--loco var/eval/adaptive-loco.json]

1. Both arms' candidate lists (1000 each) of every judged query of the seven shared
   collections are collected once and cached (``var/eval/arm-runs``, see
   `hybridsearch.eval.arm_runs`); indexes come from the eval index cache.
2. Leave-one-collection-out: for each collection, a model fitted on the other six ranks its
   queries; per-query nDCG@10, R@100 and AP of it and of fixed-alpha min-max, z-score (alpha
   0.5) and RRF (k 60) go to ``--loco`` (JSON), which ``scripts/eval_all.py`` renders into
   ``docs/effectiveness.md``.
3. The shipped model is fitted on all seven and written to ``--out``.

The recipe (features, candidate alphas, objective, L2) is in
`hybridsearch.eval.fusion_training`. Deterministic: a re-run on the same arm runs writes the
same files (the runs are cached per version of the query path's code:
`hybridsearch.eval.arm_runs.code_stamp`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hybridsearch.cli.eval import open_engine
from hybridsearch.config import Device
from hybridsearch.eval import fusion_training as ft
from hybridsearch.eval.arm_runs import DEFAULT_DIR, ArmRuns, cached_runs
from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.index_cache import DEFAULT_CACHE
from hybridsearch.eval.metrics import METRIC_NAMES, per_query
from hybridsearch.fusion.adaptive import DEFAULT_MODEL_PATH, FEATURE_NAMES
from hybridsearch.types import Normalization

COLLECTIONS = ("scifact", "cranfield", "cisi", "cacm", "medline", "lisa", "adi")
NORMALIZATION = Normalization.MIN_MAX
L2 = 1.0
TEMPERATURE = 0.05
BASELINES = {
    "hybrid min-max": ft.fixed(0.5, Normalization.MIN_MAX),
    "hybrid z-score": ft.fixed(0.5, Normalization.Z_SCORE),
    "hybrid RRF": ft.rrf(60),
}
ADAPTIVE = "hybrid adaptive (LOCO)"


def arm_runs(data: Path, name: str, args: argparse.Namespace) -> ArmRuns:
    """The cached arm runs of one collection (both arms run only when not cached)."""
    collection = load_beir(data / name)
    engine = open_engine(
        None, collection, args.model_dir, device=Device.CPU, cache=args.index_cache
    )
    try:
        return cached_runs(engine, name, collection, engine.index.path, directory=args.arm_runs)
    finally:
        engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model-dir", type=Path, help="encoder directory (default: embedded)")
    parser.add_argument("--index-cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--arm-runs", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--collections", default=",".join(COLLECTIONS))
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--loco", type=Path, default=Path("var/eval/adaptive-loco.json"))
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--temperature", type=float, default=TEMPERATURE)
    args = parser.parse_args()
    names = [n for n in args.collections.split(",") if n]
    runs = {name: arm_runs(args.data, name, args) for name in names}
    data = {
        name: ft.training_set([r], ft.CANDIDATE_ALPHAS, NORMALIZATION) for name, r in runs.items()
    }

    loco: dict[str, dict[str, object]] = {}
    for held_out in names:
        train = ft.concat([data[n] for n in names if n != held_out])
        model = ft.fit(train, NORMALIZATION, l2=args.l2, temperature=args.temperature)
        fusers = {**BASELINES, ADAPTIVE: ft.adaptive(model)}
        qrels = runs[held_out].qrels
        tables = {
            label: per_query(ft.fused_run(runs[held_out], fuser), qrels)
            for label, fuser in fusers.items()
        }
        alphas = [model.alpha(ft.features_of(q)) for q in runs[held_out].queries.values()]
        loco[held_out] = {
            "queries": len(qrels),
            "per_query": tables,
            "mean_alpha": float(np.mean(alphas)),
            "alpha_quartiles": np.percentile(alphas, [25, 50, 75]).tolist(),
        }
        means = {
            label: np.mean([row["nDCG@10"] for row in table.values()])
            for label, table in tables.items()
        }
        print(held_out, " ".join(f"{k}={v:.4f}" for k, v in means.items()), flush=True)
    final = ft.fit(
        ft.concat(list(data.values())), NORMALIZATION, l2=args.l2, temperature=args.temperature
    )
    final.save(args.out)
    args.loco.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "features": list(FEATURE_NAMES),
        "candidate_alphas": list(ft.CANDIDATE_ALPHAS),
        "normalization": NORMALIZATION.value,
        "l2": args.l2,
        "temperature": args.temperature,
        "metrics": list(METRIC_NAMES),
        "collections": loco,
    }
    args.loco.write_text(json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8")
    print(f"wrote {args.out} and {args.loco}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
