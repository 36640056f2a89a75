"""Highlights: a snippet of a stored field with the query's matched terms located.

A token matches when its analysed form (the BM25 analyser of `hybridsearch.sparse.analysis`:
simple tokenizer, remove_long(40), lowercase, English stemmer) equals an analysed query term,
so "flows" in a document matches the query "flow" exactly when BM25 scores it. Tokens and their
offsets come from the same tantivy analyser (`TextAnalyzer.pre_tokenize`, whose offsets are in
Unicode code points, as Python indexes strings), so spans can be sliced out of the snippet
directly and sent as they are.

tantivy's own `SnippetGenerator` was not used: it reads a stored tantivy text field (our body
field is indexed only; title and text are stored in one JSON blob), highlights one field built
from title and text together, and reports byte offsets.

A field no longer than ``max_chars`` is its own snippet; a longer one is cut to the window of at
most ``max_chars`` code points, starting and ending on token boundaries, holding the most
matched tokens (the earliest such window on a tie).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from hybridsearch.sparse.analysis import analyzed_tokens
from hybridsearch.types import Highlight, StoredField, TextSpan


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    matched: bool


def highlight_field(
    field: StoredField, text: str, query_terms: Collection[str], max_chars: int
) -> Highlight | None:
    """The highlight of one stored field, or None when no query term occurs in it.

    ``query_terms`` are analysed terms (`analysis.analyze` of the query text).
    """
    if not text or not query_terms:
        return None
    tokens = [_Token(start, end, term in query_terms) for term, start, end in analyzed_tokens(text)]
    if not any(token.matched for token in tokens):
        return None
    if len(text) <= max_chars:
        start, end = 0, len(text)
    else:
        start, end = _best_window(tokens, max_chars)
    matches = tuple(
        TextSpan(max(t.start, start) - start, min(t.end, end) - start)
        for t in tokens
        if t.matched and t.start < end and t.end > start
    )
    return Highlight(field=field, snippet=text[start:end], matches=matches)


def highlight_hit(
    title: str, text: str, query_terms: Collection[str], max_chars: int
) -> tuple[Highlight, ...]:
    """The highlights of a hit's stored fields: title first, then text, each if it matched."""
    found = (
        highlight_field(StoredField.TITLE, title, query_terms, max_chars),
        highlight_field(StoredField.TEXT, text, query_terms, max_chars),
    )
    return tuple(h for h in found if h is not None)


def _best_window(tokens: Sequence[_Token], max_chars: int) -> tuple[int, int]:
    """``[start, end)`` of the window of whole tokens, at most ``max_chars`` long, with the most
    matched tokens; the earliest on a tie. A matched token longer than ``max_chars`` on its own
    is cut at ``max_chars`` (a window must hold something)."""
    best_count, best = -1, (0, 0)
    last = 0  # index one past the last token of the current window
    count = 0  # matched tokens in tokens[first:last]
    for first, token in enumerate(tokens):
        last = max(last, first)
        while last < len(tokens) and tokens[last].end - token.start <= max_chars:
            count += tokens[last].matched
            last += 1
        if last > first and count > best_count:
            best_count, best = count, (token.start, tokens[last - 1].end)
        if last > first:
            count -= token.matched
    if best_count <= 0:  # every matched token is longer than a window
        token = next(t for t in tokens if t.matched)
        return token.start, token.start + max_chars
    return best
