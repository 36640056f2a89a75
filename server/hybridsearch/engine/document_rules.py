"""Which documents and deletes an index accepts: `IngestLimits` and the checks against them."""

from __future__ import annotations

from dataclasses import dataclass

from hybridsearch.errors import InvalidArgumentError
from hybridsearch.types import Document


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """The most one write may carry (each one a server setting; these defaults)."""

    max_document_chars: int = 1_000_000  # title + text of one document, in characters
    max_id_bytes: int = 512  # a document id, UTF-8 encoded
    max_delete_ids: int = 10_000  # ids in one delete


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document refused before indexing: its position in the request stream, id, why."""

    position: int
    id: str
    reason: str


def document_problem(doc: Document, limits: IngestLimits) -> str | None:
    """Why ``doc`` cannot be indexed, or None when it can."""
    if not doc.id.strip():
        return "empty id: a document needs a non-whitespace id"
    if len(doc.id.encode("utf-8")) > limits.max_id_bytes:
        return f"id longer than {limits.max_id_bytes} bytes"
    if "\x00" in doc.id:
        return "id contains a NUL character"
    size = len(doc.title) + len(doc.text)
    if size > limits.max_document_chars:
        return (
            f"title + text is {size} characters; at most {limits.max_document_chars} are accepted"
        )
    return None


def check_delete_count(count: int, limits: IngestLimits) -> None:
    """Raise `InvalidArgumentError` (field ``ids``) unless a delete names 1 to max ids."""
    if not 1 <= count <= limits.max_delete_ids:
        raise InvalidArgumentError.single(
            "ids", f"must hold 1 to {limits.max_delete_ids} ids (got {count})"
        )
