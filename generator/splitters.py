"""Traffic splitters in a render: which are rendered, their build context, compose service and
Kubernetes manifests.

A splitter gets an image of its own, small: the base image, the runtime's locked dependencies
and code, and cortex/splitter.json; its entrypoint is `python -m cortex_serve.splitter`
(runtime_base/cortex_serve/splitter.py). Its APIs are reached by the names Cortex gave them,
`http://api-<name>:<port>` (8888, or pod.port for APIs given as containers), which are compose
network aliases and Kubernetes Service names alike, so one splitter.json serves both. A splitter
is rendered with all its APIs: without --api, or when --api names it (its APIs come with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .container_compose import anchor_service
from .k8s_workloads import RESTRICTED_SECURITY_CONTEXT, deployment, security_context, service
from .spec import SERVER_PORT, ApiSpec, ContainerApiSpec, Project, SplitterSpec

SPEC_FILE = "splitter.json"
# Kubernetes: a proxy waits more than it computes; Cortex's own splitters were Istio routes
# with no resources of their own.
K8S_REQUESTS = {"cpu": "100m", "memory": "128Mi"}


def select(project: Project, api_names: list[str] | None) -> tuple[list[SplitterSpec], list[str]]:
    """The splitters to render, and the --api names with each chosen splitter's APIs in its
    place (an empty list: every API)."""
    if not api_names:
        return list(project.splitters), []
    chosen = [s for s in project.splitters if s.name in api_names]
    names = [name for name in api_names if name not in {s.name for s in chosen}]
    for splitter in chosen:
        names += [b.api for b in splitter.backends if b.api not in names]
    return chosen, names


def backend_urls(
    splitter: SplitterSpec, apis: Mapping[str, ApiSpec | ContainerApiSpec]
) -> dict[str, str]:
    """Each API's in-network address: Cortex's Service name and the port it listens on."""
    urls = {}
    for backend in splitter.backends:
        api = apis[backend.api]
        port = api.port if isinstance(api, ContainerApiSpec) else SERVER_PORT
        urls[backend.api] = f"http://api-{backend.api}:{port}"
    return urls


def spec_json(splitter: SplitterSpec, apis: Mapping[str, ApiSpec | ContainerApiSpec]) -> str:
    return splitter.runtime_json(apis, backend_urls(splitter, apis))


def backend_services(
    splitter: SplitterSpec, apis: Mapping[str, ApiSpec | ContainerApiSpec]
) -> list[str]:
    """The compose services of its APIs (the one holding a pod's network, for containers)."""
    services = []
    for backend in splitter.backends:
        api = apis[backend.api]
        services.append(anchor_service(api) if isinstance(api, ContainerApiSpec) else api.name)
    return services


def compose_service(
    splitter: SplitterSpec,
    apis: Mapping[str, ApiSpec | ContainerApiSpec],
    image: str,
    host_port: int,
    healthcheck: dict[str, Any],
    stop_grace_period: str,
) -> dict[str, Any]:
    return {
        "image": image,
        "build": {"context": f"./{splitter.name}"},
        "ports": [f"127.0.0.1:{host_port}:{SERVER_PORT}"],
        "networks": {"default": {"aliases": [f"api-{splitter.name}"]}},
        "depends_on": backend_services(splitter, apis),
        "deploy": {"replicas": 1},
        "healthcheck": healthcheck,
        "stop_grace_period": stop_grace_period,
    }


def k8s_manifests(splitter: SplitterSpec, image: str) -> dict[str, dict[str, Any]]:
    """{file name: document} of the splitter's folder in k8s/: a Deployment and a Service
    `api-<name>` on port 8888, as an API's."""
    health = {"httpGet": {"path": "/healthz", "port": "http"}}
    container = {
        "name": "splitter",
        "image": image,
        "ports": [{"name": "http", "containerPort": SERVER_PORT}],
        "resources": {"requests": dict(K8S_REQUESTS)},
        "readinessProbe": {**health, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**health, "periodSeconds": 10, "timeoutSeconds": 5},
        "securityContext": security_context(RESTRICTED_SECURITY_CONTEXT),
    }
    return {
        "deployment.yaml": deployment(splitter, 1, {"containers": [container]}),
        "service.yaml": service(splitter, SERVER_PORT),
    }


def all_apis(project: Project) -> dict[str, ApiSpec | ContainerApiSpec]:
    found: dict[str, ApiSpec | ContainerApiSpec] = {api.name: api for api in project.apis}
    found.update((api.name, api) for api in project.container_apis)
    return found
