"""Which documents and deletes an index accepts: `IngestLimits` and the checks against them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hybridsearch.errors import FieldViolation, InvalidArgumentError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.metadata.values import metadata_problem
from hybridsearch.types import MAX_ID_BYTES, Document, document_id_problem


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """The most one write may carry (each one a server setting; these defaults)."""

    max_document_chars: int = 1_000_000  # title + text of one document, in characters
    max_id_bytes: int = MAX_ID_BYTES  # a document id, UTF-8 encoded
    max_delete_ids: int = 10_000  # ids in one delete


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document refused before indexing: its position in the request stream, id, why."""

    position: int
    id: str
    reason: str


def id_problem(doc_id: str, limits: IngestLimits) -> str | None:
    """Why ``doc_id`` cannot be a document id, or None when it can. Every RPC that takes an
    id checks it, so no id past the limit reaches a lookup or an error message."""
    return document_id_problem(doc_id, limits.max_id_bytes)


def check_ids(ids: Sequence[str], limits: IngestLimits) -> None:
    """Raise `InvalidArgumentError` naming each bad id (``ids[i]``; the error lists the first
    `MOST_VIOLATIONS` and counts the rest) of a delete."""
    violations = [
        FieldViolation(f"ids[{i}]", problem)
        for i, doc_id in enumerate(ids)
        if (problem := id_problem(doc_id, limits)) is not None
    ]
    if violations:
        raise InvalidArgumentError(violations)


def document_problem(
    doc: Document, limits: IngestLimits, schema: CollectionSchema | None = None
) -> str | None:
    """Why ``doc`` cannot be indexed into an index with ``schema``, or None when it can.

    A declared metadata field with a value of the wrong type is a problem naming the field
    (``metadata.year: expected an integer (got "2020")``); undeclared keys are stored only.
    """
    problem = id_problem(doc.id, limits)
    if problem is not None:
        return problem
    size = len(doc.title) + len(doc.text)
    if size > limits.max_document_chars:
        return (
            f"title + text is {size} characters; at most {limits.max_document_chars} are accepted"
        )
    return None if schema is None else metadata_problem(schema, doc.metadata)


def check_delete_count(count: int, limits: IngestLimits) -> None:
    """Raise `InvalidArgumentError` (field ``ids``) unless a delete names 1 to max ids."""
    if not 1 <= count <= limits.max_delete_ids:
        raise InvalidArgumentError.single(
            "ids", f"must hold 1 to {limits.max_delete_ids} ids (got {count})"
        )
