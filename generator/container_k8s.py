"""Kubernetes manifests for APIs given as containers (Cortex v0.36+, `pod:`), the containers
as the user gave them: k8s_workloads.py's conventions (names, labels, objects, security), for pods
whose images cortex-build does not build.

RealtimeAPI -> a Deployment `api-<name>` (probes 1:1, requests from compute, rollingUpdate from
update_strategy) and a Service `api-<name>` on pod.port. TaskAPI -> a Job `api-<name>`; BatchAPI
-> a Job whose main container is the batch worker (cortex_serve.dequeuer), the user's containers
its native sidecars, the job file a ConfigMap kustomize makes from `job.json`. Jobs sit in their
folder but out of the top kustomization: applying the project deploys what serves, applying
`k8s/<name>` runs the job once (deploying a TaskAPI or BatchAPI in Cortex ran nothing until a job
was submitted). Every container mounts a shared emptyDir at /mnt, as in Cortex. docs/kubernetes.md
has the table of fields.
"""

from __future__ import annotations

from typing import Any

from .errors import Problem, UserError
from .k8s_files import HEADER, api_folder
from .k8s_workloads import (
    SIDECAR_SECURITY_CONTEXT,
    container_resources,
    deployment,
    job,
    job_config_map_name,
    security_context,
    service,
)
from .quantities import checked_requests
from .spec import ContainerApiSpec, ContainerSpec, ProbeSpec, Project

MNT_VOLUME = "mnt"


def in_top_kustomization(api: ContainerApiSpec) -> bool:
    """Jobs run when applied: a TaskAPI's folder is applied on its own, once per run."""
    return api.kind == "RealtimeAPI"


def render_container_api(
    project: Project, api: ContainerApiSpec, worker_image: str | None = None
) -> dict[str, str]:
    """{path relative to OUT/k8s: content} for one API (`worker_image`: a BatchAPI's batch
    worker)."""
    resources: dict[str, dict[str, Any]] = {}
    kustomization: dict[str, Any] = {}
    if api.kind == "RealtimeAPI":
        resources["deployment.yaml"] = _deployment(project, api)
        resources["service.yaml"] = service(api, api.port)
    elif api.kind == "TaskAPI":
        resources["job.yaml"] = _job(project, api)
    else:
        if worker_image is None:
            raise UserError(
                Problem(
                    project.config_file.name,
                    api.line or None,
                    api.name,
                    "kind",
                    "a BatchAPI needs its batch worker's image",
                )
            )
        resources["job.yaml"] = _batch_job(project, api, worker_image)
        # the job's submission, read from OUT/k8s/<api>/job.json when applied (the user puts
        # it there, as Cortex took it per job: docs/containers.md)
        kustomization["configMapGenerator"] = [
            {"name": job_config_map_name(api), "files": ["job.json"]}
        ]
    header = HEADER.format(config=project.config_file.name, api=api.name)
    return api_folder(header, api.name, resources, **kustomization)


def pod_spec(project: Project, api: ContainerApiSpec) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": MNT_VOLUME, "emptyDir": {}}]
    containers = []
    serving = api.serving_container
    for container in api.containers:
        mounts = [{"name": MNT_VOLUME, "mountPath": "/mnt"}]
        if container.compute.shm:
            shm = f"dshm-{container.name}"
            volumes.append(
                {"name": shm, "emptyDir": {"medium": "Memory", "sizeLimit": container.compute.shm}}
            )
            mounts.append({"name": shm, "mountPath": "/dev/shm"})
        containers.append(_container(project, api, container, container is serving, mounts))
    return {"containers": containers, "volumes": volumes}


def _container(
    project: Project,
    api: ContainerApiSpec,
    container: ContainerSpec,
    serving: bool,
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    env = []
    if api.port is not None:
        env.append({"name": "CORTEX_PORT", "value": str(api.port)})
    env += [{"name": key, "value": value} for key, value in sorted(container.env.items())]
    spec: dict[str, Any] = {"name": container.name, "image": container.image}
    if container.command is not None:
        spec["command"] = list(container.command)
    if container.args is not None:
        spec["args"] = list(container.args)
    if serving and api.port is not None:
        spec["ports"] = [{"name": "http", "containerPort": api.port}]
    if env:
        spec["env"] = env
    spec["resources"] = _resources(project, api, container)
    readiness = container.readiness_probe
    if readiness is None and serving and api.kind != "TaskAPI":
        # Cortex sent traffic once the port was bound
        readiness = ProbeSpec(handler="tcp_socket", port=api.port)
    if readiness is not None:
        spec["readinessProbe"] = probe(readiness)
    if container.liveness_probe is not None:
        spec["livenessProbe"] = probe(container.liveness_probe)
    if container.pre_stop is not None:
        spec["lifecycle"] = {"preStop": _handler(container.pre_stop)}
    spec["volumeMounts"] = mounts
    spec["securityContext"] = security_context(SIDECAR_SECURITY_CONTEXT)
    return spec


def _handler(probe: ProbeSpec) -> dict[str, Any]:
    if probe.handler == "http_get":
        return {"httpGet": {"path": probe.path, "port": probe.port}}
    if probe.handler == "tcp_socket":
        return {"tcpSocket": {"port": probe.port}}
    return {"exec": {"command": list(probe.command)}}


def probe(probe: ProbeSpec) -> dict[str, Any]:
    """Cortex's probe fields are Kubernetes' own, one to one."""
    return {
        **_handler(probe),
        "initialDelaySeconds": probe.initial_delay_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "periodSeconds": probe.period_seconds,
        "successThreshold": probe.success_threshold,
        "failureThreshold": probe.failure_threshold,
    }


def _resources(project: Project, api: ContainerApiSpec, container: ContainerSpec) -> dict[str, Any]:
    compute = container.compute
    section = container.compute_section
    requests = checked_requests(project, api, section, compute.cpu, compute.mem)
    if compute.gpu > 0:
        requests["nvidia.com/gpu"] = str(compute.gpu)
    if compute.inf > 0:
        requests["aws.amazon.com/neuron"] = str(compute.inf)
    return container_resources(requests)


def _deployment(project: Project, api: ContainerApiSpec) -> dict[str, Any]:
    assert api.autoscaling is not None and api.update_strategy is not None
    # no autoscaler: Cortex scaled on the in-flight requests its proxy counted, and these pods
    # have no proxy (docs/kubernetes.md)
    replicas = api.autoscaling.starting_replicas
    return deployment(api, replicas, pod_spec(project, api), api.update_strategy)


def _job(project: Project, api: ContainerApiSpec) -> dict[str, Any]:
    spec = pod_spec(project, api)
    spec["restartPolicy"] = "Never"
    # Cortex ran a task once and reported it failed; a retry is a new run
    return job(api, spec, {"backoffLimit": 0})


def _ready_args(api: ContainerApiSpec) -> list[str]:
    """The serving container's http_get readiness probe, for the worker to wait on (a native
    sidecar's readiness does not hold back the main container)."""
    serving = api.serving_container
    probe = serving.readiness_probe if serving else None
    if probe is None or probe.handler != "http_get":
        return []
    return ["--ready-url", f"http://localhost:{probe.port}{probe.path}"]


def _batch_job(project: Project, api: ContainerApiSpec, worker_image: str) -> dict[str, Any]:
    """The user's containers as native sidecars (initContainers with restartPolicy Always,
    Kubernetes 1.29+), so the pod ends when the batch worker, its one main container, does."""
    spec = pod_spec(project, api)
    job_mount = {"name": "job", "mountPath": "/cortex/spec", "readOnly": True}
    sidecars = []
    for container in spec.pop("containers"):
        container["restartPolicy"] = "Always"
        container["volumeMounts"].append(dict(job_mount))
        sidecars.append(container)
    spec["initContainers"] = sidecars
    spec["containers"] = [
        {
            "name": "dequeuer",
            "image": worker_image,
            "args": ["--url", f"http://localhost:{api.port}/", *_ready_args(api)],
            "env": [{"name": "CORTEX_JOB_SPEC", "value": "/cortex/spec/job.json"}],
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
            "volumeMounts": [dict(job_mount)],
            "securityContext": security_context(SIDECAR_SECURITY_CONTEXT),
        }
    ]
    spec["volumes"].append({"name": "job", "configMap": {"name": job_config_map_name(api)}})
    spec["restartPolicy"] = "Never"
    # a failed batch is retried by the worker, not by a new pod
    return job(api, spec, {"backoffLimit": 0})


def autoscaling_notes(api: ContainerApiSpec) -> list[str]:
    """What the pods do not get here that Cortex gave them, said once per API where it
    matters."""
    notes = []
    if api.node_groups:
        notes.append(
            "node_groups (" + ", ".join(api.node_groups) + ") named a Cortex cluster's node "
            "groups: ignored (add a nodeSelector with a kustomize patch)"
        )
    if any(container.compute.inf for container in api.containers):
        notes.append(
            "compute.inf is requested as aws.amazon.com/neuron in k8s/ (a cluster with the "
            "Neuron device plugin); docker-compose.yaml reserves no Inferentia device"
        )
    if api.kind == "RealtimeAPI" and api.autoscaling is not None:
        scaling = api.autoscaling
        if scaling.min_replicas != scaling.max_replicas:
            notes.append(
                f"autoscaling ({scaling.min_replicas} to {scaling.max_replicas} replicas on "
                "in-flight requests) needs the request counts Cortex's proxy sidecar took; "
                "cortex-build adds no proxy, so the Deployment runs "
                f"{scaling.starting_replicas} replica(s): scale it yourself (kubectl scale, "
                "or an HPA on a metric your containers export)"
            )
    return notes
