"""The index manifest: format version, analyser, document counts, the encoder of its vectors.

The manifest is the commit point of an index: it is rewritten atomically as the last step of
every commit (bulk build or live write), and a reader trusts nothing beyond what it names.

Format versions:

- 1: written by bulk builds before live ingestion; ``vectors.npy`` and ``ids.json`` hold
  exactly ``ordinal_count`` rows, every ordinal live. Still read.
- 2: adds ``generation``, ``committed_at`` and ``journal_bytes``. Live commits append rows to
  ``vectors.npy`` past the rows its header declares and lines to ``journal.jsonl``; only the
  first ``ordinal_count`` rows and ``journal_bytes`` bytes are committed.
- 3: adds ``data_dir``: the data files (``sparse/``, ``vectors.npy``, ``ids.json``,
  ``journal.jsonl``, an HNSW graph) live in that subdirectory of the index directory
  (``data-<generation>``, written by compaction) instead of the index directory itself. A
  manifest whose data is in the index directory is still written as version 2, so an index that
  was never compacted stays readable by older hybridsearch versions.

Layout of an index directory (version 3)::

    manifest.json        the commit point: names the data directory and what of it is committed
    writer.lock          held (flock) by the one writer process
    data-00000042/       the served generation's data; compaction writes data-<new generation>/
      sparse/ vectors.npy ids.json journal.jsonl [dense.hnsw.faiss]

Any version may carry ``schema`` (the collection's declared metadata fields,
`metadata.schema.CollectionSchema`; fixed when the index is created). A manifest without it
declares no fields, and one with no fields is written without it.

A Lucene-backed index (``sparse_backend`` "lucene", `sparse.lucene_index`) is written as
version 4 (older readers refuse it by its version) and carries ``lucene``: where its Lucene
index is (``sparse/`` of the data directory when built by hybridsearch, an absolute path when
an existing Pyserini/Anserini index was attached), the segments file it had then, and BM25's
k1 and b. Tantivy manifests never carry either key.

Only the data directory the manifest names is read; any other ``data-*`` directory is what a
crashed compaction left (or an old one a reader may still map) and the writer removes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hybridsearch.errors import IndexFormatError, SchemaError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.storage.files import write_json_atomic
from hybridsearch.storage.replace import recover_replacement

FORMAT_NAME = "hybridsearch-index"
FORMAT_VERSION = 2  # data in the index directory itself
GENERATIONS_FORMAT_VERSION = 3  # data in the subdirectory ``data_dir``
LUCENE_FORMAT_VERSION = 4  # a Lucene-backed index: older readers refuse it by its version
READABLE_VERSIONS = (1, 2, 3, 4)
DATA_DIR_PREFIX = "data-"
_DATA_DIR_NAME = re.compile(r"data-[0-9]{8,20}")
MANIFEST_FILE = "manifest.json"
#: The shard manifest of a sharded collection (`sharding.layout` writes and reads it).
SHARD_MANIFEST_FILE = "shards.json"
SPARSE_DIR = "sparse"
VECTORS_FILE = "vectors.npy"
IDS_FILE = "ids.json"
JOURNAL_FILE = "journal.jsonl"


@dataclass(frozen=True, slots=True)
class EncoderInfo:
    """The encoder whose document vectors an index holds; queries must use the same one."""

    model_id: str
    dimension: int
    pooling: str
    normalize: bool
    max_length: int
    query_prefix: str = ""
    document_prefix: str = ""


@dataclass(frozen=True, slots=True)
class LuceneInfo:
    """Where a Lucene-backed index's Lucene index is, and how BM25 scores it."""

    index_dir: str = ""  # "" = SPARSE_DIR of the data directory; else an absolute path
    segments: str = ""  # the segments file when built / attached (a changed index is refused)
    k1: float = 0.9
    b: float = 0.4

    def path(self, data_path: Path) -> Path:
        """The Lucene index directory of an index whose data directory is ``data_path``."""
        return Path(self.index_dir) if self.index_dir else data_path / SPARSE_DIR


@dataclass(frozen=True, slots=True)
class Manifest:
    """What `manifest.json` records about an index directory.

    ``ordinal_count`` ordinals are committed (vector rows, id-map entries); ``document_count``
    of them are live. ``generation`` counts commits since the index was created.
    """

    document_count: int
    ordinal_count: int
    created_at: str
    analyzer: str = "en_stem"
    encoder: EncoderInfo | None = None
    format_version: int = FORMAT_VERSION
    dense_index: str = "exact"  # a DenseIndexKind value: exact or hnsw
    generation: int = 0
    committed_at: str = ""
    journal_bytes: int = 0
    data_dir: str = ""  # subdirectory holding the data files; "" = the index directory
    schema: CollectionSchema = CollectionSchema()  # declared (filterable) metadata fields
    sparse_backend: str = "tantivy"  # a SparseBackend value: tantivy or lucene
    lucene: LuceneInfo | None = None  # set exactly when sparse_backend is lucene
    # The HNSW graph's M and efConstruction (dense_index hnsw; 0: not recorded, as in
    # manifests before them: the graph file holds them), kept by `shards split` and compaction.
    hnsw_m: int = 0
    hnsw_ef_construction: int = 0

    def data_path(self, index_dir: Path) -> Path:
        """The directory holding this commit's data files."""
        return index_dir / self.data_dir if self.data_dir else index_dir

    @property
    def deleted_count(self) -> int:
        """Committed ordinals that are no longer live (deleted or replaced documents)."""
        return self.ordinal_count - self.document_count

    @property
    def has_vectors(self) -> bool:
        """Whether the index holds a dense matrix."""
        return self.encoder is not None

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON object."""
        obj = asdict(self)
        obj["format"] = FORMAT_NAME
        if self.schema.fields:
            obj["schema"] = self.schema.to_json()
        else:
            del obj["schema"]  # no declared fields: as manifests before schemas were
        if not self.data_dir:
            del obj["data_dir"]  # a version 2 manifest, as older readers know it
        if self.lucene is None:
            del obj["lucene"], obj["sparse_backend"]  # tantivy: as manifests before Lucene
        if not self.hnsw_m:
            del obj["hnsw_m"], obj["hnsw_ef_construction"]  # as manifests before them
        return obj

    def save(self, index_dir: Path) -> None:
        """Atomically (re)write the manifest: the last step of every commit."""
        write_json_atomic(index_dir / MANIFEST_FILE, self.to_json())


def load_manifest(index_dir: Path) -> Manifest:
    """Read and validate `manifest.json`; raise `IndexFormatError` saying what is wrong."""
    path = index_dir / MANIFEST_FILE
    # A build killed between its two renames left the old index beside the path: put it back.
    if not index_dir.is_dir():
        recover_replacement(index_dir)
    if not index_dir.is_dir():
        raise IndexFormatError(
            f"{index_dir}: not a directory (build one with `hybridsearch index`)"
        )
    if not path.is_file():
        raise IndexFormatError(f"{index_dir}: no {MANIFEST_FILE}; not a hybridsearch index")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path}: not a hybridsearch index manifest")
    version = obj.get("format_version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise IndexFormatError(
            f"{index_dir}: index format version {version}, but this hybridsearch reads versions "
            f"{readable}; rebuild the index with `hybridsearch index` (or upgrade hybridsearch)"
        )
    try:
        encoder_obj = obj.get("encoder")
        created_at = str(obj["created_at"])
        manifest = Manifest(
            document_count=int(obj["document_count"]),
            ordinal_count=int(obj["ordinal_count"]),
            created_at=created_at,
            analyzer=str(obj.get("analyzer", "en_stem")),
            encoder=EncoderInfo(**encoder_obj) if encoder_obj else None,
            dense_index=str(obj.get("dense_index", "exact")),
            format_version=int(version),
            generation=int(obj.get("generation", 0)),
            committed_at=str(obj.get("committed_at") or created_at),
            journal_bytes=int(obj.get("journal_bytes", 0)),
            data_dir=str(obj.get("data_dir", "")),
            schema=CollectionSchema.from_json(obj.get("schema") or {}),
            sparse_backend=str(obj.get("sparse_backend", "tantivy")),
            lucene=LuceneInfo(**obj["lucene"]) if obj.get("lucene") else None,
            hnsw_m=int(obj.get("hnsw_m", 0)),
            hnsw_ef_construction=int(obj.get("hnsw_ef_construction", 0)),
        )
    except (KeyError, TypeError, ValueError, SchemaError) as exc:
        raise IndexFormatError(f"{path}: invalid manifest ({exc})") from exc
    if not 0 <= manifest.document_count <= manifest.ordinal_count or manifest.journal_bytes < 0:
        raise IndexFormatError(f"{path}: inconsistent counts in the manifest")
    if manifest.sparse_backend not in ("tantivy", "lucene") or (
        (manifest.sparse_backend == "lucene") != (manifest.lucene is not None)
    ):
        raise IndexFormatError(
            f"{path}: sparse backend {manifest.sparse_backend!r} is not one this hybridsearch "
            "reads (tantivy, or lucene with its settings)"
        )
    if manifest.data_dir and not _DATA_DIR_NAME.fullmatch(manifest.data_dir):
        raise IndexFormatError(f"{path}: invalid data directory {manifest.data_dir!r}")
    return manifest


def data_dir_name(generation: int) -> str:
    """The name of the data directory a compaction to ``generation`` writes."""
    return f"{DATA_DIR_PREFIX}{generation:08d}"


def format_version_for(data_dir: str) -> int:
    """The format version a manifest with this data directory is written as."""
    return GENERATIONS_FORMAT_VERSION if data_dir else FORMAT_VERSION
