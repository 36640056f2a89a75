"""storage.files: the size of a directory that commits and compactions change meanwhile."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hybridsearch.storage.files import dir_size_bytes

# Replaces whole "generations" of files over and over, as commits and compactions do: files
# and directories disappear between a walk's listing and its stat.
CHURN = r"""
import os, shutil, sys
root, i = sys.argv[1], 0
while True:
    d = os.path.join(root, f"gen-{i % 3}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for j in range(40):
        with open(os.path.join(d, f"f{j}"), "wb") as f:
            f.write(b"x" * 100)
    i += 1
"""


def test_counts_every_regular_file_below(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top").write_bytes(b"1234")
    (tmp_path / "a" / "mid").write_bytes(b"12")
    (tmp_path / "a" / "b" / "deep").write_bytes(b"1")
    assert dir_size_bytes(tmp_path) == 7
    assert dir_size_bytes(tmp_path / "missing") == 0


def test_files_deleted_during_the_walk_are_skipped_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "steady").write_bytes(b"x" * 10)
    churn = subprocess.Popen([sys.executable, "-c", CHURN, str(tmp_path)])
    try:
        walks = 0
        ended = time.monotonic() + 1.5
        while time.monotonic() < ended:  # raised FileNotFoundError within ~0.1 s
            size = dir_size_bytes(tmp_path)
            assert size >= 10
            walks += 1
        assert walks > 50
    finally:
        churn.kill()
        churn.wait()
