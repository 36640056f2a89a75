"""Request ids, JSON logs and the metrics endpoint of a live server."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from hybridsearch.api.handlers import Context
from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.api.observability import CallRecord, observed_unary
from hybridsearch.config import ServerSettings
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import free_port, start_server, wait_serving
from tests.integration.in_process import InProcessServer, in_process_server
from tests.integration.slow_server import SlowEngine

SECRET_QUERY = "zeppelin-7c1d flow"
TOKEN = "tok-5e9f0a"


@dataclass
class Observed:
    address: str
    metrics_url: str
    log_path: Path


@pytest.fixture(scope="module")
def observed(
    tiny_sparse_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    log_path = tmp_path_factory.mktemp("logs") / "server.log"
    server = start_server(
        "--index", str(tiny_sparse_index), "--log-format", "json", "--auth-tokens", TOKEN,
        "--echo-request-id", "true", log_path=log_path, metrics=True,
    )  # fmt: skip
    try:
        wait_serving(server.address, timeout=60)
        yield Observed(server.address, server.metrics_url, log_path)
    finally:
        assert server.stop(timeout=30) == 0


def test_request_id_echoed_or_generated(observed: Observed) -> None:
    with grpc.insecure_channel(observed.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        request = pb.SearchRequest(query=SECRET_QUERY, mode=pb.RETRIEVAL_MODE_SPARSE)
        auth = ("authorization", f"Bearer {TOKEN}")
        _, call = stub.Search.with_call(request, metadata=(auth, ("x-request-id", "trace-123")))
        assert ("x-request-id", "trace-123") in [tuple(m) for m in call.initial_metadata()]
        _, call = stub.Search.with_call(request, metadata=(auth,))
        generated = dict(call.initial_metadata())["x-request-id"]
        assert len(generated) == 32
        with pytest.raises(grpc.RpcError) as info:
            stub.Search(pb.SearchRequest(query=""), metadata=(auth, ("x-request-id", "bad-1")))
        assert ("x-request-id", "bad-1") in [tuple(m) for m in info.value.initial_metadata()]


def scrape(url: str) -> dict[str, float]:
    """The hybridsearch_* samples of the metrics endpoint, by name with labels."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hybridsearch_")
    }


def test_metrics_endpoint_counts_calls_and_stages(observed: Observed) -> None:
    with grpc.insecure_channel(observed.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        auth = (("authorization", f"Bearer {TOKEN}"),)
        request = pb.SearchRequest(query="flow", mode=pb.RETRIEVAL_MODE_SPARSE)
        stub.BatchSearch(pb.BatchSearchRequest(requests=[request] * 3), metadata=auth)
        with pytest.raises(grpc.RpcError):
            stub.Search(request)  # no token
    unauthenticated = (
        'hybridsearch_rpc_calls_total{code="UNAUTHENTICATED",method="SearchService/Search"}'
    )
    # An abort sends the status before the server's interceptor counts the call, so the
    # client can scrape before the count lands: wait for it (bounded), never sleep blindly.
    deadline = time.monotonic() + 10
    samples = scrape(observed.metrics_url)
    while unauthenticated not in samples and time.monotonic() < deadline:
        time.sleep(0.05)
        samples = scrape(observed.metrics_url)
    assert (
        samples['hybridsearch_rpc_calls_total{code="OK",method="SearchService/BatchSearch"}'] >= 1
    )
    assert samples.get(unauthenticated, 0) >= 1
    assert samples['hybridsearch_stage_duration_seconds_count{stage="sparse"}'] >= 3
    assert samples["hybridsearch_batch_queries_count"] >= 1
    assert samples["hybridsearch_index_documents"] == 12
    assert samples["hybridsearch_shards_missing"] == 0  # one index: no shards
    assert "hybridsearch_in_flight_calls" in samples


def test_json_logs_have_request_ids_and_no_query_or_token(observed: Observed) -> None:
    with grpc.insecure_channel(observed.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        stub.Search(
            pb.SearchRequest(query=SECRET_QUERY, mode=pb.RETRIEVAL_MODE_SPARSE),
            metadata=(("authorization", f"Bearer {TOKEN}"), ("x-request-id", "logged-9")),
        )
    lines = observed.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "hybridsearch.access"]
    assert any(e.get("request_id") == "logged-9" and e["code"] == "OK" for e in access)
    text = "\n".join(lines)
    assert "zeppelin" not in text and TOKEN not in text


def test_messages_over_max_message_bytes_are_resource_exhausted(tiny_sparse_index: Path) -> None:
    settings = ServerSettings(index=tiny_sparse_index, port=0, max_message_bytes=2048)
    with in_process_server(settings) as server, grpc.insecure_channel(server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        small = pb.SearchRequest(query="flow", mode=pb.RETRIEVAL_MODE_SPARSE)
        assert stub.Search(small).hits
        with pytest.raises(grpc.RpcError) as info:
            stub.Search(pb.SearchRequest(query="flow " * 1000, mode=pb.RETRIEVAL_MODE_SPARSE))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.Search(small).hits


def test_metrics_count_query_micro_batches_and_no_echo_by_default(
    tiny_hybrid_index: Path, model_dir: Path
) -> None:
    port = free_port()
    settings = ServerSettings(index=tiny_hybrid_index, model=model_dir, port=0, metrics_port=port)
    with in_process_server(settings) as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            _, call = stub.Search.with_call(pb.SearchRequest(query="flow over a wing"), timeout=30)
            # Without --echo-request-id the id is logged, not sent back.
            assert "x-request-id" not in dict(call.initial_metadata())
            requests = [pb.SearchRequest(query=q) for q in ("shock waves", "heat", "flutter")]
            stub.BatchSearch(pb.BatchSearchRequest(requests=requests), timeout=30)
            stub.Search(pb.SearchRequest(query="only bm25", mode=pb.RETRIEVAL_MODE_SPARSE))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hybridsearch_encoder")
    }
    # One run for the single query, one for the BatchSearch; the sparse query encodes nothing.
    assert samples["hybridsearch_encoder_batched_queries_total"] == 4
    assert samples["hybridsearch_encoder_batches_total"] == 2
    assert samples["hybridsearch_encoder_refused_total"] == 0
    assert samples["hybridsearch_encoder_queue"] == 0


def test_an_answer_to_a_call_grpc_has_ended_counts_deadline_exceeded_or_cancelled() -> None:
    """A handler that answers after the deadline passed (or the client went) gets grpc's
    ExecuteBatchError from `context.abort`; it was counted and logged UNKNOWN."""
    metrics = ServerMetrics()
    method = "SearchService/Search"
    aborted: list[str] = []

    async def answers_late(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            await asyncio.sleep(30)  # grpc cancels this when the call ends
        except asyncio.CancelledError:
            aborted.append("late")
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed")
        return b""

    def record_of(context: Context) -> CallRecord:
        return CallRecord(method, context.invocation_metadata(), metrics)

    async def scenario() -> None:
        server = grpc.aio.server()
        handler = observed_unary(answers_late, record_of, echo=False)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "t.S", {"M": grpc.unary_unary_rpc_method_handler(handler)}
        ),))  # fmt: skip
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/t.S/M")
                with pytest.raises(grpc.aio.AioRpcError):
                    await call(b"", timeout=0.2)  # the deadline ends it
                cancelled = call(b"", timeout=30)
                await asyncio.sleep(0.2)
                cancelled.cancel()  # the client ends it
                for _ in range(100):
                    if len(aborted) == 2 and metrics_total(metrics, method) == 2:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await server.stop(None)

    asyncio.run(scenario())
    assert aborted == ["late", "late"]
    codes = {
        code: metrics.registry.get_sample_value(
            "hybridsearch_rpc_calls_total", {"method": method, "code": code}
        )
        for code in ("DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN")
    }
    assert codes == {"DEADLINE_EXCEEDED": 1.0, "CANCELLED": 1.0, "UNKNOWN": None}


def test_a_call_its_deadline_ended_counts_deadline_exceeded_not_cancelled() -> None:
    """grpc cancels a handler whose deadline passed as it cancels one whose client went: the
    first was counted and logged CANCELLED, though the client saw DEADLINE_EXCEEDED."""
    metrics = ServerMetrics()
    method = "SearchService/Search"

    async def works_on(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await asyncio.sleep(30)  # grpc cancels this when the call ends
        return b""

    def record_of(context: Context) -> CallRecord:
        return CallRecord(method, context.invocation_metadata(), metrics)

    async def scenario() -> list[grpc.StatusCode]:
        server = grpc.aio.server()
        handler = observed_unary(works_on, record_of, echo=False)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "t.S", {"M": grpc.unary_unary_rpc_method_handler(handler)}
        ),))  # fmt: skip
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        seen = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/t.S/M")
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await call(b"", timeout=0.2)  # the deadline ends it
                seen.append(ended.value.code())
                cancelled = call(b"", timeout=30)
                await asyncio.sleep(0.2)
                cancelled.cancel()  # the client ends it
                for _ in range(100):
                    if metrics_total(metrics, method) == 2:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await server.stop(None)
        return seen

    assert asyncio.run(scenario()) == [grpc.StatusCode.DEADLINE_EXCEEDED]
    codes = {
        code: metrics.registry.get_sample_value(
            "hybridsearch_rpc_calls_total", {"method": method, "code": code}
        )
        for code in ("DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN")
    }
    assert codes == {"DEADLINE_EXCEEDED": 1.0, "CANCELLED": 1.0, "UNKNOWN": None}


def test_a_call_cut_at_the_end_of_the_grace_period_counts_unavailable_not_cancelled() -> None:
    """grpc cancels the calls still running when the graceful stop's grace period ends, and
    their clients see UNAVAILABLE ('Cancelling all calls'); such a call was counted and
    logged CANCELLED. One whose client cancels it during the grace period stays CANCELLED."""
    started: queue.Queue[str] = queue.Queue()
    engine = SlowEngine(8.0, report=started.put)  # each search holds its call for 8 s
    settings = ServerSettings(port=0, grace_period_s=2.0)
    server = InProcessServer(settings, lambda _: engine)  # type: ignore[arg-type,return-value]
    stopping = threading.Thread(target=server.stop)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            request = pb.SearchRequest(query="q", mode=pb.RETRIEVAL_MODE_SPARSE)
            cut = stub.Search.future(request, timeout=60)
            left = stub.Search.future(request, timeout=60)
            assert [started.get(timeout=60) for _ in range(2)] == ["q", "q"]  # both in work
            stopping.start()
            time.sleep(0.5)  # within the grace period
            left.cancel()
            with pytest.raises(grpc.RpcError) as ended:
                cut.result(timeout=60)
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        if not stopping.is_alive() and stopping.ident is None:
            stopping.start()  # the calls failed before the stop began
        stopping.join(timeout=120)
    method = "SearchService/Search"
    codes = {
        code: server.metric("hybridsearch_rpc_calls_total", method=method, code=code)
        for code in ("UNAVAILABLE", "CANCELLED")
    }
    assert codes == {"UNAVAILABLE": 1.0, "CANCELLED": 1.0}


def metrics_total(metrics: ServerMetrics, method: str) -> float:
    return sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "hybridsearch_rpc_calls"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("method") == method
    )
