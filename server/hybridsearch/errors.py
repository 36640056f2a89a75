"""Domain exceptions (no grpc import); `api/errors.py` maps each to a canonical status code.

HybridSearchError
├── InvalidArgumentError      bad input; carries field violations   → INVALID_ARGUMENT
├── NotFoundError             a named thing does not exist           → NOT_FOUND
├── FailedPreconditionError   valid request, wrong state of index    → FAILED_PRECONDITION
├── OverloadedError           queue or admission bound reached       → RESOURCE_EXHAUSTED
├── UnavailableError          not ready yet (index loading)          → UNAVAILABLE
├── DeadlineExceededError     the caller's deadline passed first     → DEADLINE_EXCEEDED
└── IndexFormatError          an index directory cannot be opened    (CLI / startup only)
"""

from __future__ import annotations

from dataclasses import dataclass


class HybridSearchError(Exception):
    """Base of every error hybridsearch raises on purpose; its message is safe to show."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: its path in the request and what is wrong with it."""

    field: str
    description: str


class InvalidArgumentError(HybridSearchError):
    """The caller sent something invalid; `violations` names each bad field."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgumentError:
        """An error with one field violation."""
        return cls([FieldViolation(field, description)])


class NotFoundError(HybridSearchError):
    """A named document or resource does not exist."""


class FailedPreconditionError(HybridSearchError):
    """The request is valid but the index cannot serve it (e.g. dense mode, no vectors)."""


class OverloadedError(HybridSearchError):
    """The server refuses work now rather than queueing it without bound."""


class UnavailableError(HybridSearchError):
    """The server is not ready (index not loaded yet)."""


class DeadlineExceededError(HybridSearchError):
    """The caller's deadline passed before the work could start; it was skipped."""


class IndexFormatError(HybridSearchError):
    """An index directory is missing, damaged or of another format version."""
