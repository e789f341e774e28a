"""The tables of Cortex v0.36+'s APIs, pods of containers the user built (docs/workloads/*/
configuration.md of v0.36.0-v0.42.1); read by config/containers.py."""

from __future__ import annotations

from .api import AUTOSCALING, UPDATE_STRATEGY
from .fields import Field, section

CONTAINER_API_KINDS = ("RealtimeAPI", "TaskAPI", "BatchAPI", "AsyncAPI")
DEFAULT_POD_PORT = 8080
PORT_FIELD = Field("port", "a container port, 1-65535", required=True)

_PROBE_HANDLERS: dict[str, Field] = {
    "http_get": section(
        "an HTTP GET that must answer 200",
        {
            "port": PORT_FIELD,
            "path": Field("string", "path to request (default /)"),
        },
    ),
    "tcp_socket": section("a port that must accept connections", {"port": PORT_FIELD}),
    "exec": section(
        "a command that must exit 0 (exec'd, not run in a shell)",
        {"command": Field("string_list", "the command and its arguments", required=True)},
    ),
}
PROBE: dict[str, Field] = {
    **_PROBE_HANDLERS,
    "initial_delay_seconds": Field("int", "seconds after start before the first probe", min=0),
    "timeout_seconds": Field("int", "seconds until a probe times out (default 1)", min=1),
    "period_seconds": Field("int", "seconds between probes (default 10)", min=1),
    "success_threshold": Field("int", "successes that make it pass again (default 1)", min=1),
    "failure_threshold": Field("int", "failures that make it fail (default 3)", min=1),
}
PRE_STOP: dict[str, Field] = {
    "http_get": _PROBE_HANDLERS["http_get"],
    "exec": _PROBE_HANDLERS["exec"],
}
CONTAINER_COMPUTE: dict[str, Field] = {
    "cpu": Field("cpu", "CPU request of the container (default 200m)", nullable=True),
    "gpu": Field("int", "GPUs of the container", min=0),
    "inf": Field("int", "Inferentia chips of the container", min=0),
    "mem": Field("quantity", "memory request of the container", nullable=True),
    "shm": Field("quantity", "size of /dev/shm", nullable=True),
}
CONTAINER: dict[str, Field] = {
    "name": Field("string", "container name", required=True),
    "image": Field("string", "the image to run", required=True),
    "command": Field("string_list", "entrypoint (default: the image's ENTRYPOINT)"),
    "args": Field("string_list", "arguments to the entrypoint (default: the image's CMD)"),
    "env": Field("string_map", "environment variables"),
    "compute": section("resources of the container", CONTAINER_COMPUTE),
    "readiness_probe": section("when the container may take traffic", PROBE),
    "liveness_probe": section("when the container is restarted", PROBE),
    "pre_stop": section("run before the container is stopped (v0.41+)", PRE_STOP),
}
POD: dict[str, Field] = {
    "port": Field("int", "port requests are sent to (default 8080)", min=1, max=65535),
    "max_concurrency": Field("int", "requests sent into the pod at once (default 1)", min=1),
    "max_queue_length": Field(
        "int", "requests queued beyond max_concurrency before 503 (default 100)", min=1
    ),
    "containers": Field("section_list", "the containers of the pod", section=CONTAINER),
}
CONTAINER_AUTOSCALING: dict[str, Field] = {
    "min_replicas": Field("int", "fewest replicas", min=0),
    "max_replicas": Field("int", "most replicas", min=1),
    "init_replicas": Field("int", "replicas at start (default: min_replicas)", min=0),
    "target_in_flight": Field(
        "number",
        "in-flight requests per replica to aim for (default: max_concurrency)",
        min=0,
        min_exclusive=True,
    ),
    **{
        key: AUTOSCALING[key]
        for key in (
            "window",
            "downscale_stabilization_period",
            "upscale_stabilization_period",
            "max_downscale_factor",
            "max_upscale_factor",
            "downscale_tolerance",
            "upscale_tolerance",
        )
    },
}
CONTAINER_API: dict[str, Field] = {
    "name": Field("string", "API name", required=True),
    "kind": Field("string", "the API's kind", required=True, choices=CONTAINER_API_KINDS),
    "pod": section("the pod: its port, concurrency and containers", POD, required=True),
    "autoscaling": section("replica autoscaling (RealtimeAPI)", CONTAINER_AUTOSCALING),
    "update_strategy": section("rolling updates (RealtimeAPI)", UPDATE_STRATEGY),
    "networking": section(
        "networking", {"endpoint": Field("string", "URL path of the API (default: its name)")}
    ),
    "node_groups": Field("string_list", "node groups the API may run on (a cluster's)"),
}
