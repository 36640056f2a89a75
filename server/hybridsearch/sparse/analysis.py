"""Text analysis shared by indexing and querying.

The index field uses tantivy's built-in ``en_stem`` analyser (simple tokenizer, remove_long(40),
lowercase, English Snowball stemmer). Queries and RM3 feedback text are analysed in Python with
a `TextAnalyzerBuilder` of the same chain, so query terms match index terms exactly. Queries
are never passed to tantivy's query parser (it raises on malformed syntax and segfaults on
deeply nested brackets): they are built from these terms.

BM25 queries leave out Lucene's 33 English stopwords (`query_term_counts`); the index keeps
them (document lengths, highlights and phrase-like snippets are unchanged), so this needs no
re-index. As in Lucene, a word is matched against the list before it is stemmed: "its" and
"being" stay in the query (as the terms "it" and "be"). A query made only of stopwords keeps
them: "to be or not to be" still matches.
Measured on the seven shared collections (docs/effectiveness.md, "Sparse arm variants"):
hybrid mean nDCG@10 +.0087, BM25 alone +.0067.
"""

from __future__ import annotations

import threading
from collections import Counter

import tantivy

INDEX_TOKENIZER = "en_stem"
#: tantivy's ``en_stem`` drops tokens of this many UTF-8 bytes or more (not characters):
#: such a word is neither indexed nor searched (a 40-hex-digit hash, 20 Cyrillic letters).
MAX_TOKEN_BYTES = 40

#: Lucene's English stopwords (EnglishAnalyzer's default set; Anserini's and so Pyserini's).
LUCENE_STOPWORDS = [
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with",
]

_STOPWORDS = frozenset(LUCENE_STOPWORDS)

_local = threading.local()


def _analyzer() -> tantivy.TextAnalyzer:
    # One analyser per thread: building is cheap, sharing across threads is not documented safe.
    analyzer = getattr(_local, "analyzer", None)
    if analyzer is None:
        analyzer = _builder().filter(tantivy.Filter.stemmer("english")).build()
        _local.analyzer = analyzer
    return analyzer


def _word_analyzer() -> tantivy.TextAnalyzer:
    """The index chain without its stemmer: the lowercased words the terms come from."""
    analyzer = getattr(_local, "word_analyzer", None)
    if analyzer is None:
        analyzer = _builder().build()
        _local.word_analyzer = analyzer
    return analyzer


def _builder() -> tantivy.TextAnalyzerBuilder:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES))
        .filter(tantivy.Filter.lowercase())
    )


def analyze(text: str) -> list[str]:
    """The index terms of ``text``, in order, with repeats."""
    terms: list[str] = _analyzer().analyze(text)
    return terms


def analyzed_tokens(text: str) -> list[tuple[str, int, int]]:
    """The index terms of ``text`` with where each came from: ``(term, start, end)``, offsets
    in Unicode code points (``text[start:end]`` is the original token)."""
    tokens = _analyzer().pre_tokenize(text).tokens
    return [(t.text, t.char_offset_from, t.char_offset_to) for t in tokens]


def analyze_words(text: str) -> list[str]:
    """The words the index terms of ``text`` come from: the chain without its stemmer."""
    words: list[str] = _word_analyzer().analyze(text)
    return words


def term_counts(text: str) -> Counter[str]:
    """Term frequencies of ``text`` after analysis."""
    return Counter(analyze(text))


#: Words whose stems a thread remembers (`_stem`); past this the memory starts afresh.
_STEMS_KEPT = 50_000


def _stem(word: str) -> str | None:
    """The index term of one lowercased word of the chain without its stemmer; None where
    the word alone is not one whole token of the chain (lowercasing can turn a letter into a
    letter and a combining mark, which the tokenizer splits on, or make a word too long).

    Snowball stems each token alone, so a word's term does not depend on the text around it;
    a query's words repeat across queries, so each thread remembers their stems: analysing the
    text twice (with and without the stemmer) cost about twice one analysis.
    """
    stems: dict[str, str] | None = getattr(_local, "stems", None)
    if stems is None or len(stems) >= _STEMS_KEPT:
        stems = _local.stems = {}
    term = stems.get(word)
    if term is None:
        tokens = _analyzer().pre_tokenize(word).tokens
        if len(tokens) != 1 or tokens[0].char_offset_to - tokens[0].char_offset_from != len(word):
            return None  # the word is not one whole token of the chain: its term may differ
        term = stems[word] = tokens[0].text
    return term


def terms_without_stopwords(text: str) -> list[str]:
    """The index terms of ``text`` whose word (lowercased, before stemming) is not one of
    `LUCENE_STOPWORDS`, in order, with repeats."""
    words = analyze_words(text)
    kept: list[str] = []
    for word in words:
        if word in _STOPWORDS:
            continue
        term = _stem(word)
        if term is None:
            # A word that does not stem alone: both chains over the whole text, aligned
            # token by token (the stemmer maps each token to one term).
            terms = analyze(text)
            return [t for w, t in zip(words, terms, strict=True) if w not in _STOPWORDS]
        kept.append(term)
    return kept


def query_term_counts(text: str) -> Counter[str]:
    """The BM25 query terms of ``text`` with their repeats: `term_counts` without the terms of
    stopwords (`terms_without_stopwords`), unless every word is one (then all of them, so a
    stopword-only query still matches)."""
    kept = Counter(terms_without_stopwords(text))
    return kept if kept else term_counts(text)
