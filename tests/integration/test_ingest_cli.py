"""`hybridsearch index --empty`, `hybridsearch ingest`, and a read-only server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import TINY_CORPUS, run_cli, start_server, wait_serving


def test_ingest_fills_an_empty_index(tmp_path: Path, model_dir: Path) -> None:
    index = tmp_path / "empty"
    built = run_cli("index", "--empty", "--out", str(index), "--model", str(model_dir))
    assert "indexed 0 documents" in built.stdout
    server = start_server("--index", str(index), "--model", str(model_dir))
    try:
        wait_serving(server.address)
        with grpc.insecure_channel(server.address) as channel:
            search = search_pb2_grpc.SearchServiceStub(channel)
            assert not search.Search(pb.SearchRequest(query="pasta")).hits  # hybrid, empty
            ingest = run_cli(
                "ingest", "--server", server.address, "--corpus", str(TINY_CORPUS),
                "--batch-size", "5", "--no-progress",
            )  # fmt: skip
            assert "accepted 12 documents (0 replaced an existing id); rejected 0" in ingest.stdout
            assert "index generation 3" in ingest.stdout  # 5 + 5 + 2: three commits
            assert search.Search(pb.SearchRequest(query="pasta")).hits[0].id == "d04"
            again = run_cli("ingest", "--server", server.address, "--corpus", str(TINY_CORPUS))
            assert "(12 replaced an existing id)" in again.stdout
            stats = index_pb2_grpc.IndexServiceStub(channel).GetIndexStats(
                ipb.GetIndexStatsRequest()
            )
            assert (stats.document_count, stats.deleted_count) == (12, 12)
            bad = tmp_path / "bad.jsonl"
            bad.write_text('{"_id": "ok", "text": "fine"}\n{"_id": \n')
            failed = run_cli(
                "ingest", "--server", server.address, "--corpus", str(bad), check=False
            )
            assert failed.returncode == 2
            assert "bad.jsonl:2: malformed line" in failed.stderr
    finally:
        server.stop()


def test_ingest_reports_an_unreachable_server(tmp_path: Path) -> None:
    result = run_cli(
        "ingest", "--server", "127.0.0.1:1", "--corpus", str(TINY_CORPUS), "--timeout", "5",
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr


def test_read_only_server_refuses_writes(tiny_sparse_index: Path) -> None:
    server = start_server("--index", str(tiny_sparse_index), "--read-only", "true")
    try:
        wait_serving(server.address)
        with grpc.insecure_channel(server.address) as channel:
            index = index_pb2_grpc.IndexServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["d01"]))
            assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            stats = index.GetIndexStats(ipb.GetIndexStatsRequest())
            assert not stats.writable and not stats.has_vectors
            assert stats.document_count == 12 and stats.format_version == 2
            assert index.GetDocument(ipb.GetDocumentRequest(id="d01")).document.title
    finally:
        server.stop()
