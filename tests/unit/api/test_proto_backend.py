"""The protobuf runtime: upb in this install (what the server is measured with), and the
pure-Python one detected and explained when the environment forces it."""

from __future__ import annotations

import os
import subprocess
import sys

from hybridsearch.api.proto_backend import UPB, backend_warning, protobuf_backend


def test_this_install_runs_upb() -> None:
    assert protobuf_backend() == UPB
    assert backend_warning(UPB) is None


def test_the_pure_python_runtime_is_detected_and_explained() -> None:
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    code = (
        "from hybridsearch.api.proto_backend import backend_warning, protobuf_backend;"
        "print(protobuf_backend()); print(backend_warning(protobuf_backend()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    backend, warning = done.stdout.splitlines()
    assert backend == "python"
    assert "not upb" in warning and "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION" in warning
