"""`hybridsearch ingest` feeds a TLS + bearer-token server through the CLI's shared channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import TINY_CORPUS, ServerProcess, run_cli, start_server
from tests.integration.certs import Authority, Pem

TOKEN = "ingest-secret-token"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pem, Pem]:
    ca = Authority(tmp_path_factory.mktemp("pki"), "ingest-ca")
    return ca.pem, ca.issue("server", server=True)


@pytest.fixture(scope="module")
def secured_server(
    tmp_path_factory: pytest.TempPathFactory, authority: tuple[Pem, Pem]
) -> Iterator[ServerProcess]:
    ca, cert = authority
    index = tmp_path_factory.mktemp("idx") / "empty"
    run_cli("index", "--empty", "--no-dense", "--out", str(index))
    server = start_server(
        "--index", str(index), "--tls-cert", str(cert.cert), "--tls-key", str(cert.key),
        "--auth-tokens", TOKEN,
    )  # fmt: skip
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert.read_bytes())
        with grpc.secure_channel(server.address, credentials) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            next(u for u in watch if u.status == health_pb2.HealthCheckResponse.SERVING)
            watch.cancel()
        yield server
    finally:
        assert server.stop() == 0


def _ingest(server: ServerProcess, ca: Path, *flags: str) -> tuple[int, str, str]:
    done = run_cli(
        "ingest", "--server", server.address, "--tls-ca", str(ca), "--corpus", str(TINY_CORPUS),
        "--no-progress", *flags, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_ingest_with_tls_ca_and_token_feeds_the_server(
    secured_server: ServerProcess, authority: tuple[Pem, Pem]
) -> None:
    code, out, err = _ingest(secured_server, authority[0].cert, "--token", TOKEN)
    assert code == 0, err
    assert "accepted 12 documents" in out
    found = run_cli(
        "search", "pasta", "--mode", "sparse", "--server", secured_server.address,
        "--tls-ca", str(authority[0].cert), "--token", TOKEN,
    )  # fmt: skip
    assert "d04" in found.stdout


def test_ingest_without_the_token_is_refused(
    secured_server: ServerProcess, authority: tuple[Pem, Pem]
) -> None:
    code, _, err = _ingest(secured_server, authority[0].cert)
    assert code == 1
    assert "UNAUTHENTICATED" in err


def test_ingest_reads_the_token_from_the_environment(
    secured_server: ServerProcess, authority: tuple[Pem, Pem], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDSEARCH_TOKEN", TOKEN)
    code, out, err = _ingest(secured_server, authority[0].cert)
    assert code == 0, err
    assert "(12 replaced an existing id)" in out
