"""The protobuf floor each package declares runs the stubs it ships: generated code checks
the runtime at import (a 6.x runtime refuses 7.x stubs with a VersionError)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "server": (REPO / "pyproject.toml", REPO / "server/hybridsearch/v1/search_pb2.py"),
    "client": (
        REPO / "clients/python/pyproject.toml",
        REPO / "clients/python/hybridsearch_client/_gen/hybridsearch/v1/search_pb2.py",
    ),
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_declared_protobuf_floor_is_the_stubs_generator(package: str) -> None:
    pyproject, stub = PACKAGES[package]
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    [pin] = [d for d in dependencies if re.match(r"protobuf\b", d)]
    floor = re.search(r">=\s*([0-9.]+)", pin)
    generated = re.search(r"# Protobuf Python Version: ([0-9.]+)", stub.read_text())
    assert floor is not None and generated is not None
    assert _version(floor.group(1)) >= _version(generated.group(1)), (pin, generated.group(1))
