"""Request ids, JSON log records and metrics from responses (no server)."""

from __future__ import annotations

import json
import logging

from prometheus_client import generate_latest

from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.api.observability import request_id_of
from hybridsearch.config import LogFormat, ServerSettings, parse_bool
from hybridsearch.logs import JsonFormatter, RequestIdFilter, request_id_var
from hybridsearch.v1 import search_pb2 as pb


def test_request_id_taken_when_well_formed_else_generated() -> None:
    assert request_id_of((("x-request-id", "req-42.a/b"),)) == "req-42.a/b"
    generated = request_id_of((("x-request-id", "bad id\nwith newline"),))
    assert len(generated) == 32 and generated != request_id_of(None)
    assert len(request_id_of((("x-request-id", "x" * 129),))) == 32


def test_json_formatter_carries_request_id_and_extras() -> None:
    record = logging.LogRecord("hybridsearch.access", logging.INFO, "f", 1, "m %s", ("x",), None)
    record.code = "OK"
    token = request_id_var.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "m x" and entry["request_id"] == "rid-1"
    assert entry["code"] == "OK" and entry["level"] == "INFO"
    assert entry["logger"] == "hybridsearch.access" and entry["ts"].endswith("+00:00")


def _sample(metrics: ServerMetrics, line_start: str) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start}")


def test_metrics_from_responses() -> None:
    metrics = ServerMetrics()
    hybrid = pb.SearchResponse(
        timings=pb.StageTimings(
            total_us=900, encode_us=400, dense_us=100, sparse_us=200, fusion_us=50, fetch_us=30
        )
    )
    sparse_only = pb.SearchResponse(timings=pb.StageTimings(total_us=300, sparse_us=250))
    metrics.observe_response(hybrid)
    metrics.observe_response(pb.BatchSearchResponse(responses=[hybrid, sparse_only]))
    metrics.observe_response(pb.SearchStreamResponse(request_id="1", response=sparse_only))
    metrics.observe_response(pb.SearchStreamResponse(request_id="2", error=pb.ErrorStatus()))
    metrics.observe_call("SearchService/Search", "OK", 0.01)
    metrics.observe_call("SearchService/Search", "RESOURCE_EXHAUSTED", 0.001)
    metrics.track_in_flight(lambda: 3)
    count = "hybridsearch_stage_duration_seconds_count"
    assert _sample(metrics, f'{count}{{stage="encode"}}') == 2
    assert _sample(metrics, f'{count}{{stage="sparse"}}') == 4
    assert _sample(metrics, f'{count}{{stage="total"}}') == 4
    assert _sample(metrics, "hybridsearch_batch_queries_count") == 1
    assert _sample(metrics, "hybridsearch_batch_queries_sum") == 2
    calls = 'hybridsearch_rpc_calls_total{code="RESOURCE_EXHAUSTED",method="SearchService/Search"}'
    assert _sample(metrics, calls) == 1
    assert _sample(metrics, "hybridsearch_in_flight_calls") == 3


def test_settings_parse_bool_and_log_format() -> None:
    assert parse_bool("Yes") and parse_bool("1") and not parse_bool("off")
    assert ServerSettings().log_format is LogFormat.TEXT
    assert LogFormat("json") is LogFormat.JSON
