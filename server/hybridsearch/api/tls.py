"""TLS and mTLS credentials for the server, from the PEM files named in the settings."""

from __future__ import annotations

import grpc

from hybridsearch.startup_files import TlsFiles


def server_credentials(files: TlsFiles | None) -> grpc.ServerCredentials | None:
    """TLS credentials of the files read and checked at start-up (requiring client certs with
    a client CA bundle); None means plaintext.

    Half a configuration, or a file that cannot be read or parsed, stopped the start earlier
    with a `SettingsError` naming the setting (`hybridsearch.startup_files.tls_files`), never
    a silent plaintext server.
    """
    if files is None:
        return None
    return grpc.ssl_server_credentials(
        [(files.key, files.cert)],
        root_certificates=files.client_ca,
        require_client_auth=files.client_ca is not None,
    )
