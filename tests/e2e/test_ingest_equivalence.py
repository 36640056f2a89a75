"""Live ingestion gives the same effectiveness as a bulk build (SciFact, nDCG@10, 3 decimals).

SciFact's 5,183 documents are streamed through `hybridsearch ingest` into an index created
with `hybridsearch index --empty`, and compared with `hybridsearch index` over the same
corpus, both served and queried over gRPC. Encodes the corpus twice (minutes on 2 cores).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hybridsearch.eval.collection import Collection, load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import run_cli as harness_run_cli
from tests.conftest import start_server, wait_serving

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
MODES = {"sparse": pb.RETRIEVAL_MODE_SPARSE, "hybrid": pb.RETRIEVAL_MODE_HYBRID}
SCIFACT_DOCS = 5183
ENCODE_TIMEOUT_S = 3600  # encoding SciFact on a busy 2-core machine can take long


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`hybridsearch ARGS` with a deadline fit for encoding a whole collection."""
    return harness_run_cli(*args, timeout=ENCODE_TIMEOUT_S)


def ndcg10(address: str, collection: Collection) -> dict[str, float]:
    """nDCG@10 of each mode, every judged query sent through BatchSearch."""
    queries = collection.judged_queries
    qids = list(queries)
    scores = {}
    with grpc.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        for name, mode in MODES.items():
            run: dict[str, dict[str, float]] = {}
            for start in range(0, len(qids), 64):
                chunk = qids[start : start + 64]
                batch = pb.BatchSearchRequest(
                    requests=[
                        pb.SearchRequest(query=queries[q], top_k=100, mode=mode) for q in chunk
                    ]
                )
                for qid, response in zip(chunk, stub.BatchSearch(batch).responses, strict=True):
                    run[qid] = {hit.id: hit.score for hit in response.hits}
            scores[name] = evaluate(run, collection.qrels)["nDCG@10"]
    return scores


def served_scores(index: Path, model_dir: Path, collection: Collection) -> dict[str, float]:
    server = start_server("--index", str(index), "--model", str(model_dir))
    try:
        wait_serving(server.address)
        return ndcg10(server.address, collection)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scifact(shared_data: Path) -> Collection:
    return load_beir(shared_data / "scifact")


@pytest.fixture(scope="module")
def ingested(
    scifact: Collection, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    index = tmp_path_factory.mktemp("ingest") / "scifact-live"
    run_cli("index", "--empty", "--out", str(index), "--model", str(model_dir), "--no-progress")
    server = start_server("--index", str(index), "--model", str(model_dir))
    try:
        wait_serving(server.address)
        result = run_cli(
            "ingest", "--server", server.address, "--corpus", str(scifact.corpus_path),
            "--batch-size", "128", "--no-progress",
        )  # fmt: skip
    finally:
        server.stop()
    assert f"accepted {SCIFACT_DOCS} documents" in result.stdout, result.stdout
    yield index


@pytest.fixture(scope="module")
def built(scifact: Collection, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("ingest") / "scifact-built"
    run_cli(
        "index", "--corpus", str(scifact.corpus_path), "--out", str(index),
        "--model", str(model_dir), "--no-progress",
    )  # fmt: skip
    return index


def test_ingested_scifact_scores_like_the_bulk_build(
    ingested: Path, built: Path, model_dir: Path, scifact: Collection
) -> None:
    live = served_scores(ingested, model_dir, scifact)
    bulk = served_scores(built, model_dir, scifact)
    print(f"SciFact nDCG@10 ingest {live} index {bulk}")
    for mode in MODES:
        assert round(live[mode], 3) == round(bulk[mode], 3), (mode, live, bulk)
    assert bulk["sparse"] >= 0.66  # the effectiveness floor: both really are SciFact indexes
