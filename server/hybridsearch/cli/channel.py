"""Client-side connections of the CLI's gRPC commands (`search`, `health`, `ingest`,
`collections`, `eval --server`).

TLS: ``--tls-ca`` trusts a private CA (else the system roots); ``--tls-cert``/``--tls-key``
present a client certificate (mTLS). Auth: ``--token``, else env ``HYBRIDSEARCH_TOKEN``, else
``--token-file`` — the env variable and the file keep the token out of the process list.

The flags are checked before a channel opens, with the server's own checks of the same files
(`hybridsearch.startup_files`): an address gRPC would take as another one, a file with no PEM
certificate, a key that is not the certificate's, a token a header cannot carry is one
``error:`` line (exit 2), not a C-core log line and an UNAVAILABLE or INTERNAL error.
`quiet_grpc_logs` keeps gRPC's C-core log lines off a client command's stderr: what they say
about a failed connection is in the error's message too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridsearch.cli.flag_types import server_address
from hybridsearch.errors import HybridSearchError
from hybridsearch.startup_files import certificates_in, key_problem, token_problem

if TYPE_CHECKING:
    import grpc

TOKEN_ENV = "HYBRIDSEARCH_TOKEN"
#: gRPC's C core reads its log level from this variable when it starts.
GRPC_VERBOSITY = "GRPC_VERBOSITY"


def add_channel_arguments(parser: argparse.ArgumentParser, *, server: bool = True) -> None:
    """The connection flags: server address (unless ``server`` is False: the command adds its
    own ``--server``), TLS files, bearer token."""
    if server:
        parser.add_argument(
            "--server",
            type=server_address,
            default="127.0.0.1:50051",
            help="HOST:PORT, [IPv6]:PORT or unix:PATH of the server",
        )
    parser.add_argument("--tls", action="store_true", help="use TLS with the system CA roots")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA bundle to trust (implies --tls)")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate (mTLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM key of --tls-cert")
    parser.add_argument(
        "--tls-server-name", help="expected server name, when it differs from the host"
    )
    parser.add_argument("--token", help=f"bearer token (prefer env {TOKEN_ENV})")
    parser.add_argument("--token-file", type=Path, help="file holding the bearer token")
    parser.set_defaults(grpc_client=True)


def quiet_grpc_logs(args: argparse.Namespace) -> None:
    """Mute gRPC's C-core log lines for a command that connects to a server (its flags were
    added by `add_channel_arguments`), unless ``GRPC_VERBOSITY`` is set already (to debug a
    connection). Call it before grpc is imported: the C core reads the variable once."""
    if getattr(args, "grpc_client", False):
        os.environ.setdefault(GRPC_VERBOSITY, "NONE")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HybridSearchError(f"cannot read {path}: {exc.strerror}") from exc


def _read(path: Path | None) -> bytes | None:
    return None if path is None else _read_file(path)


def _checked_pair(cert: Path, key: Path) -> tuple[bytes, bytes]:
    """The bytes of ``--tls-cert`` and ``--tls-key``, checked to be a certificate and its key."""
    cert_pem, key_pem = _read_file(cert), _read_file(key)
    if not certificates_in(cert_pem):
        raise HybridSearchError(f"--tls-cert: {cert} holds no PEM certificate")
    problem = key_problem(cert_pem, key_pem)
    if problem == "encrypted":
        raise HybridSearchError(f"--tls-key: {key} is encrypted; give the key without a passphrase")
    if problem == "not the certificate's":
        raise HybridSearchError(f"--tls-key: {key} is not the key of the certificate in {cert}")
    if problem == "no key":
        raise HybridSearchError(f"--tls-key: {key} holds no PEM private key for {cert}")
    return cert_pem, key_pem


def _checked_ca(path: Path | None) -> bytes | None:
    """The bytes of ``--tls-ca``, checked to hold a certificate (None: the system roots)."""
    pem = _read(path)
    if pem is not None and not certificates_in(pem):
        raise HybridSearchError(f"--tls-ca: {path} holds no PEM certificate")
    return pem


def uses_tls(args: argparse.Namespace) -> bool:
    """Whether the connection flags ask for TLS (any TLS flag does)."""
    return bool(args.tls or args.tls_ca or args.tls_cert)


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to ``args.server``: TLS when any TLS flag is given, else plaintext.

    Checks the TLS files and the token first; raises `HybridSearchError` naming the flag.
    """
    import grpc  # noqa: PLC0415 (kept off the import path of the other commands)

    if (args.tls_cert is None) != (args.tls_key is None):
        raise HybridSearchError("--tls-cert and --tls-key go together")
    bearer_token(args)  # a token a header cannot carry fails here, before any connection
    if not uses_tls(args):
        return grpc.insecure_channel(args.server)
    root_certificates = _checked_ca(args.tls_ca)
    cert_pem, key_pem = (
        _checked_pair(args.tls_cert, args.tls_key) if args.tls_cert else (None, None)
    )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root_certificates,
        private_key=key_pem,
        certificate_chain=cert_pem,
    )
    options = []
    if args.tls_server_name:
        options.append(("grpc.ssl_target_name_override", args.tls_server_name))
    return grpc.secure_channel(args.server, credentials, options=options)


def _checked_token(token: str, source: str) -> str:
    problem = token_problem(token)
    if problem is not None:
        raise HybridSearchError(f"{source}: {problem}")
    return token


def _file_token(path: Path) -> str:
    try:
        token = _read_file(path).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise HybridSearchError(f"--token-file: {path} is not UTF-8") from None
    if not token:
        raise HybridSearchError(f"--token-file: {path} holds no token")
    return _checked_token(token, f"--token-file: {path}")


def bearer_token(args: argparse.Namespace) -> str | None:
    """The token from --token, env HYBRIDSEARCH_TOKEN, or --token-file (first found).

    Raises `HybridSearchError` naming where the token came from when a header cannot carry
    it (a newline, say), and for a token file that is empty or not UTF-8.
    """
    if args.token:
        return _checked_token(str(args.token), "--token")
    if os.environ.get(TOKEN_ENV):
        return _checked_token(os.environ[TOKEN_ENV], f"env {TOKEN_ENV}")
    return None if args.token_file is None else _file_token(args.token_file)


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
            report_rpc_error(error, args)
            return 1
    if args.json:
        print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    else:
        print_text(response)
    return 0


def report_rpc_error(error: grpc.RpcError, args: argparse.Namespace) -> None:
    """Print a failed call's code, message and field violations to stderr, and a hint when
    the failure looks like a TLS mismatch between the client and the server."""
    failure: Any = error
    violations = field_violations(error)
    details = failure.details() or ""
    if len(violations) > 1:  # the details join them all: listed below instead, grouped
        unlisted = details[details.rfind("; and ") + 2 :] if "; and " in details else ""
        details = f"{len(violations)} invalid fields" + (f" ({unlisted})" if unlisted else "")
    print(f"error: {failure.code().name}: {details}", file=sys.stderr)
    for field, description in grouped_violations(violations):
        print(f"  {field}: {description}", file=sys.stderr)
    hint = _connection_hint(failure.code().name, failure.details() or "", tls=uses_tls(args))
    if hint is not None:
        print(f"  hint: {hint}", file=sys.stderr)


_REQUEST_INDEX = re.compile(r"^requests\[(\d+)\]")


def grouped_violations(violations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Field violations with those that differ only in a batch's request index as one line
    (``requests[0-34].top_k``: the same bad value in each of 35 requests), in order."""
    groups: dict[tuple[str, str], list[int]] = {}
    lines: list[tuple[str, str]] = []
    for field, description in violations:
        found = _REQUEST_INDEX.match(field)
        if found is None:
            lines.append((field, description))
            continue
        key = (_REQUEST_INDEX.sub("requests[*]", field), description)
        if key not in groups:
            groups[key] = []
            lines.append(key)
        groups[key].append(int(found[1]))
    return [
        (field.replace("[*]", f"[{_index_ranges(groups[(field, why)])}]", 1), why)
        if (field, why) in groups
        else (field, why)
        for field, why in lines
    ]


def _index_ranges(indexes: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for index in sorted(set(indexes)):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _connection_hint(code: str, details: str, *, tls: bool) -> str | None:
    """A possible cause of a failed connection, phrased as one: the message it reads is the
    same for other causes (a server that closes connections of a client it refuses)."""
    if code != "UNAVAILABLE":
        return None
    if not tls and "Socket closed" in details:
        return (
            "the server closed the connection; if it serves TLS, connect with --tls-ca FILE "
            "(or --tls for a certificate of the system's CAs)"
        )
    if tls and "WRONG_VERSION_NUMBER" in details:
        return "the server did not answer in TLS; if it serves plaintext, drop the --tls flags"
    return None
