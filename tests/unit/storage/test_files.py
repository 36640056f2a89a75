"""storage.files: the size of a directory that commits and compactions change meanwhile."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.types import Document
from tests.fakes import HASH_ENCODER_INFO, HashEncoder

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


def test_built_files_get_the_permissions_of_ordinary_new_files(tmp_path: Path) -> None:
    """mkstemp's 0600 made manifests, vectors and shard manifests unreadable to a server
    running as another user (the image's uid, or a build pod's)."""
    old = os.umask(0o022)
    try:
        build_sharded(
            [Document(f"d{i}", "", f"some text {i}") for i in range(6)],
            tmp_path / "coll",
            2,
            encoder=HashEncoder(),
            encoder_info=HASH_ENCODER_INFO,
        )
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "coll").rglob("*") if p.is_file()]
    assert {"shards.json", "manifest.json", "vectors.npy"} <= {p.name for p in files}
    unreadable = [str(p) for p in files if stat.S_IMODE(p.stat().st_mode) & 0o044 != 0o044]
    assert unreadable == []
