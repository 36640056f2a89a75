"""Client-side connections of the CLI's gRPC commands (`search`, `health`, `ingest`,
`collections`, `eval --server`).

TLS: ``--tls-ca`` trusts a private CA (else the system roots); ``--tls-cert``/``--tls-key``
present a client certificate (mTLS). Auth: ``--token``, else env ``HYBRIDSEARCH_TOKEN``, else
``--token-file`` — the env variable and the file keep the token out of the process list.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridsearch.errors import HybridSearchError

if TYPE_CHECKING:
    import grpc

TOKEN_ENV = "HYBRIDSEARCH_TOKEN"


def add_channel_arguments(parser: argparse.ArgumentParser, *, server: bool = True) -> None:
    """The connection flags: server address (unless ``server`` is False: the command adds its
    own ``--server``), TLS files, bearer token."""
    if server:
        parser.add_argument("--server", default="127.0.0.1:50051", help="HOST:PORT of the server")
    parser.add_argument("--tls", action="store_true", help="use TLS with the system CA roots")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA bundle to trust (implies --tls)")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate (mTLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM key of --tls-cert")
    parser.add_argument(
        "--tls-server-name", help="expected server name, when it differs from the host"
    )
    parser.add_argument("--token", help=f"bearer token (prefer env {TOKEN_ENV})")
    parser.add_argument("--token-file", type=Path, help="file holding the bearer token")


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HybridSearchError(f"cannot read {path}: {exc.strerror}") from exc


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to ``args.server``: TLS when any TLS flag is given, else plaintext."""
    import grpc  # noqa: PLC0415 (kept off the import path of the other commands)

    if (args.tls_cert is None) != (args.tls_key is None):
        raise HybridSearchError("--tls-cert and --tls-key go together")
    if not (args.tls or args.tls_ca or args.tls_cert):
        return grpc.insecure_channel(args.server)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(args.tls_ca),
        private_key=_read(args.tls_key),
        certificate_chain=_read(args.tls_cert),
    )
    options = []
    if args.tls_server_name:
        options.append(("grpc.ssl_target_name_override", args.tls_server_name))
    return grpc.secure_channel(args.server, credentials, options=options)


def bearer_token(args: argparse.Namespace) -> str | None:
    """The token from --token, env HYBRIDSEARCH_TOKEN, or --token-file (first found)."""
    if args.token:
        return str(args.token)
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    raw = _read(args.token_file)
    return raw.decode("utf-8").strip() if raw is not None else None


def call_metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """Metadata every call carries (the authorization header when a token is given)."""
    token = bearer_token(args)
    return (("authorization", f"Bearer {token}"),) if token else ()


def status_details(error: grpc.RpcError) -> list[Any]:
    """The details (``google.protobuf.Any``) of the google.rpc.Status an error carries in its
    ``grpc-status-details-bin`` trailer; none when there is none or it does not parse."""
    from google.protobuf.message import DecodeError  # noqa: PLC0415
    from google.rpc import status_pb2  # noqa: PLC0415

    metadata: Any = error.trailing_metadata()
    for key, value in metadata or ():
        if key == "grpc-status-details-bin":
            try:
                return list(status_pb2.Status.FromString(value).details)
            except DecodeError:
                return []  # a malformed trailer must not hide the error itself
    return []


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations carried by an error's trailers."""
    from google.rpc import error_details_pb2  # noqa: PLC0415

    found = []
    for detail in status_details(error):
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            found += [(v.field, v.description) for v in bad_request.field_violations]
    return found


def call_and_print(
    args: argparse.Namespace,
    call: Callable[[grpc.Channel], Any],
    print_text: Callable[[Any], None],
) -> int:
    """Make one call on a channel opened from ``args``; print its response (as JSON with
    ``--json``, else with ``print_text``) or the error; the command's exit code."""
    import grpc  # noqa: PLC0415 (kept off the import path of `serve`, which forks first)
    from google.protobuf import json_format  # noqa: PLC0415

    with open_channel(args) as channel:
        try:
            response = call(channel)
        except grpc.RpcError as error:
            report_rpc_error(error)
            return 1
    if args.json:
        print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    else:
        print_text(response)
    return 0


def report_rpc_error(error: grpc.RpcError) -> None:
    """Print a failed call's code, message and field violations to stderr."""
    failure: Any = error
    print(f"error: {failure.code().name}: {failure.details()}", file=sys.stderr)
    for field, description in field_violations(error):
        print(f"  {field}: {description}", file=sys.stderr)
