"""A corpus as a Ray Data dataset of parsed documents (`records.DOCUMENT_SCHEMA` rows).

The corpus is a file or a directory, local or on any filesystem pyarrow opens (``s3://``,
``gs://``, ``hdfs://``, ...): JSON lines (BEIR ``corpus.jsonl``, a Pyserini JsonCollection
directory; ``.gz`` ok), read whole file by file and parsed by the single-machine build's own
reader (`ray_json`), or Parquet (one file or a directory of ``*.parquet``: Ray's
``read_parquet``, or `ray_parquet` for files with a ``path`` column or of differing schemas);
a directory of both is refused. Files are read in name order and the dataset keeps their order
(``preserve_order``), so shard ``i`` receives its documents in the same order as the
single-machine build reads them: same ordinals, same index. A local path must be readable at
the same path on every node that runs a read task (a shared filesystem, or one machine); a
cluster without one reads from object storage (``s3://``...).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from hybridsearch.errors import CorpusError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.records import documents_table
from hybridsearch.storage.corpus import (
    JSON_SUFFIXES,
    PARQUET_MAGIC,
    PARQUET_SUFFIX,
    corpus_files,
    count_lines,
    directory_files,
    mixed_formats_error,
)

if TYPE_CHECKING:
    import pyarrow.parquet as pq

RAY_PATH_COLUMN = "path"  # the column of each row's file (`read_parquet(include_paths=True)`)


@dataclass(frozen=True, slots=True)
class CorpusSource:
    """Where a corpus is: its files (in read order), their filesystem and their format."""

    files: tuple[str, ...]
    filesystem: pafs.FileSystem | None  # None: local files
    parquet: bool

    def count_hint(self) -> int | None:
        """Records in the corpus when that is cheap to know (for an ETA), else None."""
        if self.parquet:
            return sum(int(parquet_metadata(f, self.filesystem).num_rows) for f in self.files)
        if self.filesystem is None:
            return sum(count_lines(Path(f)) for f in self.files)
        return None


def is_uri(corpus: str) -> bool:
    """Whether a corpus names a filesystem (``scheme://``) rather than a local path."""
    return "://" in corpus and not corpus.startswith("file://")


def find_source(corpus: str) -> CorpusSource:
    """The files of a corpus and their format; `CorpusError` says what is wrong."""
    if is_uri(corpus):
        try:
            fs, root = pafs.FileSystem.from_uri(corpus)
            info = fs.get_file_info(root)
            if info.type == pafs.FileType.Directory:
                infos = fs.get_file_info(pafs.FileSelector(root, recursive=False))
                names = sorted(i.path for i in infos if i.type == pafs.FileType.File)
            elif info.type == pafs.FileType.File:
                names = [root]
            else:
                raise CorpusError(f"{corpus}: no such file or directory")
        except (OSError, pa.ArrowException) as exc:
            raise CorpusError(f"{corpus}: cannot open ({exc})") from exc
        filesystem: pafs.FileSystem | None = fs
    else:
        path = Path(corpus.removeprefix("file://")).resolve()
        listed = directory_files(path)
        if listed is not None:
            names = [str(p) for p in listed]
        elif path.is_file():
            names = [str(path)]
            if _starts_with(path, PARQUET_MAGIC):  # a Parquet file, whatever its name
                return CorpusSource((str(path),), None, parquet=True)
        else:
            names = [str(p) for p in corpus_files(path)]  # its error: no such file
        filesystem = None
    parquet = [n for n in names if n.endswith(PARQUET_SUFFIX)]
    json_files = [n for n in names if n.endswith(JSON_SUFFIXES)]
    if parquet and json_files:
        raise mixed_formats_error(corpus)
    if len(names) == 1 and not parquet:
        json_files = names  # one file is read as JSON lines whatever its name
    names = parquet or json_files
    if not names:
        raise CorpusError(f"{corpus}: no .parquet or .jsonl/.json(.gz) files")
    return CorpusSource(tuple(names), filesystem, bool(parquet))


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(magic)) == magic
    except OSError:
        return False  # the reader says why


def documents_dataset(
    ray: ModuleType,
    source: CorpusSource,
    shard_count: int,
    schema: CollectionSchema,
    *,
    strict: bool = True,
) -> Any:
    """The dataset of parsed documents (a ``ray.data.Dataset``), in corpus order.

    ``strict``: a malformed record fails the build at once (`CorpusError`); else its row is
    kept with its error, for the build to count and drop. Parsing keeps the read's blocks
    (Ray Data splits a big file's into several, so one file still feeds every encoder; a
    repartition would add a stage that waits for a CPU the encoders hold).

    Reading and parsing ask for no CPU of their own: they are cheap next to encoding, and the
    encoder pool may hold every CPU of a small cluster (a stage that waits for a CPU the pool
    never frees would stall the build).
    """
    if not source.parquet:
        from hybridsearch.sharding.ray_json import JsonCorpusDatasource  # noqa: PLC0415

        datasource = JsonCorpusDatasource(list(source.files), filesystem=source.filesystem,
                                          shard_count=shard_count, schema=schema,
                                          strict=strict)  # fmt: skip
        return ray.data.read_datasource(datasource, num_cpus=0)
    return _parquet_dataset(ray, source, shard_count, schema, strict=strict)


def _parquet_dataset(
    ray: ModuleType,
    source: CorpusSource,
    shard_count: int,
    schema: CollectionSchema,
    *,
    strict: bool,
) -> Any:
    """The parsed documents of Parquet files, each row's errors naming its own file.

    Ray Data's ``read_parquet`` reads files of one schema, naming each row's file in a column
    ``path`` (``include_paths``). Files that hold a ``path`` of their own (Ray would write over
    it), or whose schemas differ (Ray casts every file to one schema: a ``metadata`` struct
    in one file and a JSON string in another fail the read), are read one by one by
    `ray_parquet.ParquetCorpusDatasource`, which names the file it reads.
    """
    parse = functools.partial(_parse_parquet_batch, shard_count=shard_count, schema=schema,
                              strict=strict)  # fmt: skip
    schemas = [parquet_metadata(f, source.filesystem).schema.to_arrow_schema()
               for f in source.files]  # fmt: skip
    if not _one_ray_read(schemas):
        from hybridsearch.sharding.ray_parquet import ParquetCorpusDatasource  # noqa: PLC0415

        datasource = ParquetCorpusDatasource(list(source.files), filesystem=source.filesystem,
                                             parse=parse)  # fmt: skip
        return ray.data.read_datasource(datasource, num_cpus=0)
    raw = ray.data.read_parquet(list(source.files), filesystem=source.filesystem, num_cpus=0,
                                include_paths=True)  # fmt: skip
    return raw.map_batches(parse, batch_format="pyarrow", batch_size=None, num_cpus=0)


def _one_ray_read(schemas: list[pa.Schema]) -> bool:
    """Whether ``read_parquet`` reads files of these schemas as they are: no ``path`` column
    and one schema."""
    first = schemas[0]
    return RAY_PATH_COLUMN not in first.names and all(
        s.equals(first, check_metadata=False) for s in schemas[1:]
    )


def parquet_metadata(file: str, filesystem: pafs.FileSystem | None) -> pq.FileMetaData:
    """A Parquet file's footer (its rows, its schema); `CorpusError` when it is not one."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        return pq.read_metadata(file, filesystem=filesystem)
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(f"{file}: not a readable Parquet file ({exc})") from exc


def _parse_parquet_batch(
    batch: pa.Table,
    *,
    shard_count: int,
    schema: CollectionSchema,
    strict: bool,
    source: str | None = None,
) -> pa.Table:
    """Parse a block of Parquet rows into `records.DOCUMENT_SCHEMA` rows; ``source``: the
    file they come from, else each row's ``path`` column (Ray's, dropped) names it.
    ``strict``: the first malformed record fails the build (`CorpusError`)."""
    if source is None:
        paths = batch.column(RAY_PATH_COLUMN).to_pylist()
        batch = batch.drop_columns([RAY_PATH_COLUMN])
    else:
        paths = [source] * batch.num_rows
    rows = batch.to_pylist()
    tables = [
        documents_table((row for _, row in group), shard_count, schema, source=path)
        for path, group in itertools.groupby(zip(paths, rows, strict=True), lambda r: r[0])
    ]
    table = pa.concat_tables(tables) if tables else documents_table([], shard_count, schema)
    if strict:
        first = next((e for e in table.column("error").to_pylist() if e), None)
        if first is not None:
            raise CorpusError(first)
    return table
