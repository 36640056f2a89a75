"""Compaction: dead rows go, live documents stay row-aligned, a crash at any step leaves the
old or the new generation, writes during a compaction are carried over, disk stays bounded."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import tantivy

from hybridsearch.dense.hnsw import HNSW_FILE, graph_rows
from hybridsearch.dense.select import DenseIndexKind
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage import compaction as compaction_module
from hybridsearch.storage import writer as writer_module
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.compaction import CompactionPolicy, StagedGeneration
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import Manifest, load_manifest
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document, Query, RetrievalMode
from tests.fakes import HASH_ENCODER_INFO, HashEncoder
from tests.unit.storage.test_writer import crash, dense_ids, sparse_ids, upsert, vectors_of

WORDS = ["river", "stone", "forest", "cloud", "engine", "signal", "copper", "violin"]


def doc(i: int, version: int = 0) -> Document:
    words = " ".join(WORDS[(i * 7 + k + version) % len(WORDS)] for k in range(6))
    return Document(f"d{i}", f"title {i}", f"uniq{i}v{version} shared {words}", {"v": version})


@pytest.fixture
def index_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "idx"
    build_index(
        [doc(i) for i in range(20)], path, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO
    )
    yield path
    gc.collect()


def churn(writer: IndexWriter) -> None:
    """Replace half the documents (twice for some), delete a few, add new ones."""
    upsert(writer, *[doc(i, 1) for i in range(0, 10)])
    upsert(writer, *[doc(i, 2) for i in range(0, 4)])
    writer.delete(["d15", "d16"])
    upsert(writer, *[doc(i, 1) for i in range(20, 24)])


def expected_state() -> dict[str, int]:
    """id → version after `churn`."""
    state = {f"d{i}": 0 for i in range(20)}
    state.update({f"d{i}": 1 for i in range(0, 10)})
    state.update({f"d{i}": 2 for i in range(0, 4)})
    del state["d15"], state["d16"]
    state.update({f"d{i}": 1 for i in range(20, 24)})
    return state


def check_state(path: Path, state: dict[str, int]) -> None:
    """Both arms hold exactly ``state``, each document at its version, row-aligned."""
    assert sorted(dense_ids(path)) == sorted(state)
    assert sorted(sparse_ids(path, "shared")) == sorted(state)
    engine = HybridSearcher(open_index(path), HashEncoder())
    try:
        for doc_id, version in state.items():
            i = int(doc_id[1:])
            hits = engine.search(Query(text=f"uniq{i}v{version}", mode=RetrievalMode.SPARSE))
            assert [h.id for h in hits.hits] == [doc_id]
            stored = engine.document(doc_id)
            assert stored is not None and stored.metadata == {"v": version}
            # The vector row of the ordinal tantivy names is this document's vector (the build
            # encodes title + text, `upsert` the text alone).
            d = doc(i, version)
            vectors = [HashEncoder.vector(t) for t in (d.text, f"{d.title} {d.text}")]
            ordinal = engine.index.ids.index(doc_id, 0)
            while not engine.index.is_live(ordinal):
                ordinal = engine.index.ids.index(doc_id, ordinal + 1)
            assert engine.index.vectors is not None
            assert any((engine.index.vectors[ordinal] == v).all() for v in vectors)
            assert stored.ordinal == ordinal
        assert engine.document("d15") is None
    finally:
        engine.close()


def test_compaction_drops_dead_rows_and_keeps_every_live_document(index_dir: Path) -> None:
    writer = IndexWriter(index_dir)
    churn(writer)
    before = load_manifest(index_dir)
    assert before.deleted_count == 10 + 4 + 2
    outcome = writer.compact()
    manifest = load_manifest(index_dir)
    assert manifest.deleted_count == 0 and manifest.ordinal_count == 22
    assert manifest.generation == before.generation + 1 == outcome.generation
    assert (manifest.format_version, manifest.journal_bytes) == (3, 0)
    assert outcome.removed_rows == 16 and outcome.documents == 22
    # The old (format 2) data in the index directory itself is gone.
    assert sorted(p.name for p in index_dir.iterdir()) == [
        "data-00000005",
        "manifest.json",
        "writer.lock",
    ]
    check_state(index_dir, expected_state())
    # The writer goes on in the new generation; a later compaction replaces it again.
    upsert(writer, doc(0, 3))
    writer.delete(["d1"])
    writer.compact()
    writer.close()
    crash(writer)
    state = expected_state()
    state["d0"] = 3
    del state["d1"]
    check_state(index_dir, state)
    assert [p.name for p in index_dir.glob("data-*")] == [load_manifest(index_dir).data_dir]


def test_a_compaction_writes_the_live_documents_as_one_segment(tmp_path: Path) -> None:
    # With tantivy's default of one indexing thread per core, each thread wrote a segment of
    # its own: the live documents landed in one or two segments as the threads took them.
    path = tmp_path / "idx"
    build_index(
        [doc(i) for i in range(2000)], path, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO
    )
    writer = IndexWriter(path)
    writer.delete([f"d{i}" for i in range(0, 2000, 3)])
    writer.compact()
    writer.close()
    crash(writer)
    data = path / load_manifest(path).data_dir / "sparse"
    assert tantivy.Index.open(str(data)).searcher().num_segments == 1
    assert len(open_index(path).ids) == 2000 - 667


def test_an_index_never_written_since_its_build_compacts(tmp_path: Path) -> None:
    # A built index has no journal until its first write: the compaction's catch-up opened
    # it anyway (FileNotFoundError: IndexService.Compact answered INTERNAL).
    path = tmp_path / "idx"
    build_index(
        [doc(i) for i in range(50)], path, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO
    )
    writer = IndexWriter(path)
    try:
        outcome = writer.compact()
        assert outcome.documents == 50
    finally:
        writer.close()
    assert len(open_index(path).ids) == 50


def test_writes_during_the_copy_are_carried_over(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    churn(writer)
    copy_live = StagedGeneration.copy_live

    def copy_then_write(self: StagedGeneration, *args: object) -> None:
        copy_live(self, *args)  # type: ignore[arg-type]
        # Commits that land while the frozen generation is copied (no writer lock held).
        upsert(writer, doc(5, 3), doc(30, 1))  # replaces a frozen live doc, adds one
        writer.delete(["d6", "d30"])  # a frozen live doc, and one added meanwhile
        upsert(writer, doc(31, 1))

    monkeypatch.setattr(StagedGeneration, "copy_live", copy_then_write)
    outcome = writer.compact()
    monkeypatch.undo()
    state = expected_state()
    state["d5"] = 3
    del state["d6"]
    state["d31"] = 1
    manifest = load_manifest(index_dir)
    assert manifest.document_count == len(state) == outcome.documents
    # Rows that died during the copy stay until the next compaction: d5 v1, d6, d30.
    assert manifest.deleted_count == 3
    check_state(index_dir, state)
    writer.close()
    crash(writer)
    reopened = IndexWriter(index_dir)  # the carried-over journal replays on open
    upsert(reopened, doc(32, 1))
    reopened.close()
    crash(reopened)
    state["d32"] = 1
    check_state(index_dir, state)


def _raise(*args: object, **kwargs: object) -> None:
    raise OSError("injected crash")


# Each step of a compaction, in order; all before the manifest switch keep the old generation.
STEPS = {
    "stage": (StagedGeneration, "__init__"),
    "copy": (compaction_module.SparseWriter, "add"),
    "fsync-files": (compaction_module, "fsync_file"),
    "catch-up": (StagedGeneration, "catch_up"),
    "tail-rows": (compaction_module, "write_vector_rows"),
    "fsync-dirs": (compaction_module, "fsync_dir"),
    "manifest": (Manifest, "save"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_crash_before_the_manifest_switch_keeps_the_old_generation(
    index_dir: Path, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    churn(writer)
    if step == "tail-rows":  # only a compaction with commits to carry over writes tail rows
        copy_live = StagedGeneration.copy_live

        def copy_then_write(self: StagedGeneration, *args: object) -> None:
            copy_live(self, *args)  # type: ignore[arg-type]
            upsert(writer, doc(40, 1))

        monkeypatch.setattr(StagedGeneration, "copy_live", copy_then_write)
    before = load_manifest(index_dir)
    target, name = STEPS[step]
    monkeypatch.setattr(target, name, _raise)
    with pytest.raises(OSError, match="injected"):
        writer.compact()
    monkeypatch.undo()
    state = expected_state()
    if step == "tail-rows":
        state["d40"] = 1
        before = load_manifest(index_dir)
    assert load_manifest(index_dir) == before
    check_state(index_dir, state)
    # The failed compaction is rolled back: the same writer commits and compacts again.
    upsert(writer, doc(41, 1))
    writer.compact()
    state["d41"] = 1
    check_state(index_dir, state)
    writer.close()
    crash(writer)


@pytest.mark.parametrize("step", ["copy", "catch-up"])
def test_a_killed_compaction_leaves_a_directory_the_next_writer_removes(
    index_dir: Path, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    churn(writer)
    target, name = STEPS[step]
    monkeypatch.setattr(target, name, _raise)
    monkeypatch.setattr(StagedGeneration, "discard", lambda self: None)  # killed: no clean-up
    with pytest.raises(OSError, match="injected"):
        writer.compact()
    monkeypatch.undo()
    crash(writer)
    assert list(index_dir.glob("data-*")), "the killed compaction left its directory"
    check_state(index_dir, expected_state())
    writer = IndexWriter(index_dir)
    assert not list(index_dir.glob("data-*"))
    writer.close()
    crash(writer)


def test_a_crash_after_the_manifest_switch_serves_the_new_generation(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    churn(writer)
    monkeypatch.setattr(writer_module, "remove_unnamed_data", _raise)
    writer.compact()  # the old data's removal is best effort
    monkeypatch.undo()
    crash(writer)
    assert (index_dir / "vectors.npy").exists()  # the old generation's files are still there
    check_state(index_dir, expected_state())
    assert load_manifest(index_dir).deleted_count == 0
    writer = IndexWriter(index_dir)  # ... and removed by the next writer
    assert not (index_dir / "vectors.npy").exists()
    writer.close()
    crash(writer)
    check_state(index_dir, expected_state())


def test_policy_needs_both_the_fraction_and_the_minimum() -> None:
    def manifest(live: int, rows: int) -> Manifest:
        return Manifest(document_count=live, ordinal_count=rows, created_at="")

    policy = CompactionPolicy(dead_fraction=0.3, min_dead_rows=100)
    assert not policy.due(manifest(10, 90))  # 89 % dead, but only 80 rows
    assert not policy.due(manifest(1000, 1400))  # 400 dead: 28.6 %
    assert policy.due(manifest(1000, 1500))  # 500 dead: 33 %
    assert not CompactionPolicy(dead_fraction=0.0).due(manifest(0, 100_000))  # off


def test_disk_after_ten_rounds_of_replacing_everything_stays_near_a_fresh_build(
    tmp_path: Path,
) -> None:
    corpus, batch_size = 200, 50
    path = tmp_path / "churned"
    build_index(
        [doc(i) for i in range(corpus)],
        path,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
    )
    policy = CompactionPolicy(dead_fraction=0.3, min_dead_rows=50)
    writer = IndexWriter(path)
    compactions = 0
    last_round_sizes = []
    for version in range(1, 11):
        for start in range(0, corpus, batch_size):
            batch = [doc(i, version) for i in range(start, start + batch_size)]
            writer.upsert(batch, vectors_of(batch))
            if policy.due(writer.manifest):
                writer.compact()
                compactions += 1
            if version == 10:  # the worst point of the last round, not just its end
                last_round_sizes.append(dir_size_bytes(path))
    writer.close()
    crash(writer)
    fresh = tmp_path / "fresh"
    build_index(
        [doc(i, 10) for i in range(corpus)],
        fresh,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
    )
    assert compactions >= 10
    fresh_bytes = dir_size_bytes(fresh)
    assert max(last_round_sizes) <= 1.5 * fresh_bytes, (last_round_sizes, fresh_bytes)
    index = open_index(path)
    assert index.live is not None
    live_ids = sorted(index.ids[o] for o in range(len(index.ids)) if index.live[o])
    assert live_ids == sorted(f"d{i}" for i in range(corpus))


def test_tantivy_temp_files_a_crash_left_are_removed_when_the_writer_opens(
    index_dir: Path,
) -> None:
    """tantivy writes meta.json through `.tmpXXXXXX` beside it; a SIGKILL mid-write leaves
    one in the served data directory, where nothing but a later compaction would remove it."""
    writer = IndexWriter(index_dir)
    churn(writer)
    writer.compact()  # the sparse directory now lives in a data-* directory
    writer.close()
    crash(writer)
    sparse = load_manifest(index_dir).data_path(index_dir) / "sparse"
    (sparse / ".tmpHH0Ban").write_text("{}")
    (sparse / ".tmpSevenCh").write_text("{}")  # not tantivy's pattern: left alone
    writer = IndexWriter(index_dir)
    try:
        assert not (sparse / ".tmpHH0Ban").exists()
        assert (sparse / ".tmpSevenCh").exists()
        assert (sparse / "meta.json").exists()
    finally:
        writer.close()
        crash(writer)
    check_state(index_dir, expected_state())


@pytest.mark.parametrize("count", [0, 3])
def test_an_hnsw_index_without_live_documents_compacts_and_stays_writable(
    tmp_path: Path, count: int
) -> None:
    # With no live row the compaction wrote no graph file, yet the HNSW index needs one:
    # the commit's reload failed (INTERNAL), and so did every later upsert and the next start.
    pytest.importorskip("faiss")
    path = tmp_path / "idx"
    build_index(
        [doc(i) for i in range(count)],
        path,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
        dense_index=DenseIndexKind.HNSW,
    )
    writer = IndexWriter(path)
    try:
        writer.delete([f"d{i}" for i in range(count)])
        assert writer.compact().documents == 0
        upsert(writer, doc(7))
    finally:
        writer.close()
    reopened = open_index(path)
    assert reopened.ids == ["d7"]
    searcher = HybridSearcher(reopened, HashEncoder())
    hits = searcher.search(Query(text="uniq7v0", top_k=3, mode=RetrievalMode.DENSE)).hits
    assert [h.id for h in hits] == ["d7"]


def file_stats(index_path: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``index_path`` (the writer's lock file aside): inode, size, mtime."""
    return {
        str(p.relative_to(index_path)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(index_path.rglob("*"))
        if p.is_file() and p.name != "writer.lock"
    }


def built(path: Path, kind: DenseIndexKind, count: int = 300) -> Path:
    if kind is DenseIndexKind.HNSW:
        pytest.importorskip("faiss")
    build_index(
        [doc(i) for i in range(count)],
        path,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
        dense_index=kind,
    )
    return path


@pytest.mark.parametrize("kind", [DenseIndexKind.EXACT, DenseIndexKind.HNSW])
def test_a_second_compaction_in_a_row_rewrites_nothing(
    tmp_path: Path, kind: DenseIndexKind
) -> None:
    # Each Compact wrote a new generation, copying every file of an index already compact.
    path = built(tmp_path / "idx", kind)
    writer = IndexWriter(path)
    try:
        upsert(writer, doc(2, 1))  # a dead row, and a second tantivy segment
        first = writer.compact()
        manifest, files = load_manifest(path), file_stats(path)
        assert manifest.generation == first.generation
        second = writer.compact()
        assert load_manifest(path) == manifest
        assert file_stats(path) == files  # not a file rewritten, added or removed
        assert second.generation == first.generation
        assert (second.removed_rows, second.documents) == (0, 300)
        assert second.size_bytes_before == second.size_bytes_after == dir_size_bytes(path)
        assert first.rewritten and not second.rewritten
        upsert(writer, doc(1, 1))  # the writer goes on in the same generation
    finally:
        writer.close()
    assert len(open_index(path).ids) == 301


@pytest.mark.parametrize("kind", [DenseIndexKind.EXACT, DenseIndexKind.HNSW])
def test_a_fresh_build_in_one_segment_is_already_compact(
    tmp_path: Path, kind: DenseIndexKind
) -> None:
    # Its layout (data beside the manifest) alone made the first Compact rewrite it. Each of
    # tantivy's indexing threads writes a segment of its own: one document makes one.
    path = built(tmp_path / "idx", kind, count=1)
    manifest, files = load_manifest(path), file_stats(path)
    assert not manifest.data_dir  # format 2
    writer = IndexWriter(path)
    try:
        outcome = writer.compact()
        assert not outcome.rewritten and outcome.generation == manifest.generation
        assert load_manifest(path) == manifest
        assert file_stats(path) == files
        upsert(writer, doc(0, 1))  # writes go on in the built layout
    finally:
        writer.close()
    assert len(open_index(path).ids) == 2  # d0 replaced: its old row dead


@pytest.mark.parametrize("kind", [DenseIndexKind.EXACT, DenseIndexKind.HNSW])
def test_after_a_delete_a_compact_index_compacts_again(
    tmp_path: Path, kind: DenseIndexKind
) -> None:
    path = built(tmp_path / "idx", kind)
    writer = IndexWriter(path)
    try:
        writer.compact()
        writer.delete(["d5"])
        before = load_manifest(path)
        outcome = writer.compact()
        assert outcome.rewritten and outcome.removed_rows == 1
        after = load_manifest(path)
        assert outcome.generation == after.generation == before.generation + 1
        assert (after.deleted_count, after.document_count) == (0, 299)
        assert after.data_dir != before.data_dir
        assert not writer.compact().rewritten
    finally:
        writer.close()


def test_after_new_rows_the_graph_misses_a_compaction_rebuilds_it(tmp_path: Path) -> None:
    path = built(tmp_path / "idx", DenseIndexKind.HNSW)
    writer = IndexWriter(path)
    try:
        writer.compact()
        upsert(writer, *[doc(i) for i in range(300, 320)])  # new ids: no dead row
        before = load_manifest(path)
        assert before.deleted_count == 0
        assert graph_rows(before.data_path(path) / HNSW_FILE) == 300  # 20 rows outside it
        outcome = writer.compact()
        assert outcome.rewritten and outcome.removed_rows == 0
        after = load_manifest(path)
        assert after.generation == before.generation + 1
        assert graph_rows(after.data_path(path) / HNSW_FILE) == after.ordinal_count == 320
        assert not writer.compact().rewritten
    finally:
        writer.close()
