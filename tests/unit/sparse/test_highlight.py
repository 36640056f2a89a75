"""The highlighter: snippets and matched spans in code points, over the BM25 analyser."""

from __future__ import annotations

from hybridsearch.sparse.analysis import analyze
from hybridsearch.sparse.highlight import highlight_field, highlight_hit
from hybridsearch.types import Highlight, StoredField, TextSpan


def terms(query: str) -> frozenset[str]:
    return frozenset(analyze(query))


def marked(highlight: Highlight) -> list[str]:
    return [highlight.snippet[start:end] for start, end in highlight.matches]


def test_offsets_are_code_points_in_non_ascii_text() -> None:
    text = "Über naïve café: 🎉 cafés"
    highlight = highlight_field(StoredField.TEXT, text, terms("café über"), 200)
    assert highlight == Highlight(
        StoredField.TEXT, text, (TextSpan(0, 4), TextSpan(11, 15), TextSpan(19, 24))
    )
    assert marked(highlight) == ["Über", "café", "cafés"]


def test_matches_are_by_stem_and_case() -> None:
    highlight = highlight_field(
        StoredField.TEXT, "The FLOWS flowed; a flowing flow.", terms("flow"), 200
    )
    assert highlight is not None
    assert marked(highlight) == ["FLOWS", "flowed", "flowing", "flow"]


def test_a_field_without_a_query_term_has_no_highlight() -> None:
    assert highlight_field(StoredField.TEXT, "pasta and bread", terms("flow"), 200) is None
    assert highlight_field(StoredField.TEXT, "", terms("flow"), 200) is None


def test_title_first_then_text_each_only_when_matched() -> None:
    both = highlight_hit("Flow", "laminar flow", terms("flow"), 200)
    assert [h.field for h in both] == [StoredField.TITLE, StoredField.TEXT]
    text_only = highlight_hit("Pasta", "laminar flow", terms("flow"), 200)
    assert [h.field for h in text_only] == [StoredField.TEXT]


def test_a_long_field_is_cut_to_the_window_with_most_matches_at_word_boundaries() -> None:
    filler = "lorem ipsum dolor sit amet " * 6
    text = f"{filler}one flow here. {filler}flow and flows again flow. {filler}"
    highlight = highlight_field(StoredField.TEXT, text, terms("flow"), 40)
    assert highlight is not None
    assert len(highlight.snippet) <= 40
    assert marked(highlight) == ["flow", "flows", "flow"]
    assert highlight.snippet in text
    start = text.index(highlight.snippet)
    end = start + len(highlight.snippet)
    # Starts and ends on a word: no word is cut in two.
    assert start == 0 or not text[start - 1].isalnum()
    assert end == len(text) or not text[end].isalnum()
    assert highlight.snippet[0].isalnum() and highlight.snippet[-1].isalnum()


def test_max_chars_bounds_the_snippet_and_a_short_field_is_whole() -> None:
    text = "flow " * 10  # 50 characters
    whole = highlight_field(StoredField.TEXT, text, terms("flow"), 50)
    assert whole is not None and whole.snippet == text and len(whole.matches) == 10
    cut = highlight_field(StoredField.TEXT, text, terms("flow"), 20)
    assert cut is not None
    assert cut.snippet == "flow flow flow flow"
    assert len(cut.matches) == 4


def test_the_earliest_window_wins_a_tie() -> None:
    text = "flow aaaa bbbb cccc dddd eeee flow"
    highlight = highlight_field(StoredField.TEXT, text, terms("flow"), 20)
    assert highlight is not None
    assert highlight.snippet == "flow aaaa bbbb cccc"


def test_a_matched_token_longer_than_the_window_is_cut() -> None:
    word = "supercalifragilistic"  # 20 characters
    text = f"{'x ' * 20}{word}expialidocious {'y ' * 20}"
    highlight = highlight_field(StoredField.TEXT, text, terms(f"{word}expialidocious"), 20)
    assert highlight is not None
    assert highlight.snippet == word
    assert highlight.matches == (TextSpan(0, 20),)
