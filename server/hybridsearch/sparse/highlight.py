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

A field no longer than ``max_chars`` is its own snippet; a longer one is cut to a window of at
most ``max_chars`` code points that starts and ends on token boundaries and holds the most
matched tokens (the earliest run of them on a tie), with whole tokens of context around them.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence

from hybridsearch.sparse.analysis import analyzed_tokens
from hybridsearch.types import Highlight, StoredField, TextSpan


def highlight_field(
    field: StoredField, text: str, query_terms: Collection[str], max_chars: int
) -> Highlight | None:
    """The highlight of one stored field, or None when no query term occurs in it.

    ``query_terms`` are analysed terms (`analysis.analyze` of the query text).
    """
    if not text or not query_terms:
        return None
    tokens = analyzed_tokens(text)
    matched = [(start, end) for term, start, end in tokens if term in query_terms]
    if not matched:
        return None
    if len(text) <= max_chars:
        start, end = 0, len(text)
    else:
        starts = [token[1] for token in tokens]
        ends = [token[2] for token in tokens]
        start, end = _best_window(matched, starts, ends, max_chars)
    matches = tuple(
        TextSpan(max(s, start) - start, min(e, end) - start)
        for s, e in matched
        if s < end and e > start
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


def _best_window(
    matched: Sequence[tuple[int, int]],
    starts: Sequence[int],
    ends: Sequence[int],
    max_chars: int,
) -> tuple[int, int]:
    """``[start, end)`` of a window of whole tokens, at most ``max_chars`` long, holding the
    most matched tokens (the earliest run of them on a tie), widened by whole tokens on both
    sides while it fits. A matched token longer than ``max_chars`` alone is cut to it."""
    best_count, best = 0, matched[0]
    last = 0  # one past the last matched token of the run that starts at ``first``
    for first, (run_start, _) in enumerate(matched):
        last = max(last, first)
        while last < len(matched) and matched[last][1] - run_start <= max_chars:
            last += 1
        if last - first > best_count:
            best_count, best = last - first, (run_start, matched[last - 1][1])
    start, end = best
    if best_count == 0:  # every matched token is longer than a window
        return start, start + max_chars
    # Context: half the spare room before the matches (whole tokens), the rest after, then
    # whatever is still spare before.
    start = _widen_left(starts, start, start - (max_chars - (end - start)) // 2)
    end = _widen_right(ends, end, start + max_chars)
    start = _widen_left(starts, start, end - max_chars)
    return start, end


def _widen_left(starts: Sequence[int], start: int, earliest: int) -> int:
    """The first token start in ``[earliest, start]`` (``start`` itself when none is earlier)."""
    i = bisect.bisect_left(starts, earliest)
    return min(starts[i], start) if i < len(starts) else start


def _widen_right(ends: Sequence[int], end: int, latest: int) -> int:
    """The last token end in ``[end, latest]`` (``end`` itself when none is later)."""
    i = bisect.bisect_right(ends, latest)
    return max(ends[i - 1], end) if i > 0 else end
