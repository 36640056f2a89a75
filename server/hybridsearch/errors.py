"""Every exception hybridsearch raises on purpose, in one tree (no grpc import).

`api/errors.py` maps the request errors to canonical status codes (one function, for unary
and stream calls alike); the set-up errors stop a command or the server's start with their
message, and reach a caller only as INTERNAL if one ever escaped.

HybridSearchError
├── InvalidArgumentError      bad input; carries field violations   → INVALID_ARGUMENT
├── NotFoundError             a named thing does not exist           → NOT_FOUND
├── AlreadyExistsError        a name to create is already taken      → ALREADY_EXISTS
├── FailedPreconditionError   valid request, wrong state of index    → FAILED_PRECONDITION
├── OverloadedError           queue or admission bound reached       → RESOURCE_EXHAUSTED
├── UnavailableError          not ready yet (index loading)          → UNAVAILABLE
├── DeadlineExceededError     the caller's deadline passed first     → DEADLINE_EXCEEDED
├── StorageFullError          a write found no space or quota left   → RESOURCE_EXHAUSTED
├── StorageUnavailableError   a write failed: I/O error, permission  → UNAVAILABLE
└── SetupError                a command or the server cannot start   (CLI / start-up only)
    ├── SettingsError         an invalid server setting (names the flag and env variable)
    ├── IndexFormatError      an index directory cannot be opened
    ├── IndexLockedError      another writer holds the index directory
    ├── ModelDirError         a model directory is missing, incomplete or damaged
    ├── CorpusError           a corpus file cannot be read (names file and line)
    ├── BuildError            an index could not be built (nothing left at the target)
    ├── CollectionFormatError a test collection is missing or malformed
    └── SchemaError           a metadata schema is malformed (a request's: INVALID_ARGUMENT)
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest piece of caller input an error message repeats; longer input is cut with "...".
ECHO_CHARS = 64


def echo(value: str) -> str:
    """Caller input as an error message may show it: quoted, at most `ECHO_CHARS` characters.

    A message that repeated unbounded input could outgrow the status metadata (16 KiB in
    Python clients), turning the real error into RESOURCE_EXHAUSTED.
    """
    if len(value) <= ECHO_CHARS:
        return repr(value)
    return repr(value[:ECHO_CHARS]) + f"... ({len(value)} characters)"


class HybridSearchError(Exception):
    """Base of every error hybridsearch raises on purpose; its message is safe to show."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: its path in the request and what is wrong with it."""

    field: str
    description: str


#: Most field violations one error names; the rest are counted (``omitted``). A request can
#: hold thousands of bad values, and a message naming each could outgrow the status metadata.
MOST_VIOLATIONS = 20
#: Most UTF-8 bytes of violation text (``field: description``) one error names; the first
#: violation is always named. The text travels twice in the trailers (``grpc-message``,
#: percent-encoded, up to 3 bytes a byte, and the BadRequest, base64): 1 KiB keeps them well
#: under the 8 KiB that gRPC's C-core clients accept by default; past it they drop the
#: status and the caller sees RESOURCE_EXHAUSTED instead.
MOST_VIOLATION_BYTES = 1024


def _named(violations: list[FieldViolation]) -> list[FieldViolation]:
    """The violations an error names: the first (its text cut to `MOST_VIOLATION_BYTES`),
    then as many as fit both bounds."""
    named: list[FieldViolation] = []
    size = 0
    for candidate in violations[:MOST_VIOLATIONS]:
        violation = candidate if named else _cut(candidate)
        cost = len(violation.field.encode()) + len(violation.description.encode()) + 4
        if named and size + cost > MOST_VIOLATION_BYTES:
            break
        named.append(violation)
        size += cost
    return named


def _cut(violation: FieldViolation) -> FieldViolation:
    """``violation`` with its text within `MOST_VIOLATION_BYTES` (the description cut)."""
    room = MOST_VIOLATION_BYTES - len(violation.field.encode()) - 4
    text = violation.description.encode()
    if len(text) <= room:
        return violation
    cut = text[: max(0, room - 3)].decode(errors="ignore")  # not inside a character
    return FieldViolation(violation.field, cut + "...")


class InvalidArgumentError(HybridSearchError):
    """The caller sent something invalid; `violations` names each bad field (the first
    `MOST_VIOLATIONS`, within `MOST_VIOLATION_BYTES`; `omitted` counts the others)."""

    def __init__(self, violations: list[FieldViolation], omitted: int = 0) -> None:
        self.violations = _named(violations)
        self.omitted = omitted + len(violations) - len(self.violations)
        message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        if self.omitted:
            message += f"; and {self.omitted} more invalid field(s) not listed"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[InvalidArgumentError], tuple[list[FieldViolation], int]]:
        # Pickled whole (a shard replica's error travels to the front so).
        return (type(self), (self.violations, self.omitted))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgumentError:
        """An error with one field violation."""
        return cls([FieldViolation(field, description)])

    @classmethod
    def merged(cls, errors: list[InvalidArgumentError]) -> InvalidArgumentError:
        """One error naming the violations of several (a batch's requests), counting those
        they left out."""
        violations = [v for error in errors for v in error.violations]
        return cls(violations, sum(error.omitted for error in errors))


class NotFoundError(HybridSearchError):
    """A named document or resource does not exist."""


class AlreadyExistsError(HybridSearchError):
    """A thing to create (a collection, an alias) already exists under that name."""


class FailedPreconditionError(HybridSearchError):
    """The request is valid but the index cannot serve it (e.g. dense mode, no vectors)."""


class OverloadedError(HybridSearchError):
    """The server refuses work now rather than queueing it without bound."""


class ResponseTooLargeError(HybridSearchError):
    """An answer is larger than the server may send (``--max-message-bytes``); the message says
    what the caller may ask for instead."""


class UnavailableError(HybridSearchError):
    """The server is not ready (index not loaded yet)."""


class DeadlineExceededError(HybridSearchError):
    """The caller's deadline passed before the work could start; it was skipped."""


class StorageFullError(HybridSearchError):
    """A write failed for want of disk space or quota (ENOSPC, EDQUOT); nothing of it was
    committed, and writes work again once space is freed."""


class StorageUnavailableError(HybridSearchError):
    """A write failed on an I/O or permission error (EIO, EACCES, EPERM, EROFS); nothing of it
    was committed, and the index keeps serving searches."""


class SetupError(HybridSearchError):
    """A command or the server cannot start; the message says what to fix."""


class SettingsError(SetupError):
    """A server setting is invalid; the message names its flag and environment variable."""


class IndexFormatError(SetupError):
    """An index directory is missing, damaged or of another format version."""


class IndexLockedError(SetupError):
    """Another writer (in this or another process) holds the index directory."""


class ModelDirError(SetupError):
    """A model directory is missing, incomplete, damaged or cannot be built."""


class CorpusError(SetupError):
    """A corpus file cannot be read; the message names the file and line."""


class BuildError(SetupError):
    """The index could not be built; nothing was left at the target."""


class CollectionFormatError(SetupError):
    """A collection file is missing or malformed; the message names the file and line."""


class SchemaError(SetupError):
    """A metadata schema (file or request) is malformed; the message names the field."""
