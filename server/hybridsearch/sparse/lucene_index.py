"""The Lucene side of an index: BM25 over an Anserini/Pyserini index through Anserini's jar.

A query is what Pyserini's ``LuceneSearcher.search`` runs: Anserini's default English
analyser (Porter stemmer, Lucene's stopwords), ``BagOfWordsQueryGenerator`` over the
``contents`` field, ``BM25Similarity(k1, b)`` (Pyserini's defaults 0.9 / 0.4), top-k sorted by
score then by ``id`` (``SimpleSearcher.BREAK_SCORE_TIES_BY_DOCID``): the same docids and scores.

Ordinals are Lucene's own document numbers: the index is read-only here, and an index
without deletions numbers its documents 0..n-1 for as long as it is not written to
(`LuceneReader` checks the segments file the manifest recorded, so a changed index is
refused rather than mis-mapped). The id map (``ids.json``) and the vector rows follow them.

Hits cross JNI as one string: Lucene's ``ScoreDoc.toString`` over the top-k array, built in
Java by a method handle (``Arrays.toString`` after the ``TopDocs.scoreDocs`` getter), so a
1000-deep list costs one call instead of two per hit (pyjnius would wrap every ``ScoreDoc``).
Scores are printed by ``Float.toString``, which round-trips the float32 exactly.

The search itself (that method handle bound to its arguments, as a ``Callable``) runs on a
Java ``ForkJoinPool`` while the Python thread sleeps until it is done: measured 2.4x the
throughput of calling ``IndexSearcher.search`` from the Python thread (SciFact, 1000 deep:
99 against 42 queries/s, one thread, `bench/lucene_arm.py`'s machine). pyjnius releases the
GIL while Java runs (a Java ``Thread.sleep`` in one thread does not stop another Python
thread), so either way searches from several server threads do not serialise on the GIL.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridsearch.errors import IndexFormatError
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.sparse.lucene_jvm import java_cast, java_class
from hybridsearch.types import RankedList

CONTENTS_FIELD = "contents"  # Anserini's Constants.CONTENTS
ID_FIELD = "id"  # Anserini's Constants.ID
RAW_FIELD = "raw"  # Anserini's Constants.RAW
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
_HIT = re.compile(r"doc=(\d+) score=(\S+) ")
CALLABLE = "java.util.concurrent.Callable"
_POLL_S = 0.0001  # how often a waiting search thread looks at its Java task


@dataclass(frozen=True, slots=True)
class Bm25Params:
    """Lucene's BM25 parameters (Pyserini's defaults)."""

    k1: float = DEFAULT_K1
    b: float = DEFAULT_B


def segments_file(path: Path) -> str:
    """The name of the newest ``segments_N`` file of a Lucene index directory ("" if none)."""
    names = [p.name for p in path.glob("segments_*")]
    return max(names, key=lambda n: int(n.split("_", 1)[1], 36)) if names else ""


class _Jvm:
    """The Java classes and method handles this module uses (looked up once)."""

    def __init__(self) -> None:
        klass = java_class("java.lang.Class")
        handles = java_class("java.lang.invoke.MethodHandles")
        method_type = java_class("java.lang.invoke.MethodType")
        string = klass.forName("java.lang.String")
        lookup = handles.publicLookup()
        scores_getter = lookup.unreflectGetter(
            klass.forName("org.apache.lucene.search.TopDocs").getField("scoreDocs")
        )
        to_string = lookup.findStatic(
            klass.forName("java.util.Arrays"),
            "toString",
            method_type.methodType(string, klass.forName("[Ljava.lang.Object;")),
        ).asType(
            method_type.methodType(string, klass.forName("[Lorg.apache.lucene.search.ScoreDoc;"))
        )
        self.hits_text = handles.filterReturnValue(scores_getter, to_string)
        # (IndexSearcher, Query, k, Sort, doDocScores) -> the hits as one string.
        top_field_docs = klass.forName("org.apache.lucene.search.TopFieldDocs")
        search = lookup.findVirtual(
            klass.forName("org.apache.lucene.search.IndexSearcher"),
            "search",
            method_type.methodType(
                top_field_docs,
                [
                    klass.forName("org.apache.lucene.search.Query"),
                    java_class("java.lang.Integer").TYPE,
                    klass.forName("org.apache.lucene.search.Sort"),
                    java_class("java.lang.Boolean").TYPE,
                ],
            ),
        )
        self.search_hits_text = handles.filterReturnValue(
            search, self.hits_text.asType(method_type.methodType(string, top_field_docs))
        )
        self.handles = handles
        self.proxies = java_class("java.lang.invoke.MethodHandleProxies")
        self.callable = klass.forName(CALLABLE)
        self.integer = java_class("java.lang.Integer")
        self.boolean = java_class("java.lang.Boolean")
        self.fork_join_pool = java_class("java.util.concurrent.ForkJoinPool")
        self.array_list = java_class("java.util.ArrayList")
        self.paths = java_class("java.nio.file.Paths")
        self.fs_directory = java_class("org.apache.lucene.store.FSDirectory")
        self.directory_reader = java_class("org.apache.lucene.index.DirectoryReader")
        self.index_searcher = java_class("org.apache.lucene.search.IndexSearcher")
        self.bm25 = java_class("org.apache.lucene.search.similarities.BM25Similarity")
        self.term = java_class("org.apache.lucene.index.Term")
        self.term_query = java_class("org.apache.lucene.search.TermQuery")
        self.simple_searcher = java_class("io.anserini.search.SimpleSearcher")
        self.analyzer = java_class("io.anserini.analysis.DefaultEnglishAnalyzer")
        self.analyzer_utils = java_class("io.anserini.analysis.AnalyzerUtils")
        self.query_generator = java_class("io.anserini.search.query.BagOfWordsQueryGenerator")


_jvm_lock = threading.Lock()
_jvm: _Jvm | None = None


def _classes() -> _Jvm:
    global _jvm  # noqa: PLW0603 (looked up once per process)
    with _jvm_lock:
        if _jvm is None:
            _jvm = _Jvm()
        return _jvm


class LuceneReader:
    """BM25 search and stored fields of one Lucene index directory (read-only).

    Thread-safe: Lucene's ``IndexSearcher`` is; RM3 searchers are made once per setting.
    """

    def __init__(
        self,
        path: Path,
        params: Bm25Params | None = None,
        *,
        segments: str | None = None,
        search_threads: int | None = None,
    ) -> None:
        """``segments``: the segments file the index had when it was built or attached
        (`IndexFormatError` if it has another now); None: not checked. ``search_threads``:
        Java threads that run searches (default: one per core)."""
        found = segments_file(path)
        if not found:
            raise IndexFormatError(f"no Lucene index in {path}")
        if segments is not None and found != segments:
            raise IndexFormatError(
                f"the Lucene index {path} changed since it was attached ({found}, was "
                f"{segments}); attach it again (`hybridsearch index --lucene-index`)"
            )
        self.path = path
        self.params = params or Bm25Params()
        jvm = _classes()
        self._jvm = jvm
        try:
            directory = jvm.fs_directory.open(jvm.paths.get(str(path)))
            self._reader = jvm.directory_reader.open(directory)
        except Exception as exc:  # a JavaException: not a Lucene index we can read
            raise IndexFormatError(f"cannot open the Lucene index {path}: {exc}") from exc
        if self._reader.hasDeletions():
            raise IndexFormatError(
                f"the Lucene index {path} has deleted documents; force-merge it (Anserini's "
                "IndexCollection -optimize) before attaching it"
            )
        self._searcher = jvm.index_searcher(
            java_cast("org.apache.lucene.index.IndexReader", self._reader)
        )
        self._searcher.setSimilarity(jvm.bm25(self.params.k1, self.params.b))
        self._analyzer = jvm.analyzer.newDefaultInstance()
        self._generator = jvm.query_generator()
        self._sort = jvm.simple_searcher.BREAK_SCORE_TIES_BY_DOCID
        self._stored = self._reader.storedFields()
        self._rm3: dict[tuple[int, int, float], Any] = {}
        self._rm3_lock = threading.Lock()
        # Daemon worker threads (a ForkJoinPool's): they never hold the JVM open at exit.
        self._pool = jvm.fork_join_pool(search_threads or os.cpu_count() or 1)
        self.search_text("warm up", 10)  # the first search resolves classes: not a caller's

    def close(self) -> None:
        """Stop the search threads and release the index files (after the last search)."""
        self._pool.shutdown()
        self._reader.close()

    @property
    def num_docs(self) -> int:
        """Documents in the index."""
        n: int = self._reader.numDocs()
        return n

    @property
    def max_doc(self) -> int:
        """One past the largest document number (= `num_docs`: no deletions)."""
        n: int = self._reader.maxDoc()
        return n

    def doc_freq(self, term: str) -> int:
        """Documents whose ``contents`` hold ``term`` after Anserini's analyser (a term already
        analysed by our analyser is stemmed again: close, not exact)."""
        analysed = self.analyze(term)
        if not analysed:
            return 0
        n: int = self._reader.docFreq(self._jvm.term(CONTENTS_FIELD, analysed[0]))
        return n

    def analyze(self, text: str) -> list[str]:
        """``text`` through Anserini's analyser (the one the index and queries use)."""
        tokens = self._jvm.analyzer_utils.analyze(self._analyzer, text)
        return [str(t) for t in tokens.toArray()]

    def search_text(self, text: str, depth: int) -> RankedList:
        """The ``depth`` best documents for the query ``text``: Pyserini's run, as ordinals.

        The search runs on a Java thread of this reader's pool while the calling thread
        waits in ``time.sleep`` (see the module docstring for why).
        """
        if depth <= 0 or not text.strip():
            return RankedList([], [])
        jvm = self._jvm
        query = self._generator.buildQuery(CONTENTS_FIELD, self._analyzer, text)
        bound = jvm.handles.insertArguments(
            jvm.search_hits_text,
            0,
            self._searcher,
            query,
            jvm.integer(depth),
            self._sort,
            jvm.boolean(True),
        )
        task = self._pool.submit(
            java_cast(CALLABLE, jvm.proxies.asInterfaceInstance(jvm.callable, bound))
        )
        while not task.isDone():
            time.sleep(_POLL_S)
        return _parse_hits(task.get())

    def rm3_search(
        self, text: str, depth: int, *, fb_terms: int, fb_docs: int, original_query_weight: float
    ) -> tuple[RankedList, dict[str, float]]:
        """Anserini's RM3 (``SimpleSearcher.set_rm3``) and its expanded query's term weights."""
        searcher = self._rm3_searcher(fb_terms, fb_docs, original_query_weight)
        hits = searcher.search(text, depth)
        ordinals = [int(h.lucene_docid) for h in hits]
        scores = [float(h.score) for h in hits]
        terms = searcher.get_feedback_terms(text)
        expansion = {str(k): float(terms.get(k)) for k in terms.keySet().toArray()} if terms else {}
        return RankedList(ordinals, np.asarray(scores, dtype=np.float32)), expansion

    def _rm3_searcher(self, fb_terms: int, fb_docs: int, weight: float) -> Any:
        key = (fb_terms, fb_docs, weight)
        with self._rm3_lock:
            searcher = self._rm3.get(key)
            if searcher is None:
                searcher = self._jvm.simple_searcher(str(self.path))
                searcher.set_bm25(self.params.k1, self.params.b)
                # Feedback vectors from stored term vectors if indexed, else from the stored
                # raw JSON re-analysed (Pyserini's set_rm3 makes the same choice).
                collection = None if self._reader.getTermVectors(0) else "JsonCollection"
                searcher.set_rm3(collection, fb_terms, fb_docs, weight, False, True)
                self._rm3[key] = searcher
            return searcher

    def doc_id(self, ordinal: int) -> str:
        """The external id of a document (its stored ``id``)."""
        return str(self._stored.document(ordinal).get(ID_FIELD))

    def all_ids(self) -> list[str]:
        """Every document's external id, by ordinal."""
        return [self.doc_id(i) for i in range(self.max_doc)]

    def fetch(self, ordinals: Iterable[int]) -> dict[int, StoredDoc]:
        """Stored fields: title / text from the stored raw JSON when it has them, else the
        stored ``contents`` (or raw text) as text; absent when nothing is stored."""
        found: dict[int, StoredDoc] = {}
        bound = self.max_doc
        for ordinal in ordinals:
            if 0 <= ordinal < bound:
                found[ordinal] = self._stored_doc(ordinal)
        return found

    def _stored_doc(self, ordinal: int) -> StoredDoc:
        doc = self._stored.document(ordinal)
        title, text = stored_title_text(doc.get(RAW_FIELD), doc.get(CONTENTS_FIELD))
        return StoredDoc(str(doc.get(ID_FIELD)), ordinal, title, text, {})

    def ordinals_of_id(self, doc_id: str, limit: int) -> list[int]:
        """The ordinal of the document with this id (ids are unique in an attached index)."""
        query = self._jvm.term_query(self._jvm.term(ID_FIELD, doc_id))
        top = self._searcher.search(query, max(1, limit))
        args = self._jvm.array_list()
        args.add(top)
        hits = _parse_hits(self._jvm.hits_text.invokeWithArguments(args))
        return [int(o) for o in hits.ordinals]

    def stored_range(self, start: int, stop: int) -> list[StoredDoc]:
        """Stored fields of ordinals ``start``..``stop - 1``."""
        return [self._stored_doc(i) for i in range(max(0, start), min(stop, self.max_doc))]

    def count_ordinals_from(self, start: int) -> int:
        """Documents past ``start`` (none: a Lucene index here is never written to)."""
        return max(0, self.max_doc - start)


def _parse_hits(text: str) -> RankedList:
    pairs = _HIT.findall(text)
    if not pairs:
        return RankedList([], [])
    ordinals = np.fromiter((int(d) for d, _ in pairs), dtype=np.int64, count=len(pairs))
    scores = np.asarray([s for _, s in pairs], dtype=np.float32)
    return RankedList(ordinals, scores)


def stored_title_text(raw: str | None, contents: str | None) -> tuple[str, str]:
    """Title and text of a stored Lucene document: a raw JSON object's ``title`` / ``text``
    (BEIR and hybridsearch builds), its ``contents``, or the raw / contents string itself."""
    if raw:
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        if isinstance(obj, Mapping):
            if "text" in obj or "title" in obj:
                return str(obj.get("title") or ""), str(obj.get("text") or "")
            if "contents" in obj:
                return "", str(obj["contents"])
        elif contents is None:
            return "", raw
    return "", contents or ""
