"""Errors raised by the client: one type, carrying the gRPC code and AIP-193 field violations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2

from hybridsearch_client._gen.hybridsearch.v1 import index_pb2, search_pb2

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field, e.g. ``field="top_k"``, as named by the server."""

    field: str
    description: str


class HybridSearchError(Exception):
    """A failed call: the canonical gRPC ``code``, the server's ``message``, for
    ``INVALID_ARGUMENT`` the ``google.rpc.BadRequest`` field violations, and for a failed
    ``UpsertDocuments`` stream ``partial_upsert``: its response so far (``applied_messages``:
    how many messages were applied; the rest were not; the documents they rejected)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: Iterable[FieldViolation] = (),
        partial_upsert: index_pb2.UpsertDocumentsResponse | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.partial_upsert = partial_upsert
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.field_violations:
            fields = "; ".join(f"{v.field}: {v.description}" for v in self.field_violations)
            text += f" [{fields}]"
        return text

    def __repr__(self) -> str:
        return (
            f"HybridSearchError(code={self.code.name}, message={self.message!r}, "
            f"field_violations={list(self.field_violations)!r})"
        )


def _code_from_int(value: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def _violations_from_status(status: status_pb2.Status) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
    return violations


def _partial_upsert_from_status(
    status: status_pb2.Status,
) -> index_pb2.UpsertDocumentsResponse | None:
    for detail in status.details:
        if detail.Is(index_pb2.UpsertDocumentsResponse.DESCRIPTOR):
            partial = index_pb2.UpsertDocumentsResponse()
            detail.Unpack(partial)
            return partial
    return None


def error_from_rpc_error(error: grpc.RpcError) -> HybridSearchError:
    """Convert a sync or asyncio ``grpc.RpcError`` into a :class:`HybridSearchError`.

    The rich status travels in the ``grpc-status-details-bin`` trailer; a trailer that does not
    parse is ignored (the code and message still come from the call).
    """
    code: grpc.StatusCode = error.code()
    message: str = error.details() or ""
    violations: list[FieldViolation] = []
    partial_upsert: index_pb2.UpsertDocumentsResponse | None = None
    # Runtime shape: (key, value) pairs, for sync calls and grpc.aio.Metadata alike.
    trailers = cast(Iterable[tuple[str, str | bytes]], error.trailing_metadata() or ())
    for key, value in trailers:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # a malformed trailer must not hide the real error
                continue
            violations.extend(_violations_from_status(status))
            partial_upsert = _partial_upsert_from_status(status)
    return HybridSearchError(code, message, violations, partial_upsert)


def error_from_stream_status(status: search_pb2.ErrorStatus) -> HybridSearchError:
    """Convert the in-band error of a ``SearchStream`` response."""
    return HybridSearchError(
        _code_from_int(status.code),
        status.message,
        (FieldViolation(v.field, v.description) for v in status.field_violations),
    )
