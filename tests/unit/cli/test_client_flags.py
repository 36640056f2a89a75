"""The connection flags of the client commands (`search`, `health`, `ingest`, `collections`,
`eval --server`): a deadline, an address, a token or a run file that cannot work is one
``error:`` line before any call, not a gRPC error that blames the server or a traceback."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hybridsearch.cli.app import build_parser
from hybridsearch.cli.flag_types import MAX_TIMEOUT_S
from tests.conftest import run_cli

#: A port nothing listens on: the commands below must fail before they try it.
UNUSED = "127.0.0.1:9"

#: Each client command, up to its --timeout and --server flags.
COMMANDS = {
    "search": ["search", "q"],
    "health": ["health"],
    "ingest": ["ingest", "--corpus", "c.jsonl"],
    "collections": ["collections", "list"],
    "eval": ["eval", "--server", UNUSED, "--collection", "beir"],
}


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """argparse's one-line error for ``argv`` (exit 2)."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e300", str(MAX_TIMEOUT_S + 1)])
def test_a_timeout_out_of_range_is_refused(
    command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """0, a negative number and NaN failed every call at once as DEADLINE_EXCEEDED; a huge one
    overflowed gRPC's deadline and did the same."""
    error = _refused([*COMMANDS[command], "--timeout", value], capsys)
    assert error.endswith(
        f"argument --timeout: must be a number of seconds above 0 and at most {MAX_TIMEOUT_S} "
        f"(a week) (got {value!r})"
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_timeout_in_range_is_taken(command: str) -> None:
    for value in ("0.25", str(MAX_TIMEOUT_S)):
        args = build_parser().parse_args([*COMMANDS[command], "--timeout", value])
        assert args.timeout == float(value)


def _with_server(command: str, address: str) -> list[str]:
    argv = list(COMMANDS[command])
    if command == "eval":
        argv[argv.index(UNUSED)] = address
        return argv
    return [*argv, "--server", address]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1", "", "::1:50051", "[not-v6]:1", "a b:1"],
)
def test_an_address_grpc_would_misread_is_refused(
    command: str, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """gRPC took port 99999 as 34463, a missing port as 443 and '' with a log line."""
    error = _refused(_with_server(command, address), capsys)
    assert error.endswith(
        "argument --server: expected HOST:PORT, [IPv6]:PORT, unix:PATH or a gRPC target URI "
        f"(dns:///HOST:PORT), with a port from 1 to 65535 (got {address!r})"
    )


def test_a_long_bad_address_is_shown_cut(capsys: pytest.CaptureFixture[str]) -> None:
    """A 100 KB argument gave 100 KB of error text."""
    error = _refused(_with_server("health", "x" * 100_000), capsys)
    assert error.endswith(f"(got {'x' * 60!r}...)")


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:50051",
        "localhost:1",
        "[::1]:65535",
        "unix:/run/hs.sock",
        # gRPC's own target forms, taken before --server was checked
        "dns:///localhost:50051",
        "ipv4:127.0.0.1:50051",
        "unix-abstract:hybridsearch",
    ],
)
def test_the_address_forms_grpc_takes_are_taken(command: str, address: str) -> None:
    assert build_parser().parse_args(_with_server(command, address)).server == address


@pytest.fixture
def unix_health_server(tmp_path: Path) -> Iterator[str]:
    """A gRPC health service (SERVING) on a Unix socket, as a local proxy may offer one."""
    address = f"unix:{tmp_path / 'hs.sock'}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()
    try:
        yield address
    finally:
        server.stop(grace=None)


def test_a_unix_socket_address_still_connects(unix_health_server: str) -> None:
    done = run_cli("health", "--server", unix_health_server, "--timeout", "60")
    assert done.stdout.strip() == "SERVING"


def test_a_token_a_header_cannot_carry_is_refused_before_any_call() -> None:
    """gRPC refused such a call as INTERNAL "Invalid metadata", below C-core log lines."""
    done = run_cli("search", "q", "--server", UNUSED, "--token", "a\nb", check=False)
    assert (done.returncode, done.stderr) == (
        2,
        "error: --token: the token holds a control character (at character 2); a gRPC header "
        "carries printable ASCII only\n",
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"  \n", "holds no token"),
        (b"\xff\xfe", "is not UTF-8"),
        (b"tok\xc3\xa9n\n", "the token holds a non-ASCII character (at character 4)"),
    ],
)
def test_a_token_file_without_a_usable_token_is_refused(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    done = run_cli("health", "--server", UNUSED, "--token-file", str(token_file), check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --token-file: {token_file}")
    assert problem in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_eval_refuses_a_run_path_that_is_a_directory_before_evaluating(tmp_path: Path) -> None:
    """It ended in IsADirectoryError after the whole evaluation had run."""
    done = run_cli(
        "eval", "--collection", str(tmp_path / "missing"), "--run", str(tmp_path), check=False
    )
    assert (done.returncode, done.stderr) == (
        2,
        f"error: --run {tmp_path}: is a directory; give the run file's name\n",
    )


def test_eval_refuses_a_run_path_under_a_file_before_evaluating(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    run = tmp_path / "file" / "sub" / "run.trec"
    done = run_cli(
        "eval", "--collection", str(tmp_path / "missing"), "--run", str(run), check=False
    )
    assert (done.returncode, done.stderr) == (
        2,
        f"error: --run {run}: cannot be created: {tmp_path / 'file'} is not a directory\n",
    )


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_eval_refuses_a_sweep_out_dir_it_cannot_write_before_evaluating(
    tmp_path: Path, where: str
) -> None:
    """The sweep's plot and CSV were written after the whole sweep: a traceback then."""
    (tmp_path / "file").write_text("x")
    out_dir = tmp_path / "file" if where == "a file" else tmp_path / "file" / "plots"
    done = run_cli(
        "eval", "--collection", str(tmp_path / "missing"), "--sweep-alpha", "0:1:0.5",
        "--out-dir", str(out_dir), check=False,
    )  # fmt: skip
    why = (
        "is not a directory"
        if where == "a file"
        else f"cannot be created: {tmp_path / 'file'} is not a directory"
    )
    assert (done.returncode, done.stderr) == (2, f"error: --out-dir {out_dir}: {why}\n")


def test_the_connection_flags_mark_a_client_command() -> None:
    """`quiet_grpc_logs` mutes gRPC's log lines only where the flags are (not for `serve`)."""
    parser = build_parser()
    assert parser.parse_args(["health"]).grpc_client is True
    serve: argparse.Namespace = parser.parse_args(["serve", "--index", "x"])
    assert not getattr(serve, "grpc_client", False)
