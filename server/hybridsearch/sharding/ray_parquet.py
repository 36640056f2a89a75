"""Ray Data's reader of Parquet corpus files with a column ``path`` of their own (imported
only with Ray, by `ray_source`).

``read_parquet(include_paths=True)``, which names each row's file for its errors, puts that
name in a column ``path``: over the file's own column of that name (Ray 2.60 replaces it).
This reader names no column: a read task reads its files one by one with `pyarrow.parquet`,
a record batch at a time, and parses each batch as rows of the file it reads, in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from ray.data.datasource import FileBasedDatasource

ParseBatch = Callable[..., pa.Table]  # (rows of a file, source=the file) -> parsed rows


class ParquetCorpusDatasource(FileBasedDatasource):
    """Parquet files as tables of parsed documents: ``parse(rows, source=file)`` per batch."""

    def __init__(self, paths: list[str], *, filesystem: Any, parse: ParseBatch) -> None:
        super().__init__(paths, filesystem=filesystem)
        self._hs_parse = parse

    def _open_input_source(self, filesystem: Any, path: str, **open_args: Any) -> Any:
        """A random-access file: a Parquet file's footer comes first."""
        del open_args
        return filesystem.open_input_file(path)

    def _read_stream(self, f: Any, path: str) -> Iterator[pa.Table]:
        for batch in pq.ParquetFile(f).iter_batches():
            yield self._hs_parse(pa.Table.from_batches([batch]), source=path)
