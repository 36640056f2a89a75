"""`hybridsearch serve` refuses an invalid setting before it binds, forks or loads anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hybridsearch.engine.catalog import CATALOG_FILE
from tests.conftest import run_cli, start_server


def test_a_bad_flag_stops_serve_with_its_flag_and_env(tmp_path: Path) -> None:
    done = run_cli("serve", "--alpha", "2", "--index", str(tmp_path), "--port", "0", check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --alpha (env HYBRIDSEARCH_ALPHA): must be a finite number in [0, 1] (got 2.0)"
    )
    assert "listening" not in done.stdout


def test_a_bad_env_variable_stops_serve_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDSEARCH_SEARCH_THREADS", "0")
    done = run_cli("serve", "--index", str(tmp_path), "--port", "0", "--workers", "2", check=False)
    assert done.returncode == 2
    assert "--search-threads (env HYBRIDSEARCH_SEARCH_THREADS): must be >= 1 (got 0)" in done.stderr
    assert "listening" not in done.stdout


@pytest.mark.parametrize("content", [None, "{not json"])
def test_a_missing_or_corrupted_adaptive_model_stops_serve_naming_it(
    tmp_path: Path, content: str | None
) -> None:
    model = tmp_path / "adaptive.json"
    if content is not None:
        model.write_text(content, encoding="utf-8")
    done = run_cli(
        "serve",
        "--adaptive-model",
        str(model),
        "--index",
        str(tmp_path),
        "--port",
        "0",
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --adaptive-model (env HYBRIDSEARCH_ADAPTIVE_MODEL): "
        f"adaptive fusion model {model}: "
    )
    assert ("cannot read it" if content is None else "not valid JSON") in done.stderr
    assert "listening" not in done.stdout


@pytest.mark.parametrize(
    ("taken", "workers"), [("port", "1"), ("metrics_port", "1"), ("port", "2")]
)
def test_a_port_in_use_stops_serve_naming_its_flag(
    tiny_sparse_index: Path, taken: str, workers: str
) -> None:
    """Exit 2 and one line (it was an uncaught RuntimeError or OSError traceback, exit 1; then
    grpc's C core logged its own add_port.cc line about the failed bind above it; with
    ``--workers 2`` the line did not name the flag)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        ports = {"port": "0", "metrics_port": "0"} | {taken: str(busy)}
        done = run_cli(
            "serve", "--index", str(tiny_sparse_index),
            "--port", ports["port"], "--metrics-port", ports["metrics_port"],
            "--workers", workers, check=False, timeout=60,
        )  # fmt: skip
    flag, env = "--" + taken.replace("_", "-"), "HYBRIDSEARCH_" + taken.upper()
    assert done.stderr.strip().splitlines() == [
        f"error: {flag} (env {env}): cannot bind 127.0.0.1:{busy}: Address already in use"
    ]
    assert done.returncode == 2
    assert "listening" not in done.stdout


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        # TEST-NET-1: an address, but none of this host's (it named --port).
        ("192.0.2.1", "cannot bind 192.0.2.1:0: Cannot assign requested address"),
        # grpc's C core logged its own add_port.cc line first.
        ("", "must not be empty (0.0.0.0 or [::] binds every interface)"),
    ],
)
def test_a_host_that_cannot_be_bound_stops_serve_naming_host(
    tiny_sparse_index: Path, host: str, reason: str
) -> None:
    done = run_cli(
        "serve", "--index", str(tiny_sparse_index), "--host", host, "--port", "0",
        check=False, timeout=60,
    )  # fmt: skip
    assert done.stderr.strip().splitlines() == [f"error: --host (env HYBRIDSEARCH_HOST): {reason}"]
    assert done.returncode == 2
    assert "listening" not in done.stdout


def test_an_invalid_bound_is_reported_alone(tmp_path: Path) -> None:
    """`--max-depth 0` is one line: the depths and top-k checked against it said "must be in
    [1, 0]" three times more."""
    done = run_cli(
        "serve", "--max-depth", "0", "--index", str(tmp_path), "--port", "0", check=False
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --max-depth (env HYBRIDSEARCH_MAX_DEPTH): must be >= 1 (got 0)"
    ]


@pytest.mark.parametrize(
    ("argv", "env"),
    [(("--log-level", "BOGUS"), {}), (("--log-level", "5"), {}), ((), {"LOG_LEVEL": "BOGUS"})],
)
def test_a_bad_log_level_stops_serve_naming_its_flag_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], env: dict[str, str]
) -> None:
    """Exit 2 and one line (it was a ValueError traceback, exit 1; the env was ignored)."""
    for name, value in env.items():
        monkeypatch.setenv("HYBRIDSEARCH_" + name, value)
    done = run_cli("serve", *argv, "--index", str(tmp_path), "--port", "0", check=False)
    assert done.returncode == 2, done.stderr
    bad = argv[1] if argv else env["LOG_LEVEL"]
    assert done.stderr.strip() == (
        f"error: --log-level (env HYBRIDSEARCH_LOG_LEVEL): invalid value {bad!r} "
        "(expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL)"
    )
    assert "listening" not in done.stdout


def test_an_absurd_encoder_thread_count_stops_serve(tmp_path: Path) -> None:
    """It was accepted: the model never finished loading and SIGTERM could not stop it."""
    done = run_cli(
        "serve", "--encoder-threads", "100000", "--index", str(tmp_path), "--port", "0",
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --encoder-threads (env HYBRIDSEARCH_ENCODER_THREADS): must be <= 1024 (got 100000)"
    )
    assert "listening" not in done.stdout


@pytest.mark.parametrize(
    "case", ["index", "index_file", "model", "data_dir_file", "data_dir_under_file", "models_dir"]
)
def test_a_bad_directory_stops_serve_before_it_binds(tmp_path: Path, case: str) -> None:
    """Exit 2 naming the flag, before ``listening on`` (it bound the port and announced it,
    then failed to load with exit 1; a missing --models-dir was never reported)."""
    missing, a_file = tmp_path / "missing", tmp_path / "file"
    a_file.write_text("not a directory")
    index = ("--index", str(tmp_path))
    argv, setting, expected = {
        "index": (("--index", str(missing)), "index", f"{missing}: no such directory"),
        "index_file": (("--index", str(a_file)), "index", f"{a_file}: not a directory"),
        "model": ((*index, "--model", str(missing)), "model", f"{missing}: no such directory"),
        "data_dir_file": (("--data-dir", str(a_file)), "data_dir", f"{a_file}: not a directory"),
        # created (and so refused) last, once the port is bound, still before ``listening on``
        "data_dir_under_file": (
            ("--data-dir", str(a_file / "data")),
            "data_dir",
            f"cannot create {a_file / 'data'}: Not a directory",
        ),
        # --read-only: without the check, the load fails at once (no catalog) instead of serving
        "models_dir": (
            ("--data-dir", str(tmp_path), "--read-only", "true", "--models-dir", str(missing)),
            "models_dir",
            f"{missing}: no such directory",
        ),
    }[case]
    done = run_cli("serve", *argv, "--port", "0", check=False, timeout=60)
    flag, env = "--" + setting.replace("_", "-"), "HYBRIDSEARCH_" + setting.upper()
    assert done.stderr.strip() == f"error: {flag} (env {env}): {expected}"
    assert done.returncode == 2
    assert "listening" not in done.stdout


@pytest.mark.parametrize("bad", ["models_dir", "auth_tokens_file", "tls_cert", "port"])
def test_a_refused_start_leaves_no_new_data_dir_behind(tmp_path: Path, bad: str) -> None:
    """A missing --data-dir is created only once every other start-up check has passed (it
    was created first, and left behind empty by a start that a later check refused)."""
    data_dir, missing = tmp_path / "new" / "data", tmp_path / "missing"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        argv = {
            "models_dir": ("--models-dir", str(missing)),
            "auth_tokens_file": ("--auth-tokens-file", str(missing)),
            "tls_cert": ("--tls-cert", str(not_pem), "--tls-key", str(not_pem)),
            "port": ("--port", str(holder.getsockname()[1])),
        }[bad]
        done = run_cli("serve", "--port", "0", "--data-dir", str(data_dir), *argv,
                       check=False, timeout=60)  # fmt: skip
    flag, env = "--" + bad.replace("_", "-"), "HYBRIDSEARCH_" + bad.upper()
    assert done.stderr.startswith(f"error: {flag} (env {env}): "), done.stderr
    assert done.returncode == 2
    assert "listening" not in done.stdout
    assert not (tmp_path / "new").exists()


def test_serve_creates_a_missing_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    server = start_server("--data-dir", str(data_dir), "--log-level", "WARNING")
    try:
        server.wait_serving(timeout=120)
        assert (data_dir / CATALOG_FILE).is_file()
    finally:
        assert server.stop(timeout=30) == 0
