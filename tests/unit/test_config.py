"""ServerSettings: flags and env variables, the limits and defaults they carry, and the
start-up check of every setting."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from hybridsearch.config import LogLevel, ServerSettings, add_settings_arguments, settings_from
from hybridsearch.engine.document_rules import IngestLimits
from hybridsearch.engine.request import Limits, QueryDefaults
from hybridsearch.errors import SettingsError
from hybridsearch.types import Device, FusionSettings


def parse(*argv: str, env: dict[str, str] | None = None) -> ServerSettings:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return settings_from(parser.parse_args(argv), env or {})


def problem(**changes: Any) -> str:
    with pytest.raises(SettingsError) as info:
        dataclasses.replace(ServerSettings(), **changes).validate()
    return str(info.value)


def test_the_defaults_are_valid() -> None:
    settings = ServerSettings()
    assert settings.validate() is settings


def test_the_limits_default_to_the_documented_values() -> None:
    settings = ServerSettings()
    assert settings.request_limits == Limits()
    assert settings.ingest_limits == IngestLimits()
    assert (settings.write_threads, settings.stream_max_in_flight) == (2, 32)
    assert settings.query_defaults == QueryDefaults()


def test_limits_and_defaults_come_from_the_flags_and_env() -> None:
    settings = parse(
        "--max-depth", "500", "--max-rrf-k", "99", "--max-fb-docs", "20", "--max-id-bytes", "64",
        "--default-top-k", "7", "--alpha", "0.3",
        env={"HYBRIDSEARCH_MAX_DELETE_IDS": "5", "HYBRIDSEARCH_MAX_FB_TERMS": "50"},
    )  # fmt: skip
    limits = settings.request_limits
    assert (limits.max_depth, limits.max_rrf_k, limits.max_fb_docs, limits.max_fb_terms) == (
        500,
        99,
        20,
        50,
    )
    assert settings.ingest_limits == IngestLimits(max_id_bytes=64, max_delete_ids=5)
    assert settings.query_defaults == QueryDefaults(top_k=7, fusion=FusionSettings(alpha=0.3))


def test_a_value_that_does_not_parse_names_the_flag_and_env() -> None:
    with pytest.raises(SettingsError) as info:
        parse(env={"HYBRIDSEARCH_MAX_DEPTH": "many"})
    assert str(info.value).startswith(
        "--max-depth (env HYBRIDSEARCH_MAX_DEPTH): invalid value 'many'"
    )


def test_alpha_message_names_flag_env_rule_and_value() -> None:
    assert problem(alpha=2.0) == (
        "--alpha (env HYBRIDSEARCH_ALPHA): must be a finite number in [0, 1] (got 2.0)"
    )
    assert "got nan" in problem(alpha=math.nan)
    assert "got -0.5" in problem(alpha=-0.5)


COUNTS = [
    "search_threads",
    "workers",
    "write_threads",
    "max_batch_size",
    "max_batch_tokens",
    "encode_queue",
    "hnsw_ef_search",
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
]


@pytest.mark.parametrize("name", COUNTS)
def test_counts_need_at_least_one(name: str) -> None:
    flag, env = "--" + name.replace("_", "-"), "HYBRIDSEARCH_" + name.upper()
    assert f"{flag} (env {env}): must be >= 1 (got 0)" in problem(**{name: 0})


@pytest.mark.parametrize("name", ["encoder_threads", "max_wait_us", "max_in_flight"])
def test_zero_means_off_or_auto_but_negative_is_refused(name: str) -> None:
    dataclasses.replace(ServerSettings(), **{name: 0}).validate()
    assert "must be >= 0 (got -1)" in problem(**{name: -1})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"default_top_k": 0}, "--default-top-k (env HYBRIDSEARCH_DEFAULT_TOP_K): must be in"),
        ({"default_top_k": 11, "max_top_k": 10}, "must be in [1, 10] (at most --max-top-k)"),
        ({"max_top_k": 1001}, "--max-top-k (env HYBRIDSEARCH_MAX_TOP_K): must be in [1, 1000]"),
        ({"max_top_k": 0}, "--max-top-k (env HYBRIDSEARCH_MAX_TOP_K): must be >= 1 (got 0)"),
        ({"rrf_k": 0}, "--rrf-k (env HYBRIDSEARCH_RRF_K): must be in [1, 10000]"),
        ({"rrf_k": 61, "max_rrf_k": 60}, "(at most --max-rrf-k) (got 61)"),
        ({"sparse_depth": 0}, "--sparse-depth (env HYBRIDSEARCH_SPARSE_DEPTH): must be in"),
        ({"dense_depth": 1001}, "--dense-depth (env HYBRIDSEARCH_DENSE_DEPTH): must be in"),
        ({"max_fb_docs": 9}, "--max-fb-docs (env HYBRIDSEARCH_MAX_FB_DOCS): must be >= 10"),
        ({"max_fb_terms": 9}, "--max-fb-terms (env HYBRIDSEARCH_MAX_FB_TERMS): must be >= 10"),
        ({"max_vector_prf_depth": 4}, "--max-vector-prf-depth (env HYBRIDSEARCH_MAX_VECTOR_P"),
        ({"port": 65536}, "--port (env HYBRIDSEARCH_PORT): must be in [0, 65535] (got 65536)"),
        ({"port": -1}, "--port (env HYBRIDSEARCH_PORT): must be in [0, 65535] (got -1)"),
        ({"metrics_port": 70000}, "--metrics-port (env HYBRIDSEARCH_METRICS_PORT): must be in"),
        ({"max_message_bytes": 0}, "--max-message-bytes (env HYBRIDSEARCH_MAX_MESSAGE_BYTES)"),
        ({"max_message_bytes": 2**31}, "must be in [1, 2147483647] (got 2147483648)"),
        ({"grace_period_s": -1.0}, "--grace-period-s (env HYBRIDSEARCH_GRACE_PERIOD_S): must"),
        ({"grace_period_s": math.inf}, "must be a finite number >= 0 (got inf)"),
        ({"shutdown_delay_s": -1.0}, "--shutdown-delay-s (env HYBRIDSEARCH_SHUTDOWN_DELAY_S): m"),
        ({"shutdown_delay_s": math.nan}, "must be a finite number >= 0 (got nan)"),
        ({"tls_key": Path("k.pem")}, "--tls-key (env HYBRIDSEARCH_TLS_KEY): needs --tls-cert"),
        ({"tls_client_ca": Path("ca.pem")}, "--tls-client-ca (env HYBRIDSEARCH_TLS_CLIENT_CA)"),
        ({"tls_cert": Path("c.pem")}, "--tls-cert (env HYBRIDSEARCH_TLS_CERT): needs --tls-key"),
        (
            {"workers": 2, "metrics_port": 9090},
            "--metrics-port (env HYBRIDSEARCH_METRICS_PORT): not supported with --workers > 1",
        ),
        (
            {"data_dir": Path("d"), "index": Path("i")},
            "--data-dir (env HYBRIDSEARCH_DATA_DIR): give --index or --data-dir, not both",
        ),
        ({"data_dir": Path("d"), "workers": 2}, "--data-dir (env HYBRIDSEARCH_DATA_DIR): not"),
        ({"ray": "local", "workers": 2}, "--ray (env HYBRIDSEARCH_RAY): not supported with"),
        ({"replicas": 2}, "--replicas (env HYBRIDSEARCH_REPLICAS): needs --ray"),
        (
            {"encoder_fp16": True, "device": Device.CPU},
            "--encoder-fp16 (env HYBRIDSEARCH_ENCODER_FP16): the fp16 model runs only with "
            "--device cuda",
        ),
        (
            {"encoder_fp16": True, "encoder_int8": True, "device": Device.CUDA},
            "--encoder-fp16 (env HYBRIDSEARCH_ENCODER_FP16): give --encoder-fp16 or "
            "--encoder-int8, not both",
        ),
        ({"ray_transport": "grpc"}, "--ray-transport (env HYBRIDSEARCH_RAY_TRANSPORT): must be"),
        (
            {"auth_health": True},
            "--auth-health (env HYBRIDSEARCH_AUTH_HEALTH): needs a token setting (--auth-tokens",
        ),
        (
            {"auth_health": True, "auth_tokens": " "},
            "--auth-health (env HYBRIDSEARCH_AUTH_HEALTH): needs a token setting",
        ),
        (
            {"port": 9090, "metrics_port": 9090},
            "--metrics-port (env HYBRIDSEARCH_METRICS_PORT): must differ from --port (both 9090)",
        ),
    ],
)
def test_each_rule(changes: dict[str, Any], expected: str) -> None:
    assert expected in problem(**changes)


def test_valid_edges_pass() -> None:
    ServerSettings(
        alpha=0.0,
        default_top_k=5,
        max_top_k=5,
        max_depth=5,
        sparse_depth=5,
        dense_depth=1,
        rrf_k=7,
        max_rrf_k=7,
        max_fb_docs=10,
        max_fb_terms=10,
        max_vector_prf_depth=5,
        port=65535,
        grace_period_s=0.0,
        tls_cert=Path("c.pem"),
        tls_key=Path("k.pem"),
        tls_client_ca=Path("ca.pem"),
        workers=2,
    ).validate()
    ServerSettings(alpha=1.0, workers=1, metrics_port=9090).validate()
    ServerSettings(port=0, metrics_port=9090).validate()  # --port 0: the kernel picks another
    for token in (
        {"auth_tokens": "t"},
        {"auth_tokens_file": Path("t")},
        {"auth_read_only_tokens": "t"},
        {"auth_read_only_tokens_file": Path("t")},
    ):
        dataclasses.replace(ServerSettings(auth_health=True), **token).validate()
    ServerSettings(data_dir=Path("d"), models_dir=Path("m")).validate()
    # Sharded collections of a data directory run on Ray (plain ones in the server process).
    ServerSettings(data_dir=Path("d"), ray="local", replicas=2).validate()


def test_every_problem_is_reported_at_once() -> None:
    message = problem(alpha=2.0, search_threads=0, port=-1)
    assert message.count("; ") == 2
    for flag in ("--alpha", "--search-threads", "--port"):
        assert flag in message


def test_the_log_level_is_a_setting_of_any_case_from_the_flag_or_env() -> None:
    assert ServerSettings().log_level is LogLevel.INFO
    assert parse("--log-level", "debug").log_level is LogLevel.DEBUG
    assert parse(env={"HYBRIDSEARCH_LOG_LEVEL": "Warning"}).log_level is LogLevel.WARNING
    with pytest.raises(SettingsError) as info:
        parse(env={"HYBRIDSEARCH_LOG_LEVEL": "verbose"})
    assert str(info.value) == (
        "--log-level (env HYBRIDSEARCH_LOG_LEVEL): invalid value 'verbose' "
        "(expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL)"
    )


@pytest.mark.parametrize(
    ("name", "most"),
    [
        ("search_threads", 4096),
        ("write_threads", 4096),
        ("workers", 1024),
        ("encoder_threads", 1024),
        ("max_wait_us", 1_000_000),
        ("hnsw_ef_search", 100_000),
    ],
)
def test_counts_have_a_maximum_no_deployment_reaches(name: str, most: int) -> None:
    """Absurd values were accepted silently (--encoder-threads 100000 never loaded)."""
    dataclasses.replace(ServerSettings(), **{name: most}).validate()
    flag, env = "--" + name.replace("_", "-"), "HYBRIDSEARCH_" + name.upper()
    assert problem(**{name: most + 1}) == f"{flag} (env {env}): must be <= {most} (got {most + 1})"


@pytest.mark.parametrize("name", ["grace_period_s", "shutdown_delay_s", "follow_interval_s"])
def test_periods_are_at_most_a_day(name: str) -> None:
    """--follow-interval-s 1e300 killed the follower thread with an OverflowError."""
    dataclasses.replace(ServerSettings(), **{name: 86_400.0}).validate()
    flag, env = "--" + name.replace("_", "-"), "HYBRIDSEARCH_" + name.upper()
    assert problem(**{name: 1e300}) == (
        f"{flag} (env {env}): must be <= 86400 s, a day (got 1e+300)"
    )
    assert "must be a finite number >= 0 (got inf)" in problem(**{name: math.inf})
