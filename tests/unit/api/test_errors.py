"""One mapping of exceptions to what a caller is told, for calls and stream requests alike."""

from __future__ import annotations

import logging

import grpc
import pytest

from hybridsearch.api.errors import (
    INTERNAL_MESSAGE,
    OVERLOAD_RETRY_DELAY_S,
    CallStatus,
    call_status,
)
from hybridsearch.api.search_servicer import _error_response
from hybridsearch.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    HybridSearchError,
    InvalidArgumentError,
    NotFoundError,
    OverloadedError,
    SettingsError,
    UnavailableError,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFoundError("no document with id 'x'"), grpc.StatusCode.NOT_FOUND),
        (FailedPreconditionError("no vectors"), grpc.StatusCode.FAILED_PRECONDITION),
        (UnavailableError("loading"), grpc.StatusCode.UNAVAILABLE),
        (DeadlineExceededError("too late"), grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_domain_errors_keep_their_message(exc: HybridSearchError, code: grpc.StatusCode) -> None:
    assert call_status(exc) == CallStatus(code, str(exc), [])


def test_overload_advises_a_retry_delay() -> None:
    status = call_status(OverloadedError("queue full"))
    assert status == CallStatus(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", [], OVERLOAD_RETRY_DELAY_S
    )


def test_invalid_argument_carries_its_violations() -> None:
    violations = [FieldViolation("query", "empty"), FieldViolation("top_k", "too big")]
    status = call_status(InvalidArgumentError(violations))
    assert status == CallStatus(
        grpc.StatusCode.INVALID_ARGUMENT, "query: empty; top_k: too big", violations
    )


@pytest.mark.parametrize(
    "exc", [RuntimeError("secret internals"), SettingsError("a set-up error, never a caller's")]
)
def test_anything_else_is_internal_generic_and_logged_once(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hybridsearch.api.errors"):
        status = call_status(exc)
    assert status == CallStatus(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, [])
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [exc]


def test_a_stream_request_error_answers_the_same_status(caplog: pytest.LogCaptureFixture) -> None:
    exc = InvalidArgumentError.single("query", "must contain a non-whitespace character")
    response = _error_response("r7", exc)
    assert response.request_id == "r7"
    assert response.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert response.error.message == "query: must contain a non-whitespace character"
    assert [(v.field, v.description) for v in response.error.field_violations] == [
        ("query", "must contain a non-whitespace character")
    ]
    with caplog.at_level(logging.ERROR):
        internal = _error_response("r8", KeyError("internals"))
    assert (internal.error.code, internal.error.message) == (13, INTERNAL_MESSAGE)
    assert not internal.error.field_violations
    assert len([r for r in caplog.records if r.exc_info]) == 1
