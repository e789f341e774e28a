"""The normalized API spec: what every generation of cortex.yaml becomes.

This is the single contract between the generator (which reads, validates and renders) and the
runtime (which serves). `ApiSpec.to_json()` is written into every build context as `api.json` and
read by `runtime_base/cortex_serve`; the runtime never sees cortex.yaml itself, so it needs no
YAML parser and no knowledge of old field names.

Units are normalized here so that no consumer parses them again: durations are float seconds,
`compute.cpu` and `compute.mem` stay Kubernetes quantity strings ("200m", "1Gi"), `max_surge` and
`max_unavailable` stay int-or-percent strings as Kubernetes takes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

PredictorType = Literal["python", "tensorflow", "onnx"]

# How the user's predictor file is shaped (README.md, "Cortex generations"):
# - "class":     PythonPredictor / TensorFlowPredictor / ONNXPredictor (v0.12 and later)
# - "functions": module-level init(...) + predict(sample, metadata) (v0.9-v0.11 python)
# - "handlers":  module-level pre_inference / post_inference around a TF or ONNX model (v0.9)
# - "handler":   class Handler with one method per HTTP verb, handle_post, handle_get, ...
#                (v0.34-v0.35, where `predictor:` became `handler:`); a BatchAPI's Handler has
#                handle_batch instead
# - "task":      class Task with __call__(self, config) (TaskAPI, v0.27-v0.35, `definition:`)
PredictorInterface = Literal["class", "functions", "handlers", "handler", "task"]
# What the API is: a server answering requests, or a job run to its end (Cortex v0.19+'s
# kind: BatchAPI, v0.27+'s kind: TaskAPI; runtime_base/cortex_serve/jobs.py runs them).
ApiKind = Literal["RealtimeAPI", "BatchAPI", "TaskAPI"]

SERVER_PORT = 8888
TF_SERVING_GRPC_PORT = 9000
# What may scale a Deployment in k8s/ (--autoscaler): k8s_autoscaling.py writes each one.
AUTOSCALERS = ("hpa", "keda")


@dataclass(frozen=True)
class ModelRef:
    name: str  # DEFAULT_MODEL_NAME for a single `path`/`model`
    path: str  # as written: relative to the project root, absolute, s3://, http(s)://
    signature_key: str | None = None


@dataclass(frozen=True)
class ModelsSpec:
    """`models` (tensorflow, onnx), `multi_model_reloading` (python), or the older `model`."""

    paths: tuple[ModelRef, ...] = ()  # from `path` (one, named DEFAULT_MODEL_NAME) or `paths`
    dir: str | None = None  # each sub-folder is a model named after it
    signature_key: str | None = None  # default for every model (tensorflow)
    cache_size: int | None = None
    disk_cache_size: int | None = None


@dataclass(frozen=True)
class BatchingSpec:
    max_batch_size: int  # 2..1024
    batch_interval: float  # seconds, > 0: the longest a request waits for a batch to fill


@dataclass(frozen=True)
class DependenciesSpec:
    """The files that install an API's dependencies, project-relative (`dependencies:`, v0.30+;
    the defaults are where every release looked without it)."""

    pip: str = "requirements.txt"
    conda: str = "conda-packages.txt"
    shell: str = "dependencies.sh"


@dataclass(frozen=True)
class PredictorSpec:
    type: PredictorType
    interface: PredictorInterface
    # predictor file, posix path relative to the project root; "" only for interface "handlers"
    # without a request_handler (requests then go straight to the model)
    path: str
    config: dict[str, Any] = field(default_factory=dict)  # `config`, or `metadata` before v0.12
    python_path: str | None = None  # posix path relative to the project root
    env: dict[str, str] = field(default_factory=dict)
    models: ModelsSpec | None = None
    server_side_batching: BatchingSpec | None = None
    processes_per_replica: int = 1
    threads_per_process: int = 1
    image: str | None = None  # `predictor.image`: replaces the base image
    tensorflow_serving_image: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shm_size: str | None = None  # Kubernetes quantity
    dependencies: DependenciesSpec = field(default_factory=DependenciesSpec)


@dataclass(frozen=True)
class ComputeSpec:
    cpu: str | None = "200m"  # Kubernetes quantity string; None = no request
    gpu: int = 0
    inf: int = 0
    mem: str | None = None  # Kubernetes quantity string


@dataclass(frozen=True)
class AutoscalingSpec:
    min_replicas: int = 1
    max_replicas: int = 100
    init_replicas: int = 1
    target_replica_concurrency: float = 1.0  # default processes x threads
    max_replica_concurrency: int = 1024
    window: float = 60.0
    downscale_stabilization_period: float = 300.0
    upscale_stabilization_period: float = 60.0
    max_downscale_factor: float = 0.75
    max_upscale_factor: float = 1.5
    downscale_tolerance: float = 0.05
    upscale_tolerance: float = 0.05
    target_cpu_utilization: int | None = None  # set only by configs that name it (v0.10-v0.14)

    @property
    def starting_replicas(self) -> int:
        """The replicas compose and Kubernetes start with: `init_replicas`, at least 1 (scaling
        to zero needed Cortex's activator, which is not reproduced)."""
        return max(self.init_replicas, 1)


@dataclass(frozen=True)
class UpdateStrategySpec:
    max_surge: str = "25%"  # "25%" or "3" (Kubernetes IntOrString, kept as a string)
    max_unavailable: str = "25%"


@dataclass(frozen=True)
class TrackerSpec:
    model_type: Literal["classification", "regression"]
    key: str | None = None  # JSON key of the response to track; None = the whole response


@dataclass(frozen=True)
class CortexRelease:
    """The Cortex release(s) an API was written for, and what differs between the releases that
    share its config shape (see docs/cortex-releases.md)."""

    releases: str = "v0.19-v0.33"  # the releases that accepted the config's shape
    version: str | None = None  # --cortex-version, when given
    assumed: str = "v0.26"  # the release whose behaviour is served
    # a `str` from predict: "json" (a JSON string, up to v0.15) or "text" (text/plain, v0.16+)
    string_response: Literal["json", "text"] = "text"
    # the second argument of a 2-argument pre_inference/post_inference: "model" (the model's
    # input/output metadata, v0.9) or "config" (predictor.config, v0.10-v0.11)
    handler_metadata: Literal["model", "config"] = "config"


@dataclass(frozen=True)
class ApiSpec:
    name: str  # DNS-1035, <= 42 characters, unique in the project
    # which spec generation the config was written against: "v0.9", "v0.10", "v0.12", "v0.15"
    # or "v0.2x" (see docs/config-reference.md)
    generation: str
    endpoint: str  # always starts with "/"; POST /predict works as well
    predictor: PredictorSpec
    kind: ApiKind = "RealtimeAPI"
    compute: ComputeSpec = field(default_factory=ComputeSpec)
    autoscaling: AutoscalingSpec = field(default_factory=AutoscalingSpec)
    update_strategy: UpdateStrategySpec = field(default_factory=UpdateStrategySpec)
    tracker: TrackerSpec | None = None
    cortex: CortexRelease = field(default_factory=CortexRelease)
    line: int = 0  # line of cortex.yaml where this API starts (for later error messages)

    @property
    def is_job(self) -> bool:
        return self.kind != "RealtimeAPI"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("line")
        if not self.is_job:
            # api.json names the kind of jobs only: a spec without one is a RealtimeAPI, as
            # every image built before job kinds existed says
            data.pop("kind")
        return data

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys), as written into the build context as api.json."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# -- Cortex v0.36+: APIs given as containers ---------------------------------------------------

ContainerApiKind = Literal["RealtimeAPI", "TaskAPI", "BatchAPI"]
ProbeHandler = Literal["http_get", "tcp_socket", "exec"]


@dataclass(frozen=True)
class ProbeSpec:
    """A readiness or liveness probe (or a pre_stop hook: only the handler's fields), as Cortex
    took it from Kubernetes' Probe; the defaults are Kubernetes'."""

    handler: ProbeHandler
    port: int | None = None  # http_get, tcp_socket
    path: str = "/"  # http_get
    command: tuple[str, ...] = ()  # exec
    initial_delay_seconds: int = 0
    timeout_seconds: int = 1
    period_seconds: int = 10
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class ContainerComputeSpec:
    cpu: str | None = "200m"  # Kubernetes quantity string; None = no request
    gpu: int = 0
    inf: int = 0
    mem: str | None = None
    shm: str | None = None  # size of /dev/shm


@dataclass(frozen=True)
class ContainerSpec:
    name: str  # DNS-1123 label, unique in the pod
    image: str  # a Docker image reference, run as it is
    # Kubernetes' meaning: `command` replaces the image's ENTRYPOINT, `args` its CMD; None keeps it
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    compute: ContainerComputeSpec = field(default_factory=ContainerComputeSpec)
    readiness_probe: ProbeSpec | None = None
    liveness_probe: ProbeSpec | None = None
    pre_stop: ProbeSpec | None = None

    @property
    def compute_section(self) -> str:
        """Where its compute was written, as errors about it name it (compose and Kubernetes)."""
        return f"pod.containers.{self.name}.compute"


@dataclass(frozen=True)
class ContainerApiSpec:
    """An API of Cortex v0.36+: a pod of containers whose images the user built."""

    kind: ContainerApiKind
    name: str
    endpoint: str
    containers: tuple[ContainerSpec, ...]
    port: int | None = 8080  # pod.port: where requests go (None for a TaskAPI, which takes none)
    max_concurrency: int = 1
    max_queue_length: int = 100
    autoscaling: AutoscalingSpec | None = None  # RealtimeAPI only
    update_strategy: UpdateStrategySpec | None = None  # RealtimeAPI only
    node_groups: tuple[str, ...] = ()
    cortex: CortexRelease = field(
        default_factory=lambda: CortexRelease("v0.36-v0.42", None, "v0.42")
    )
    line: int = 0

    @property
    def generation(self) -> str:
        return CONTAINER_GENERATION

    @property
    def serving_container(self) -> ContainerSpec | None:
        """The container that listens on pod.port: the one whose readiness probe checks that
        port, else the first (Cortex let any one container listen there)."""
        if self.port is None:
            return None
        for container in self.containers:
            probe = container.readiness_probe
            if probe is not None and probe.port == self.port:
                return container
        return self.containers[0]

    def images(self) -> tuple[str, ...]:
        return tuple(container.image for container in self.containers)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("line")
        data["generation"] = self.generation
        return data


CONTAINER_GENERATION = "v0.36+ (containers)"


@dataclass(frozen=True)
class BackendSpec:
    """One API a traffic splitter routes to."""

    api: str  # the name of a realtime API of the same project
    weight: int  # 0..100: its share of requests; for the shadow, the share copied to it
    shadow: bool = False  # gets copies, fire-and-forget; its answers are dropped


@dataclass(frozen=True)
class SplitterSpec:
    """`kind: TrafficSplitter`: one endpoint whose requests go to its APIs by weight."""

    name: str  # DNS-1035 like an API's, unique among APIs and splitters
    endpoint: str
    backends: tuple[BackendSpec, ...]
    line: int = 0

    @property
    def routed(self) -> tuple[BackendSpec, ...]:
        return tuple(backend for backend in self.backends if not backend.shadow)

    @property
    def shadow(self) -> BackendSpec | None:
        return next((backend for backend in self.backends if backend.shadow), None)

    def runtime_dict(
        self, apis: Mapping[str, ApiSpec | ContainerApiSpec], urls: Mapping[str, str]
    ) -> dict[str, Any]:
        """What the splitter process reads (splitter.json): each backend with the URL it is
        reached at (`urls`: API name -> "http://host:port") and the endpoint it serves."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "backends": [
                {
                    "api": backend.api,
                    "weight": backend.weight,
                    "shadow": backend.shadow,
                    "url": urls[backend.api],
                    # APIs given as containers take requests at their port's root
                    "endpoint": (
                        apis[backend.api].endpoint
                        if isinstance(apis[backend.api], ApiSpec)
                        else "/"
                    ),
                }
                for backend in self.backends
            ],
        }

    def runtime_json(
        self, apis: Mapping[str, ApiSpec | ContainerApiSpec], urls: Mapping[str, str]
    ) -> str:
        return json.dumps(self.runtime_dict(apis, urls), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Project:
    root: Path  # the project folder (holds the config file)
    config_file: Path
    apis: tuple[ApiSpec, ...]
    notes: tuple[str, ...] = ()  # one-line notes, e.g. old field names mapped to new ones
    # APIs of kinds cortex-build does not serve yet, left out of `apis`: {name: kind}
    skipped: dict[str, str] = field(default_factory=dict)
    # Cortex v0.36+ APIs: containers run from images the user gives (never built here)
    container_apis: tuple[ContainerApiSpec, ...] = ()
    splitters: tuple[SplitterSpec, ...] = ()

    def splitter(self, name: str) -> SplitterSpec:
        for splitter in self.splitters:
            if splitter.name == name:
                return splitter
        raise KeyError(name)

    def api(self, name: str) -> ApiSpec:
        for api in self.apis:
            if api.name == name:
                return api
        raise KeyError(name)
