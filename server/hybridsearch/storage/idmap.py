"""The external-id ↔ ordinal map, its live mask, and the append-only journal that grows it.

Ordinals are never reused: an upsert of an existing id gives the new version a new ordinal
and marks the old one dead; a delete marks the ordinal dead. ``ids.json`` holds the ordinals
of the bulk build (all live); ``journal.jsonl`` holds one line per later change, in commit
order — ``{"put": id}`` (the next ordinal) or ``{"del": id}``. Only the first
``journal_bytes`` bytes named by the manifest are committed; a writer overwrites the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.errors import IndexFormatError
from hybridsearch.storage.manifest import IDS_FILE, JOURNAL_FILE

JournalEntry = tuple[str, str]  # ("put" | "del", external id)
PUT = "put"
DELETE = "del"


class IdMap:
    """ordinal → id (append-only), live id → ordinal, and which ordinals are live."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.ids: list[str] = []
        self._ordinal_of: dict[str, int] = {}
        self._live = np.zeros(64, dtype=np.bool_)
        for doc_id in ids:
            self.put(doc_id)

    @property
    def ordinal_count(self) -> int:
        """Ordinals assigned so far, live or not."""
        return len(self.ids)

    @property
    def live_count(self) -> int:
        """Live documents."""
        return len(self._ordinal_of)

    def ordinal_of(self, doc_id: str) -> int | None:
        """The live ordinal of an id, if it is live."""
        return self._ordinal_of.get(doc_id)

    def put(self, doc_id: str) -> int | None:
        """Give ``doc_id`` the next ordinal; returns the ordinal it replaced, if any."""
        ordinal = len(self.ids)
        if ordinal == len(self._live):
            grown = np.zeros(2 * len(self._live), dtype=np.bool_)
            grown[:ordinal] = self._live
            self._live = grown
        replaced = self.delete(doc_id)
        self.ids.append(doc_id)
        self._ordinal_of[doc_id] = ordinal
        self._live[ordinal] = True
        return replaced

    def delete(self, doc_id: str) -> int | None:
        """Mark ``doc_id`` dead; returns its ordinal, or None when it was not live."""
        ordinal = self._ordinal_of.pop(doc_id, None)
        if ordinal is not None:
            self._live[ordinal] = False
        return ordinal

    def apply(self, entries: Iterable[JournalEntry]) -> None:
        """Replay journal entries."""
        for op, doc_id in entries:
            if op == PUT:
                self.put(doc_id)
            else:
                self.delete(doc_id)

    def live_mask(self) -> NDArray[np.bool_]:
        """A copy of the live mask over every assigned ordinal."""
        return self._live[: len(self.ids)].copy()

    def dead_ordinals(self) -> list[int]:
        """Assigned ordinals that are not live."""
        return [int(o) for o in np.flatnonzero(~self._live[: len(self.ids)])]


def encode_entries(entries: Iterable[JournalEntry]) -> bytes:
    """Journal lines for ``entries``."""
    lines = (json.dumps({op: doc_id}, ensure_ascii=False) + "\n" for op, doc_id in entries)
    return "".join(lines).encode("utf-8")


def read_journal(path: Path, length: int, start: int = 0) -> list[JournalEntry]:
    """The committed entries: the first ``length`` bytes of the journal (from byte ``start``,
    a line boundary, when given)."""
    length -= start
    if length == 0:
        return []
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(length)
    except OSError as exc:
        raise IndexFormatError(f"{path}: unreadable journal ({exc})") from exc
    if len(data) != length:
        raise IndexFormatError(f"{path}: shorter than the {length} committed bytes")
    entries: list[JournalEntry] = []
    for line_no, line in enumerate(data.decode("utf-8").splitlines(), 1):
        try:
            obj = json.loads(line)
            ((op, doc_id),) = obj.items()
        except (ValueError, AttributeError) as exc:
            raise IndexFormatError(f"{path}:{line_no}: malformed journal line") from exc
        if op not in (PUT, DELETE) or not isinstance(doc_id, str):
            raise IndexFormatError(f"{path}:{line_no}: malformed journal line")
        entries.append((op, doc_id))
    return entries


def write_journal(path: Path, offset: int, entries: Iterable[JournalEntry]) -> int:
    """Write entries at ``offset`` (dropping any uncommitted tail), fsync; the new length."""
    data = encode_entries(entries)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        os.ftruncate(fd, offset + len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
    return offset + len(data)


def load_ids_json(path: Path) -> list[str]:
    """The bulk-built ordinal → id list."""
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{path}: unreadable id map ({exc})") from exc
    if not isinstance(ids, list):
        raise IndexFormatError(f"{path}: the id map must be a JSON list")
    return [str(i) for i in ids]


def load_id_map(index_dir: Path, ordinal_count: int, journal_bytes: int) -> IdMap:
    """The committed id map: ``ids.json`` then the committed part of the journal."""
    id_map = IdMap(load_ids_json(index_dir / IDS_FILE))
    id_map.apply(read_journal(index_dir / JOURNAL_FILE, journal_bytes))
    if id_map.ordinal_count != ordinal_count:
        raise IndexFormatError(
            f"{index_dir}: the id map has {id_map.ordinal_count} ordinals, the manifest "
            f"{ordinal_count}"
        )
    return id_map
