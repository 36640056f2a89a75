"""TLS and mTLS credentials for the server, read from PEM files named in the settings."""

from __future__ import annotations

from pathlib import Path

import grpc

from hybridsearch.config import ServerSettings
from hybridsearch.errors import HybridSearchError


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HybridSearchError(f"cannot read {what} {path}: {exc.strerror}") from exc


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when ``tls_cert`` is set (requiring client certs with ``tls_client_ca``).

    None means plaintext. Half a configuration is an error, never a silent plaintext server.
    """
    if settings.tls_cert is None:
        if settings.tls_key is not None or settings.tls_client_ca is not None:
            raise HybridSearchError("--tls-key and --tls-client-ca need --tls-cert")
        return None
    if settings.tls_key is None:
        raise HybridSearchError("--tls-cert needs --tls-key")
    pair = (_read(settings.tls_key, "TLS key"), _read(settings.tls_cert, "TLS certificate"))
    client_ca = (
        _read(settings.tls_client_ca, "client CA bundle") if settings.tls_client_ca else None
    )
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
