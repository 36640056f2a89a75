"""Prometheus metrics of one server: calls by status, latencies, stage times, batch sizes.

Each server owns a registry (tests run several servers in one process). The HTTP endpoint is
prometheus-client's own exporter, started only when ``metrics_port`` is set.

Metrics (all prefixed ``hybridsearch_``):
  rpc_calls_total{method,code}          calls finished, by canonical status code
  rpc_duration_seconds{method}          call latency (histogram)
  stage_duration_seconds{stage}         encode / sparse / dense / fusion / fetch / total, per
                                        query, from the response timings (stages that ran)
  batch_queries                         queries per BatchSearch (histogram)
  encoder_batches_total                 query micro-batches run (one encoder run each)
  encoder_batched_queries_total         queries in them (their ratio: the mean batch size)
  encoder_refused_total                 queries refused because the batcher's queue was full
  encoder_dropped_total                 queued queries dropped (cancelled, deadline passed)
  encoder_queue                         queries waiting for the encoder now (gauge)
  (the encoder_* series: every collection's query batcher summed, a shared one once)
  in_flight_calls                       calls being served now (gauge; SearchStreams with a
                                        request in work, UpsertDocuments streams applying a
                                        message)
  stream_requests_refused_total         SearchStream requests refused in-band with
                                        RESOURCE_EXHAUSTED (the server at --max-in-flight)
  index_documents                       live documents in the served index (gauge)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hybridsearch.engine.batching import BatchStats
from hybridsearch.engine.registry import CollectionCounts
from hybridsearch.v1 import search_pb2 as pb

log = logging.getLogger(__name__)

STAGES = ("encode", "sparse", "dense", "fusion", "fetch", "total")
_STAGE_FIELDS = tuple((stage, f"{stage}_us") for stage in STAGES)
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
STAGE_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """The metric families of one server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._http: tuple[Any, Any] | None = None
        r = self.registry
        self.calls = Counter(
            "hybridsearch_rpc_calls", "Calls finished", ["method", "code"], registry=r
        )
        self.latency = Histogram(
            "hybridsearch_rpc_duration_seconds",
            "Call latency",
            ["method"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.stages = Histogram(
            "hybridsearch_stage_duration_seconds",
            "Per-query stage time, from the response timings",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self.batch_queries = Histogram(
            "hybridsearch_batch_queries",
            "Queries per BatchSearch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("hybridsearch_in_flight_calls", "Calls being served", registry=r)
        # Labelled children, made on first use (a label set appears once observed) and kept:
        # looking one up per call cost more than observing.
        self._stage_of: dict[str, Any] = {}
        self._call_of: dict[tuple[str, str], tuple[Any, Any]] = {}

    def track_in_flight(self, read: Callable[[], float]) -> None:
        """Report the in-flight gauge from ``read`` at scrape time."""
        self.in_flight.set_function(read)

    def track_stream_refusals(self, read: Callable[[], float]) -> None:
        """Report the SearchStream requests refused in-band, from ``read`` at scrape time."""
        self.registry.register(_FunctionCounter(
            "hybridsearch_stream_requests_refused",
            "SearchStream requests refused in-band: the server was at --max-in-flight",
            read,
        ))  # fmt: skip

    def track_collections(self, read: Callable[[], CollectionCounts]) -> None:
        """Report the served collections' gauges (live documents, missing shards) from one
        ``read`` per scrape: a sharded collection's shards are asked once for both."""
        self.registry.register(_CollectionCollector(read))

    def track_batching(self, read: Callable[[], BatchStats | None]) -> None:
        """Report the query batcher's counters from ``read`` at scrape time (None: none)."""
        self.registry.register(_BatchingCollector(read))

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        """One finished call."""
        children = self._call_of.get((method, code))
        if children is None:
            children = (self.calls.labels(method=method, code=code), self.latency.labels(method))
            self._call_of[method, code] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_response(self, response: Any) -> None:
        """Stage times (and batch size) of a SearchService response; others are ignored."""
        if isinstance(response, pb.SearchResponse):
            self._observe_timings(response.timings)
        elif isinstance(response, pb.BatchSearchResponse):
            self.batch_queries.observe(len(response.responses))
            for item in response.responses:
                self._observe_timings(item.timings)
        elif isinstance(response, pb.SearchStreamResponse) and response.HasField("response"):
            self._observe_timings(response.response.timings)

    def _observe_timings(self, timings: pb.StageTimings) -> None:
        for stage, field in _STAGE_FIELDS:
            micros = getattr(timings, field)
            if micros > 0:  # a stage that did not run (e.g. encode in SPARSE mode) is no sample
                child = self._stage_of.get(stage)
                if child is None:
                    child = self._stage_of[stage] = self.stages.labels(stage=stage)
                child.observe(micros / 1e6)

    def serve_http(self, host: str, port: int) -> None:
        """Expose ``/metrics`` on host:port (a daemon thread of prometheus-client)."""
        self._http = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        """Stop the HTTP endpoint, if one was started."""
        if self._http is not None:
            http_server, thread = self._http
            http_server.shutdown()
            http_server.server_close()
            thread.join(timeout=5)
            self._http = None


class _FunctionCounter(Collector):
    """A counter whose value is read from ``read`` at scrape time."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


class _CollectionCollector(Collector):
    """The served collections' gauges, read together when scraped."""

    def __init__(self, read: Callable[[], CollectionCounts]) -> None:
        self._read = read
        self._failing = False  # the last scrape could not read them (logged once)
        self._missing = 0  # shards the last scrape left out (logged when that changes)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self._read()
        except Exception:  # the other metrics are still served; these are left out
            if not self._failing:
                log.warning("metrics: the collections' gauges are left out", exc_info=True)
            self._failing = True
            return
        self._failing = False
        if counts.missing_shards != self._missing:
            self._missing = counts.missing_shards
            if counts.missing_shards:
                log.warning(
                    "metrics: %d shard(s) did not answer (no live replica, or none in time); "
                    "hybridsearch_index_documents leaves their documents out",
                    counts.missing_shards,
                )
        yield GaugeMetricFamily(
            "hybridsearch_index_documents",
            "Live documents in the served index",
            value=counts.live_documents,
        )
        yield GaugeMetricFamily(
            "hybridsearch_shards_missing",
            "Shards of the served collections with no live replica (Ray restarting them)",
            value=counts.missing_shards,
        )


class _BatchingCollector(Collector):
    """The micro-batcher's counters, read when scraped."""

    def __init__(self, read: Callable[[], BatchStats | None]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._read()
        if stats is None:
            return
        for name, help_text, value in (
            ("encoder_batches", "Query micro-batches run", stats.batches),
            ("encoder_batched_queries", "Queries encoded in micro-batches", stats.texts),
            ("encoder_refused", "Queries refused: the encoder queue was full", stats.rejected),
            ("encoder_dropped", "Queued queries dropped before their batch", stats.cancelled),
        ):
            yield CounterMetricFamily(f"hybridsearch_{name}", help_text, value=value)
        yield GaugeMetricFamily(
            "hybridsearch_encoder_queue", "Queries waiting for the encoder", value=stats.queued
        )
