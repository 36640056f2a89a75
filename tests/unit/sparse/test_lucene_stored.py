"""How a stored Lucene document becomes title and text (no JVM needed)."""

from __future__ import annotations

import json

import pytest

from hybridsearch.sparse.lucene_index import stored_title_text


@pytest.mark.parametrize(
    ("raw", "contents", "expected"),
    [
        # hybridsearch's own build and BEIR's flat Pyserini indexes: title and text in raw.
        (json.dumps({"id": "1", "contents": "T B", "title": "T", "text": "B"}), None, ("T", "B")),
        (json.dumps({"_id": "1", "title": "T", "text": "B"}), None, ("T", "B")),
        # A plain Pyserini JsonCollection: id + contents.
        (json.dumps({"id": "1", "contents": "all of it"}), None, ("", "all of it")),
        # Raw that is not JSON (TREC collections), or only stored contents.
        ("<DOC>text</DOC>", None, ("", "<DOC>text</DOC>")),
        (None, "stored contents", ("", "stored contents")),
        (None, None, ("", "")),
    ],
)
def test_stored_title_text(
    raw: str | None, contents: str | None, expected: tuple[str, str]
) -> None:
    assert stored_title_text(raw, contents) == expected
