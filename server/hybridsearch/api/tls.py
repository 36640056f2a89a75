"""TLS and mTLS credentials for the server, from the PEM files named in the settings."""

from __future__ import annotations

import grpc

from hybridsearch.config import ServerSettings
from hybridsearch.startup_files import tls_files


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when ``tls_cert`` is set (requiring client certs with ``tls_client_ca``).

    None means plaintext. Half a configuration, or a file that cannot be read or parsed, is a
    `SettingsError` naming the setting (`hybridsearch.startup_files`), never a silent
    plaintext server.
    """
    files = tls_files(settings)
    if files is None:
        return None
    return grpc.ssl_server_credentials(
        [(files.key, files.cert)],
        root_certificates=files.client_ca,
        require_client_auth=files.client_ca is not None,
    )
