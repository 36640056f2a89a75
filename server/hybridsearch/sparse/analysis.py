"""Text analysis shared by indexing and querying.

The index field uses tantivy's built-in ``en_stem`` analyser (simple tokenizer, remove_long(40),
lowercase, English Snowball stemmer). Queries and RM3 feedback text are analysed in Python with
a `TextAnalyzerBuilder` of the same chain, so query terms match index terms exactly. Queries
are never passed to tantivy's query parser (it raises on malformed syntax and segfaults on
deeply nested brackets): they are built from these terms.
"""

from __future__ import annotations

import threading
from collections import Counter

import tantivy

INDEX_TOKENIZER = "en_stem"
MAX_TOKEN_CHARS = 40

_local = threading.local()


def _analyzer() -> tantivy.TextAnalyzer:
    # One analyser per thread: building is cheap, sharing across threads is not documented safe.
    analyzer = getattr(_local, "analyzer", None)
    if analyzer is None:
        analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )
        _local.analyzer = analyzer
    return analyzer


def analyze(text: str) -> list[str]:
    """The index terms of ``text``, in order, with repeats."""
    terms: list[str] = _analyzer().analyze(text)
    return terms


def analyzed_tokens(text: str) -> list[tuple[str, int, int]]:
    """The index terms of ``text`` with where each came from: ``(term, start, end)``, offsets
    in Unicode code points (``text[start:end]`` is the original token)."""
    tokens = _analyzer().pre_tokenize(text).tokens
    return [(t.text, t.char_offset_from, t.char_offset_to) for t in tokens]


def term_counts(text: str) -> Counter[str]:
    """Term frequencies of ``text`` after analysis."""
    return Counter(analyze(text))
