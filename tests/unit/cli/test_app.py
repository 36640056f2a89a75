"""The `hybridsearch` entry point: what it does when its output pipe closes early, and with
arguments that are not UTF-8."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybridsearch.cli.app import build_parser, check_text_arguments
from hybridsearch.errors import HybridSearchError
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


def _cli(*argv: bytes, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """The command run with raw argument bytes, as a shell passes them."""
    command = [sys.executable.encode(), b"-m", b"hybridsearch.cli", *argv]
    return subprocess.run(command, capture_output=True, cwd=cwd, timeout=120, check=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([b"search", b"\xff\xfe", b"--server", b"127.0.0.1:1"],
         b"argument query: not valid UTF-8 (byte 0xff at byte 1)"),
        ([b"search", b"q", b"--server", b"127.0.0.1:1", b"--collection", b"ab\xfe"],
         b"argument --collection: not valid UTF-8 (byte 0xfe at byte 3)"),
        ([b"search", b"q", b"--server", b"127.0.0.1:1", b"--tls-server-name", b"h\xfe"],
         b"argument --tls-server-name: not valid UTF-8 (byte 0xfe at byte 2)"),
        ([b"health", b"--server", b"127.0.0.1:1", b"--service", b"\xed\xa0\xbd"],
         b"argument --service: not valid UTF-8 (byte 0xed at byte 1)"),
        ([b"collections", b"alias", b"--set", b"a=\xfe", b"--server", b"127.0.0.1:1"],
         b"argument --set: not valid UTF-8 (byte 0xfe at byte 3)"),
        # Named as the subcommand that ran names it (`compact`'s DIR and `collections
        # create`'s name set the same attributes).
        ([b"serve", b"--index", b"x\xff", b"--port", b"0"],
         b"argument --index: not valid UTF-8 (byte 0xff at byte 2)"),
        ([b"eval", b"--index", b"x", b"--collection", b"c", b"--name", b"r\xff"],
         b"argument --name: not valid UTF-8 (byte 0xff at byte 2)"),
    ],
)  # fmt: skip
def test_an_argument_that_is_not_utf8_is_one_error_line(argv: list[bytes], message: bytes) -> None:
    """Python decodes such bytes into lone surrogates, which no request can carry."""
    done = _cli(*argv)
    assert (done.returncode, done.stderr) == (2, b"error: " + message + b"\n")


def test_a_corpus_path_that_is_not_utf8_is_still_read(tmp_path: Path) -> None:
    """A path is bytes to the operating system: any name a directory holds is a file name."""
    (tmp_path / os.fsdecode(b"caf\xe9.jsonl")).write_text('{"_id": "1", "text": "a cat"}\n')
    done = _cli(b"index", b"--corpus", b"caf\xe9.jsonl", b"--out", b"idx", b"--no-dense",
                b"--no-progress", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"indexed 1 documents into idx")


def test_serves_file_flags_take_any_bytes_a_file_system_does() -> None:
    """README: file flags take any bytes the file system does. serve's TLS, token and
    adaptive-model files are opened by Python, so a path that is not UTF-8 works there (it was
    refused when the UTF-8 check of text arguments came in)."""
    path = os.fsdecode(b"/keys/caf\xe9.pem")
    parser = build_parser()
    for flag in ("--tls-cert", "--tls-key", "--tls-client-ca", "--auth-tokens-file",
                 "--auth-read-only-tokens-file", "--adaptive-model"):  # fmt: skip
        check_text_arguments(parser, parser.parse_args(["serve", flag, path]))
    with pytest.raises(HybridSearchError, match="argument --index: not valid UTF-8"):
        check_text_arguments(parser, parser.parse_args(["serve", "--index", path]))
