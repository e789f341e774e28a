"""docker-compose.yaml services for APIs given as containers (Cortex v0.36+, `pod:`).

A pod becomes one service per container. The container that listens on `pod.port` (see
ContainerApiSpec.serving_container; for a TaskAPI the first) holds the pod's network namespace:
it is named like a predictor API's service (`<api>`, alias `api-<api>`; a TaskAPI's `job-<api>`)
and publishes the port; the other containers join its namespace (`network_mode: service:...`),
so they reach each other on localhost as in a pod, and share a volume at /mnt as Cortex's
containers did. Kubernetes' `command` is Docker's entrypoint and `args` its command, and
`$(VAR)` in them is expanded from the container's environment as Kubernetes does. Health checks
follow the readiness probe (docs/containers.md says what an image needs for them). A BatchAPI
gets its batch worker too, `job-<api>-dequeuer`, in the same network.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from .quantities import compose_deploy, docker_bytes
from .spec import ContainerApiSpec, ContainerSpec, ProbeSpec, Project

JOBS_PROFILE = "jobs"  # `docker-compose up` leaves these services; `docker-compose run` runs one
MNT = "/mnt"
# Kubernetes' $(VAR) references in command and args; $$(VAR) is a literal $(VAR).
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class ContainerServices:
    services: dict[str, Any]
    volumes: dict[str, Any]
    notes: tuple[str, ...]
    not_for_swarm: tuple[str, ...]


def anchor_service(api: ContainerApiSpec) -> str:
    """The service that holds the pod's network namespace (and published port)."""
    return f"job-{api.name}" if api.kind != "RealtimeAPI" else api.name


# The key of a BatchAPI's batch worker in service_names (never a container's name: those are
# DNS labels)
WORKER = "(batch worker)"


def service_names(api: ContainerApiSpec) -> dict[str, str]:
    """{container name: compose service name}, the anchor first; a BatchAPI's batch worker
    (cortex_serve.dequeuer) last, as `job-<api>-dequeuer`."""
    anchor = _anchor_container(api)
    names = {anchor.name: anchor_service(api)}
    for container in api.containers:
        if container is not anchor:
            names[container.name] = f"{anchor_service(api)}-{container.name}"
    if api.kind == "BatchAPI":
        names[WORKER] = f"{anchor_service(api)}-dequeuer"
    return names


def _anchor_container(api: ContainerApiSpec) -> ContainerSpec:
    return api.serving_container or api.containers[0]


def replicas(api: ContainerApiSpec) -> int:
    """Replicas a pod gets locally: its initial ones; one when it has several containers (the
    sidecars of every replica would join the namespace of one of them)."""
    if len(api.containers) > 1:
        return 1
    return replicas_wanted(api)


def replicas_wanted(api: ContainerApiSpec) -> int:
    """The replicas the config asks for (a RealtimeAPI's; jobs run one pod)."""
    if api.kind != "RealtimeAPI" or api.autoscaling is None:
        return 1
    return api.autoscaling.starting_replicas


def port_range(ports: tuple[int, ...]) -> str:
    """Host ports as docker-compose publishes them: one port, or a range of consecutive ones."""
    return str(ports[0]) if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"


def container_services(
    project: Project,
    api: ContainerApiSpec,
    host_ports: tuple[int, ...],
    worker_image: str | None = None,
) -> ContainerServices:
    names = service_names(api)
    anchor = _anchor_container(api)
    shared = len(api.containers) > 1
    volume = f"{api.name}-mnt"
    services: dict[str, Any] = {}
    notes: list[str] = []
    for container in sorted(api.containers, key=lambda c: c is not anchor):
        service: dict[str, Any] = {"image": container.image}
        if api.kind != "RealtimeAPI":
            service["profiles"] = [JOBS_PROFILE]
        env = _environment(api, container)
        if container.command is not None:
            service["entrypoint"] = [_expand(part, env) for part in container.command]
        if container.args is not None:
            service["command"] = [_expand(part, env) for part in container.args]
        if env:
            service["environment"] = env
        if container is anchor:
            if api.kind == "RealtimeAPI" and api.port is not None:
                service["ports"] = [f"127.0.0.1:{port_range(host_ports)}:{api.port}"]
                service["networks"] = {"default": {"aliases": [f"api-{api.name}"]}}
        else:
            service["network_mode"] = f"service:{names[anchor.name]}"
            service["depends_on"] = [names[anchor.name]]
        if shared:
            service["volumes"] = [f"{volume}:{MNT}"]
        compute = container.compute
        service["deploy"] = compose_deploy(
            project,
            api,
            container.compute_section,
            compute.cpu,
            compute.mem,
            compute.gpu,
            replicas=replicas(api),
        )
        if container.compute.shm:
            service["shm_size"] = docker_bytes(
                project, api, f"{container.compute_section}.shm", container.compute.shm
            )
        probe = container.readiness_probe
        if probe is None and container is anchor and api.kind != "TaskAPI":
            # Cortex sent traffic once the port was bound: the same check by default
            probe = ProbeSpec(handler="tcp_socket", port=api.port)
        if probe is not None:
            service["healthcheck"] = healthcheck(probe)
        if api.kind != "RealtimeAPI":
            service["restart"] = "no"
        services[names[container.name]] = service
    if api.kind == "BatchAPI" and worker_image is not None:
        services[names[WORKER]] = _worker_service(api, names, worker_image)
    if api.kind == "RealtimeAPI" and len(api.containers) > 1 and replicas_wanted(api) > 1:
        notes.append(
            f"a pod of several containers runs as one replica in docker-compose.yaml (its "
            f"sidecars share one network namespace), not {replicas_wanted(api)}"
        )
    not_for_swarm: list[str] = []
    if shared:
        not_for_swarm.append(f"the containers of {api.name} sharing a network (network_mode)")
    if api.kind != "RealtimeAPI":
        not_for_swarm.append(f"the {api.kind} {api.name} (profiles)")
    if any(c.compute.gpu for c in api.containers):
        not_for_swarm.append("GPU reservations (compute.gpu)")
    return ContainerServices(
        services=services,
        volumes={volume: {}} if shared else {},
        notes=tuple(notes),
        not_for_swarm=tuple(not_for_swarm),
    )


def _worker_service(
    api: ContainerApiSpec, names: dict[str, str], worker_image: str
) -> dict[str, Any]:
    """The batch worker: in the pod's network, started once the API's container is healthy; the
    job file is given at run time (docs/containers.md)."""
    anchor = names[_anchor_container(api).name]
    return {
        "image": worker_image,
        "build": {"context": f"./{api.name}"},
        "profiles": [JOBS_PROFILE],
        "command": ["--url", f"http://localhost:{api.port}/"],
        "network_mode": f"service:{anchor}",
        "depends_on": {anchor: {"condition": "service_healthy"}},
        "restart": "no",
    }


def _environment(api: ContainerApiSpec, container: ContainerSpec) -> dict[str, str]:
    env: dict[str, str] = {}
    if api.port is not None:
        env["CORTEX_PORT"] = str(api.port)  # as Cortex exported it to every container
    env.update(container.env)
    return env


def _expand(text: str, env: dict[str, str]) -> str:
    """$(VAR) as Kubernetes expands it in command and args: from the container's environment,
    left as written when VAR is not set there; $$ is one $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def healthcheck(probe: ProbeSpec) -> dict[str, Any]:
    """A Docker health check doing what the probe does. http_get and tcp_socket run a shell
    snippet that uses whatever the image has (curl, wget, python3, bash, nc), since images have
    no common HTTP client; an image with none of them (or no /bin/sh) stays "unhealthy"."""
    if probe.handler == "exec":
        test = ["CMD", *probe.command]
    elif probe.handler == "http_get":
        test = ["CMD-SHELL", http_check(probe.port or 0, probe.path, probe.timeout_seconds)]
    else:
        test = ["CMD-SHELL", tcp_check(probe.port or 0, probe.timeout_seconds)]
    return {
        "test": test,
        "interval": f"{probe.period_seconds}s",
        "timeout": f"{probe.timeout_seconds}s",
        "retries": probe.failure_threshold,
        "start_period": f"{probe.initial_delay_seconds}s",
    }


def http_check(port: int, path: str, timeout: int) -> str:
    url = shlex.quote(f"http://127.0.0.1:{port}{path}")
    python = shlex.quote(
        f"import sys, urllib.request as r; r.urlopen(sys.argv[1], timeout={timeout})"
    )
    return (
        f"if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null -m {timeout} {url}; "
        f"elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T {timeout} {url}; "
        f"elif command -v python3 >/dev/null 2>&1; then python3 -c {python} {url}; "
        "else echo 'the image has no curl, wget or python3 for this http_get check' >&2; "
        "exit 1; fi"
    )


def tcp_check(port: int, timeout: int) -> str:
    python = shlex.quote(
        f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout={timeout})"
    )
    return (
        f"if command -v python3 >/dev/null 2>&1; then python3 -c {python}; "
        f"elif command -v bash >/dev/null 2>&1; then bash -c ': >/dev/tcp/127.0.0.1/{port}'; "
        f"elif command -v nc >/dev/null 2>&1; then nc -z -w {timeout} 127.0.0.1 {port}; "
        "else echo 'the image has no python3, bash or nc for this tcp_socket check' >&2; "
        "exit 1; fi"
    )
