"""`bench.bm25_scale` reports the mean number of BM25 query terms, counted as the arm counts
them, in its JSON as well as in its markdown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import bm25_scale
from hybridsearch.sparse.analysis import query_term_counts

SERVER = "stopwords left out (the server)"
EVERY = "every term kept (before)"


def test_mean_terms_counts_the_distinct_terms_each_query_form_searches() -> None:
    queries = [
        "the cell of a cell",  # stopwords dropped, a repeat counted once: cell
        "to be or not",  # only stopwords: the server keeps them all
        "cells divide in the tissue",  # cell, divid, tissu (+ in, the when kept)
    ]
    forms = bm25_scale.query_forms(queries)
    # The server's form is exactly the weights the sparse arm builds for a query.
    assert forms[SERVER] == [
        {t: float(n) for t, n in query_term_counts(q).items()} for q in queries
    ]
    means = bm25_scale.mean_terms(forms)
    assert means[SERVER] == pytest.approx((1 + 4 + 3) / 3)
    assert means[EVERY] == pytest.approx((4 + 4 + 5) / 3)


@pytest.mark.shared_data
def test_a_run_writes_the_mean_query_terms_to_its_json_and_markdown(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    monkeypatch.setattr(bm25_scale, "RESULTS", results)
    monkeypatch.setattr(bm25_scale, "WORK", tmp_path / "work")
    argv = ["--docs", "200", "--rounds", "1", "--no-lucene", "--label", "t"]
    monkeypatch.setattr(sys, "argv", ["bm25_scale", *argv, "--shared-data", str(shared_data)])
    assert bm25_scale.main() == 0
    written = json.loads((results / "t-bm25-scale.json").read_text())
    assert set(written.get("mean_query_terms", {})) == {SERVER, EVERY}
    queries = [text for _, text in bm25_scale.load_queries(shared_data / "scifact")]
    expected = bm25_scale.mean_terms(bm25_scale.query_forms(queries))
    assert written["queries"] == len(queries)
    assert written["mean_query_terms"] == pytest.approx(expected)
    assert written["mean_query_terms"][SERVER] < written["mean_query_terms"][EVERY]
    markdown = (results / "t-bm25-scale.md").read_text()
    assert f"| tantivy, {SERVER} | {expected[SERVER]:.1f} |" in markdown
    assert f"| tantivy, {EVERY} | {expected[EVERY]:.1f} |" in markdown
