"""Argument types of the CLI's numeric and address flags: a value out of range is argparse's
one-line error (exit 2), not a traceback, or a silently different value, from the protobuf
field, gRPC or the library it reaches."""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path

#: How much of a bad value an error shows (a value can be any length).
SHOWN_CHARS = 60


def shown(text: str, *, quoted: bool = True) -> str:
    """``text`` for an error message (``quoted``: as Python writes a string), cut to
    `SHOWN_CHARS`."""
    cut = text[:SHOWN_CHARS]
    return (repr(cut) if quoted else cut) + ("..." if len(text) > SHOWN_CHARS else "")


#: The largest value of a uint32 request field (``top_k``, ``offset``).
UINT32_MAX = 2**32 - 1


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers from ``low`` to ``high`` (None: no bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {shown(text)}") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {bound} (got {shown(text, quoted=False)})")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


positive_int = int_in_range(1)


#: The longest deadline a client command takes, in seconds (one week). gRPC turns a timeout
#: into a deadline on its own clock, and a timeout of about 1e10 s overflows it: the call then
#: fails at once with DEADLINE_EXCEEDED. A week is far longer than any call of the CLI, yet far
#: below that overflow; an upload that must run without a deadline leaves ``ingest --timeout``
#: out (its default).
MAX_TIMEOUT_S = 7 * 24 * 3600


def timeout_seconds(text: str) -> float:
    """An argparse ``type`` accepting a deadline in seconds: a finite number above 0 and at
    most `MAX_TIMEOUT_S` (0, a negative number or NaN would fail every call at once as
    DEADLINE_EXCEEDED, as if the server were slow)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {shown(text)}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0 and at most {MAX_TIMEOUT_S} (a week) "
            f"(got {shown(text)})"
        )
    return value


timeout_seconds.__name__ = "seconds"

#: ``HOST:PORT`` (a name or an IPv4 address) and ``[IPv6]:PORT``.
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9._-]+):(?P<port>[0-9]+)")
_V6_PORT = re.compile(r"\[(?P<host>[^\]]+)\]:(?P<port>[0-9]+)")
ADDRESS_FORMS = "HOST:PORT, [IPv6]:PORT, unix:PATH or a gRPC target URI (dns:///HOST:PORT)"
#: gRPC's own name resolvers: a target that names one is gRPC's to check, as it was before
#: `--server` was checked (dns:///host:port, ipv4:1.2.3.4:50051, unix-abstract:name, ...).
GRPC_TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def server_address(text: str) -> str:
    """An argparse ``type`` accepting the address of a server, as gRPC takes it: ``HOST:PORT``,
    ``[IPv6]:PORT`` (PORT from 1 to 65535), ``unix:PATH`` (a Unix socket, as a local proxy
    offers) or a target naming one of gRPC's resolvers (`GRPC_TARGET_SCHEMES`, gRPC's to
    check). gRPC itself takes a port out of range modulo 65536 (99999 is 34463: another server
    may answer), a missing port as 443, and an empty address with a log line."""
    scheme = next((p for p in GRPC_TARGET_SCHEMES if text.startswith(p)), None)
    if scheme is not None and len(text) > len(scheme):
        return text
    found = _HOST_PORT.fullmatch(text) or _V6_PORT.fullmatch(text)
    valid = found is not None and 1 <= int(found["port"]) <= 65535
    if found is not None and text.startswith("["):
        valid = valid and _is_ipv6(found["host"])
    if not valid:
        raise argparse.ArgumentTypeError(
            f"expected {ADDRESS_FORMS}, with a port from 1 to 65535 (got {shown(text)})"
        )
    return text


server_address.__name__ = "address"


def nonempty_text(text: str) -> str:
    """An argparse ``type`` for a path or URL given as text: an empty one (an unset shell
    variable, ``--corpus "$CORPUS"``) is refused, not read as the current directory."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?)")
    return text


nonempty_text.__name__ = "path"


def path_arg(text: str) -> Path:
    """An argparse ``type`` for a path: `nonempty_text`, as a `Path`."""
    return Path(nonempty_text(text))


path_arg.__name__ = "path"
