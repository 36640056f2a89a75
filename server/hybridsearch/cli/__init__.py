"""The `hybridsearch` command line: every command, and the gRPC clients some of them are.

One module a command (`index`, `ingest`, `serve`, `search`, `health`, `models`, `eval`);
`channel` is the one place a command opens a connection to a server (TLS, bearer token).
"""

import os

# One BLAS thread unless told otherwise, set before numpy loads (the commands load it): a
# search's product is a few query rows against the matrix, memory-bound, and a multi-threaded
# OpenBLAS spins and fights onnxruntime's pool for the cores: on a busy 2-core box a top-1000
# product took 17 ms p50 with the default threads against 0.12 ms with one, and a server whose
# BLAS had two threads spent 24 instead of 15 CPU ms per hybrid query (bench/results).
for _blas_threads in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")

from hybridsearch.cli.app import build_parser, main  # noqa: E402

__all__ = ["build_parser", "main"]
