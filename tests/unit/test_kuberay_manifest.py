"""deploy/kuberay/rayservice.yaml, read as data: valid against KubeRay's RayService schema
(strictly: an unknown field is an error, as a typo would be), and consistent with the image,
the pinned Ray and the server's settings. No cluster needed."""

from __future__ import annotations

import ast
import copy
import gzip
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from hybridsearch.config import ServerSettings
from tests.conftest import REPO

KUBERAY = REPO / "deploy" / "kuberay"
MANIFEST = KUBERAY / "rayservice.yaml"


def strict(schema: Any) -> Any:
    """The schema with unknown properties refused wherever it lists properties and does not
    say otherwise (Kubernetes would silently prune them, hiding a typo)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    with gzip.open(KUBERAY / "rayservice-v1.schema.json.gz", "rt", encoding="utf-8") as f:
        crd = json.load(f)
    assert (crd["kind"], crd["version"]) == ("RayService", "v1")
    return jsonschema.Draft7Validator(strict(crd["openAPIV3Schema"]))


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def ray_service() -> dict[str, Any]:
    [service] = [d for d in documents() if d["kind"] == "RayService"]
    return service


def errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_the_rayservice_is_valid(validator: jsonschema.Draft7Validator) -> None:
    service = ray_service()
    assert service["apiVersion"] == "ray.io/v1"
    assert errors(validator, service) == []


def test_the_validation_catches_typos_and_wrong_types(
    validator: jsonschema.Draft7Validator,
) -> None:
    typo = copy.deepcopy(ray_service())
    typo["spec"]["rayClusterConfig"]["rayVersio"] = typo["spec"]["rayClusterConfig"].pop(
        "rayVersion"
    )
    assert any("rayVersio" in e for e in errors(validator, typo))
    wrong = copy.deepcopy(ray_service())
    wrong["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = "three"
    assert any("replicas" in e for e in errors(validator, wrong))


def containers() -> Iterator[dict[str, Any]]:
    cluster = ray_service()["spec"]["rayClusterConfig"]
    yield from cluster["headGroupSpec"]["template"]["spec"]["containers"]
    for group in cluster["workerGroupSpecs"]:
        yield from group["template"]["spec"]["containers"]


def test_ray_version_and_image_match_the_project() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    [pin] = [r for r in extras["ray"] if r.startswith("ray[")]
    version = pin.split("==")[1]
    assert ray_service()["spec"]["rayClusterConfig"]["rayVersion"] == version
    targets = re.findall(r"^FROM \S+ AS (\S+)", (REPO / "Dockerfile").read_text(), re.M)
    for container in containers():
        name, _, tag = container["image"].partition(":")
        assert name == "hybridsearch" and tag in targets  # the Dockerfile's ray target


def test_the_serve_application_and_settings_exist() -> None:
    service = ray_service()
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    [application] = serve_config["applications"]
    module, _, attribute = application["import_path"].partition(":")
    source = REPO / "server" / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text())
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert attribute in assigned
    [deployment] = application["deployments"]
    resources = deployment["ray_actor_options"]["resources"]
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]
    declared = json.loads(json.loads(head["rayStartParams"]["resources"]))
    assert set(resources) <= set(declared)  # the front is pinned to the head pod
    fields = {f.upper() for f in ServerSettings.__dataclass_fields__}
    for container in containers():
        for env in container.get("env", []):
            assert env["name"].removeprefix("HYBRIDSEARCH_") in fields, env["name"]
    ports = {p["port"] for p in service["spec"]["serveService"]["spec"]["ports"]}
    assert {50051, 9090} <= ports


def test_shard_replicas_cannot_land_on_the_head() -> None:
    """The head advertises no CPUs and every replica reserves some: Ray places the replicas
    on the worker pods only (a replica reserving 0 CPUs fits the head as well)."""
    cluster = ray_service()["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    [head] = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in head["env"]}
    replica_cpus = float(env["HYBRIDSEARCH_RAY_REPLICA_CPUS"])
    # The image does not set these (its defaults serve the plain sample in-process).
    assert env["HYBRIDSEARCH_RAY"] == "auto" and env["HYBRIDSEARCH_INDEX"] == "/data/collection"
    assert replica_cpus > 0
    [workers] = cluster["workerGroupSpecs"]
    [worker] = workers["template"]["spec"]["containers"]
    worker_cpus = float(worker["resources"]["limits"]["cpu"])
    # room for every replica of the 3 shards the README builds
    per_worker = int(worker_cpus // replica_cpus)
    assert per_worker * workers["replicas"] >= 3 * int(env["HYBRIDSEARCH_REPLICAS"])
