"""Corpus readers: BEIR ``corpus.jsonl`` and Pyserini JsonCollection, plain or gzip.

The format is detected per line: a BEIR line has ``_id`` (+ ``title``, ``text``, optional
``metadata`` object); a Pyserini line has ``id`` and ``contents``. A Pyserini collection may
also be a directory of ``*.jsonl``/``*.json``/``*.jsonl.gz`` files, read in name order; a
``.json`` file may also hold one object or an array of them, pretty-printed or not (as
Pyserini's JsonCollection reads it). Files are read as bytes and decoded line by line.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import math
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from hybridsearch.errors import CorpusError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.metadata.values import metadata_problem
from hybridsearch.types import Document, document_id_problem, unicode_problem

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class ReadStats:
    """What a corpus read saw."""

    lines: int = 0
    documents: int = 0
    bad_lines: int = 0
    bad_line_numbers: list[int] = field(default_factory=list)
    #: Where the document yielded last is (its file and line; the reader is lazy, so while a
    #: consumer handles a document this names it).
    file: Path | None = None
    line: int = 0


def open_text(path: Path) -> IO[str]:
    """Open a UTF-8 text file (a leading byte order mark dropped), transparently gunzipping it
    when it starts with gzip magic."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return path.open("r", encoding="utf-8-sig")


def open_corpus_file(path: Path) -> IO[bytes]:
    """Open a corpus file for reading bytes, gunzipping it when it starts with gzip magic;
    `CorpusError` for a Parquet file (only ``index --ray`` reads those) or one that cannot
    be opened."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(4)
        if magic == PARQUET_MAGIC:
            raise CorpusError(
                f"{path}: a Parquet file; Parquet corpora need `index --ray` (here: JSON lines)"
            )
        if magic[:2] == GZIP_MAGIC:
            return cast("IO[bytes]", gzip.open(path, "rb"))
        return path.open("rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def open_corpus_bytes(data: bytes) -> IO[bytes]:
    """A corpus file's bytes (read whole, as the distributed build reads them) as a file to
    read, gunzipped when they start with gzip magic, as `open_corpus_file` opens a file."""
    if data[:2] == GZIP_MAGIC:
        return cast("IO[bytes]", gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"))
    return io.BytesIO(data)


def _read_failure(file: Path | str, line_no: int | None, exc: Exception) -> CorpusError:
    """The error of a corpus file whose bytes stop being readable after line ``line_no``
    (None: not known, as when the file is read in blocks)."""
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        what = f"truncated or damaged gzip ({exc})"
    else:
        what = f"cannot read ({getattr(exc, 'strerror', None) or exc})"
    where = "" if line_no is None else f", after line {line_no}"
    return CorpusError(f"{file}: {what}{where}")


def _lines(file: Path | str, handle: IO[bytes], stats: ReadStats) -> Iterator[bytes]:
    """The lines of an open corpus file, as bytes (a leading UTF-8 byte order mark dropped),
    each counted in ``stats``; a read failure (a truncated gzip, an I/O error) is a
    `CorpusError`."""
    line_no = 0
    while True:
        try:
            line = handle.readline()
        except (EOFError, OSError, zlib.error) as exc:
            raise _read_failure(file, line_no, exc) from exc
        if not line:
            return
        if line_no == 0 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]
        line_no += 1
        stats.lines += 1
        yield line


def _json_lines(lines: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of a JSON-lines file, with their numbers (parsed by the caller, so
    that a malformed one is a malformed line)."""
    for line_no, line in enumerate(lines, start=1):
        if line.strip():
            yield line_no, line


#: Pyserini's JsonCollection reads these as JSON documents, not only as JSON lines.
JSON_DOCUMENT_SUFFIXES = (".json", ".json.gz")


def _holds_json_documents(file: Path | str, handle: IO[bytes]) -> bool:
    """Whether ``file`` (open as ``handle``) is a ``.json`` file holding a JSON array or values
    spread over several lines (pretty-printed), as Pyserini's JsonCollection accepts besides
    JSON lines: its first non-blank line opens an array or does not end the value it starts."""
    if not str(file).endswith(JSON_DOCUMENT_SUFFIXES):
        return False
    for raw in _lines(file, handle, ReadStats()):
        first = raw.decode("utf-8", errors="replace").strip()
        if not first:
            continue
        if first.startswith("["):
            return True
        try:
            json.loads(first)
        except json.JSONDecodeError as exc:
            return exc.pos >= len(first)  # the value goes on past this line
        return False
    return False


def _json_documents(file: Path | str, lines: Iterator[bytes]) -> Iterator[tuple[int, Any]]:
    """The values of a JSON file (an object, an array of them, or a sequence of values,
    possibly pretty-printed; the elements of a top-level array one by one), each with the
    line it starts on. Reads whole lines as it needs them: memory holds one document. Bad
    JSON is a `CorpusError` (there is no next line to skip to)."""
    decoder = json.JSONDecoder()
    buf, buf_line, next_line = "", 1, 1  # buf starts on line buf_line
    in_array, expect_value = False, True

    def read_more(at_least: int) -> bool:
        nonlocal buf, next_line
        added = 0
        for raw in lines:
            try:
                text = decode_line(raw)
            except ValueError as exc:
                raise CorpusError(f"{file}:{next_line}: {exc}") from None
            next_line += 1
            buf += text
            added += len(text)
            if added >= at_least:
                break
        return added > 0

    def bad(pos: int, what: str) -> CorpusError:
        return CorpusError(
            f"{file}:{buf_line + buf.count(chr(10), 0, pos)}: malformed JSON: {what}"
        )

    while True:
        rest = buf.lstrip()
        buf_line += buf.count("\n", 0, len(buf) - len(rest))
        buf = rest
        if not buf:
            if read_more(1):
                continue
            if in_array:
                raise bad(0, "the array is not closed")
            return
        if in_array and (buf[0] == "]" or not expect_value):
            if buf[0] == "]":
                in_array, buf = False, buf[1:]
            elif buf[0] == ",":
                expect_value, buf = True, buf[1:]
            else:
                raise bad(0, "expected ',' or ']' after an array element")
            continue
        if not in_array and buf[0] == "[":
            in_array, expect_value, buf = True, True, buf[1:]
            continue
        try:
            value, end = decoder.raw_decode(buf)
        except json.JSONDecodeError as exc:
            # Whole lines are read, so an error at the very end means the value goes on.
            if exc.pos >= len(buf.rstrip()) and read_more(len(buf)):
                continue
            raise bad(exc.pos, exc.msg) from None
        yield buf_line, value
        buf_line += buf.count("\n", 0, end)
        buf = buf[end:]
        expect_value = False


def decode_line(line: bytes) -> str:
    """A corpus line as text; `ValueError` naming the first byte that is not UTF-8."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 (byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line)"
        ) from None


JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
PARQUET_SUFFIX = ".parquet"


def mixed_formats_error(path: Path | str) -> CorpusError:
    """The error of a corpus directory holding both JSON-lines and Parquet files (both builds
    refuse it rather than read one kind and leave out the other)."""
    return CorpusError(
        f"{path}: mixes JSON-lines (.jsonl/.json(.gz)) and Parquet (.parquet) files; "
        "give a directory of one format"
    )


def directory_files(path: Path) -> list[Path] | None:
    """The files directly in the directory ``path``, in name order, or None when ``path`` is
    not a directory; `CorpusError` when it cannot be looked at or listed (no permission)."""
    try:
        if not path.is_dir():
            return None
        return sorted(p for p in path.iterdir() if p.is_file())
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def corpus_files(path: Path) -> list[Path]:
    """The files of a corpus path (a file, or a directory of JSON-lines files)."""
    entries = directory_files(path)
    if entries is not None:
        files = [p for p in entries if p.name.endswith(JSON_SUFFIXES)]
        parquet = any(p.name.endswith(PARQUET_SUFFIX) for p in entries)
        if files and parquet:
            raise mixed_formats_error(path)
        if parquet:
            raise CorpusError(
                f"{path}: a directory of Parquet files; Parquet corpora need `index --ray` "
                "(here: JSON lines)"
            )
        if not files:
            raise CorpusError(f"{path}: no .jsonl/.json(.gz) files in this directory")
        return files
    if not path.is_file():
        if path.exists():  # a pipe, a device (/dev/stdin): read twice (counted, then read)
            raise CorpusError(f"{path}: not a regular file or a directory of corpus files")
        raise CorpusError(f"{path}: no such file or directory")
    return [path]


def parse_document(obj: Any) -> Document:
    """One corpus record as a Document; raises ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    if "_id" in obj:
        doc_id, title, text = obj["_id"], obj.get("title", ""), obj.get("text", "")
    elif "id" in obj and "contents" in obj:
        doc_id, title, text = obj["id"], "", obj["contents"]
    else:
        raise ValueError('expected BEIR fields "_id"/"title"/"text" or Pyserini "id"/"contents"')
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise ValueError("the document id must be a non-empty string")
    problem = document_id_problem(doc_id)  # what the API would refuse to fetch or delete
    if problem is not None:
        raise ValueError(problem)
    for name, value in (("title", title), ("text", text)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f'"{name}" must be a string')
        if (problem := unicode_problem(value)) is not None:
            raise ValueError(f"{name}: {problem}")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError('"metadata" must be a JSON object')
    problem = _metadata_value_problem(metadata, "metadata")
    if problem is not None:
        raise ValueError(problem)
    return Document(id=doc_id, title=title or "", text=text or "", metadata=metadata)


def _metadata_value_problem(value: Any, path: str) -> str | None:
    """Why a metadata value holds a number or a string the API cannot return, or None.

    Python's JSON reader accepts NaN and Infinity, integers of any size, and lone surrogate
    escapes (``"\\ud83d"``) in strings and keys; a response carries metadata as a protobuf
    Struct, whose numbers are finite doubles and whose strings are UTF-8 (and the index
    stores metadata as UTF-8 JSON).
    """
    if isinstance(value, str):
        problem = unicode_problem(value)
        return None if problem is None else f"{path}: {problem}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: numbers must be finite (got {value})"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST_DOUBLE:
        return f"{path}: an integer beyond a double's range ({len(str(abs(value)))} digits)"
    if isinstance(value, dict):
        for key in value:
            if (problem := unicode_problem(key)) is not None:
                return f"{path}: a key is {problem}"
        items: Iterable[tuple[str, Any]] = ((f".{k[:64]}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for step, item in items:
        problem = _metadata_value_problem(item, path + step)
        if problem is not None:
            return problem
    return None


_LARGEST_DOUBLE = int(sys.float_info.max)


#: A record of a corpus file: the line it starts on, and its bytes (a JSON line, parsed by
#: `record_document`) or its value (a document of a JSON array or pretty-printed file).
FileRecord = tuple[int, bytes | Any]


def file_records(
    file: Path | str, open_file: Callable[[], IO[bytes]], stats: ReadStats
) -> Iterator[FileRecord]:
    """The records of one corpus file, which ``open_file()`` opens (twice: the first lines
    tell JSON lines from a ``.json`` file of JSON documents), in order, with their line
    numbers. A file that stops being readable, or bad JSON in a file of JSON documents, is a
    `CorpusError` naming ``file``. Both builds read every file through this function."""
    with open_file() as handle:
        documents = _holds_json_documents(file, handle)
    with open_file() as handle:
        lines = _lines(file, handle, stats)
        yield from _json_documents(file, lines) if documents else _json_lines(lines)


def record_document(record: bytes | Any, schema: CollectionSchema | None) -> Document:
    """A record of `file_records` as a Document; `ValueError` says what is wrong with it
    (not UTF-8, not JSON, not a document, metadata that ``schema`` refuses)."""
    doc = parse_document(json.loads(decode_line(record)) if isinstance(record, bytes) else record)
    problem = None if schema is None else metadata_problem(schema, doc.metadata)
    if problem is not None:
        raise ValueError(problem)
    return doc


def read_corpus(
    path: Path,
    *,
    skip_bad_lines: bool = False,
    stats: ReadStats | None = None,
    schema: CollectionSchema | None = None,
) -> Iterator[Document]:
    """Yield the documents of a corpus in file order.

    A ``.json`` file holding a JSON array or pretty-printed objects is read as Pyserini's
    JsonCollection reads it (each document's line is the one it starts on; bad JSON there
    cannot be skipped). A malformed line raises `CorpusError` naming file and line number, unless
    ``skip_bad_lines``: then it is counted in ``stats`` and skipped. Blank lines are ignored.
    A line whose metadata does not fit ``schema`` (`metadata.values`) is a malformed line.
    """
    stats = stats if stats is not None else ReadStats()
    for file in corpus_files(path):
        for line_no, record in file_records(file, functools.partial(open_corpus_file, file), stats):
            try:
                doc = record_document(record, schema)
            except ValueError as exc:  # JSONDecodeError is a ValueError
                if not skip_bad_lines:
                    raise CorpusError(f"{file}:{line_no}: malformed line: {exc}") from exc
                stats.bad_lines += 1
                stats.bad_line_numbers.append(line_no)
                continue
            stats.documents += 1
            stats.file, stats.line = file, line_no
            yield doc


def count_lines(path: Path) -> int:
    """Number of lines in a corpus (for progress bars); `CorpusError` when a file cannot be
    read to its end (a truncated gzip, a Parquet file)."""
    total = 0
    for file in corpus_files(path):
        with open_corpus_file(file) as handle:
            lines = 0
            ends_in_newline = True
            while True:
                try:
                    chunk = handle.read(COUNT_CHUNK)
                except (EOFError, OSError, zlib.error) as exc:  # lines of the block are lost
                    raise _read_failure(file, None, exc) from exc
                if not chunk:
                    break
                lines += chunk.count(b"\n")
                ends_in_newline = chunk.endswith(b"\n")
            total += lines + (0 if ends_in_newline else 1)
    return total


COUNT_CHUNK = 1 << 20
