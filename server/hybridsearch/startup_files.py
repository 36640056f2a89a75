"""The directories, token and TLS files the server reads at start-up (no grpc import).

``--index``, ``--model`` and ``--models-dir`` must be directories, and ``--data-dir`` one
unless it is missing: a bad path stops the start before the server binds its port and says
``listening on``, not as a failed load after it. A missing ``--data-dir`` is created by
`create_data_dir`, which the server calls once every other start-up check has passed (its
ports are bound), so that a refused start leaves no new empty directory behind; one that
cannot be created stops the start there, still before ``listening on``.

A file that cannot be read, or a token setting that yields no token, stops the start with a
`SettingsError` naming its flag and environment variable. `serve` checks them all
(`check_startup_files`) before it forks its workers too, so that such a refusal is one
message and exit code 2 with any number of workers. Each token and TLS file is read once:
what was checked (`StartupFiles`) is what the server (and every worker) serves with, so a
file changed after the check cannot be served unchecked, and a pipe (``<(...)``) works.

TLS files are parsed here with the standard library's `ssl` (gRPC takes any bytes and fails
later: a garbage certificate or a key that is not the certificate's as "Failed to bind to
address", an empty client CA bundle by refusing every connection once it is serving). `ssl`
loads PEM from paths only: it is given the bytes read, as an in-memory file.

The checks of PEM bytes (`certificates_in`, `key_problem`) and of a bearer token
(`token_problem`) serve the CLI's client commands too (`hybridsearch.cli.channel`), which
read the same kinds of file.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hybridsearch.config import ServerSettings, describe
from hybridsearch.errors import SettingsError


def _read_bytes(setting: str, path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"{describe(setting)}: cannot read {what} {path}: {exc.strerror}"
        ) from exc


def _read_token_file(setting: str, path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SettingsError(
            f"{describe(setting)}: cannot read token file {path}: {exc.strerror}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{describe(setting)}: token file {path} is not UTF-8") from exc
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def _split(tokens: str) -> list[str]:
    return [t.strip() for t in tokens.split(",") if t.strip()]


def _no_tokens(setting: str, where: str) -> SettingsError:
    return SettingsError(
        f"{describe(setting)}: {where} holds no token, so authentication would be "
        "silently off; give at least one token or drop the setting"
    )


def _given_tokens(setting: str, value: str) -> list[str]:
    tokens = _split(value)
    if value.strip() and not tokens:
        raise _no_tokens(setting, "the list")
    return tokens


def _file_tokens(setting: str, path: Path) -> list[str]:
    tokens = _read_token_file(setting, path)
    if not tokens:
        raise _no_tokens(setting, f"token file {path}")
    return tokens


def token_problem(token: str) -> str | None:
    """Why a bearer token cannot travel in an ``authorization`` header, or None: gRPC sends
    only printable ASCII there (and refuses a call with anything else as INTERNAL "Invalid
    metadata"). The token itself is never named: it is a secret."""
    for position, char in enumerate(token, start=1):
        if not " " <= char <= "~":
            kind = "a non-ASCII character" if ord(char) > 0x7F else "a control character"
            return (
                f"the token holds {kind} (at character {position}); a gRPC header carries "
                "printable ASCII only"
            )
    return None


def token_lists(settings: ServerSettings) -> tuple[list[str], list[str]]:
    """The full and the read-only tokens of the settings' lists and files.

    Fails closed: a token setting that is given but yields no token (a file of comments and
    blank lines, a list of only commas) raises `SettingsError` instead of leaving
    authentication silently off; so does a token file that cannot be read.
    """
    full = _sendable("auth_tokens", _given_tokens("auth_tokens", settings.auth_tokens))
    read_only = _sendable(
        "auth_read_only_tokens",
        _given_tokens("auth_read_only_tokens", settings.auth_read_only_tokens),
    )
    if settings.auth_tokens_file is not None:
        path = settings.auth_tokens_file
        full += _sendable("auth_tokens_file", _file_tokens("auth_tokens_file", path))
    if settings.auth_read_only_tokens_file is not None:
        path = settings.auth_read_only_tokens_file
        setting = "auth_read_only_tokens_file"
        read_only += _sendable(setting, _file_tokens(setting, path))
    return full, read_only


def _sendable(setting: str, tokens: list[str]) -> list[str]:
    """``tokens``, each one a client can send (`token_problem`); else `SettingsError` naming
    the setting and which token (by its place, never its text): no call could ever carry it,
    so the server would refuse the very client it was meant to let in."""
    for number, token in enumerate(tokens, start=1):
        problem = token_problem(token)
        if problem is not None:
            raise SettingsError(f"{describe(setting)}: token {number}: {problem}")
    return tokens


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM bytes of a TLS configuration, each file checked to be usable."""

    key: bytes
    cert: bytes
    client_ca: bytes | None  # None: no client certificate is required

    def __repr__(self) -> str:  # never print a private key
        return f"TlsFiles(client_ca={self.client_ca is not None})"


class _EncryptedKeyError(Exception):
    """The key asked for a passphrase (raised by the password callback)."""


def _no_passphrase() -> bytes:
    raise _EncryptedKeyError  # never prompt on a terminal; gRPC cannot use such a key


@contextlib.contextmanager
def _as_file(data: bytes) -> Iterator[str]:
    """A path that reads as ``data``: an anonymous in-memory file (a private temporary file
    where the platform has none), gone when the block ends."""
    if not hasattr(os, "memfd_create"):
        with tempfile.TemporaryDirectory() as private:  # mode 0700
            path = Path(private) / "pem"
            path.write_bytes(data)
            yield str(path)
        return
    fd = os.memfd_create("hybridsearch-pem", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def certificates_in(pem: bytes) -> int:
    """How many certificates the PEM bytes hold (0 when they hold none that parse)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        with _as_file(pem) as path:
            context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError):
        return 0
    return int(context.cert_store_stats()["x509"])


#: Why a private key cannot be used with a certificate (`key_problem`).
KeyProblem = Literal["encrypted", "not the certificate's", "no key"]


def key_problem(cert_pem: bytes, key_pem: bytes) -> KeyProblem | None:
    """Why the PEM key cannot serve the PEM certificate (check that the certificate holds
    one first, with `certificates_in`): it is encrypted, it is another certificate's, or there
    is no private key; None when the pair is usable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        with _as_file(cert_pem) as cert_file, _as_file(key_pem) as key_file:
            context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _EncryptedKeyError:
        return "encrypted"
    except ssl.SSLError as exc:
        return "not the certificate's" if "KEY_VALUES_MISMATCH" in str(exc) else "no key"
    return None


def _check_pair(cert: Path, key: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Check the bytes read from ``cert`` and ``key`` (the paths name them in messages)."""
    if not certificates_in(cert_pem):
        raise SettingsError(f"{describe('tls_cert')}: {cert} holds no PEM certificate")
    problem = key_problem(cert_pem, key_pem)
    if problem == "encrypted":
        raise SettingsError(
            f"{describe('tls_key')}: {key} is encrypted; give the key without a passphrase"
        )
    if problem == "not the certificate's":
        raise SettingsError(
            f"{describe('tls_key')}: {key} is not the key of the certificate in {cert} "
            f"({describe('tls_cert')})"
        )
    if problem == "no key":
        raise SettingsError(
            f"{describe('tls_key')}: {key} holds no PEM private key for the certificate in {cert}"
        )


def tls_files(settings: ServerSettings) -> TlsFiles | None:
    """The TLS files of the settings, each read once and checked; None when TLS is off (no
    ``tls_cert``).

    Raises `SettingsError` naming the setting for half a configuration, a file that cannot be
    read, a certificate file with no certificate, a key that is missing, encrypted or not the
    certificate's, and a client CA bundle with no certificate in it.
    """
    if settings.tls_cert is None:
        if settings.tls_key is not None or settings.tls_client_ca is not None:
            raise SettingsError(
                f"{describe('tls_key')} and {describe('tls_client_ca')} need --tls-cert"
            )
        return None
    if settings.tls_key is None:
        raise SettingsError(f"{describe('tls_cert')}: needs --tls-key")
    cert = _read_bytes("tls_cert", settings.tls_cert, "TLS certificate")
    key = _read_bytes("tls_key", settings.tls_key, "TLS key")
    _check_pair(settings.tls_cert, settings.tls_key, cert, key)
    client_ca = None
    if settings.tls_client_ca is not None:
        client_ca = _read_bytes("tls_client_ca", settings.tls_client_ca, "client CA bundle")
        if not certificates_in(client_ca):
            raise SettingsError(
                f"{describe('tls_client_ca')}: {settings.tls_client_ca} holds no PEM "
                "certificate, so no client could connect"
            )
    return TlsFiles(key, cert, client_ca)


def _directory_problem(path: Path) -> str | None:
    if path.is_dir():
        return None
    return f"{path}: not a directory" if path.exists() else f"{path}: no such directory"


def _creates_data_dir(settings: ServerSettings) -> bool:
    """Whether the server will create ``--data-dir`` (it is missing and not read-only)."""
    data_dir = settings.data_dir
    return data_dir is not None and not settings.read_only and not data_dir.exists()


def check_directories(settings: ServerSettings) -> None:
    """Check the directories the server will read; raises `SettingsError` naming the setting.

    Creates nothing: a missing ``--data-dir`` (not read-only) is left to `create_data_dir`.
    """
    given = [("model", settings.model), ("models_dir", settings.models_dir)]
    if settings.data_dir is None:
        given.insert(0, ("index", settings.index))
    elif not _creates_data_dir(settings):
        given.insert(0, ("data_dir", settings.data_dir))
    for setting, path in given:
        problem = None if path is None else _directory_problem(path)
        if problem is not None:
            raise SettingsError(f"{describe(setting)}: {problem}")


def create_data_dir(settings: ServerSettings) -> None:
    """Create a missing ``--data-dir`` (with its parents) unless read-only; raises
    `SettingsError` naming ``--data-dir`` when it cannot be (its parent is a file, say).

    Called last at start-up, once every other check has passed, so that a start refused for
    another setting leaves no new directory behind.
    """
    data_dir = settings.data_dir
    if data_dir is None or settings.read_only:
        return
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"{describe('data_dir')}: cannot create {data_dir}: {exc.strerror or exc}"
        ) from None


@dataclass(frozen=True, slots=True)
class StartupFiles:
    """The tokens and TLS files of the settings, as read (once) and checked."""

    full_tokens: tuple[str, ...]
    read_only_tokens: tuple[str, ...]
    tls: TlsFiles | None

    def __repr__(self) -> str:  # never print a token or a key
        return (
            f"StartupFiles({len(self.full_tokens)} full tokens, "
            f"{len(self.read_only_tokens)} read-only tokens, tls={self.tls is not None})"
        )


def read_startup_files(settings: ServerSettings) -> StartupFiles:
    """Read and check every token and TLS file of the settings; raises `SettingsError`."""
    full, read_only = token_lists(settings)
    return StartupFiles(tuple(full), tuple(read_only), tls_files(settings))


def check_startup_files(settings: ServerSettings) -> StartupFiles:
    """Check every directory, and read and check every token and TLS file, the server will
    read; returns what was read, for the server to serve with. Raises `SettingsError`."""
    check_directories(settings)
    return read_startup_files(settings)
