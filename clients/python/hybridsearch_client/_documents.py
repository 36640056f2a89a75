"""Documents for ``IndexService``: a small dataclass next to the generated message, and the
batching of a document iterable into ``UpsertDocumentsRequest`` messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2

from hybridsearch_client._gen.hybridsearch.v1 import index_pb2
from hybridsearch_client._instants import instant_rfc3339

DEFAULT_BATCH_SIZE = 100
"""Documents per ``UpsertDocumentsRequest`` (one atomic commit on the server)."""
DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024
"""Serialized bytes per request before a batch is cut early; the server accepts 16 MiB
messages by default. A single larger document still travels alone."""


@dataclass(frozen=True, slots=True)
class Document:
    """A document to upsert; ``metadata`` is a JSON object (stored, returned, not searched),
    whose time-zone-aware ``datetime`` values are sent as RFC 3339 text in UTC."""

    id: str
    title: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_proto(self) -> index_pb2.Document:
        """The generated message. A time-zone-aware ``datetime`` anywhere in ``metadata``
        (nested dicts and lists too) becomes its RFC 3339 text in UTC
        (``2020-01-31T12:00:00Z``); a naive ``datetime`` or a ``date`` raises ``ValueError``
        naming the document and the field path."""
        message = index_pb2.Document(id=self.id, title=self.title, text=self.text)
        for key, value in self.metadata.items():
            json_value = _json_metadata(self.id, str(key), value)
            try:
                message.metadata.update({key: json_value})
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"document {self.id!r}: metadata field {key!r}: cannot store a "
                    f"{type(value).__name__} value (metadata must be JSON: str, int, float, "
                    f"bool, None, list, dict, or a time-zone-aware datetime): {error}"
                ) from None
        return message

    @classmethod
    def from_proto(cls, message: index_pb2.Document) -> Document:
        metadata = _struct_to_dict(message.metadata) if message.HasField("metadata") else {}
        return cls(message.id, message.title, message.text, metadata)


def _json_metadata(doc_id: str, path: str, value: Any) -> Any:
    """``value`` with every ``datetime`` in it (nested dicts, lists and tuples too) as RFC 3339
    text; ``path`` names it in errors (``when``, ``events[2].at``)."""
    if isinstance(value, dt.datetime):
        return instant_rfc3339(value, f"document {doc_id!r}: metadata field {path!r}")
    if isinstance(value, dt.date):
        raise ValueError(
            f"document {doc_id!r}: metadata field {path!r}: a date without a time is not an "
            "instant (pass a time-zone-aware datetime or an RFC 3339 string)"
        )
    if isinstance(value, Mapping):
        return {k: _json_metadata(doc_id, f"{path}.{k}", v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_metadata(doc_id, f"{path}[{i}]", v) for i, v in enumerate(value)]
    return value


def _struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(value)
    return result


DocumentLike = index_pb2.Document | Document
"""The generated ``Document`` message or the :class:`Document` dataclass."""

UpsertItem = DocumentLike | index_pb2.UpsertDocumentsRequest
"""A document (batched by the client) or a ready ``UpsertDocumentsRequest`` (sent as is)."""


def to_document_proto(doc: DocumentLike) -> index_pb2.Document:
    if isinstance(doc, index_pb2.Document):
        return doc
    if isinstance(doc, Document):
        return doc.to_proto()
    raise TypeError(f"expected a Document or hybridsearch.v1.Document, got {type(doc).__name__}")


class UpsertBatcher:
    """Cuts a document stream into requests of at most ``batch_size`` documents and, past the
    first document, ``max_batch_bytes`` serialized bytes, each naming ``collection`` (a ready
    request that names none gets it too). Feed it with :meth:`add`, then :meth:`flush` the
    tail."""

    def __init__(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        collection: str = "",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        if max_batch_bytes < 1:
            raise ValueError(f"max_batch_bytes must be at least 1 (got {max_batch_bytes})")
        self._batch_size = batch_size
        self._max_bytes = max_batch_bytes
        self._collection = collection
        self._pending: list[index_pb2.Document] = []
        self._pending_bytes = 0

    def add(self, item: UpsertItem) -> Iterator[index_pb2.UpsertDocumentsRequest]:
        """The requests completed by ``item`` (none, one or two)."""
        if isinstance(item, index_pb2.UpsertDocumentsRequest):
            yield from self.flush()
            if self._collection and not item.collection:
                named = index_pb2.UpsertDocumentsRequest()
                named.CopyFrom(item)
                named.collection = self._collection
                item = named
            yield item
            return
        doc = to_document_proto(item)
        size = doc.ByteSize() + 8  # field tag and length prefix, generously
        if self._pending and self._pending_bytes + size > self._max_bytes:
            yield from self.flush()
        self._pending.append(doc)
        self._pending_bytes += size
        if len(self._pending) >= self._batch_size:
            yield from self.flush()

    def flush(self) -> Iterator[index_pb2.UpsertDocumentsRequest]:
        """The pending documents as one request, if any."""
        if self._pending:
            request = index_pb2.UpsertDocumentsRequest(
                documents=self._pending, collection=self._collection
            )
            self._pending = []
            self._pending_bytes = 0
            yield request
