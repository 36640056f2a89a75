"""Server settings: one typed object, built once in `main` and passed down.

Every field is a CLI flag (``--search-threads``) and an environment variable
(``HYBRIDSEARCH_SEARCH_THREADS``); a flag beats the variable, which beats the default.
`ServerSettings.validate` checks them all before the server starts (rules in
`settings_rules`), so a bad setting stops the start instead of failing each request.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridsearch.engine.document_rules import IngestLimits
from hybridsearch.engine.request import Limits, QueryDefaults
from hybridsearch.errors import SettingsError
from hybridsearch.settings_rules import (
    DEFAULT_INDEX,
    MAX_ENCODER_THREADS,
    MAX_HNSW_EF_SEARCH,
    MAX_SECONDS,
    MAX_THREADS,
    MAX_WAIT_US,
    MAX_WORKERS,
    setting_problems,
)
from hybridsearch.types import Device, FusionMethod, FusionSettings, Normalization

__all__ = [
    "Device",
    "LogFormat",
    "LogLevel",
    "ServerSettings",
    "add_settings_arguments",
    "describe",
    "env_var",
    "flag",
    "settings_from",
]

ENV_PREFIX = "HYBRIDSEARCH_"


class LogFormat(enum.Enum):
    """How log records are written to stderr."""

    TEXT = "text"
    JSON = "json"


class LogLevel(enum.Enum):
    """The least severe log records written (access log lines are INFO)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


def parse_log_level(text: str) -> LogLevel:
    """A level name in any case (``info``, ``WARNING``)."""
    try:
        return LogLevel(text.strip().upper())
    except ValueError:
        names = ", ".join(level.value for level in LogLevel)
        raise ValueError(f"expected one of {names}") from None


def _setting(
    default: Any, help: str, parse: Callable[[str], Any] | None = None, *, secret: bool = False
) -> Any:
    # repr=False keeps secrets out of any log line or traceback that shows the settings.
    return field(default=default, repr=not secret, metadata={"help": help, "parse": parse})


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything `hybridsearch serve` can be told."""

    index: Path = _setting(DEFAULT_INDEX, "index directory to serve", Path)
    model: Path | None = _setting(
        None, "model directory of the index's encoder (needed for dense/hybrid)", _optional_path
    )
    data_dir: Path | None = _setting(
        None,
        "data directory of named collections to serve (created when missing; instead of "
        "--index): DIR/catalog.json and DIR/collections/<name>/",
        _optional_path,
    )
    models_dir: Path | None = _setting(
        None,
        "directory of model directories a new collection may name as its model (`default` is "
        "--model)",
        _optional_path,
    )
    host: str = _setting("127.0.0.1", "address to bind")
    port: int = _setting(50051, "port to bind; 0 picks a free one", int)
    device: Device = _setting(Device.AUTO, "encoder device: auto, cpu or cuda", Device)
    search_threads: int = _setting(
        64,
        "threads running searches (they mostly wait on the encoder batcher); at most "
        f"{MAX_THREADS}",
        int,
    )
    workers: int = _setting(
        1,
        "server processes sharing the port (SO_REUSEPORT) and the mapped index; at most "
        f"{MAX_WORKERS}",
        int,
    )
    encoder_fp16: bool = _setting(
        False, "with --device cuda: serve the model's fp16 variant (model_fp16.onnx)", parse_bool
    )
    encoder_int8: bool = _setting(
        False,
        "encode queries with the model's int8 variant (model_int8.onnx, made by `hybridsearch "
        "models quantize`; CPU): ~1.7x faster, vectors at cosine ~0.99; documents keep the "
        "full model",
        parse_bool,
    )
    encoder_threads: int = _setting(
        0, f"onnxruntime intra-op threads; 0 = one per core; at most {MAX_ENCODER_THREADS}", int
    )
    encoder_spinning: bool = _setting(
        False, "let idle onnxruntime threads spin (lower latency on a dedicated host)", parse_bool
    )
    encode_batching: bool = _setting(
        True, "gather concurrent query encodings into one encoder run", parse_bool
    )
    max_batch_size: int = _setting(8, "most queries in one encoder run", int)
    max_wait_us: int = _setting(
        0,
        "microseconds a batch waits for more queries (0: take what queued meanwhile); at most "
        f"{MAX_WAIT_US} (1 s)",
        int,
    )
    max_batch_tokens: int = _setting(
        512, "padded tokens per encoder run (texts x longest; estimated)", int
    )
    encode_queue: int = _setting(
        256, "query encodings waiting for the encoder; more are refused (RESOURCE_EXHAUSTED)", int
    )
    default_top_k: int = _setting(10, "hits returned when a request's top_k is 0", int)
    max_top_k: int = _setting(1000, "largest top_k accepted", int)
    max_query_chars: int = _setting(4096, "longest query accepted, in characters", int)
    max_batch_queries: int = _setting(256, "most queries in one BatchSearch", int)
    max_depth: int = _setting(
        1000, "largest sparse_depth / dense_depth (candidates per arm) a request may set", int
    )
    max_offset: int = _setting(
        10_000, "largest offset (hits skipped, pagination) a request may set", int
    )
    max_filter_depth: int = _setting(8, "deepest nesting of a request's filter", int)
    max_filter_conditions: int = _setting(
        64, "most conditions in a request's filter, nested ones included", int
    )
    hnsw_exact_filter_fraction: float = _setting(
        0.02,
        "HNSW: a filter matching less than this fraction of the rows is searched exactly over "
        "the matching rows instead of through the graph",
        float,
    )
    max_rrf_k: int = _setting(10_000, "largest RRF k a request may set", int)
    max_fb_docs: int = _setting(100, "most RM3 feedback documents a request may ask for", int)
    max_fb_terms: int = _setting(1000, "most RM3 expansion terms a request may ask for", int)
    max_vector_prf_depth: int = _setting(
        100, "most vector PRF feedback documents a request may ask for", int
    )
    stream_max_in_flight: int = _setting(
        32,
        "requests of one SearchStream searched or waiting to be sent at once; beyond it the "
        "stream reads no further until an answer has been sent",
        int,
    )
    fusion_method: FusionMethod = _setting(
        FusionMethod.INTERPOLATION,
        "default fusion: interpolation, rrf or adaptive (a per-query alpha, --adaptive-model)",
        FusionMethod,
    )
    alpha: float = _setting(0.5, "default weight of the dense side in interpolation", float)
    normalization: Normalization = _setting(
        Normalization.MIN_MAX, "default normalisation: min_max, z_score or none", Normalization
    )
    rrf_k: int = _setting(60, "default RRF k", int)
    adaptive_model: Path | None = _setting(
        None,
        "model file of adaptive fusion (JSON; default: the one shipped in the package); "
        "loaded at start-up",
        _optional_path,
    )
    sparse_depth: int = _setting(1000, "default BM25 candidates entering fusion", int)
    dense_depth: int = _setting(1000, "default dense candidates entering fusion", int)
    grace_period_s: float = _setting(
        10.0,
        f"seconds in-flight calls get to finish on SIGTERM; at most {MAX_SECONDS:.0f} (a day)",
        float,
    )
    shutdown_delay_s: float = _setting(
        0.0,
        "seconds between SIGTERM and the graceful stop during which health reports "
        "NOT_SERVING but calls are still answered (time for load balancers to stop routing "
        f"here); then --grace-period-s; at most {MAX_SECONDS:.0f} (a day)",
        float,
    )
    hnsw_ef_search: int = _setting(
        128,
        "HNSW search candidate list (indexes built with --dense-index hnsw); at most "
        f"{MAX_HNSW_EF_SEARCH}",
        int,
    )
    max_message_bytes: int = _setting(
        16 * 1024 * 1024,
        "largest gRPC message received or sent, in bytes (larger: RESOURCE_EXHAUSTED)",
        int,
    )
    max_in_flight: int = _setting(
        64,
        "most hybridsearch calls served at once (a SearchStream counts as one only while a "
        "request of it is in work, an UpsertDocuments stream only while a message of it is "
        "applied); beyond it calls get RESOURCE_EXHAUSTED at once; 0 = no bound",
        int,
    )
    auth_tokens_file: Path | None = _setting(
        None, "file of bearer tokens allowed every RPC, one a line (empty: no auth)", _optional_path
    )
    auth_tokens: str = _setting(
        "",
        "comma-separated bearer tokens allowed every RPC; prefer the env variable to the flag",
        secret=True,
    )
    auth_read_only_tokens_file: Path | None = _setting(
        None, "file of read-only tokens (search, not IndexService), one a line", _optional_path
    )
    auth_read_only_tokens: str = _setting(
        "", "comma-separated read-only tokens; prefer the env variable to the flag", secret=True
    )
    auth_health: bool = _setting(
        False, "with auth on, require a token for health and reflection too", parse_bool
    )
    tls_cert: Path | None = _setting(
        None, "PEM server certificate (chain): serve TLS", _optional_path
    )
    tls_key: Path | None = _setting(None, "PEM private key of --tls-cert", _optional_path)
    tls_client_ca: Path | None = _setting(
        None, "PEM CA bundle: require client certificates it signed (mTLS)", _optional_path
    )
    metrics_port: int = _setting(0, "Prometheus metrics HTTP port; 0 = no metrics endpoint", int)
    metrics_host: str = _setting("127.0.0.1", "address the metrics endpoint binds")
    log_format: LogFormat = _setting(LogFormat.TEXT, "log format: text or json", LogFormat)
    log_level: LogLevel = _setting(
        LogLevel.INFO,
        "least severe log records written: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case; "
        "access log lines are INFO)",
        parse_log_level,
    )
    echo_request_id: bool = _setting(
        False,
        "send each call's request id back as x-request-id initial metadata (costs a write of "
        "its own per call: ~0.25 ms p50)",
        parse_bool,
    )
    max_document_chars: int = _setting(
        1_000_000, "longest title + text an upserted document may have, in characters", int
    )
    max_id_bytes: int = _setting(512, "longest document id accepted, in UTF-8 bytes", int)
    max_delete_ids: int = _setting(10_000, "most ids in one DeleteDocuments", int)
    write_threads: int = _setting(
        2,
        "threads running IndexService writes (encoding and commits; apart from searches); at "
        f"most {MAX_THREADS}",
        int,
    )
    read_only: bool = _setting(False, "serve without IndexService writes (true/false)", parse_bool)
    follow_interval_s: float = _setting(
        1.0,
        "a read-only server checks the index for new commits (and compactions) this often, in "
        f"seconds, and serves them without a restart; 0 = serve the state it opened; at most "
        f"{MAX_SECONDS:.0f} (a day)",
        float,
    )
    ray: str = _setting(
        "",
        "serve the sharded collection at --index (or every sharded collection of --data-dir) "
        "with each shard's replicas as Ray actors: "
        "`auto` (the Ray cluster of RAY_ADDRESS or of `ray start` on this machine, else a new "
        "local Ray that stops with the server), `local` (always a new local Ray), or a cluster "
        "ADDRESS (the head's HOST:PORT); empty: no Ray (sharded collections are then served "
        "in this process)",
    )
    replicas: int = _setting(1, "with --ray: replicas (Ray actors) of each shard", int)
    bm25_statistics: str = _setting(
        "collection",
        "a sharded collection's BM25 term statistics: `collection` (default: summed over "
        "shards, so idf is one index's; the front caches them per shard generation, so a "
        "query costs no extra call once its terms are cached) or `shard` (each shard's own, "
        "as Elasticsearch's query-then-fetch; never an extra call, idf differs per shard)",
    )
    ray_replica_cpus: float = _setting(
        0.0, "with --ray: CPUs Ray reserves for each shard replica (placement only)", float
    )
    ray_transport: str = _setting(
        "direct",
        "with --ray: how the front's calls reach the shard replicas: `direct` (default: a "
        "TCP connection the front holds to each replica, authenticated by a random key Ray "
        "hands the replica; Ray still places and restarts the replicas) or `ray` (a Ray "
        "actor task per call: about 1-3 ms more per call on 2 cores; for nodes that cannot "
        "reach each other's free ports)",
    )
    compact_dead_fraction: float = _setting(
        0.3,
        "compact in the background when more than this fraction of the index's rows are dead "
        "(deleted or replaced documents); 0 = only on request (IndexService.Compact, "
        "`hybridsearch compact`)",
        float,
    )
    compact_min_dead_rows: int = _setting(
        1000, "background compaction waits for at least this many dead rows", int
    )

    @property
    def fusion_defaults(self) -> FusionSettings:
        """The server-wide fusion defaults a request's unset fields take."""
        return FusionSettings(
            method=self.fusion_method,
            alpha=self.alpha,
            normalization=self.normalization,
            rrf_k=self.rrf_k,
            sparse_depth=self.sparse_depth,
            dense_depth=self.dense_depth,
            adaptive_model=self.adaptive_model,
        )

    @property
    def query_defaults(self) -> QueryDefaults:
        """What a search request's unset values become."""
        return QueryDefaults(top_k=self.default_top_k, fusion=self.fusion_defaults)

    @property
    def request_limits(self) -> Limits:
        """The most a search request may ask for."""
        return Limits(
            max_top_k=self.max_top_k,
            max_query_chars=self.max_query_chars,
            max_depth=self.max_depth,
            max_rrf_k=self.max_rrf_k,
            max_fb_docs=self.max_fb_docs,
            max_fb_terms=self.max_fb_terms,
            max_vector_prf_depth=self.max_vector_prf_depth,
            max_batch_queries=self.max_batch_queries,
            max_offset=self.max_offset,
            max_filter_depth=self.max_filter_depth,
            max_filter_conditions=self.max_filter_conditions,
        )

    @property
    def ingest_limits(self) -> IngestLimits:
        """The most one write may carry."""
        return IngestLimits(
            max_document_chars=self.max_document_chars,
            max_id_bytes=self.max_id_bytes,
            max_delete_ids=self.max_delete_ids,
        )

    def validate(self) -> ServerSettings:
        """Check every setting before anything starts; returns ``self``.

        Raises:
            SettingsError: naming each invalid setting by its flag and environment variable,
                e.g. ``--alpha (env HYBRIDSEARCH_ALPHA): must be a finite number in [0, 1]
                (got 2.0)``.
        """
        problems = [f"{describe(name)}: {problem}" for name, problem in setting_problems(self)]
        if problems:
            raise SettingsError("; ".join(problems))
        return self


def flag(name: str) -> str:
    """The CLI flag of a setting (``--search-threads``)."""
    return "--" + name.replace("_", "-")


def env_var(name: str) -> str:
    """The environment variable of a setting (``HYBRIDSEARCH_SEARCH_THREADS``)."""
    return ENV_PREFIX + name.upper()


def describe(name: str) -> str:
    """How an error names a setting: ``--alpha (env HYBRIDSEARCH_ALPHA)``."""
    return f"{flag(name)} (env {env_var(name)})"


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per `ServerSettings` field (defaults resolved later, with the env)."""
    for f in dataclasses.fields(ServerSettings):
        default = f.default
        shown = default.value if isinstance(default, enum.Enum) else default
        parser.add_argument(
            flag(f.name),
            dest=f.name,
            default=None,
            help=f"{f.metadata['help']} (env {env_var(f.name)}; default {shown})",
        )


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerSettings:
    """Build settings from parsed flags, then environment variables, then defaults.

    Raises:
        SettingsError: a value does not parse (checking the values is `ServerSettings.validate`).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in dataclasses.fields(ServerSettings):
        raw = getattr(args, f.name, None)
        if raw is None:
            raw = env.get(env_var(f.name))
        if raw is None:
            continue
        parse = f.metadata["parse"]
        try:
            values[f.name] = parse(raw) if parse is not None else raw
        except ValueError as exc:
            raise SettingsError(f"{describe(f.name)}: invalid value {raw!r} ({exc})") from exc
    return ServerSettings(**values)
