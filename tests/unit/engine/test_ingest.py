"""Ingestor: each commit published to the searcher in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import FailedPreconditionError
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document, Query, RetrievalMode
from tests.fakes import HashEncoder, build_fake_index

DOCS = [Document("a", "", "alpha apple"), Document("b", "", "bravo banana")]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[HybridSearcher, Ingestor]]:
    path = build_fake_index(tmp_path / "idx", DOCS)
    writer = IndexWriter(path)
    searcher = HybridSearcher(writer.committed(), HashEncoder())
    yield searcher, Ingestor(writer, searcher)
    searcher.close()
    writer.close()


def ids(searcher: HybridSearcher, text: str, mode: RetrievalMode) -> list[str]:
    return [h.id for h in searcher.search(Query(text=text, top_k=10, mode=mode)).hits]


def test_an_upsert_is_searchable_in_both_arms_when_it_returns(
    served: tuple[HybridSearcher, Ingestor],
) -> None:
    searcher, ingestor = served
    outcome = ingestor.upsert([Document("c", "", "charlie cherry")])
    assert (outcome.accepted, outcome.replaced, outcome.generation) == (1, 0, 1)
    assert searcher.index.manifest.generation == 1
    assert ids(searcher, "cherry", RetrievalMode.SPARSE) == ["c"]
    assert ids(searcher, "charlie cherry", RetrievalMode.DENSE)[0] == "c"


def test_a_delete_hides_the_document_from_both_arms(
    served: tuple[HybridSearcher, Ingestor],
) -> None:
    searcher, ingestor = served
    outcome = ingestor.delete(["a", "missing"])
    assert (outcome.deleted, outcome.not_found) == (["a"], ["missing"])
    assert ids(searcher, "apple", RetrievalMode.SPARSE) == []
    assert "a" not in ids(searcher, "alpha apple", RetrievalMode.DENSE)
    assert searcher.document("a") is None


def test_duplicates_in_a_batch_count_as_replaced_and_the_last_wins(
    served: tuple[HybridSearcher, Ingestor],
) -> None:
    searcher, ingestor = served
    outcome = ingestor.upsert([Document("d", "", "first"), Document("d", "", "second")])
    assert (outcome.accepted, outcome.replaced) == (2, 1)
    stored = searcher.document("d")
    assert stored is not None and stored.text == "second"


def test_the_served_generation_never_goes_back(
    served: tuple[HybridSearcher, Ingestor], tmp_path: Path
) -> None:
    searcher, ingestor = served
    old_state = ingestor.writer.committed()  # generation 0
    ingestor.upsert([Document("c", "", "charlie")])
    searcher.publish_index(old_state)  # a late publication of an older commit
    assert searcher.index.manifest.generation == 1
    assert searcher.document("c") is not None


def test_an_index_with_vectors_needs_an_encoder_to_ingest(tmp_path: Path) -> None:
    path = build_fake_index(tmp_path / "idx", DOCS)
    writer = IndexWriter(path)
    searcher = HybridSearcher(open_index(path), None)
    try:
        with pytest.raises(FailedPreconditionError, match="without a model"):
            Ingestor(writer, searcher).upsert([Document("c", "", "charlie")])
        assert writer.manifest.generation == 0  # nothing committed
    finally:
        searcher.close()
        writer.close()
