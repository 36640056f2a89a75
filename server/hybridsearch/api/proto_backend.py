"""Which protobuf runtime backs the generated messages.

The server is measured with upb, protobuf's C runtime (the binary wheel's default). With the
pure-Python runtime (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``, or a platform without
the wheel) every request and response costs many times more to decode and build
(`python -m bench.proto_backend`), so the server says so at start-up.
"""

from __future__ import annotations

from google.protobuf.internal import api_implementation

UPB = "upb"


def protobuf_backend() -> str:
    """The runtime behind this process's protobuf messages: ``upb``, ``python`` or ``cpp``."""
    return str(api_implementation.Type())


def backend_warning(backend: str) -> str | None:
    """What to tell the operator when ``backend`` is not upb (None when it is)."""
    if backend == UPB:
        return None
    return (
        f"protobuf runs its {backend!r} runtime, not upb: every request and response costs "
        "several times more to decode and build (bench/proto_backend.py); unset "
        "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION, or install protobuf's binary wheel"
    )
