"""SIGKILL during a stream of upserts: acknowledged documents survive, nothing is half there.

The server is killed while an UpsertDocuments stream is in flight (at a random point of its
commits), then restarted on the same directory with no repair step. Every acknowledged
document must be in both arms; every document present must be in both arms; every message
(one commit) must be all there or all absent.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc

from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import run_cli, start_server, wait_serving

DOCS_PER_MESSAGE = 8
MESSAGES_PER_CALL = 3
WORDS = [
    "river",
    "stone",
    "forest",
    "cloud",
    "engine",
    "signal",
    "copper",
    "violin",
    "harbor",
    "lantern",
    "meadow",
    "orbit",
]


def doc_id(call: int, message: int, j: int) -> str:
    return f"c{call}-m{message}-d{j}"


def unique_term(call: int, message: int, j: int) -> str:
    return f"uniq{call}x{message}x{j}"


def message_of(call: int, message: int, rng: random.Random) -> ipb.UpsertDocumentsRequest:
    docs = []
    for j in range(DOCS_PER_MESSAGE):
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        text = f"{unique_term(call, message, j)} common {words}"
        docs.append(ipb.Document(id=doc_id(call, message, j), title="crash test", text=text))
    return ipb.UpsertDocumentsRequest(documents=docs)


class Uploader(threading.Thread):
    """Sends UpsertDocuments calls one after another until one fails; records the acked."""

    def __init__(self, address: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.rng = random.Random(seed)
        self.acked: list[str] = []
        self.calls_started = 0
        self.in_flight = threading.Event()  # set once the current call has sent a message
        self.kill_after_call = 2 + self.rng.randrange(4)

    def requests(self, call: int) -> Iterator[ipb.UpsertDocumentsRequest]:
        for message in range(MESSAGES_PER_CALL):
            yield message_of(call, message, self.rng)
            if call >= self.kill_after_call:
                self.in_flight.set()

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = index_pb2_grpc.IndexServiceStub(channel)
            call = 0
            while True:
                try:
                    stub.UpsertDocuments(self.requests(call), timeout=60)
                except grpc.RpcError:
                    return
                self.acked += [
                    doc_id(call, m, j)
                    for m in range(MESSAGES_PER_CALL)
                    for j in range(DOCS_PER_MESSAGE)
                ]
                call += 1


def test_sigkill_mid_stream_loses_no_acknowledged_document(tmp_path: Path, model_dir: Path) -> None:
    index = tmp_path / "crash"
    run_cli("index", "--empty", "--out", str(index), "--model", str(model_dir), "--no-progress")
    serve_args = ("--index", str(index), "--model", str(model_dir))
    server = start_server(*serve_args)
    seed = random.randrange(1_000_000)
    try:
        wait_serving(server.address)
        uploader = Uploader(server.address, seed)
        uploader.start()
        assert uploader.in_flight.wait(timeout=120), "the upload never reached the kill point"
        # Land the kill anywhere among the call's commits (encode, tantivy, files, manifest).
        threading.Event().wait(uploader.rng.uniform(0.0, 0.3))
        server.process.kill()
        uploader.join(timeout=60)
    finally:
        server.stop()
    assert uploader.acked, f"seed {seed}: nothing was acknowledged before the kill"

    server = start_server(*serve_args)
    try:
        wait_serving(server.address)
        with grpc.insecure_channel(server.address) as channel:
            check_recovered(channel, uploader.acked, seed)
    finally:
        server.stop()


def check_recovered(channel: grpc.Channel, acked: list[str], seed: int) -> None:
    index = index_pb2_grpc.IndexServiceStub(channel)
    search = search_pb2_grpc.SearchServiceStub(channel)
    stats = index.GetIndexStats(ipb.GetIndexStatsRequest())
    sparse = search.Search(
        pb.SearchRequest(query="common", top_k=1000, mode=pb.RETRIEVAL_MODE_SPARSE)
    )
    dense = search.Search(
        pb.SearchRequest(query="common words", top_k=1000, mode=pb.RETRIEVAL_MODE_DENSE)
    )
    sparse_ids = {h.id for h in sparse.hits}
    dense_ids = {h.id for h in dense.hits}
    context = f"seed {seed}: {len(acked)} acked, {stats.document_count} present"
    # No partial document: the two arms hold exactly the same documents.
    assert sparse_ids == dense_ids, context
    assert len(sparse_ids) == len(sparse.hits) == stats.document_count, context
    # Every acknowledged document is there, in both arms, whole.
    assert set(acked) <= sparse_ids, context
    for present in sorted(sparse_ids):
        call, message, j = (int(part[1:]) for part in present.split("-"))
        hits = search.Search(
            pb.SearchRequest(
                query=unique_term(call, message, j), mode=pb.RETRIEVAL_MODE_SPARSE, top_k=5
            )
        ).hits
        assert [h.id for h in hits] == [present], context
        document = index.GetDocument(ipb.GetDocumentRequest(id=present)).document
        assert document.text.startswith(unique_term(call, message, j) + " common"), context
    # Each message is one commit: all of its documents or none.
    for present in sparse_ids:
        call, message, _ = (int(part[1:]) for part in present.split("-"))
        batch = {doc_id(call, message, j) for j in range(DOCS_PER_MESSAGE)}
        assert batch <= sparse_ids, f"{context}: message {call}/{message} is partial"
    # The recovered index takes writes: new ordinals replace whatever the crash left behind.
    late = ipb.Document(id="after-restart", text="uniqlate common afterwards")
    index.UpsertDocuments(iter([ipb.UpsertDocumentsRequest(documents=[late])]))
    hits = search.Search(
        pb.SearchRequest(query="uniqlate", mode=pb.RETRIEVAL_MODE_SPARSE, top_k=5)
    ).hits
    assert [h.id for h in hits] == ["after-restart"]
    after = index.GetIndexStats(ipb.GetIndexStatsRequest())
    assert after.document_count == stats.document_count + 1
    total = search.Search(
        pb.SearchRequest(query="common", top_k=1000, mode=pb.RETRIEVAL_MODE_SPARSE)
    )
    assert len(total.hits) == after.document_count
