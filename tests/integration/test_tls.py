"""TLS and mTLS on a live server: good clients connect; plaintext, wrong CA, no cert are refused."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.x509.oid import NameOID

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import ServerProcess, run_cli, start_server, wait_serving
from tests.integration.certs import Authority, Pem, write_pem
from tests.integration.in_process import InProcessServer

QUERY = pb.SearchRequest(query="flow", mode=pb.RETRIEVAL_MODE_SPARSE, top_k=3)


class Pki:
    def __init__(self, out: Path) -> None:
        self.ca = Authority(out, "test-ca")
        self.server = self.ca.issue("server", server=True)
        self.client = self.ca.issue("client", server=False)
        self.rogue_ca = Authority(out, "rogue-ca")
        self.rogue_client = self.rogue_ca.issue("rogue-client", server=False)
        self.rogue_server = self.rogue_ca.issue("rogue-server", server=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _serve(
    index: Path, credentials: grpc.ChannelCredentials, *flags: str
) -> Iterator[ServerProcess]:
    server = start_server("--index", str(index), *flags)
    try:
        # SERVING first: a loading server answers UNAVAILABLE, which would pass the refusals
        wait_serving(server.address, credentials=credentials)
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def mtls_server(tiny_sparse_index: Path, pki: Pki) -> Iterator[ServerProcess]:
    yield from _serve(
        tiny_sparse_index,
        _credentials(pki.ca.pem, pki.client),
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
        "--tls-client-ca", str(pki.ca.pem.cert),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tiny_sparse_index: Path, pki: Pki) -> Iterator[ServerProcess]:
    yield from _serve(
        tiny_sparse_index,
        _credentials(pki.ca.pem),
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
    )  # fmt: skip


def _search(address: str, credentials: grpc.ChannelCredentials | None) -> pb.SearchResponse:
    """One search; waits for the server (it may still be loading) but not past 20 s."""
    if credentials is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, credentials)
    with channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        response: pb.SearchResponse = stub.Search(QUERY, timeout=20, wait_for_ready=False)
        return response


def _credentials(ca: Pem, client: Pem | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.cert.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


def _refused(address: str, credentials: grpc.ChannelCredentials | None) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _search(address, credentials)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_client_with_a_certificate_of_the_ca_connects(
    mtls_server: ServerProcess, pki: Pki
) -> None:
    assert _search(mtls_server.address, _credentials(pki.ca.pem, pki.client)).hits


def test_mtls_refuses_plaintext(mtls_server: ServerProcess) -> None:
    _refused(mtls_server.address, None)


def test_mtls_refuses_a_client_without_a_certificate(mtls_server: ServerProcess, pki: Pki) -> None:
    _refused(mtls_server.address, _credentials(pki.ca.pem))


def test_mtls_refuses_a_certificate_of_another_ca(mtls_server: ServerProcess, pki: Pki) -> None:
    _refused(mtls_server.address, _credentials(pki.ca.pem, pki.rogue_client))


def test_client_refuses_a_server_it_does_not_trust(mtls_server: ServerProcess, pki: Pki) -> None:
    _refused(mtls_server.address, _credentials(pki.rogue_ca.pem, pki.client))


def test_tls_without_client_ca_needs_no_client_certificate(
    tls_server: ServerProcess, pki: Pki
) -> None:
    assert _search(tls_server.address, _credentials(pki.ca.pem)).hits
    _refused(tls_server.address, None)


def test_cli_search_and_health_over_mtls(mtls_server: ServerProcess, pki: Pki) -> None:
    tls = [
        "--server", mtls_server.address, "--tls-ca", str(pki.ca.pem.cert),
        "--tls-cert", str(pki.client.cert), "--tls-key", str(pki.client.key),
    ]  # fmt: skip
    assert run_cli("health", *tls).stdout.strip() == "SERVING"
    found = run_cli("search", "flow", "--mode", "sparse", *tls)
    assert "hits" in found.stdout
    plain = run_cli("health", "--server", mtls_server.address, check=False)
    assert plain.returncode == 1


#: An address nothing listens on: the checks of the CLI's TLS flags come before any connection.
UNUSED = "127.0.0.1:9"


def test_cli_refuses_a_ca_file_with_no_certificate(tmp_path: Path) -> None:
    """It printed gRPC's C-core log lines, then UNAVAILABLE "Failed to create security
    handshaker"."""
    not_pem = tmp_path / "corpus.jsonl"
    not_pem.write_text('{"_id": "1", "text": "a"}\n')
    done = run_cli("health", "--server", UNUSED, "--tls-ca", str(not_pem), check=False)
    assert (done.returncode, done.stderr) == (
        2,
        f"error: --tls-ca: {not_pem} holds no PEM certificate\n",
    )


def test_cli_refuses_a_client_key_that_is_not_the_certificates(pki: Pki) -> None:
    done = run_cli(
        "health", "--server", UNUSED, "--tls-ca", str(pki.ca.pem.cert),
        "--tls-cert", str(pki.client.cert), "--tls-key", str(pki.rogue_client.key),
        check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        2,
        f"error: --tls-key: {pki.rogue_client.key} is not the key of the certificate in "
        f"{pki.client.cert}\n",
    )


def test_cli_plaintext_against_a_tls_server_suggests_tls(tls_server: ServerProcess) -> None:
    """The error alone ("Socket closed") did not say that the server may want TLS; the hint
    says it as a possibility (a server may close connections for other reasons)."""
    done = run_cli("health", "--server", tls_server.address, "--timeout", "60", check=False)
    assert done.returncode == 1
    error, *rest = done.stderr.splitlines()
    assert error.startswith("error: UNAVAILABLE: ") and "Socket closed" in error
    assert rest == [
        "  hint: the server closed the connection; if it serves TLS, connect with --tls-ca "
        "FILE (or --tls for a certificate of the system's CAs)"
    ]


def test_cli_tls_against_a_plaintext_server_suggests_plaintext(
    sparse_server: InProcessServer, pki: Pki
) -> None:
    """No C-core log line of the failed handshake above the error, and a hint under it."""
    done = run_cli(
        "health", "--server", sparse_server.address, "--tls-ca", str(pki.ca.pem.cert),
        "--timeout", "60", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    error, *rest = done.stderr.splitlines()
    assert error.startswith("error: UNAVAILABLE: ") and "WRONG_VERSION_NUMBER" in error
    assert rest == [
        "  hint: the server did not answer in TLS; if it serves plaintext, drop the --tls flags"
    ]


def _pipes(contents: dict[str, bytes]) -> tuple[list[str], list[int]]:
    """Each flag's content in a pipe of its own, as a shell's ``<(...)`` gives it: the flags
    naming the pipes (``/dev/fd/N``) and their read ends. A pipe reads once: read again, it
    is empty."""
    flags, ends = [], []
    for flag, data in contents.items():
        read_end, write_end = os.pipe()
        os.write(write_end, data)
        os.close(write_end)
        flags += [flag, f"/dev/fd/{read_end}"]
        ends.append(read_end)
    return flags, ends


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_reads_each_token_and_tls_file_once(
    tiny_sparse_index: Path, pki: Pki, workers: int
) -> None:
    """What the start-up check read is what the server serves with, in every worker: files
    that read once (pipes) serve. Each was read again after the check (the TLS files twice
    by the check itself), so what was served need not be what was checked; these pipes then
    read empty and the start was refused."""
    flags, ends = _pipes({
        "--tls-cert": pki.server.cert.read_bytes(),
        "--tls-key": pki.server.key.read_bytes(),
        "--tls-client-ca": pki.ca.pem.cert.read_bytes(),
        "--auth-tokens-file": b"# full\nfull-token\n",
        "--auth-read-only-tokens-file": b"reader-token\n",
    })  # fmt: skip
    try:
        server = start_server(
            "--index", str(tiny_sparse_index), "--workers", str(workers), *flags,
            pass_fds=ends, announce_timeout=60,
        )  # fmt: skip
    finally:
        for end in ends:
            os.close(end)
    credentials = _credentials(pki.ca.pem, pki.client)
    try:
        wait_serving(server.address, credentials=credentials, metadata=_bearer("full-token"))
        with grpc.secure_channel(server.address, credentials) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            for token in ("full-token", "reader-token"):
                assert stub.Search(QUERY, timeout=20, metadata=_bearer(token)).hits
            with pytest.raises(grpc.RpcError) as info:
                stub.Search(QUERY, timeout=20, metadata=_bearer("# full"))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert server.stop() == 0


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def test_half_a_tls_configuration_is_refused_at_start(tiny_sparse_index: Path, pki: Pki) -> None:
    result = run_cli(
        "serve", "--index", str(tiny_sparse_index), "--port", "0",
        "--tls-cert", str(pki.server.cert), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--tls-key" in result.stderr


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("cert", "--tls-cert (env HYBRIDSEARCH_TLS_CERT): cannot read TLS certificate"),
        ("key", "--tls-key (env HYBRIDSEARCH_TLS_KEY): cannot read TLS key"),
        ("ca", "--tls-client-ca (env HYBRIDSEARCH_TLS_CLIENT_CA): cannot read client CA bundle"),
    ],
)
def test_an_unreadable_tls_file_is_refused_at_start_naming_its_setting(
    tiny_sparse_index: Path, pki: Pki, tmp_path: Path, missing: str, expected: str
) -> None:
    files = {"cert": pki.server.cert, "key": pki.server.key, "ca": pki.ca.pem.cert}
    files[missing] = tmp_path / "missing.pem"
    result = run_cli(
        "serve", "--index", str(tiny_sparse_index), "--port", "0",
        "--tls-cert", str(files["cert"]), "--tls-key", str(files["key"]),
        "--tls-client-ca", str(files["ca"]), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {expected} {tmp_path / 'missing.pem'}: No such file or directory"
    )
    assert "listening" not in result.stdout


def _encrypted_copy(key: Path, out: Path) -> Path:
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    out.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return out


CERT = "--tls-cert (env HYBRIDSEARCH_TLS_CERT)"
KEY = "--tls-key (env HYBRIDSEARCH_TLS_KEY)"
CA = "--tls-client-ca (env HYBRIDSEARCH_TLS_CLIENT_CA)"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("garbage cert", f"{CERT}: {{cert}} holds no PEM certificate"),
        ("empty cert", f"{CERT}: {{cert}} holds no PEM certificate"),
        ("key as cert", f"{CERT}: {{cert}} holds no PEM certificate"),
        ("empty key", f"{KEY}: {{key}} holds no PEM private key for the certificate in {{cert}}"),
        ("garbage key", f"{KEY}: {{key}} holds no PEM private key for the certificate in {{cert}}"),
        ("cert as key", f"{KEY}: {{key}} holds no PEM private key for the certificate in {{cert}}"),
        ("other key", f"{KEY}: {{key}} is not the key of the certificate in {{cert}} ({CERT})"),
        ("encrypted key", f"{KEY}: {{key}} is encrypted; give the key without a passphrase"),
        ("garbage ca", f"{CA}: {{ca}} holds no PEM certificate, so no client could connect"),
        ("empty ca", f"{CA}: {{ca}} holds no PEM certificate, so no client could connect"),
    ],
)
def test_a_tls_file_that_does_not_parse_is_refused_at_start_naming_its_setting(
    tiny_sparse_index: Path, pki: Pki, tmp_path: Path, case: str, expected: str
) -> None:
    garbage, empty = tmp_path / "garbage.pem", tmp_path / "empty.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n")
    empty.write_bytes(b"")
    cert, key, ca = pki.server.cert, pki.server.key, pki.ca.pem.cert
    match case.split():
        case [("garbage" | "empty") as kind, part]:
            chosen = garbage if kind == "garbage" else empty
            cert, key, ca = (
                chosen if part == "cert" else cert,
                chosen if part == "key" else key,
                chosen if part == "ca" else ca,
            )
        case ["key", "as", "cert"]:
            cert = key
        case ["cert", "as", "key"]:
            key = cert
        case ["other", "key"]:
            key = pki.client.key
        case ["encrypted", "key"]:
            key = _encrypted_copy(key, tmp_path / "encrypted.key")
    result = run_cli(
        "serve", "--index", str(tiny_sparse_index), "--port", "0",
        "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca),
        check=False, timeout=30,
    )  # fmt: skip
    assert result.stderr.strip() == "error: " + expected.format(cert=cert, key=key, ca=ca)
    assert result.returncode == 2
    assert "listening" not in result.stdout


def test_tls_files_grpc_does_not_take_stop_serve_naming_the_tls_flags(
    tiny_sparse_index: Path, tmp_path: Path
) -> None:
    """A DSA certificate and key parse (stdlib ssl) but grpc refuses them: one line, exit 2
    (it was a 'RuntimeError: Failed to bind to address' traceback)."""
    key = dsa.generate_private_key(2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsa")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = write_pem(tmp_path, "dsa", cert, key)
    cert_path, key_path = pem.cert, pem.key
    result = run_cli(
        "serve", "--index", str(tiny_sparse_index), "--port", "0",
        "--tls-cert", str(cert_path), "--tls-key", str(key_path), check=False, timeout=30,
    )  # fmt: skip
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {CERT}: grpc cannot serve TLS with the --tls-cert, --tls-key and "
        "--tls-client-ca files (its log lines above say why)"
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
