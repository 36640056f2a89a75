"""The README's examples, run as written against a live server on the sample index.

The quick-tour `hybridsearch search` lines, the `--explain` run (its hits and scores must be
what the README shows; only the timings differ), and the grpcurl and ghz lines (pinned Go
tools, installed by scripts/go_tools.sh into .cache/go/bin).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess, start_server

README = REPO / "README.md"
DEFAULT_ADDRESS = "127.0.0.1:50051"


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of a markdown text, in order."""
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    """Shell command lines of a block: continuations joined, comments and prompts dropped."""
    joined = block.replace("\\\n", " ")
    lines = []
    for raw in joined.splitlines():
        line = raw.removeprefix("$ ").strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def block_with(prefix: str) -> str:
    found = [b for b in code_blocks(README.read_text()) if prefix in b]
    assert found, f"README has no code block with {prefix!r}"
    return found[0]


@pytest.fixture(scope="module")
def go_tools() -> dict[str, Path]:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "go_tools.sh"), "grpcurl", "ghz"],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"installing grpcurl and ghz failed:\n{done.stderr[-2000:]}")
    return {Path(p).name: Path(p) for p in done.stdout.split()}


@pytest.fixture(scope="module")
def sample_server(sample_hybrid_index: Path, model_dir: Path) -> Iterator[ServerProcess]:
    server = start_server("--index", str(sample_hybrid_index), "--model", str(model_dir))
    try:
        server.wait_serving()
        yield server
    finally:
        server.stop()


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def hybridsearch(line: str, address: str) -> list[str]:
    argv = shlex.split(line.split("  #", maxsplit=1)[0])
    assert argv[0] == "hybridsearch"
    if "--server" in argv:
        argv[argv.index("--server") + 1] = address
    else:
        argv += ["--server", address]
    return [sys.executable, "-m", "hybridsearch.cli", *argv[1:]]


def test_quick_tour_searches_run(sample_server: ServerProcess) -> None:
    lines = [c for c in commands(block_with('hybridsearch search "laminar')) if c]
    assert len(lines) == 5
    for line in lines:
        done = run(hybridsearch(line, sample_server.address))
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        if "--json" in line:
            assert json.loads(done.stdout)["hits"]
        else:
            assert re.search(r"^-- \d+ hits; total \d+ us", done.stdout, flags=re.M)


def test_explain_example_is_real_output(sample_server: ServerProcess) -> None:
    block = block_with("--explain --top-k 3")
    shown = [line for line in block.splitlines() if line.strip()]
    command, expected = shown[0], shown[1:]
    done = run(hybridsearch(command.removeprefix("$ "), sample_server.address))
    assert done.returncode == 0, done.stderr
    actual = done.stdout.splitlines()
    assert actual[:-1] == expected[:-1]  # hits, scores, ranks, normalised scores
    assert actual[-1].split(" total ")[0] == expected[-1].split(" total ")[0]


def test_grpcurl_and_ghz_examples_run(
    sample_server: ServerProcess, go_tools: dict[str, Path]
) -> None:
    lines = commands(block_with("grpcurl -plaintext"))
    assert [line.split()[0] for line in lines] == ["grpcurl", "grpcurl", "ghz"]
    for line in lines:
        argv = shlex.split(line.replace(DEFAULT_ADDRESS, sample_server.address))
        argv[0] = str(go_tools[argv[0]])
        if "-z" in argv:  # the README runs the load for 10 s; 2 s proves the command
            argv[argv.index("-z") + 1] = "2s"
        done = run(argv)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        if line.endswith(" list"):
            assert "hybridsearch.v1.SearchService" in done.stdout.split()
        elif line.startswith("grpcurl"):
            assert len(json.loads(done.stdout)["hits"]) == 5
        else:
            codes = re.findall(r"\[(\w+)\]\s+\d+ responses", done.stdout)
            assert codes == ["OK"], done.stdout
