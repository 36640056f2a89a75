"""`serve --encoder-int8`: hybrid search with the int8 query model over an index whose
vectors the full model made; a model directory without it is refused with the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import run_cli, start_server, wait_serving

pytest.importorskip(
    "onnx", reason="quantizing needs the quantize extra (pip install -e .[quantize])"
)

QUERY = "airflow over an aircraft wing"


def test_int8_queries_serve_the_same_index(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    quantized = tmp_path / "minilm"
    shutil.copytree(model_dir, quantized)
    done = run_cli("models", "quantize", str(quantized))
    assert "model_int8.onnx" in done.stdout and "cosine min 0.9" in done.stdout
    server = start_server(
        "--index", str(tiny_hybrid_index), "--model", str(quantized), "--encoder-int8", "true"
    )
    try:
        wait_serving(server.address)
        with grpc.insecure_channel(server.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            hybrid = stub.Search(pb.SearchRequest(query=QUERY, top_k=5), timeout=30)
            dense = stub.Search(
                pb.SearchRequest(query=QUERY, top_k=5, mode=pb.RETRIEVAL_MODE_DENSE), timeout=30
            )
    finally:
        assert server.stop() == 0
    # The full model's golden rankings (test_hybrid_api): the int8 query vectors keep the
    # leaders in place on this corpus.
    assert [h.id for h in hybrid.hits][:2] == ["d03", "d11"]
    assert dense.hits[0].id == "d11"


def test_int8_without_the_file_is_refused(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(model_dir, plain, ignore=shutil.ignore_patterns("model_int8.onnx"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridsearch.cli",
            "serve",
            "--port",
            "0",
            "--index",
            str(tiny_hybrid_index),
            "--model",
            str(model_dir),
            "--encoder-int8",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert "models quantize" in done.stderr and "Traceback" not in done.stderr
