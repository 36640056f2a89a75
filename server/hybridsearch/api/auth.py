"""Bearer-token authentication and the read-only role (checked by the server's interceptor).

A call carries ``authorization: Bearer <token>``. A full token may call every RPC; a
read-only token may call everything but ``hybridsearch.v1.IndexService/*`` and
``hybridsearch.v1.CollectionService/*`` (PERMISSION_DENIED there). Missing or unknown tokens get
UNAUTHENTICATED. Health and reflection stay open unless ``auth_health`` is set.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import enum
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from hybridsearch.api.handlers import WRITE_SERVICE_PREFIXES, Context
from hybridsearch.config import ServerSettings
from hybridsearch.errors import echo
from hybridsearch.startup_files import token_lists

log = logging.getLogger(__name__)

AUTHORIZATION = "authorization"
BEARER = "bearer "


class Role(enum.Enum):
    """What a token may do."""

    FULL = "full"
    READ_ONLY = "read-only"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """The accepted tokens and their roles (held as bytes for hmac.compare_digest)."""

    tokens: tuple[tuple[bytes, Role], ...]

    def __repr__(self) -> str:  # never print a token
        return f"TokenSet({len(self.tokens)} tokens)"

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> TokenSet:
        """Tokens from the settings' files and comma-separated lists.

        Fails closed: a token setting that is given but yields no token (a file of comments
        and blank lines, a list of only commas) stops start-up with `SettingsError` instead
        of serving with authentication silently off.
        """
        full, read_only = token_lists(settings)
        return cls.of(full, read_only)

    @classmethod
    def of(cls, full: Iterable[str], read_only: Iterable[str]) -> TokenSet:
        """The full and the read-only tokens given (read from the settings at start-up)."""
        pairs = [(t, Role.FULL) for t in full] + [(t, Role.READ_ONLY) for t in read_only]
        return cls(tuple((t.encode("utf-8"), role) for t, role in pairs))

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (no tokens: auth is off)."""
        return bool(self.tokens)

    def role_of(self, presented: bytes) -> Role | None:
        """The role of a presented token, or None. Compares against every token, always."""
        found: Role | None = None
        for token, role in self.tokens:
            if hmac.compare_digest(token, presented) and found is None:
                found = role
        return found


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> bytes | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, if any."""
    for key, value in metadata or ():
        if key.lower() != AUTHORIZATION:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if text[: len(BEARER)].lower() == BEARER:
            return text[len(BEARER) :].strip().encode("utf-8", "surrogateescape")
    return None


def _abort(code: grpc.StatusCode, message: str) -> Callable[[Context], Awaitable[None]]:
    async def reject(context: Context) -> None:
        await context.abort(code, message)

    return reject


Refusal = Callable[[Context], Awaitable[None]]


def auth_refusal(
    tokens: TokenSet, method: str, metadata: Iterable[tuple[str, Any]] | None
) -> Refusal | None:
    """How a call of ``method`` with ``metadata`` is refused, or None when it may proceed.

    Missing or unknown tokens: UNAUTHENTICATED (also for methods this server does not have:
    callers without a valid token learn nothing about which methods exist); a read-only token
    calling a write service: PERMISSION_DENIED (whether or not this build serves it).
    """
    token = bearer_token(metadata)
    role = tokens.role_of(token) if token is not None else None
    if role is None:
        reason = "missing" if token is None else "unknown"
        log.info("refused %s: %s bearer token", echo(method), reason)
        return _abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "a valid 'authorization: Bearer <token>' metadata entry is required",
        )
    if role is Role.READ_ONLY and method.startswith(WRITE_SERVICE_PREFIXES):
        return _abort(grpc.StatusCode.PERMISSION_DENIED, "this token may search but not write")
    return None
