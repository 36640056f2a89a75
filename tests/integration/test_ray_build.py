"""The distributed build on a real local Ray instance (2 CPUs): the collection it makes is the
one the single-machine build makes of the same corpus (same ids per shard in the same order,
same stored documents, same BM25 results, vectors with cosine >= 0.99999), from BEIR JSON
lines, Parquet and a Pyserini JsonCollection; a build that fails or is killed leaves nothing.

Select them with ``pytest -m ray``; without the extra ``ray`` they are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hybridsearch.encoders.config import load_config
from hybridsearch.engine.loader import encoder_info_of_config, load_query_encoder
from hybridsearch.errors import BuildError, CorpusError, SetupError
from hybridsearch.sharding.build_local import ShardedBuildSummary, build_sharded
from hybridsearch.sharding.layout import load_shard_manifest
from hybridsearch.sparse.analysis import term_counts
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Device, RankedList

ray = pytest.importorskip(
    "ray", reason="the Ray tests need the optional extra: pip install -e '.[ray]'"
)

from hybridsearch.cli.index_sharded import encoder_line  # noqa: E402
from hybridsearch.sharding.build_ray import (  # noqa: E402
    RayBuildOptions,
    RayBuildSummary,
    build_sharded_ray,
    encoder_placement,
)
from hybridsearch.sharding.ray_source import find_source  # noqa: E402

pytestmark = [
    pytest.mark.ray,
    # Ray 2.60 warns about its own deprecated settings when Ray Data starts.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.timeout(300),  # a stalled Ray pipeline fails the test, never hangs CI
]

SAMPLE = Path(__file__).parents[2] / "server/hybridsearch/data/cranfield-corpus.jsonl.gz"
SHARDS = 3
QUERIES = ("wing slipstream", "shear flow viscosity", "heat transfer boundary layer")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A real local Ray instance of 2 CPUs, shut down after the module."""
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             logging_level=logging.WARNING)  # fmt: skip
    yield ray
    ray.shutdown()


def sample_records(count: int) -> list[dict[str, Any]]:
    """The first ``count`` Cranfield documents, some with metadata, and a duplicate id."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        records = [json.loads(next(handle)) for _ in range(count)]
    for i, record in enumerate(records):
        record["metadata"] = {"year": 1950 + i % 7, "lab": "nasa" if i % 2 else "rae"}
    records.append({**records[3], "title": "replaced", "text": "a later duplicate wins"})
    return records


@pytest.fixture(scope="module")
def beir_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("beir") / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in sample_records(48)))
    return path


def assert_same_ranking(got: RankedList, want: RankedList) -> None:
    """The same scores, and the same ordinals at each score but the last (tantivy orders
    tied documents by their place in its segments, which its indexing threads decide; the
    last score's ties may be cut at a different document)."""
    pairs = [list(zip(r.scores.tolist(), r.ordinals.tolist(), strict=True)) for r in (got, want)]
    assert [s for s, _ in pairs[0]] == [s for s, _ in pairs[1]]
    last = pairs[1][-1][0] if pairs[1] else None
    assert sorted(p for p in pairs[0] if p[0] != last) == sorted(
        p for p in pairs[1] if p[0] != last
    )


def assert_same_collection(ray_out: Path, local_out: Path, *, vectors: bool) -> None:
    """Same shards: ids in order, stored documents, BM25 results; vectors within float noise."""
    assert load_shard_manifest(ray_out).shard_count == load_shard_manifest(local_out).shard_count
    for built, expected in zip(load_shard_manifest(ray_out).shard_paths(ray_out),
                               load_shard_manifest(local_out).shard_paths(local_out),
                               strict=True):  # fmt: skip
        got, want = open_index(built), open_index(expected)
        assert got.ids == want.ids and got.ids
        stored = got.sparse.stored_range(0, len(got.ids))
        assert stored == want.sparse.stored_range(0, len(want.ids))
        for query in QUERIES:
            weights = {t: float(n) for t, n in term_counts(query).items()}
            assert_same_ranking(got.sparse.search(weights, 10), want.sparse.search(weights, 10))
        if vectors:
            assert got.vectors is not None and want.vectors is not None
            cosine = np.sum(got.vectors[:] * want.vectors[:], axis=1) / (
                np.linalg.norm(got.vectors[:], axis=1) * np.linalg.norm(want.vectors[:], axis=1)
            )
            assert cosine.min() >= 0.99999, cosine.min()
        else:
            assert got.vectors is None


def test_distributed_build_equals_the_single_machine_build(
    ray_local: Any, beir_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    info = encoder_info_of_config(load_config(model_dir))
    encoder = load_query_encoder(model_dir, Device.CPU)
    build_sharded(read_corpus(beir_corpus), tmp_path / "local", SHARDS, encoder=encoder,
                  encoder_info=info)  # fmt: skip
    summary = build_sharded_ray(
        ray_local, str(beir_corpus), tmp_path / "ray", SHARDS, model_dir=model_dir,
        encoder_info=info, options=RayBuildOptions(batch_size=8, encoders=2),
    )  # fmt: skip
    assert (summary.collection.documents, summary.collection.duplicates) == (48, 1)
    assert summary.encoders == 2
    assert load_shard_manifest(tmp_path / "ray").encoder == info
    assert_same_collection(tmp_path / "ray", tmp_path / "local", vectors=True)
    replaced = [open_index(p).sparse.fetch_by_id("4") for p in
                load_shard_manifest(tmp_path / "ray").shard_paths(tmp_path / "ray")]  # fmt: skip
    assert [d.title for d in replaced if d is not None] == ["replaced"]  # the last one won


def test_parquet_corpus(ray_local: Any, beir_corpus: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = sample_records(48)
    rows = {
        "id": [r["_id"] for r in records],  # Parquet may name them id/text or _id/contents
        "title": [r["title"] for r in records],
        "contents": [r["text"] for r in records],
        "metadata": [r["metadata"] for r in records],  # a struct column
    }
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    table = pa.table(rows)
    pq.write_table(table.slice(0, 20), parquet_dir / "part-0.parquet")
    pq.write_table(table.slice(20), parquet_dir / "part-1.parquet")
    build_sharded(read_corpus(beir_corpus), tmp_path / "local", SHARDS, encoder=None)
    summary = build_sharded_ray(ray_local, str(parquet_dir), tmp_path / "ray", SHARDS,
                                model_dir=None, encoder_info=None)  # fmt: skip
    assert summary.collection.documents == 48
    assert_same_collection(tmp_path / "ray", tmp_path / "local", vectors=False)
    # Metadata JSON cannot hold (bytes) fails the build naming the file, or is skipped.
    bad = parquet_dir / "part-2.parquet"
    pq.write_table(pa.table({"id": ["x1", "x2"], "text": ["a", "b"],
                             "metadata": [{"blob": None}, {"blob": b"\x00"}]}), bad)  # fmt: skip
    with pytest.raises(CorpusError, match=f"^{bad}: malformed record: "):
        build_sharded_ray(ray_local, str(parquet_dir), tmp_path / "refused", SHARDS,
                          model_dir=None, encoder_info=None)  # fmt: skip
    summary = build_sharded_ray(ray_local, str(parquet_dir), tmp_path / "skipped", SHARDS,
                                model_dir=None, encoder_info=None,
                                options=RayBuildOptions(skip_bad_lines=True))  # fmt: skip
    assert (summary.collection.documents, summary.bad_records) == (49, 1)


def test_a_parquet_corpus_with_its_own_path_column(ray_local: Any, tmp_path: Path) -> None:
    """A top-level ``path`` column (Ray Data's name for the file of a row) is the file's own:
    ignored as any other extra column, the same documents as the JSON corpus; a malformed
    record's error names the file it is in and shows its ``path`` as it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = sample_records(12)
    beir = tmp_path / "corpus.jsonl"
    beir.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    first, second = parquet_dir / "part-0.parquet", parquet_dir / "part-1.parquet"
    table = pa.table({
        "path": [(second if i % 2 else first).name for i in range(len(records))],  # misleading
        "_id": [r["_id"] for r in records],
        "title": [r["title"] for r in records],
        "text": [r["text"] for r in records],
        "metadata": [r["metadata"] for r in records],
    })  # fmt: skip
    pq.write_table(table.slice(0, 5), first)
    pq.write_table(table.slice(5).set_column(0, "path", pa.array(range(5, len(records)))),
                   second)  # fmt: skip
    build_sharded(read_corpus(beir), tmp_path / "local", 2, encoder=None)
    summary = build_sharded_ray(ray_local, str(parquet_dir), tmp_path / "ray", 2,
                                model_dir=None, encoder_info=None)  # fmt: skip
    assert (summary.collection.documents, summary.collection.duplicates) == (12, 1)
    assert_same_collection(tmp_path / "ray", tmp_path / "local", vectors=False)
    bad = parquet_dir / "part-2.parquet"
    pq.write_table(pa.table({"path": [first.name], "_id": ["x"], "text": ["a"],
                             "metadata": ["not JSON"]}), bad)  # fmt: skip
    with pytest.raises(CorpusError) as refused:
        build_sharded_ray(ray_local, str(parquet_dir), tmp_path / "refused", 2, model_dir=None,
                          encoder_info=None)  # fmt: skip
    assert str(refused.value).startswith(f"{bad}: malformed record: "), refused.value
    shown = '{"path": "part-0.parquet", "_id": "x", "text": "a", "metadata": "not JSON"}'
    assert str(refused.value).endswith(f"(record {shown!r})"), refused.value  # as written


def test_parquet_files_of_different_schemas(ray_local: Any, tmp_path: Path) -> None:
    """Metadata a struct in one file and a JSON string in the next, an extra column of
    another type: each file is read as it is, the JSON corpus's documents."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = sample_records(12)
    beir = tmp_path / "corpus.jsonl"
    beir.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    rows = {"_id": [r["_id"] for r in records], "title": [r["title"] for r in records],
            "text": [r["text"] for r in records]}  # fmt: skip
    struct = pa.table({**rows, "metadata": [r["metadata"] for r in records],
                       "extra": list(range(len(records)))})  # fmt: skip
    strings = pa.table({**rows, "metadata": [json.dumps(r["metadata"]) for r in records],
                        "extra": [str(i) for i in range(len(records))]})  # fmt: skip
    pq.write_table(struct.slice(0, 6), parquet_dir / "part-0.parquet")
    pq.write_table(strings.slice(6), parquet_dir / "part-1.parquet")
    build_sharded(read_corpus(beir), tmp_path / "local", 2, encoder=None)
    summary = build_sharded_ray(ray_local, str(parquet_dir), tmp_path / "ray", 2,
                                model_dir=None, encoder_info=None)  # fmt: skip
    assert (summary.collection.documents, summary.collection.duplicates) == (12, 1)
    assert_same_collection(tmp_path / "ray", tmp_path / "local", vectors=False)


def test_a_parquet_file_that_is_not_one_is_named(ray_local: Any, tmp_path: Path) -> None:
    """Its footer is read first: the build (and the CLI's count for its ETA) fail naming it,
    and leave nothing at --out."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    bad = corpus / "part-0.parquet"
    bad.write_bytes(b"PAR1 and then not Parquet")
    with pytest.raises(CorpusError, match=f"^{bad}: not a readable Parquet file "):
        find_source(str(corpus)).count_hint()
    with pytest.raises(CorpusError, match=f"^{bad}: not a readable Parquet file "):
        build_sharded_ray(ray_local, str(corpus), tmp_path / "out", 2, model_dir=None,
                          encoder_info=None)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_a_directory_mixing_json_lines_and_parquet_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"_id": "1", "text": "a"}\n')
    (tmp_path / "b.parquet").write_bytes(b"PAR1")
    with pytest.raises(CorpusError, match=r"mixes JSON-lines .* and Parquet .* files"):
        find_source(str(tmp_path))


def test_a_corpus_inside_out_is_refused(ray_local: Any, tmp_path: Path) -> None:
    """Replacing --out (--force) would delete a corpus kept in it: refused before any work."""
    out = tmp_path / "coll"
    build_sharded(read_corpus(SAMPLE), out, 2, encoder=None)
    kept = out / "corpus.jsonl.gz"
    kept.write_bytes(SAMPLE.read_bytes())
    for corpus in (str(kept), f"file://{kept}"):
        with pytest.raises(BuildError, match=rf"^{kept} is inside {out}: replacing {out} would"):
            build_sharded_ray(ray_local, corpus, out, 2, model_dir=None, encoder_info=None,
                              force=True)  # fmt: skip
    assert kept.read_bytes() == SAMPLE.read_bytes()


def test_pyserini_json_collection(ray_local: Any, tmp_path: Path) -> None:
    records = [{"id": r["_id"], "contents": f"{r['title']} {r['text']}"}
               for r in sample_records(40)]  # fmt: skip
    collection = tmp_path / "collection"
    collection.mkdir()
    with gzip.open(collection / "a.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records[:25])
    (collection / "b.jsonl").write_text("".join(json.dumps(r) + "\n\n" for r in records[25:]))
    build_sharded(read_corpus(collection), tmp_path / "local", 2, encoder=None)
    build_sharded_ray(ray_local, str(collection), tmp_path / "ray", 2, model_dir=None,
                      encoder_info=None)  # fmt: skip
    assert_same_collection(tmp_path / "ray", tmp_path / "local", vectors=False)


def test_a_failed_build_leaves_nothing_and_bad_lines_can_be_skipped(
    ray_local: Any, tmp_path: Path
) -> None:
    lines = [json.dumps(r) for r in sample_records(40)]
    lines.insert(30, '{"_id": "broken", "title": ')  # a line cut short, well into the corpus
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(CorpusError, match=r"corpus\.jsonl:31: malformed line: "):
        build_sharded_ray(ray_local, str(corpus), out, 2, model_dir=None, encoder_info=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]
    summary = build_sharded_ray(ray_local, str(corpus), out, 2, model_dir=None,
                                encoder_info=None,
                                options=RayBuildOptions(skip_bad_lines=True))  # fmt: skip
    assert (summary.bad_records, summary.collection.documents) == (1, 40)


@contextlib.contextmanager
def encoding_build(
    ray_local: Any, corpus: Path, model_dir: Path, out: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``hybridsearch index --ray ADDRESS`` of ``corpus`` into ``out``, once it is encoding:
    the process and what it printed so far."""
    address = ray_local.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "hybridsearch.cli", "index", "--corpus", str(corpus),
               "--out", str(out), "--shards", "2", "--model", str(model_dir), "--ray", address,
               "--batch-size", "4"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) as build:
        assert build.stderr is not None
        seen = ""
        deadline = time.monotonic() + 120
        while "ray: encoding" not in seen and time.monotonic() < deadline:
            seen += build.stderr.read(1)
        assert "ray: encoding" in seen, seen
        yield build, seen


def test_a_killed_build_leaves_nothing_at_out(
    ray_local: Any, beir_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    """``hybridsearch index --ray ADDRESS`` killed while encoding: --out never appears."""
    out = tmp_path / "out"
    with encoding_build(ray_local, beir_corpus, model_dir, out) as (build, _):
        build.send_signal(signal.SIGKILL)
    assert build.returncode == -signal.SIGKILL
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


def test_the_files_the_local_build_reads_are_read_the_same(ray_local: Any, tmp_path: Path) -> None:
    """U+2028/U+2029/U+0085 inside a JSON string, a byte order mark, a gzip file without
    ``.gz``, a Pyserini ``.json`` array and a pretty-printed object: the local build's
    documents; a line that is not UTF-8 fails the build naming its file and line (the local
    build's words), or is skipped and counted."""
    records = [
        {"_id": r["_id"], "title": r["title"], "text": r["text"]} for r in sample_records(30)
    ]
    for i, sep in enumerate(("\u2028", "\u2029", "\x85")):
        records[i]["text"] = f"before{sep}after {records[i]['text']}"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[:10])
    (corpus / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + lines.encode())
    (corpus / "b.jsonl").write_bytes(gzip.compress(  # gzip, told by its bytes
        "".join(json.dumps(r) + "\n" for r in records[10:18]).encode()))  # fmt: skip
    pyserini = [{"id": r["_id"], "contents": r["text"]} for r in records[18:29]]
    (corpus / "c.json").write_text(json.dumps(pyserini, indent=2))
    (corpus / "d.json").write_text(json.dumps(records[29], indent=2))
    build_sharded(read_corpus(corpus), tmp_path / "local", 2, encoder=None)
    summary = build_sharded_ray(ray_local, str(corpus), tmp_path / "ray", 2, model_dir=None,
                                encoder_info=None)  # fmt: skip
    assert (summary.collection.documents, summary.bad_records) == (30, 0)
    assert_same_collection(tmp_path / "ray", tmp_path / "local", vectors=False)

    bad = json.dumps({"_id": "bad", "text": "caf\u00e9"}).encode().replace(b"\\u00e9", b"\xe9")
    (corpus / "e.jsonl").write_bytes(b'{"_id": "e1", "text": "fine"}\n' + bad + b"\n")
    with pytest.raises(CorpusError) as refused:
        build_sharded_ray(ray_local, str(corpus), tmp_path / "refused", 2, model_dir=None,
                          encoder_info=None)  # fmt: skip
    assert str(refused.value).startswith(f"{corpus / 'e.jsonl'}:2: malformed line: not UTF-8 (")
    with pytest.raises(CorpusError) as local_error:
        list(read_corpus(corpus))
    assert str(local_error.value) == str(refused.value)
    build_sharded(read_corpus(corpus, skip_bad_lines=True), tmp_path / "local2", 2, encoder=None)
    summary = build_sharded_ray(ray_local, str(corpus), tmp_path / "ray2", 2, model_dir=None,
                                encoder_info=None,
                                options=RayBuildOptions(skip_bad_lines=True))  # fmt: skip
    assert (summary.collection.documents, summary.bad_records) == (31, 1)
    assert_same_collection(tmp_path / "ray2", tmp_path / "local2", vectors=False)


def test_encoder_actors_larger_than_every_node_are_refused(
    ray_local: Any, beir_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    """Ray would wait forever for a node with 3 CPUs; the build says so at once."""
    info = encoder_info_of_config(load_config(model_dir))
    with pytest.raises(SetupError, match=r"^--ray-encoder-cpus 3: .* \(largest: 2\)$"):
        build_sharded_ray(ray_local, str(beir_corpus), tmp_path / "out", 2, model_dir=model_dir,
                          encoder_info=info, options=RayBuildOptions(encoder_cpus=3))  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_a_terminated_build_ends_cleanly(
    ray_local: Any, beir_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM (a pod stopped) ends ``index --ray`` as Ctrl-C does: exit 130, no traceback
    (Ray's handler aborted it), nothing at --out and no staging directory."""
    out = tmp_path / "out"
    with encoding_build(ray_local, beir_corpus, model_dir, out) as (build, before):
        build.send_signal(signal.SIGTERM)
        assert build.stderr is not None
        seen = before + build.stderr.read()
    assert build.returncode == 130, seen
    assert "Traceback" not in seen and "Aborted" not in seen, seen
    assert not [p for p in tmp_path.iterdir()], seen


def test_a_malformed_line_is_one_error_line(ray_local: Any, tmp_path: Path) -> None:
    """``index --ray`` names the file and line, as the local build does, and Ray Data's own
    ERROR lines (the failed stage's stack) stay out of the output."""
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n')
    command = [sys.executable, "-m", "hybridsearch.cli", "index", "--corpus", str(corpus),
               "--out", str(tmp_path / "out"), "--shards", "2", "--no-dense", "--no-progress",
               "--ray", ray_local.get_runtime_context().gcs_address]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"error: {corpus}:2: malformed line: ")
    assert " ERROR " not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_more_encoders_than_the_cluster_fits_are_reported_as_such(
    ray_local: Any, beir_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    """``index --ray-encoders 3`` on two CPUs: Ray places two one-CPU encoders at once (the
    third never starts); the build warns up front, and its summary says how many actors
    encoded, that 3 were requested, and why the others did not run."""
    placement = encoder_placement(ray_local, RayBuildOptions(encoders=3))
    assert (placement.actors, placement.at_once, placement.gpus) == (3, 2, 0)
    command = [sys.executable, "-m", "hybridsearch.cli", "index", "--corpus", str(beir_corpus),
               "--out", str(tmp_path / "ray"), "--shards", "2", "--model", str(model_dir),
               "--batch-size", "2", "--no-progress", "--ray-encoders", "3",
               "--ray", ray_local.get_runtime_context().gcs_address]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env,
                          timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "--ray-encoders 3: the cluster's 2 CPUs run at most 2 encoder actors at once" in done.stderr
    ), done.stderr
    line = done.stdout.splitlines()[-1]
    ran = re.fullmatch(
        r"ray: (\d) encoder actors? ran \(3 requested\), 0 GPU each; the cluster's CPUs fit 2 "
        r"at once \(lower --ray-encoders, or add nodes\)",
        line,
    )
    assert ran is not None and 1 <= int(ran[1]) <= 2, done.stdout
    one = build_sharded_ray(ray_local, str(beir_corpus), tmp_path / "bm25", 2, model_dir=None,
                            encoder_info=None)  # fmt: skip
    assert (one.encoders, one.encoders_ran) == (0, 0)
    assert encoder_line(one) == "ray: no encoder (BM25 only)"


def test_the_encoder_line_states_what_ran() -> None:
    """Every actor encoded: the plain count; fewer with room for all: the corpus was small."""
    collection = ShardedBuildSummary((), 0)
    every = RayBuildSummary(collection, 0, 1.0, encoders=3, gpus_per_encoder=1,
                            encoders_at_once=3, encoders_ran=3)  # fmt: skip
    assert encoder_line(every) == "ray: 3 encoder actors, 1 GPU each"
    alone = RayBuildSummary(collection, 0, 1.0, encoders=1, gpus_per_encoder=0,
                            encoders_at_once=1, encoders_ran=1)  # fmt: skip
    assert encoder_line(alone) == "ray: 1 encoder actor, 0 GPU each"
    small = RayBuildSummary(collection, 0, 1.0, encoders=3, gpus_per_encoder=1,
                            encoders_at_once=3, encoders_ran=1)  # fmt: skip
    assert encoder_line(small) == (
        "ray: 1 encoder actor ran (3 requested), 1 GPU each; the corpus gave the others no batch"
    )
