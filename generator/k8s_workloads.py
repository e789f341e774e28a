"""The Kubernetes objects that run an API's pods: Deployment, Service, Job, and the parts of a
pod (the API's container, the TF Serving sidecar, the models' copy, requests, probes, security).

k8s.py puts them in an API's folder; job_k8s.py, container_k8s.py and splitters.py build their
own pods from the same parts, so that every manifest names, labels and secures pods alike.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import UserError, api_problem
from .images import (
    MODEL_DIR,
    MODEL_STORE,
    USER_ID,
    copy_models_script,
    tf_serving_args,
    tf_serving_image_for,
)
from .quantities import checked_requests, split_in_two
from .schema import ROLLOUT_STALLS, rollout_stalls
from .spec import SERVER_PORT, TF_SERVING_GRPC_PORT, ApiSpec, Project, UpdateStrategySpec

# Shutdown: the preStop pause lets endpoints drop the pod before SIGTERM reaches the server; the
# server then drains for at most DRAIN_SECONDS (passed to it as CORTEX_SERVE_GRACEFUL_TIMEOUT);
# the kubelet's grace period covers both plus a margin, so the pod is never SIGKILLed mid-drain.
PRESTOP_SECONDS = 15
DRAIN_SECONDS = 30
TERMINATION_GRACE_SECONDS = PRESTOP_SECONDS + DRAIN_SECONDS + 10
# Startup: /healthz answers 503 while predictors initialise; liveness starts only after this.
STARTUP_TIMEOUT_SECONDS = 600
STARTUP_PROBE_PERIOD = 5

TF_LOG_LEVELS = {"debug": 0, "info": 0, "warning": 1, "error": 2}  # TF_CPP_MIN_LOG_LEVEL

# The API container and the copy-models init container, as Pod Security's "restricted" level
# asks: the image's own user, no privilege escalation, no capabilities, the runtime's seccomp
# profile. The stock TF Serving image runs as root, so its sidecar gets only what root can keep
# (docs/kubernetes.md: tensorflow APIs need the "baseline" level).
RESTRICTED_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": USER_ID,
    "runAsGroup": USER_ID,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
SIDECAR_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "seccompProfile": {"type": "RuntimeDefault"},
}

NAME_LABEL = "app.kubernetes.io/name"
# Requests of devices (compute.gpu, compute.inf) as their device plugins name them.
EXTENDED_RESOURCES = ("nvidia.com/gpu", "aws.amazon.com/neuron")


class Named(Protocol):
    """What a Deployment, Service or Job is named for: an API (predictor code or containers),
    or a traffic splitter."""

    @property
    def name(self) -> str: ...


def k8s_name(api: Named) -> str:
    """Deployment, Service, Job and autoscaler name: Cortex's Service name, `api-<name>`."""
    return f"api-{api.name}"


def dotenv_secret_name(api: ApiSpec) -> str:
    return f"api-{api.name}-env"


def job_config_map_name(api: Named) -> str:
    """The ConfigMap holding a job API's job.json, mounted at /cortex/spec."""
    return f"api-{api.name}-job"


def labels(api: Named) -> dict[str, str]:
    return {NAME_LABEL: k8s_name(api), "app.kubernetes.io/managed-by": "cortex-build"}


def metadata(api: Named, name: str | None = None) -> dict[str, Any]:
    return {"name": name or k8s_name(api), "labels": labels(api)}


def security_context(template: dict[str, Any]) -> dict[str, Any]:
    """A copy per container: no two containers share (and so alter) one dict."""
    return copy.deepcopy(template)


# ---------------------------------------------------------------------------------------------
# Objects


def deployment(
    api: Named,
    replicas: int,
    pod_spec: dict[str, Any],
    strategy: UpdateStrategySpec | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment of `replicas` pods labelled for the API (a RollingUpdate per `strategy`)."""
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {NAME_LABEL: k8s_name(api)}},
    }
    if strategy is not None:
        spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxSurge": _int_or_percent(strategy.max_surge),
                "maxUnavailable": _int_or_percent(strategy.max_unavailable),
            },
        }
    template: dict[str, Any] = {"labels": labels(api)}
    if annotations:
        template["annotations"] = annotations
    spec["template"] = {"metadata": template, "spec": pod_spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(api), "spec": spec}


def service(api: Named, port: int | None) -> dict[str, Any]:
    """A ClusterIP Service `api-<name>` on `port`, to the pods' port named http."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(api),
        "spec": {
            "type": "ClusterIP",
            "selector": {NAME_LABEL: k8s_name(api)},
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def job(
    api: Named,
    pod_spec: dict[str, Any],
    spec: dict[str, Any],
    name: str | None = None,
) -> dict[str, Any]:
    """A Job of pods labelled for the API: `spec`'s fields (backoffLimit, completions), then the
    pod template."""
    template = {"metadata": {"labels": labels(api)}, "spec": pod_spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(api, name),
        "spec": {**spec, "template": template},
    }


def env_config_map(api: ApiSpec) -> dict[str, Any] | None:
    """`predictor.env` as a ConfigMap, so that `.env` (a later envFrom source) wins over it, as
    in Cortex, which sourced `.env` after applying `predictor.env`."""
    if not api.predictor.env:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(api, f"api-{api.name}-predictor-env"),
        "data": {key: str(value) for key, value in sorted(api.predictor.env.items())},
    }


# ---------------------------------------------------------------------------------------------
# A predictor API's pod


@dataclass(frozen=True)
class PodParts:
    """What the API's container needs in any pod (a Deployment's or a Job's): resource requests
    (split with the TF Serving sidecar), environment, and volumes with their mounts."""

    api_requests: dict[str, str]
    tf_requests: dict[str, str]
    env: list[dict[str, Any]]
    env_from: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]


def pod_parts(
    project: Project, api: ApiSpec, env_config: dict[str, Any] | None, has_dotenv: bool
) -> PodParts:
    is_tensorflow = api.predictor.type == "tensorflow"
    requests = checked_requests(project, api, "compute", api.compute.cpu, api.compute.mem)
    # TensorFlow APIs: the TF Serving sidecar gets half of cpu and mem and every GPU, as in Cortex.
    api_requests, tf_requests = split_in_two(requests) if is_tensorflow else (requests, {})
    gpu = {"nvidia.com/gpu": str(api.compute.gpu)} if api.compute.gpu > 0 else {}
    if is_tensorflow:
        tf_requests = {**tf_requests, **gpu}
    else:
        api_requests = {**api_requests, **gpu}
    env: list[dict[str, Any]] = []
    if is_tensorflow:
        env.append(
            {"name": "CORTEX_TF_SERVING_ADDRESS", "value": f"localhost:{TF_SERVING_GRPC_PORT}"}
        )
    env_from: list[dict[str, Any]] = []
    if env_config is not None:
        env_from.append({"configMapRef": {"name": env_config["metadata"]["name"]}})
    if has_dotenv:
        env_from.append({"secretRef": {"name": dotenv_secret_name(api)}})
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if api.predictor.shm_size:
        volumes.append(
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": api.predictor.shm_size}}
        )
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if is_tensorflow:
        volumes.append({"name": "models", "emptyDir": {}})
        mounts.append({"name": "models", "mountPath": MODEL_DIR})
    return PodParts(api_requests, tf_requests, env, env_from, volumes, mounts)


def api_deployment(
    project: Project,
    api: ApiSpec,
    image: str,
    env_config: dict[str, Any] | None,
    has_dotenv: bool,
) -> dict[str, Any]:
    """A realtime API's Deployment: the API's container (probes, drain), and for tensorflow APIs
    the TF Serving sidecar and the models' copy into it."""
    is_tensorflow = api.predictor.type == "tensorflow"
    parts = pod_parts(project, api, env_config, has_dotenv)
    env = [{"name": "CORTEX_SERVE_GRACEFUL_TIMEOUT", "value": str(DRAIN_SECONDS)}, *parts.env]
    health = {"httpGet": {"path": "/healthz", "port": "http"}}
    container: dict[str, Any] = {
        "name": "api",
        "image": image,
        "ports": [{"name": "http", "containerPort": SERVER_PORT}],
        "env": env,
        **({"envFrom": parts.env_from} if parts.env_from else {}),
        "resources": container_resources(parts.api_requests),
        "startupProbe": {
            **health,
            "periodSeconds": STARTUP_PROBE_PERIOD,
            "failureThreshold": STARTUP_TIMEOUT_SECONDS // STARTUP_PROBE_PERIOD,
        },
        "readinessProbe": {**health, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {
            **health,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        **({"volumeMounts": parts.mounts} if parts.mounts else {}),
        "securityContext": security_context(RESTRICTED_SECURITY_CONTEXT),
    }

    pod_spec: dict[str, Any] = {"containers": [container]}
    if is_tensorflow:
        pod_spec["containers"].append(tf_serving_container(api, parts.tf_requests))
        pod_spec["initContainers"] = [
            copy_models_container(image, copy_models_script(api), parts.api_requests)
        ]
    if parts.volumes:
        pod_spec["volumes"] = parts.volumes
    pod_spec["terminationGracePeriodSeconds"] = TERMINATION_GRACE_SECONDS

    strategy = api.update_strategy
    if rollout_stalls(strategy.max_surge, strategy.max_unavailable):
        # The config reader refuses this; a spec built in code is refused here too.
        raise UserError(api_problem(project, api, "update_strategy", ROLLOUT_STALLS))
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVER_PORT),
        "prometheus.io/path": "/metrics",
    }
    if env_config is not None:
        # Pods read envFrom once, at start: a changed predictor.env must roll them.
        annotations["cortex-build/predictor-env-sha256"] = _digest(env_config["data"])
    return deployment(api, api.autoscaling.init_replicas, pod_spec, strategy, annotations)


def copy_models_container(image: str, script: str, requests: dict[str, str]) -> dict[str, Any]:
    """The init container copying the API image's models into the `models` emptyDir, where TF
    Serving reads them (the emptyDir is world-writable; the image's models world-readable)."""
    return {
        "name": "copy-models",
        "image": image,
        "command": ["sh", "-c", script],
        "resources": container_resources(requests),
        "volumeMounts": [{"name": "models", "mountPath": MODEL_STORE}],
        "securityContext": security_context(RESTRICTED_SECURITY_CONTEXT),
    }


def tf_serving_container(api: ApiSpec, requests: dict[str, str]) -> dict[str, Any]:
    image = tf_serving_image_for(api)
    assert image is not None  # tensorflow APIs always have one
    return {
        "name": "tensorflow-serving",
        "image": image,
        "command": ["tensorflow_model_server"],
        "args": tf_serving_args(api),
        "ports": [{"name": "grpc", "containerPort": TF_SERVING_GRPC_PORT}],
        "env": [
            {"name": "TF_CPP_MIN_LOG_LEVEL", "value": str(TF_LOG_LEVELS[api.predictor.log_level])}
        ],
        "resources": container_resources(requests),
        "readinessProbe": {
            "tcpSocket": {"port": "grpc"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        # Outlive the predictor's drain: requests in flight still call TF Serving.
        "lifecycle": {
            "preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS + DRAIN_SECONDS)]}}
        },
        "volumeMounts": [{"name": "models", "mountPath": MODEL_DIR}],
        "securityContext": security_context(SIDECAR_SECURITY_CONTEXT),
    }


def container_resources(requests: dict[str, str]) -> dict[str, Any]:
    """A container's `resources`: the requests, and the limit extended resources need."""
    found: dict[str, Any] = {"requests": dict(requests)} if requests else {}
    # Extended resources cannot be overcommitted: the limit must equal the request.
    limits = {name: value for name, value in requests.items() if name in EXTENDED_RESOURCES}
    if limits:
        found["limits"] = limits
    return found


def _int_or_percent(value: str) -> int | str:
    """IntOrString: "25%" stays a string, "3" becomes the integer 3."""
    return value if value.endswith("%") else int(value)


def _digest(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
