"""Per-query candidate lists of both arms, cached on disk: the data fusion experiments need.

For every judged query of a collection, `ArmRuns` holds what the server's fusion sees: the
BM25 list and the dense list (ordinals and raw scores, best first, ``depth`` each) and the
document frequencies of the query's distinct analysed terms. Fusion rules (fixed alpha,
adaptive, RRF) are then replayed offline in milliseconds with the same `fusion` functions as
the server, instead of re-running both arms for every setting.

The cache file is ``<dir>/<collection>-<index dir name>-d<depth>-<code>.json.gz``: another
corpus, model or depth gets another file, and so does another version of the code that makes
the lists (``<code>``: a hash of the query path's modules, `code_stamp`), so a change there
(the encoder's batching, the dense product, the query's analysis) never reuses stale runs.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.eval.collection import Collection
from hybridsearch.eval.retrievers import EngineRetriever, RunSpec
from hybridsearch.fusion.adaptive import QueryStats
from hybridsearch.sparse.analysis import query_term_counts
from hybridsearch.types import RankedList

DEFAULT_DIR = Path("var/eval/arm-runs")
_CHUNK = 64


@dataclass(frozen=True, slots=True)
class QueryRun:
    """Both arms' lists of one query and what the features need of the query."""

    text: str
    stats: QueryStats
    sparse: RankedList
    dense: RankedList


@dataclass(frozen=True, slots=True)
class ArmRuns:
    """Every judged query's lists on one collection, and the index's document ids."""

    name: str
    ids: list[str]
    queries: dict[str, QueryRun]
    qrels: dict[str, dict[str, int]]


def _lists(
    engine: HybridSearcher, mode: str, queries: dict[str, str], depth: int
) -> dict[str, RankedList]:
    spec = RunSpec(mode=mode, sparse_depth=depth, dense_depth=depth)
    retriever = EngineRetriever(engine, spec)
    position = {doc_id: i for i, doc_id in enumerate(engine.index.ids)}
    out = {}
    items = list(queries.items())
    for begin in range(0, len(items), _CHUNK):
        answered = retriever.retrieve(dict(items[begin : begin + _CHUNK]), top_k=depth)
        for qid, ranked in answered.items():
            out[qid] = RankedList(
                np.array([position[d] for d in ranked], dtype=np.int64),
                np.array(list(ranked.values()), dtype=np.float64),
            )
    return out


def collect(engine: HybridSearcher, name: str, collection: Collection, depth: int) -> ArmRuns:
    """Run both arms alone on every judged query (``depth`` candidates each)."""
    queries = collection.judged_queries
    sparse = _lists(engine, "sparse", queries, depth)
    dense = _lists(engine, "dense", queries, depth)
    reader = engine.index.sparse
    runs = {}
    for qid, text in queries.items():
        stats = QueryStats(
            doc_freqs=[reader.doc_freq(t) for t in query_term_counts(text)],
            num_docs=reader.num_docs,
        )
        runs[qid] = QueryRun(text, stats, sparse[qid], dense[qid])
    return ArmRuns(name, list(engine.index.ids), runs, collection.qrels)


#: The package's parts whose code decides what the arms return for a query.
QUERY_PATH = ("engine", "dense", "sparse", "encoders", "storage", "types.py")


@functools.cache
def code_stamp() -> str:
    """A short hash of this package's query path (`stamp_of`)."""
    return stamp_of(Path(__file__).resolve().parent.parent)


def stamp_of(package: Path) -> str:
    """A short hash of the source of ``package``'s `QUERY_PATH` (file names and contents)."""
    digest = hashlib.sha256()
    for part in QUERY_PATH:
        root = package / part
        for file in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(file.relative_to(package).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def cache_file(directory: Path, name: str, index_dir: Path, depth: int) -> Path:
    """Where the runs of ``name`` over the index at ``index_dir`` are cached."""
    return directory / f"{name}-{index_dir.name}-d{depth}-{code_stamp()}.json.gz"


def find_cached(directory: Path, name: str, depth: int = 1000) -> Path | None:
    """The runs of collection ``name`` that this code collected (`cached_runs`, which
    ``scripts/train_fusion.py`` runs first), or None."""
    found = sorted(directory.glob(f"{name}-*-d{depth}-{code_stamp()}.json.gz"))
    return found[-1] if found else None


def save(runs: ArmRuns, path: Path) -> None:
    """Write ``runs`` (gzipped JSON) atomically."""
    plain = {
        "name": runs.name,
        "ids": runs.ids,
        "qrels": runs.qrels,
        "queries": {
            qid: {
                "text": q.text,
                "doc_freqs": list(q.stats.doc_freqs),
                "num_docs": q.stats.num_docs,
                "sparse": [q.sparse.ordinals.tolist(), q.sparse.scores.tolist()],
                "dense": [q.dense.ordinals.tolist(), q.dense.scores.tolist()],
            }
            for qid, q in runs.queries.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with gzip.open(temporary, "wt", encoding="utf-8") as sink:
        json.dump(plain, sink)
    temporary.replace(path)


def load(path: Path) -> ArmRuns:
    """The runs saved at ``path``."""
    with gzip.open(path, "rt", encoding="utf-8") as source:
        plain = json.load(source)

    def arm(pair: list[list[float]]) -> RankedList:
        return RankedList(np.array(pair[0], dtype=np.int64), np.array(pair[1], dtype=np.float64))

    queries = {
        qid: QueryRun(
            q["text"],
            QueryStats(q["doc_freqs"], q["num_docs"]),
            arm(q["sparse"]),
            arm(q["dense"]),
        )
        for qid, q in plain["queries"].items()
    }
    return ArmRuns(plain["name"], plain["ids"], queries, plain["qrels"])


def cached_runs(
    engine: HybridSearcher,
    name: str,
    collection: Collection,
    index_dir: Path,
    *,
    depth: int = 1000,
    directory: Path = DEFAULT_DIR,
) -> ArmRuns:
    """The cached runs of the collection, collected (and saved) on first use."""
    path = cache_file(directory, name, index_dir, depth)
    if path.exists():
        return load(path)
    runs = collect(engine, name, collection, depth)
    save(runs, path)
    for stale in directory.glob(f"{name}-{index_dir.name}-d{depth}-*.json.gz"):
        if stale != path:  # runs of older code
            stale.unlink(missing_ok=True)
    return runs
