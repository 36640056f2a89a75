"""Ray Data's reader of JSON corpus files (imported only with Ray, by `ray_source`).

A read task reads whole files as bytes and parses each with `records.json_file_table`, that is
with `storage.corpus`'s own per-file reader: the documents, their order, and what is a
malformed line (and its number) are the single-machine build's. Ray's ``read_text`` would
decode a file at once (one non-UTF-8 byte fails the read) and split it with
``str.splitlines`` (U+2028, U+2029 and U+0085, legal inside a JSON string, end its lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from ray.data.datasource import FileBasedDatasource

from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.records import json_file_table


class JsonCorpusDatasource(FileBasedDatasource):
    """JSON corpus files (JSON lines, or a ``.json`` array or pretty-printed objects; plain or
    gzip, told by the magic bytes as the local reader tells it) as `DOCUMENT_SCHEMA` tables,
    one per file; ``strict``: a malformed line fails its read task (`CorpusError`)."""

    def __init__(
        self,
        paths: list[str],
        *,
        filesystem: Any,
        shard_count: int,
        schema: CollectionSchema,
        strict: bool,
    ) -> None:
        super().__init__(paths, filesystem=filesystem)
        self._hs_shard_count = shard_count
        self._hs_schema = schema
        self._hs_strict = strict

    def resolve_compression(self, path: str, open_args: dict[str, Any]) -> str | None:
        """Never inferred from the name: `storage.corpus.open_corpus_bytes` sniffs gzip."""
        del path, open_args
        return None

    def _read_stream(self, f: Any, path: str) -> Iterator[pa.Table]:
        yield json_file_table(path, f.readall(), self._hs_shard_count, self._hs_schema,
                              strict=self._hs_strict)  # fmt: skip
