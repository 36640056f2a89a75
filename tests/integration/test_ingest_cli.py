"""`hybridsearch index --empty`, `hybridsearch ingest`, and a read-only server."""

from __future__ import annotations

import _thread
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from hybridsearch.cli.app import main
from hybridsearch.config import ServerSettings
from hybridsearch.storage.builder import build_index
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import TINY_CORPUS, run_cli, start_server, wait_serving
from tests.integration.gated import WAIT_S
from tests.integration.in_process import InProcessServer, in_process_server
from tests.integration.test_ingest_admission import ingest_server
from tests.integration.test_upsert_stop import served


@contextmanager
def serving_empty(tmp_path: Path, **settings: Any) -> Iterator[InProcessServer]:
    """A writable BM25-only server (``settings`` overridden) over an empty index of its own."""
    index = tmp_path / "empty-sparse"
    build_index(iter(()), index, encoder=None)
    with in_process_server(ServerSettings(index=index, port=0, **settings)) as server:
        yield server


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[InProcessServer]:
    with serving_empty(tmp_path) as server:
        yield server


def live_ids(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        hits = stub.Search(pb.SearchRequest(query="doc", top_k=1000, mode=pb.RETRIEVAL_MODE_SPARSE))
        return {hit.id for hit in hits.hits}


def corpus_lines(count: int) -> list[str]:
    return [json.dumps({"_id": f"d{i}", "text": f"doc number {i}"}) for i in range(count)]


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


def test_a_bad_line_ends_the_stream_after_the_server_committed_what_came_before(
    empty_server: InProcessServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "badline.jsonl"
    corpus.write_text("\n".join([*corpus_lines(40), '{"_id": oops', *corpus_lines(3)]) + "\n")
    code = main(
        ["ingest", "--server", empty_server.address, "--corpus", str(corpus),
         "--batch-size", "1", "--no-progress"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2
    assert "accepted 40 documents" in out
    assert "badline.jsonl:41: malformed line" in err
    assert "the documents before it were sent, and 40 accepted" in err
    assert live_ids(empty_server.address) == {f"d{i}" for i in range(40)}


def test_a_lone_surrogate_escape_is_a_malformed_line_of_ingest(
    empty_server: InProcessServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON's "\\ud83d" without its pair has no UTF-8 form, so no message can carry it: it
    ends the stream as a malformed line (exit 2), or is skipped and counted."""
    corpus = tmp_path / "surrogate.jsonl"
    bad = '{"_id": "bad", "title": "t", "text": "\\ud83d"}'
    corpus.write_text("\n".join([*corpus_lines(3), bad, *corpus_lines(5)[3:]]) + "\n")
    argv = ["ingest", "--server", empty_server.address, "--corpus", str(corpus), "--no-progress"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "accepted 3 documents" in out
    assert (
        f"error: {corpus}:4: malformed line: text: not valid Unicode (a lone surrogate "
        "\\ud83d at character 1); the stream stopped there" in err
    ), err
    assert live_ids(empty_server.address) == {"d0", "d1", "d2"}
    assert main([*argv, "--skip-bad-lines"]) == 0
    out = capsys.readouterr().out
    assert "accepted 5 documents" in out and "bad lines skipped: 1" in out, out
    assert live_ids(empty_server.address) == {f"d{i}" for i in range(5)}


def test_ingest_exits_1_when_the_server_rejected_a_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "mixed.jsonl"
    big = json.dumps({"_id": "big", "text": "x" * 500})
    corpus.write_text("\n".join([*corpus_lines(3), big]) + "\n")
    with serving_empty(tmp_path, max_document_chars=100) as server:
        code = main(
            ["ingest", "--server", server.address, "--corpus", str(corpus), "--no-progress"]
        )
    out, err = capsys.readouterr()
    assert code == 1
    assert "accepted 3 documents (0 replaced an existing id); rejected 1" in out
    assert f"rejected #3 ({corpus}:4) id 'big'" in out
    assert err == "error: the server rejected 1 documents (listed above)\n"


def test_a_rejection_names_its_corpus_line_past_blank_and_skipped_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "gaps.jsonl"
    big = json.dumps({"_id": "big", "text": "x" * 500})
    lines = [*corpus_lines(2), "", '{"_id": oops', *corpus_lines(4)[2:], big, *corpus_lines(6)[4:]]
    corpus.write_text("\n".join(lines) + "\n")
    with serving_empty(tmp_path, max_document_chars=100) as server:
        code = main(
            ["ingest", "--server", server.address, "--corpus", str(corpus), "--no-progress",
             "--skip-bad-lines", "--batch-size", "2"]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "accepted 6 documents" in out and "bad lines skipped: 1" in out
    # the stream's position 4 is the file's line 7 (a blank line and a skipped bad line before it)
    assert f"rejected #4 ({corpus}:7) id 'big'" in out


def test_a_failed_ingest_says_what_may_be_committed_and_names_the_big_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "big.jsonl"
    big = json.dumps({"_id": "big", "text": "x" * 100_000})
    corpus.write_text("\n".join([*corpus_lines(5), big, *corpus_lines(2)]) + "\n")
    with serving_empty(tmp_path, max_message_bytes=64 * 1024) as server:
        code = main(
            ["ingest", "--server", server.address, "--corpus", str(corpus), "--batch-size", "1",
             "--max-batch-bytes", "50000", "--no-progress"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "big.jsonl:6: document 'big' is 100" in err and "more than --max-batch-bytes" in err
    assert "error: RESOURCE_EXHAUSTED: " in err
    assert "the largest document read is 100" in err and "big.jsonl:6 (id 'big')" in err
    assert "messages were handed to the stream before the failure" in err
    assert "may have been committed; re-running the same ingest is safe" in err


def test_a_stream_stopped_mid_way_prints_what_its_applied_messages_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server stops while applying the first of three messages: the stream fails with
    UNAVAILABLE, carrying its response so far. Ingest printed only the error and 'any of those
    messages may have been committed', dropping the applied count and the rejection."""
    corpus = tmp_path / "stopped.jsonl"
    big = json.dumps({"_id": "big", "text": "x" * 1_000_001})  # over --max-document-chars
    corpus.write_text("\n".join([corpus_lines(1)[0], big, *corpus_lines(6)[2:]]) + "\n")
    args = ["ingest", "--corpus", str(corpus), "--batch-size", "2", "--no-progress"]
    with served(tmp_path) as serving, ThreadPoolExecutor(1) as pool:
        ingest = pool.submit(main, [*args, "--server", serving.server.address])
        serving.stop_while_applying()
        code = ingest.result(timeout=WAIT_S)
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "error: UNAVAILABLE: " in err
    assert "applied 1 message before the failure:" in out
    assert "accepted 1 documents (0 replaced an existing id); rejected 1; index generation" in out
    assert f"rejected #1 ({corpus}:2) id 'big': title + text is 1000001 characters" in out
    assert "the server applied (committed) the first 1 of them and not the rest" in err
    assert "the largest document read" not in err


def test_an_ingest_refused_for_overload_does_not_blame_the_document_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's one place is held when the first message arrives: RESOURCE_EXHAUSTED
    'server at capacity'. Ingest added 'the largest document read is N bytes', as if a message
    had been too large."""
    corpus = tmp_path / "refused.jsonl"
    corpus.write_text("\n".join(corpus_lines(3)) + "\n")
    with ingest_server(tmp_path) as serving:
        held = serving.hold_the_place()
        code = main(
            ["ingest", "--server", serving.server.address, "--corpus", str(corpus),
             "--no-progress"]
        )  # fmt: skip
        serving.encoder.open()
        held.result(timeout=WAIT_S)
    out, err = capsys.readouterr()
    assert code == 1
    assert "error: RESOURCE_EXHAUSTED: server at capacity" in err
    assert "the largest document read" not in err
    assert "the server applied (committed) the first 0 of them" in err
    assert out == ""  # nothing applied: no summary


def test_an_interrupted_ingest_says_what_may_have_been_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C mid-upload: exit 130 and the note of a failed call (it exited 130 silently, and
    the caller did not know that messages may have been committed)."""
    corpus = tmp_path / "long.jsonl"
    corpus.write_text("\n".join(corpus_lines(5000)) + "\n")  # one commit each: many seconds
    with serving_empty(tmp_path) as server:

        def interrupt_once_something_is_committed() -> None:
            deadline = time.monotonic() + WAIT_S
            while not server.metric("hybridsearch_index_documents"):
                assert time.monotonic() < deadline, "nothing committed"
                time.sleep(0.02)
            _thread.interrupt_main()  # a KeyboardInterrupt in the thread running `main`

        with ThreadPoolExecutor(1) as pool:
            interrupter = pool.submit(interrupt_once_something_is_committed)
            code = main(
                ["ingest", "--server", server.address, "--corpus", str(corpus),
                 "--batch-size", "1", "--no-progress"]
            )  # fmt: skip
            interrupter.result(timeout=WAIT_S)
    _, err = capsys.readouterr()
    assert code == 130
    assert err.startswith("interrupted: "), err
    assert "messages were handed to the stream before the interrupt, and any of those" in err
