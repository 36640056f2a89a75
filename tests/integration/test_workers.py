"""`serve --workers 2`: two processes on one port (SO_REUSEPORT), one announced address."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import run_cli, start_server, wait_serving


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8")
    return [int(p) for p in text.split()]


def listening_pids(port: int, pids: list[int]) -> set[int]:
    """The pids among ``pids`` holding a listening TCP socket on ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="utf-8").splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    found = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().as_posix()
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.add(pid)
    return found


def test_two_workers_share_one_port(tiny_sparse_index: Path) -> None:
    server = start_server("--index", str(tiny_sparse_index), "--workers", "2")
    try:
        port = int(server.address.rsplit(":", 1)[1])
        assert port > 0
        workers = children_of(server.process.pid)
        assert len(workers) == 2
        assert listening_pids(port, workers) == set(workers)
        wait_serving(server.address)
        request = pb.SearchRequest(
            query="laminar boundary layer", top_k=2, mode=pb.RETRIEVAL_MODE_SPARSE
        )
        for _ in range(8):  # new connections: the kernel spreads them over the workers
            with grpc.insecure_channel(server.address) as channel:
                stub = search_pb2_grpc.SearchServiceStub(channel)
                assert [h.id for h in stub.Search(request, timeout=30).hits] == ["d01", "d11"]
    finally:
        code = server.stop()
    assert code == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)


@pytest.mark.parametrize("refused", ["token file", "tls cert"])
def test_a_refused_file_stops_workers_with_its_message_and_exit_2(
    tiny_sparse_index: Path, tmp_path: Path, refused: str
) -> None:
    """The same message and exit code as one process (it was '2 worker(s) failed to bind')."""
    missing, garbage = tmp_path / "missing.txt", tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    if refused == "token file":
        flags = ["--auth-tokens-file", str(missing)]
        expected = (
            "--auth-tokens-file (env HYBRIDSEARCH_AUTH_TOKENS_FILE): "
            f"cannot read token file {missing}: No such file or directory"
        )
    else:
        flags = ["--tls-cert", str(garbage), "--tls-key", str(garbage)]
        expected = f"--tls-cert (env HYBRIDSEARCH_TLS_CERT): {garbage} holds no PEM certificate"
    for workers in ("1", "2"):
        done = run_cli(
            "serve", "--index", str(tiny_sparse_index), "--port", "0", "--workers", workers,
            *flags, check=False, timeout=60,
        )  # fmt: skip
        assert done.stderr.strip() == f"error: {expected}", workers
        assert done.returncode == 2
        assert "listening" not in done.stdout
