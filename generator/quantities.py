"""CPU and memory requests as the generated files write them: each checked once against
Kubernetes' grammar (schema/values.py's parsers), then split (a TF Serving sidecar's half) or
converted for Compose (cores, exact bytes; the reservations of a service's deploy:)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .errors import UserError, api_problem
from .schema import BadValue, cpu_millicores, quantity_bytes
from .spec import ApiSpec, ContainerApiSpec, Project


def request_millicores(
    project: Project, api: ApiSpec | ContainerApiSpec, field: str, cpu: str
) -> int:
    """Millicores in a CPU request ("200m" -> 200); a UserError at `field` for what Kubernetes
    would reject."""
    try:
        return cpu_millicores(cpu)
    except BadValue as err:
        raise UserError(api_problem(project, api, field, f'{err} (got "{cpu}")')) from None


def request_bytes(project: Project, api: ApiSpec | ContainerApiSpec, field: str, mem: str) -> int:
    """Bytes in a memory quantity ("1Gi" -> 1073741824); a UserError at `field` for what
    Kubernetes would reject."""
    try:
        return quantity_bytes(mem)
    except BadValue as err:
        raise UserError(api_problem(project, api, field, f'{err} (got "{mem}")')) from None


def checked_requests(
    project: Project,
    api: ApiSpec | ContainerApiSpec,
    section: str,
    cpu: str | None,
    mem: str | None,
) -> dict[str, str]:
    """A compute section's CPU and memory requests as Kubernetes takes them ({"cpu": "200m",
    "memory": "1Gi"}), each checked; `section` names where they were written ("compute", or a
    container's)."""
    requests: dict[str, str] = {}
    if cpu is not None:
        request_millicores(project, api, f"{section}.cpu", cpu)
        requests["cpu"] = cpu
    if mem is not None:
        request_bytes(project, api, f"{section}.mem", mem)
        requests["memory"] = mem
    return requests


def compose_cpus(project: Project, api: ApiSpec | ContainerApiSpec, field: str, cpu: str) -> str:
    """A CPU request ("200m", "1.5") as Compose's `cpus`, a string of cores: "0.2", "1.5"."""
    millicores = request_millicores(project, api, field, cpu)
    return format((Decimal(millicores) / 1000).normalize(), "f")


def docker_bytes(
    project: Project, api: ApiSpec | ContainerApiSpec, field: str, quantity: str
) -> str:
    """A Kubernetes quantity ("1Gi", "500M") as a Docker size: exact bytes ("b")."""
    return f"{request_bytes(project, api, field, quantity)}b"


def compose_deploy(
    project: Project,
    api: ApiSpec | ContainerApiSpec,
    section: str,
    cpu: str | None,
    mem: str | None,
    gpu: int,
    replicas: int | None,
) -> dict[str, Any]:
    """A compose service's `deploy:` (empty when nothing is set): replicas (None for a job, which
    `docker-compose run` starts once) and Cortex's compute requests as reservations (of an API, or
    of one container of a v0.36+ pod: `section` names where they were written). Everything goes
    under `deploy:`, where `docker stack deploy` (Swarm) reads it too: it refuses service-level
    keys such as `cpu_shares`."""
    deploy: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    requested: dict[str, Any] = {}
    if cpu is not None:
        # A request in Cortex: Swarm's scheduler reserves it. docker-compose 1.29 warns that it
        # ignores the key and Compose v2 ignores it silently: locally the API gets Docker's
        # default CPU weight, never a limit (a `cpus` limit would throttle a default 200m API).
        requested["cpus"] = compose_cpus(project, api, f"{section}.cpu", cpu)
    if mem is not None:
        # A request in Cortex, as in the Kubernetes manifests: a reservation, no hard limit
        # (a limit would OOM-kill an API that Cortex let burst above its request).
        requested["memory"] = docker_bytes(project, api, f"{section}.mem", mem)
    if gpu > 0:
        requested["devices"] = [gpu_devices(gpu)]
    if requested:
        deploy["resources"] = {"reservations": requested}
    return deploy


def gpu_devices(count: int) -> dict[str, Any]:
    """`count` NVIDIA GPUs as a compose device reservation."""
    return {"driver": "nvidia", "count": count, "capabilities": ["gpu"]}


def split_in_two(requests: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Cortex's SplitInTwo of checked requests: the predictor gets the lower half, TF Serving the
    rest."""
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    if "cpu" in requests:
        low, high = _halves(cpu_millicores(requests["cpu"]))
        first["cpu"], second["cpu"] = _format_millicores(low), _format_millicores(high)
    if "memory" in requests:
        low, high = _halves(quantity_bytes(requests["memory"]))
        first["memory"], second["memory"] = _format_bytes(low), _format_bytes(high)
    return first, second


def _halves(total: int) -> tuple[int, int]:
    return total // 2, total - total // 2


def _format_millicores(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _format_bytes(size: int) -> str:
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size and size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)
