"""The CLI pins BLAS to one thread before numpy loads (a spinning OpenBLAS pool cost the
server 60 % more CPU per hybrid query); an explicit setting wins."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import sys\n"
    "import hybridsearch.cli\n"
    "import numpy, os\n"
    "print(os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('MKL_NUM_THREADS'))\n"
)


def _probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return done.stdout.strip()


def test_one_blas_thread_by_default() -> None:
    assert _probe() == "1 1"


def test_an_explicit_setting_wins() -> None:
    assert _probe(OPENBLAS_NUM_THREADS="2") == "2 1"
