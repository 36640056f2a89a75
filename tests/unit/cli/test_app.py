"""The `hybridsearch` entry point: what it does when its output pipe closes early."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hybridsearch.types import Document
from tests.fakes import build_fake_index


def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`hybridsearch ... | head -1`: no BrokenPipeError traceback (from a print, or from the
    interpreter's last flush), exit 141 (128 + SIGPIPE), as a command SIGPIPE kills reports."""
    index = build_fake_index(tmp_path / "idx", [Document("a", "", "a cat")], dense=False)
    child = subprocess.Popen(
        [sys.executable, "-m", "hybridsearch.cli", "compact", str(index)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the command writes anything
    _, err = child.communicate(timeout=120)
    assert (child.returncode, err.decode()) == (141, "")
