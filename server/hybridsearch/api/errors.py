"""Domain exceptions → canonical gRPC status (AIP-193), in one function.

`call_status` is the one mapping: the server's interceptor aborts unary and streaming calls
with it (`abort_with`), and SearchStream answers a failed request of an open stream with it.

INVALID_ARGUMENT carries a `google.rpc.BadRequest` with one field violation per bad field in
the ``grpc-status-details-bin`` trailer; RESOURCE_EXHAUSTED for overload (the in-flight bound,
a full encoder queue) carries a `google.rpc.RetryInfo` there, `OVERLOAD_RETRY_DELAY_S`. A
`DetailedError` adds its own details (an UpsertDocuments stream's partial response). An
unexpected exception is logged with its traceback and answered INTERNAL with a generic
message: internals never reach the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from hybridsearch.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    HybridSearchError,
    InvalidArgumentError,
    NotFoundError,
    OverloadedError,
    ResponseTooLargeError,
    StorageFullError,
    StorageUnavailableError,
    UnavailableError,
)

log = logging.getLogger(__name__)

DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_MESSAGE = "internal error; the server logged the details"
#: The retry delay an overload refusal suggests: fixed, a few times a typical search's latency,
#: so that a refused caller comes back once some calls have finished (clients add backoff and
#: jitter: a delay from recent latencies would tell every refused caller the same thing too).
OVERLOAD_RETRY_DELAY_S = 0.1

_CODES: list[tuple[type[HybridSearchError], grpc.StatusCode]] = [
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (OverloadedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ResponseTooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StorageFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StorageUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED),
]


class DetailedError(Exception):
    """A domain error whose status also carries ``details`` (messages packed into the
    google.rpc.Status details, after any RetryInfo or BadRequest); code and message are the
    ``error``'s."""

    def __init__(self, error: HybridSearchError, details: Sequence[Message]) -> None:
        super().__init__(str(error))
        self.error = error
        self.details = tuple(details)


def status_code_for(exc: HybridSearchError) -> grpc.StatusCode:
    """The canonical code of a domain error (INTERNAL for one not meant for callers)."""
    for error_type, code in _CODES:
        if isinstance(exc, error_type):
            return code
    return grpc.StatusCode.INTERNAL


def violations_of(exc: BaseException) -> list[FieldViolation]:
    """The field violations an error carries (empty for other errors)."""
    return list(exc.violations) if isinstance(exc, InvalidArgumentError) else []


def rich_status(
    code: grpc.StatusCode,
    message: str,
    violations: list[FieldViolation],
    retry_delay_s: float | None = None,
    details: Sequence[Message] = (),
) -> status_pb2.Status:
    """A google.rpc.Status, with a BadRequest detail when there are field violations, a
    RetryInfo detail when there is a retry delay, and then ``details``."""
    status = status_pb2.Status(code=code.value[0], message=message)
    if retry_delay_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(retry_delay_s * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    for extra in details:
        status.details.add().Pack(extra)
    return status


@dataclass(frozen=True, slots=True)
class CallStatus:
    """What a caller is told about an error: status code, message, field violations and
    how long to wait before a retry (None: no advice), and further status details."""

    code: grpc.StatusCode
    message: str
    violations: list[FieldViolation]
    retry_delay_s: float | None = None
    details: tuple[Message, ...] = field(default=())


def call_status(exc: BaseException) -> CallStatus:
    """The status an error answers a call (or one request of a stream) with.

    A domain error meant for callers keeps its code, message and field violations; anything
    else is logged here, once, with its traceback, and becomes INTERNAL with a generic
    message, so internals never reach the caller. A `DetailedError` is its error's status
    with its details added.
    """
    if isinstance(exc, DetailedError):
        return replace(call_status(exc.error), details=exc.details)
    if isinstance(exc, HybridSearchError) and status_code_for(exc) != grpc.StatusCode.INTERNAL:
        retry = OVERLOAD_RETRY_DELAY_S if isinstance(exc, OverloadedError) else None
        return CallStatus(status_code_for(exc), str(exc), violations_of(exc), retry)
    log.error("unexpected error in a call", exc_info=exc)
    return CallStatus(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, [])


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    """Abort the call with the status that ``exc`` maps to (never returns)."""
    status = call_status(exc)
    details = rich_status(
        status.code, status.message, status.violations, status.retry_delay_s, status.details
    )
    await context.abort(
        status.code,
        status.message,
        trailing_metadata=((DETAILS_KEY, details.SerializeToString()),),
    )
