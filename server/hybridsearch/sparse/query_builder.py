"""BM25 queries built from analysed terms (never through tantivy's query parser)."""

from __future__ import annotations

from collections.abc import Mapping

import tantivy

BODY_FIELD = "body"


def build_bm25_query(schema: tantivy.Schema, term_weights: Mapping[str, float]) -> tantivy.Query:
    """A disjunction of term queries on the body field, each boosted by its weight.

    A query term repeated n times gets weight n, which scores exactly like n repeated SHOULD
    clauses (bag-of-words BM25, as Lucene/Anserini score a repeated term). RM3 passes its
    expansion weights the same way. An empty mapping gives a query that matches nothing.
    """
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
    for term, weight in sorted(term_weights.items()):
        if weight <= 0:
            continue
        term_query = tantivy.Query.term_query(schema, BODY_FIELD, term)
        if weight != 1.0:
            term_query = tantivy.Query.boost_query(term_query, float(weight))
        clauses.append((tantivy.Occur.Should, term_query))
    if not clauses:
        return tantivy.Query.empty_query()
    return tantivy.Query.boolean_query(clauses)
