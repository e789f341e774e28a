"""CPU and memory requests: one check and one conversion for docker-compose.yaml and k8s/."""

from __future__ import annotations

from pathlib import Path

import pytest
from cortex_build.container_compose import container_services
from cortex_build.errors import UserError
from cortex_build.k8s import render_k8s
from cortex_build.quantities import compose_cpus, compose_deploy, docker_bytes, split_in_two
from cortex_build.spec import (
    ApiSpec,
    AutoscalingSpec,
    ComputeSpec,
    ContainerApiSpec,
    ContainerComputeSpec,
    ContainerSpec,
    PredictorSpec,
    Project,
    UpdateStrategySpec,
)


def api(compute: ComputeSpec | None = None) -> ApiSpec:
    return ApiSpec(
        name="iris",
        generation="v0.26",
        endpoint="/iris",
        predictor=PredictorSpec(type="python", interface="class", path="predictor.py"),
        compute=compute or ComputeSpec(),
        line=3,
    )


def project(tmp_path: Path, *apis: ApiSpec) -> Project:
    return Project(root=tmp_path, config_file=tmp_path / "cortex.yaml", apis=apis)


@pytest.mark.parametrize(
    ("requests", "halves"),
    [
        ({"cpu": "1", "memory": "1Gi"}, ({"cpu": "500m", "memory": "512Mi"},) * 2),
        # the predictor gets the lower half, TF Serving the rest
        (
            {"cpu": "1001m", "memory": "3"},
            ({"cpu": "500m", "memory": "1"}, {"cpu": "501m", "memory": "2"}),
        ),
        ({"cpu": "4"}, ({"cpu": "2"}, {"cpu": "2"})),
        ({}, ({}, {})),
    ],
)
def test_requests_split_in_two_as_cortex_did(
    requests: dict[str, str], halves: tuple[dict[str, str], dict[str, str]]
) -> None:
    assert split_in_two(requests) == halves


def test_compose_gets_cores_and_exact_bytes(tmp_path: Path) -> None:
    spec = api()
    where = project(tmp_path, spec)
    assert compose_cpus(where, spec, "compute.cpu", "200m") == "0.2"
    assert compose_cpus(where, spec, "compute.cpu", "12345m") == "12.345"
    assert docker_bytes(where, spec, "compute.mem", "1Gi") == f"{2**30}b"
    assert docker_bytes(where, spec, "compute.mem", "1.5k") == "1500b"


@pytest.mark.parametrize(("cpu", "mem", "field"), [("lots", None, "cpu"), (None, "1GB", "mem")])
def test_a_bad_request_is_one_message_in_compose_and_kubernetes(
    tmp_path: Path, cpu: str | None, mem: str | None, field: str
) -> None:
    spec = api(ComputeSpec(cpu=cpu, mem=mem))
    where = project(tmp_path, spec)
    with pytest.raises(UserError) as compose_error:
        compose_deploy(where, spec, "compute", spec.compute.cpu, spec.compute.mem, 0, None)
    with pytest.raises(UserError) as k8s_error:
        render_k8s(where, [spec], {"iris": "iris:latest"})
    (in_compose,) = compose_error.value.problems
    (in_k8s,) = k8s_error.value.problems
    assert in_compose == in_k8s
    assert (in_k8s.file, in_k8s.line, in_k8s.api, in_k8s.field) == (
        "cortex.yaml",
        3,
        "iris",
        f"compute.{field}",
    )
    assert in_k8s.message.endswith(f'(got "{cpu or mem}")')


@pytest.mark.parametrize(("cpu", "mem", "field"), [("lots", None, "cpu"), (None, "1GB", "mem")])
def test_a_container_apis_bad_request_is_one_message_in_compose_and_kubernetes(
    tmp_path: Path, cpu: str | None, mem: str | None, field: str
) -> None:
    container = ContainerSpec(name="web", image="web:1", compute=ContainerComputeSpec(cpu, mem=mem))
    spec = ContainerApiSpec(
        kind="RealtimeAPI",
        name="web",
        endpoint="/web",
        containers=(container,),
        autoscaling=AutoscalingSpec(),
        update_strategy=UpdateStrategySpec(),
        line=5,
    )
    where = Project(root=tmp_path, config_file=tmp_path / "cortex.yaml", apis=())
    with pytest.raises(UserError) as compose_error:
        container_services(where, spec, host_ports=(8888,))
    with pytest.raises(UserError) as k8s_error:
        render_k8s(where, [], {}, container_apis=[spec])
    (in_compose,) = compose_error.value.problems
    (in_k8s,) = k8s_error.value.problems
    assert in_compose == in_k8s
    assert (in_k8s.api, in_k8s.field) == ("web", f"pod.containers.web.compute.{field}")
    assert in_k8s.message.endswith(f'(got "{cpu or mem}")')
