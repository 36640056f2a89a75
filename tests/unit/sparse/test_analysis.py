"""Query analysis must reproduce the index's en_stem analyser exactly."""

from __future__ import annotations

from pathlib import Path

from hybridsearch.sparse.analysis import (
    LUCENE_STOPWORDS,
    analyze,
    analyze_words,
    query_term_counts,
    term_counts,
    terms_without_stopwords,
)
from hybridsearch.sparse.tantivy_index import SparseReader, SparseWriter
from hybridsearch.types import Document


def make_reader(path: Path, bodies: list[str]) -> SparseReader:
    writer = SparseWriter(path, create=True, threads=1)
    for ordinal, body in enumerate(bodies):
        writer.add(ordinal, Document(id=f"d{ordinal}", text=body))
    writer.commit()
    writer.close()
    return SparseReader(path)


def test_stems_lowercases_and_splits_on_non_alphanumerics() -> None:
    assert analyze("Running RUNS, runner's (flows)!") == ["run", "run", "runner", "s", "flow"]


def test_drops_tokens_of_40_or_more_bytes() -> None:
    assert analyze("a" * 40 + " ok " + "b" * 39) == ["ok", "b" * 39]


def test_query_syntax_is_just_text() -> None:
    assert analyze('title:"AND (((*\\') == ["titl", "and"]
    assert analyze("(" * 10_000) == []


def test_term_counts_count_repeats() -> None:
    assert term_counts("flow flows flowing") == {"flow": 3}


def test_bm25_queries_leave_out_lucenes_stopwords() -> None:
    assert len(LUCENE_STOPWORDS) == 33
    assert query_term_counts("The effect of the wings on a flow") == {
        "effect": 1,
        "wing": 1,
        "flow": 1,
    }
    # The index keeps them: documents are analysed as before.
    assert term_counts("The effect of the wings")["the"] == 2


def test_a_stopword_only_query_keeps_its_words() -> None:
    assert query_term_counts("To be or not to be") == {"to": 2, "be": 2, "or": 1, "not": 1}
    assert query_term_counts("") == {}


def test_stopwords_are_matched_before_stemming() -> None:
    # "its", "being" and "willing" stem to the stopwords "it", "be" and "will", but are not
    # stopwords themselves: Lucene keeps them, and so does the query.
    assert analyze("its being willing") == ["it", "be", "will"]
    assert query_term_counts("Its wings: being willing to fly") == {
        "it": 1,
        "wing": 1,
        "be": 1,
        "will": 1,
        "fli": 1,
    }
    assert terms_without_stopwords("It flows into the wing's wake") == ["flow", "wing", "s", "wake"]
    assert all(analyze(word) == [word] for word in LUCENE_STOPWORDS)


def test_query_terms_are_the_index_terms_of_the_kept_words() -> None:
    # Words are stemmed one at a time (and remembered); each must get the term the index
    # chain gives it in its text. Lowercasing can turn one letter into a letter and a combining
    # mark ("İ" -> "i" + U+0307), which the tokenizer would split on if the lowercased word
    # were tokenized again: such words take the whole-text path.
    texts = [
        "Flows over the wings, flowing; FLOWED",
        "x" * 30 + "İ and İstanbul's straße",
        "ǅemal ﬁnding Σίσυφος ΑΒΓ १२३ ٣٤ ½",
        "x" * 38 + "İ is dropped, as the index drops it",
    ]
    for text in texts * 2:  # the second time from the remembered stems
        words = analyze_words(text)
        terms = analyze(text)
        assert len(words) == len(terms)
        expected = [t for w, t in zip(words, terms, strict=True) if w not in LUCENE_STOPWORDS]
        assert terms_without_stopwords(text) == expected
    assert terms_without_stopwords("x" * 30 + "İ") == ["x" * 30 + "i\u0307"]


def test_python_analyser_matches_the_index_tokenizer(tmp_path: Path) -> None:
    """Each document must be found by each of its own analysed terms via term queries."""
    texts = [
        "Supersonic Flows over Swept Wings",
        "The boundary-layer's transition (at Mach 2.5)",
        "Ünïcödé naïve café résumé",
        "CJK 超音速 and emoji 🚀 mixed",
    ]
    reader = make_reader(tmp_path, texts)
    for ordinal, text in enumerate(texts):
        for term in analyze(text):
            found = {hit.ordinal for hit in reader.search({term: 1.0}, 10)}
            assert ordinal in found, (text, term)


def test_repeated_term_scores_like_a_weight(tmp_path: Path) -> None:
    reader = make_reader(tmp_path, ["wing flutter", "wing wing drag", "nozzle"])
    once = reader.search({"wing": 1.0}, 1)[0].score
    twice = reader.search({"wing": 2.0}, 1)[0].score
    assert abs(twice - 2 * once) < 1e-5


def test_empty_weights_match_nothing(tmp_path: Path) -> None:
    reader = make_reader(tmp_path, ["wing"])
    assert reader.search({}, 5) == []
    assert reader.search({"unknownterm": 1.0}, 5) == []
