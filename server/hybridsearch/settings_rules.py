"""The rules every server setting must meet, checked once before the server starts.

A setting that breaks one would otherwise surface later and in the wrong place: a default
``--alpha 2`` as every caller's INVALID_ARGUMENT, ``--search-threads 0`` as a crash while the
index loads. `ServerSettings.validate` turns each problem found here into a `SettingsError`
naming the flag and the environment variable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hybridsearch.fusion.adaptive import AdaptiveModelError, load_model
from hybridsearch.types import DEFAULT_VECTOR_PRF_DEPTH, Device, PrfSettings

if TYPE_CHECKING:
    from hybridsearch.config import ServerSettings

MAX_PORT = 65_535
DEFAULT_INDEX = Path("var/indexes/sample")  # ServerSettings.index's default
MAX_MESSAGE_BYTES = 2**31 - 1  # gRPC takes message limits as a signed 32-bit int

# Settings that count something there must be at least one of.
AT_LEAST_ONE = (
    "search_threads",
    "workers",
    "write_threads",
    "max_batch_size",
    "max_batch_tokens",
    "encode_queue",
    "hnsw_ef_search",
    "max_top_k",
    "max_query_chars",
    "max_batch_queries",
    "max_depth",
    "max_rrf_k",
    "max_fb_docs",
    "max_fb_terms",
    "max_vector_prf_depth",
    "stream_max_in_flight",
    "max_document_chars",
    "max_id_bytes",
    "max_delete_ids",
    "max_filter_depth",
    "max_filter_conditions",
)
# Settings where 0 means "none", "off" or "automatic".
AT_LEAST_ZERO = (
    "encoder_threads",
    "max_wait_us",
    "max_in_flight",
    "compact_min_dead_rows",
    "max_offset",
)

# Upper bounds far above any real deployment: a larger value is a typo or a unit mistake, and
# was accepted silently (`--encoder-threads 100000` never finished loading the model,
# `--max-wait-us 1e14` held every dense query until its deadline). Each flag's help says it.
MAX_THREADS = 4096  # --search-threads, --write-threads
MAX_ENCODER_THREADS = 1024  # onnxruntime threads, one per core: no host has more cores
MAX_WORKERS = 1024  # server processes
MAX_WAIT_US = 1_000_000  # a batch waits at most 1 s for more queries
MAX_HNSW_EF_SEARCH = 100_000
MAX_SECONDS = 86_400.0  # a day: --grace-period-s, --shutdown-delay-s, --follow-interval-s
AT_MOST = {
    "search_threads": MAX_THREADS,
    "write_threads": MAX_THREADS,
    "workers": MAX_WORKERS,
    "encoder_threads": MAX_ENCODER_THREADS,
    "max_wait_us": MAX_WAIT_US,
    "hnsw_ef_search": MAX_HNSW_EF_SEARCH,
}

Problem = tuple[str, str]  # (setting name, what is wrong)


def _within(name: str, value: float, low: float, high: float, note: str = "") -> Iterator[Problem]:
    if not low <= value <= high:
        yield name, f"must be in [{low}, {high}]{note} (got {value})"


def _counts(s: ServerSettings) -> Iterator[Problem]:
    for name in AT_LEAST_ONE:
        value = getattr(s, name)
        if value < 1:
            yield name, f"must be >= 1 (got {value})"
    for name in AT_LEAST_ZERO:
        value = getattr(s, name)
        if value < 0:
            yield name, f"must be >= 0 (got {value})"
    for name, high in AT_MOST.items():
        value = getattr(s, name)
        if value > high:
            yield name, f"must be <= {high} (got {value})"


def _seconds(name: str, value: float) -> Iterator[Problem]:
    if not (math.isfinite(value) and value >= 0.0):
        yield name, f"must be a finite number >= 0 (got {value})"
    elif value > MAX_SECONDS:
        yield name, f"must be <= {MAX_SECONDS:.0f} s, a day (got {value})"


def _request_defaults(s: ServerSettings) -> Iterator[Problem]:
    """The defaults a request takes must pass the limits a request is checked against."""
    if not (math.isfinite(s.alpha) and 0.0 <= s.alpha <= 1.0):
        yield "alpha", f"must be a finite number in [0, 1] (got {s.alpha})"
    # A bound that is itself invalid (reported by _counts) checks nothing against it: no
    # "must be in [1, 0]" lines derived from the bad value.
    if s.max_top_k >= 1 and s.max_depth >= 1:
        yield from _within("max_top_k", s.max_top_k, 1, s.max_depth, " (at most --max-depth)")
    if s.max_top_k >= 1:
        yield from _within(
            "default_top_k", s.default_top_k, 1, s.max_top_k, " (at most --max-top-k)"
        )
    if s.max_rrf_k >= 1:
        yield from _within("rrf_k", s.rrf_k, 1, s.max_rrf_k, " (at most --max-rrf-k)")
    if s.max_depth >= 1:
        for name in ("sparse_depth", "dense_depth"):
            yield from _within(name, getattr(s, name), 1, s.max_depth, " (at most --max-depth)")
    try:  # read now, so that a bad file stops the start and no query ever reads it
        load_model(s.adaptive_model)
    except AdaptiveModelError as exc:
        yield "adaptive_model", str(exc)
    prf = PrfSettings()
    for name, default in (("max_fb_docs", prf.fb_docs), ("max_fb_terms", prf.fb_terms)):
        value = getattr(s, name)
        if value < default:
            yield name, f"must be >= {default}, the default a request takes (got {value})"
    depth = max(prf.vector_depth, *DEFAULT_VECTOR_PRF_DEPTH.values())
    if s.max_vector_prf_depth < depth:
        yield (
            "max_vector_prf_depth",
            f"must be >= {depth}, the default a request takes (got {s.max_vector_prf_depth})",
        )


def _has_token_setting(s: ServerSettings) -> bool:
    return bool(
        s.auth_tokens.strip()
        or s.auth_read_only_tokens.strip()
        or s.auth_tokens_file is not None
        or s.auth_read_only_tokens_file is not None
    )


def _serving(s: ServerSettings) -> Iterator[Problem]:
    for name in ("host", "metrics_host"):
        if not getattr(s, name).strip():
            yield name, "must not be empty (0.0.0.0 or [::] binds every interface)"
    yield from _within("port", s.port, 0, MAX_PORT)
    yield from _within("metrics_port", s.metrics_port, 0, MAX_PORT)
    if s.metrics_port and s.metrics_port == s.port:
        yield "metrics_port", f"must differ from --port (both {s.port})"
    yield from _within("max_message_bytes", s.max_message_bytes, 1, MAX_MESSAGE_BYTES)
    yield from _seconds("grace_period_s", s.grace_period_s)
    yield from _seconds("shutdown_delay_s", s.shutdown_delay_s)
    if s.tls_cert is None:
        if s.tls_key is not None:
            yield "tls_key", "needs --tls-cert"
        if s.tls_client_ca is not None:
            yield "tls_client_ca", "needs --tls-cert"
    elif s.tls_key is None:
        yield "tls_cert", "needs --tls-key"
    if s.auth_health and not _has_token_setting(s):
        yield (
            "auth_health",
            "needs a token setting (--auth-tokens, --auth-tokens-file, --auth-read-only-tokens "
            "or --auth-read-only-tokens-file): without one nothing is authenticated",
        )
    if s.workers > 1 and s.metrics_port:
        yield (
            "metrics_port",
            "not supported with --workers > 1 yet (each worker would bind it)",
        )
    yield from _encoder(s)


def _encoder(s: ServerSettings) -> Iterator[Problem]:
    """Encoder variants that cannot run as asked (found before the model loads; `auto` is
    decided by onnxruntime at load)."""
    if s.encoder_fp16 and s.device is Device.CPU:
        yield (
            "encoder_fp16",
            "the fp16 model runs only with --device cuda (fp16 on CPU is slower than int8/fp32)",
        )
    if s.encoder_fp16 and s.encoder_int8:
        yield "encoder_fp16", "give --encoder-fp16 or --encoder-int8, not both"


def _storage(s: ServerSettings) -> Iterator[Problem]:
    if s.data_dir is not None:
        if s.index != DEFAULT_INDEX:
            yield "data_dir", "give --index or --data-dir, not both"
        if s.workers > 1:
            yield "data_dir", "not supported with --workers > 1 yet (each worker would write it)"
    yield from _seconds("follow_interval_s", s.follow_interval_s)
    if not (math.isfinite(s.compact_dead_fraction) and 0.0 <= s.compact_dead_fraction < 1.0):
        yield (
            "compact_dead_fraction",
            f"must be a number in [0, 1) (got {s.compact_dead_fraction})",
        )
    if s.ray and s.workers > 1:
        yield "ray", "not supported with --workers > 1 (the shards already run apart)"
    if s.bm25_statistics not in ("shard", "collection"):
        yield "bm25_statistics", f"must be shard or collection (got {s.bm25_statistics!r})"
    if s.replicas < 1:
        yield "replicas", f"must be >= 1 (got {s.replicas})"
    elif s.replicas > 1 and not s.ray:
        yield "replicas", "needs --ray (replicas are Ray actors)"
    if s.ray_transport not in ("direct", "ray"):
        yield "ray_transport", f"must be direct or ray (got {s.ray_transport!r})"
    if not (math.isfinite(s.ray_replica_cpus) and s.ray_replica_cpus >= 0.0):
        yield "ray_replica_cpus", f"must be a finite number >= 0 (got {s.ray_replica_cpus})"
    fraction = s.hnsw_exact_filter_fraction
    if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
        yield "hnsw_exact_filter_fraction", f"must be a number in [0, 1] (got {fraction})"


def _ray_index(s: ServerSettings) -> Iterator[Problem]:
    """``--ray`` serves sharded collections only: with ``--index``, one must be there (a
    ``shards.json`` lookup, before the port is bound or Ray is started)."""
    if not s.ray or s.data_dir is not None:
        return
    from hybridsearch.sharding.layout import is_sharded  # noqa: PLC0415 (no import cycle)

    if is_sharded(s.index):
        return
    if not s.index.exists():
        yield "index", f"{s.index} does not exist (--ray serves a sharded collection there)"
    else:
        yield (
            "ray",
            f"serves a sharded collection only, and --index {s.index} is not one (it has no "
            "shards.json); drop --ray to serve it in this process, or give a sharded "
            "collection (`hybridsearch index --shards N`, `hybridsearch shards split`)",
        )


def setting_problems(settings: ServerSettings) -> Iterator[Problem]:
    """Every (setting name, problem) of ``settings``; none when all are valid."""
    yield from _counts(settings)
    yield from _request_defaults(settings)
    yield from _serving(settings)
    yield from _storage(settings)
    yield from _ray_index(settings)
