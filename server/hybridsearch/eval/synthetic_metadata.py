"""Synthetic typed metadata for a BEIR corpus, so filters can be tried on real text.

The shared collections carry no metadata. `attach` copies a corpus and gives every document
the same deterministic metadata on every run and machine (a function of its id alone, via
sha256), declared by `SCHEMA`:

====================  ==========================  ==========================================
field                 type                        values
====================  ==========================  ==========================================
``year``              integer                     2000 to 2024, uniform
``journal``           keyword                     one of `JOURNALS`, uniform
``topics``            keyword, multi-valued       1 to 3 distinct of `TOPICS`
``open_access``       boolean                     true for about 40 %
``impact``            float                       [0, 10), two decimals
``published``         datetime                    a day of ``year``, midnight UTC
``erratum``           keyword                     ``"minor"`` or ``"major"`` for about 10 %,
                                                  absent otherwise (for ``is_null``/``exists``)
====================  ==========================  ==========================================

Run it as ``python scripts/synthetic_metadata.py --corpus C --out DIR`` (writes
``DIR/corpus.jsonl`` and ``DIR/schema.json``; the BEIR folder's other files are not copied),
then ``hybridsearch index --corpus DIR/corpus.jsonl --schema DIR/schema.json``; or with
``--index-cache CACHE --model MODEL`` to build (or reuse) the hybrid index in an eval index
cache, as `make test` does for the clients' live tests (`metadata_index`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from hybridsearch.encoders.base import Encoder
from hybridsearch.eval.index_cache import cached_index
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.storage.corpus import open_text
from hybridsearch.storage.files import write_bytes_atomic, write_json_atomic
from hybridsearch.storage.manifest import EncoderInfo

JOURNALS = ("nature", "science", "cell", "lancet", "nejm", "plos-one")
TOPICS = (
    "genetics",
    "oncology",
    "immunology",
    "neuroscience",
    "cardiology",
    "epidemiology",
    "microbiology",
    "pharmacology",
)
SCHEMA = CollectionSchema.from_json(
    {
        "fields": [
            {"name": "year", "type": "integer"},
            {"name": "journal", "type": "keyword"},
            {"name": "topics", "type": "keyword", "multi_valued": True},
            {"name": "open_access", "type": "boolean"},
            {"name": "impact", "type": "float"},
            {"name": "published", "type": "datetime"},
            {"name": "erratum", "type": "keyword"},
        ]
    }
)


def metadata_for(doc_id: str) -> dict[str, Any]:
    """The synthetic metadata of the document ``doc_id`` (same id, same metadata)."""
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()

    def draw(i: int, n: int) -> int:  # a uniform-enough integer in [0, n) from 2 digest bytes
        return int.from_bytes(digest[2 * i : 2 * i + 2], "big") % n

    year = 2000 + draw(0, 25)
    topics: list[str] = []
    for i in range(1 + draw(1, 3)):
        topic = TOPICS[draw(2 + i, len(TOPICS))]
        if topic not in topics:
            topics.append(topic)
    day = dt.date(year, 1, 1) + dt.timedelta(days=draw(5, 365))
    metadata: dict[str, Any] = {
        "year": year,
        "journal": JOURNALS[draw(6, len(JOURNALS))],
        "topics": topics,
        "open_access": draw(7, 100) < 40,
        "impact": draw(8, 1000) / 100,
        "published": f"{day.isoformat()}T00:00:00Z",
    }
    if draw(9, 100) < 10:
        metadata["erratum"] = "major" if draw(10, 2) else "minor"
    return metadata


def attach(corpus: Path, out_dir: Path) -> Path:
    """Write ``out_dir/corpus.jsonl`` (``corpus`` with synthetic metadata merged into each
    line's ``metadata``) and ``out_dir/schema.json``; returns the corpus path.

    Only BEIR lines (with ``_id``) are supported; both files are written atomically.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    with open_text(corpus) as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("_id"), str):
                raise ValueError(f"{corpus}:{number}: not a BEIR line (no string _id)")
            obj["metadata"] = {**(obj.get("metadata") or {}), **metadata_for(obj["_id"])}
            lines.append(json.dumps(obj, ensure_ascii=False))
    target = out_dir / "corpus.jsonl"
    write_bytes_atomic(target, ("\n".join(lines) + "\n").encode("utf-8"))
    write_json_atomic(out_dir / "schema.json", SCHEMA.to_json())
    return target


def metadata_index(
    corpus: Path,
    encoder: Encoder,
    encoder_info: EncoderInfo,
    cache: Path,
    *,
    progress: bool = True,
) -> Path:
    """The hybrid index of ``corpus`` with synthetic metadata declared by `SCHEMA`, built
    through the eval index cache (`index_cache.cached_index`) on first use.

    The corpus with metadata is written to ``<cache>/synthetic-metadata/<collection>/``.
    """
    source = attach(corpus, cache / "synthetic-metadata" / corpus.parent.name)
    return cached_index(source, encoder, encoder_info, cache, progress=progress, schema=SCHEMA)
