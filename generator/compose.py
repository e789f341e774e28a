"""docker-compose.yaml: one service per API (a TF Serving sidecar and its models' copy beside a
TensorFlow API, one-shot services for jobs), the container APIs' services (container_compose.py)
and the traffic splitters', with published ports, health checks and resources under `deploy:`, so
that `docker stack deploy` takes the file too where it can (render.md says where it cannot)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import container_compose, images, jobs, splitters
from .container_compose import port_range
from .images import MODEL_DIR
from .project_files import ProjectFiles
from .quantities import compose_deploy, docker_bytes, gpu_devices
from .spec import (
    SERVER_PORT,
    TF_SERVING_GRPC_PORT,
    ApiSpec,
    ContainerApiSpec,
    Project,
    SplitterSpec,
)
from .templating import render_template
from .yaml_out import dump_yaml

if TYPE_CHECKING:  # render.py builds these and calls compose_file
    from .render import RenderedApi, RenderedContainerApi

# Compose: API number i (in config order) publishes from FIRST_HOST_PORT + (replicas before it).
FIRST_HOST_PORT = 8890
JOB_FOLDER = "job"  # OUT/<api>/job/job.json: a job API's job, mounted at /cortex/spec
# The compose file format a file that `docker stack deploy` takes declares (render.md).
SWARM_COMPOSE_VERSION = "3.8"
# Health: /healthz answers 503 while predictors initialise; a model may take minutes to load.
HEALTHCHECK_START_PERIOD = 600
HEALTHCHECK = [
    "python",
    "-c",
    f"import urllib.request as r; r.urlopen('http://127.0.0.1:{SERVER_PORT}/healthz', timeout=4)",
]
# The runtime drains for 30 s on SIGTERM (CORTEX_SERVE_GRACEFUL_TIMEOUT); Docker's default
# 10 s before SIGKILL would cut requests in flight.
STOP_GRACE_PERIOD = "40s"


@dataclass(frozen=True)
class ComposeInputs:
    """What docker-compose.yaml is written from: each part the render chose beside what the
    render made of it (image, host ports; a container API's services), in the config's order."""

    apis: Sequence[tuple[ApiSpec, RenderedApi]]
    pods: Sequence[
        tuple[ContainerApiSpec, RenderedContainerApi, container_compose.ContainerServices]
    ] = ()
    splitters: Sequence[tuple[SplitterSpec, RenderedApi]] = ()


def compose_file(project: Project, files: ProjectFiles, out: Path, inputs: ComposeInputs) -> str:
    """docker-compose.yaml's text, for OUT `out` (where .env is found from)."""
    apis = [api for api, _ in inputs.apis]
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    env_file = None
    if files.dotenv is not None:
        env_file = Path(os.path.relpath(files.dotenv, out.resolve())).as_posix()
    for api, target in inputs.apis:
        services.update(_compose_services(project, api, target, env_file))
        if api.predictor.type == "tensorflow":
            volumes[f"{api.name}-models"] = {}
    # What `docker stack deploy` refuses: device reservations, and the long form of depends_on
    # (conditions) that the TF Serving sidecar needs to start after its models are copied.
    not_for_swarm = []
    if any(api.compute.gpu > 0 for api in apis):
        not_for_swarm.append("GPU reservations (compute.gpu)")
    if volumes:
        not_for_swarm.append("the TF Serving sidecars' depends_on conditions")
    not_for_swarm += [f"the {api.kind} {api.name} (profiles)" for api in apis if api.is_job]
    tensorflow = bool(volumes)
    for _, _, pod in inputs.pods:
        services.update(pod.services)
        volumes.update(pod.volumes)
        not_for_swarm += [item for item in pod.not_for_swarm if item not in not_for_swarm]
    for splitter, target in inputs.splitters:
        services[splitter.name] = splitters.compose_service(
            splitter,
            splitters.all_apis(project),
            target.image,
            target.host_ports[0],
            _healthcheck(start_period=30),
            STOP_GRACE_PERIOD,
        )
    document: dict[str, Any] = {}
    if not not_for_swarm:
        # Docker 20.10's `docker stack deploy` reads no file without a version ("unsupported
        # Compose file version: 1.0"); Compose reads 3.8 as the Compose Specification.
        document["version"] = SWARM_COMPOSE_VERSION
    document["services"] = services
    if volumes:
        document["volumes"] = volumes
    return render_template(
        "docker-compose.yaml.jinja",
        {
            "config_name": project.config_file.name,
            "first_host_port": FIRST_HOST_PORT,
            "apis": [
                {"name": t.name, "host_ports": port_range(t.host_ports)}
                for _, t in inputs.apis
                if t.host_ports
            ],
            "jobs": [{"name": api.name, "kind": api.kind} for api in apis if api.is_job],
            "splitters": [
                {
                    "name": splitter.name,
                    "endpoint": splitter.endpoint,
                    "host_port": target.host_ports[0],
                    "routes": ", ".join(
                        f"{b.api} {b.weight}%{' (shadow)' if b.shadow else ''}"
                        for b in splitter.backends
                    ),
                }
                for splitter, target in inputs.splitters
            ],
            "pods": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "service": list(container_compose.service_names(pod).values())[-1]
                    if pod.kind == "BatchAPI"
                    else container_compose.anchor_service(pod),
                    "host_ports": port_range(p.host_ports) if p.host_ports else None,
                    "port": pod.port,
                }
                for pod, p, _ in inputs.pods
            ],
            "dotenv": env_file is not None,
            "tensorflow": tensorflow,
            "not_for_swarm": not_for_swarm,
            "document": dump_yaml(document, compose=True).rstrip("\n"),
        },
    )


def _compose_services(
    project: Project, api: ApiSpec, target: RenderedApi, env_file: str | None
) -> dict[str, Any]:
    if api.is_job:
        return _compose_job_services(project, api, target, env_file)
    placement = {
        "ports": [f"127.0.0.1:{port_range(target.host_ports)}:{SERVER_PORT}"],
        "networks": {"default": {"aliases": [f"api-{api.name}"]}},
    }
    service = _api_service(project, api, target, env_file, placement)
    service["healthcheck"] = _healthcheck(HEALTHCHECK_START_PERIOD)
    service["stop_grace_period"] = STOP_GRACE_PERIOD
    return {api.name: service, **_tf_serving_services(api, target)}


def _healthcheck(start_period: int) -> dict[str, Any]:
    # No start_interval: docker-compose 1.29 refuses the key (and Engine < 25 the setting).
    return {
        "test": ["CMD", *HEALTHCHECK],
        "interval": "10s",
        "timeout": "5s",
        "retries": 3,
        "start_period": f"{start_period}s",
    }


def _compose_job_services(
    project: Project, api: ApiSpec, target: RenderedApi, env_file: str | None
) -> dict[str, Any]:
    """A job API: a one-shot service `job-<api>` in the profile `jobs`, which `up` leaves and
    `docker-compose run --rm job-<api>` runs (the job in ./<api>/job/job.json, its workers as
    processes of the one container); no port, no healthcheck."""
    placement = {
        "profiles": [container_compose.JOBS_PROFILE],
        "volumes": [f"./{api.name}/{JOB_FOLDER}:{jobs.JOB_SPEC_DIR}:ro"],
        "restart": "no",
    }
    service = _api_service(project, api, target, env_file, placement)
    return {f"job-{api.name}": service, **_tf_serving_services(api, target)}


def _api_service(
    project: Project,
    api: ApiSpec,
    target: RenderedApi,
    env_file: str | None,
    placement: dict[str, Any],
) -> dict[str, Any]:
    """The service running the API's image, a realtime API's or a job's alike: its image,
    `placement` (ports, or the jobs profile), then TF Serving's address, .env, the requests
    under `deploy:` and /dev/shm."""
    tensorflow = api.predictor.type == "tensorflow"
    service: dict[str, Any] = {
        "image": target.image,
        "build": {"context": f"./{api.name}"},
        **placement,
    }
    if tensorflow:
        service["environment"] = {
            "CORTEX_TF_SERVING_ADDRESS": f"{api.name}-serving:{TF_SERVING_GRPC_PORT}"
        }
        service["depends_on"] = {f"{api.name}-serving": {"condition": "service_started"}}
    if env_file is not None:
        service["env_file"] = [env_file]
    # On tensorflow APIs the GPU goes to TF Serving, as in Cortex.
    deploy = compose_deploy(
        project,
        api,
        "compute",
        api.compute.cpu,
        api.compute.mem,
        gpu=0 if tensorflow else api.compute.gpu,
        replicas=None if api.is_job else api.autoscaling.starting_replicas,
    )
    if deploy:
        service["deploy"] = deploy
    if api.predictor.shm_size:
        service["shm_size"] = docker_bytes(
            project, api, "predictor.shm_size", api.predictor.shm_size
        )
    return service


def _tf_serving_services(api: ApiSpec, target: RenderedApi) -> dict[str, Any]:
    """A tensorflow API's TF Serving sidecar and the one-shot copy of its models (none for
    other APIs)."""
    if api.predictor.type != "tensorflow":
        return {}
    volume = f"{api.name}-models"
    serving: dict[str, Any] = {
        "image": target.tf_serving_image,
        "entrypoint": ["tensorflow_model_server"],
        "command": images.tf_serving_args(api),
        "volumes": [f"{volume}:{MODEL_DIR}:ro"],
        "depends_on": {f"{api.name}-models": {"condition": "service_completed_successfully"}},
    }
    if api.compute.gpu > 0:
        devices = [gpu_devices(api.compute.gpu)]
        serving["deploy"] = {"resources": {"reservations": {"devices": devices}}}
    return {
        f"{api.name}-models": {
            # The API's own image holds the models; this copies them into the shared volume
            # (emptied first, so a rebuilt image never serves a stale model). It carries the API's
            # `build:` too: this service starts first, and Compose pulls the `image:` of a service
            # without `build:` when it is missing (docker-compose 1.29 even under --build, as it
            # ignores pull_policy), where it must build it instead; the second build of the same
            # context is all cache hits.
            "image": target.image,
            "build": {"context": f"./{api.name}"},
            "user": "0:0",
            "entrypoint": [
                "sh",
                "-c",
                f"find {images.MODEL_STORE} -mindepth 1 -delete\n{images.copy_models_script(api)}",
            ],
            "volumes": [f"{volume}:{images.MODEL_STORE}"],
            "restart": "no",
        },
        f"{api.name}-serving": serving,
    }
