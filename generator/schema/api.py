"""The table of an API of predictor code (Cortex v0.9-v0.35), but for its predictor section
(predictor.py): the kinds, networking, compute, autoscaling, update strategy and tracker, with
every generation's names; and the autoscaling defaults by release."""

from __future__ import annotations

from collections.abc import Mapping

from .fields import Field, old_name, section
from .predictor import DEFINITION, HANDLER, HANDLER_ONNX, HANDLER_TENSORFLOW, PREDICTOR

MODEL_TYPES = ("classification", "regression")
REALTIME_KINDS = ("RealtimeAPI", "SyncAPI")  # SyncAPI: v0.18-v0.24's name for RealtimeAPI
OLD_KINDS = ("api", "deployment")  # v0.9-v0.11
# Jobs of predictor code: BatchAPI (v0.19-v0.35), TaskAPI (v0.27-v0.35); config/kinds.py holds
# what differs for them.
JOB_KINDS = ("BatchAPI", "TaskAPI")
# Kinds that cortex-build does not serve yet (skipped with a note): which Cortex releases had
# them and what they are. None is left: every kind is read, served, or refused (AsyncAPI).
UNSUPPORTED_KINDS: dict[str, str] = {}
# AsyncAPI (v0.31-v0.35 of predictor code, v0.36+ of containers) is refused, not skipped: a file
# of them has nothing cortex-build could run in their place.
ASYNC_API_MESSAGE = (
    "AsyncAPI (Cortex v0.31+) is not served yet: it needs a queue that takes requests and a "
    "result store that keeps each answer for GET /<id>, which cortex-build does not provide; "
    "the same code or containers can be deployed as a RealtimeAPI"
)
API_KINDS = REALTIME_KINDS + JOB_KINDS + OLD_KINDS

NETWORKING: dict[str, Field] = {
    "endpoint": Field("string", "URL path of the API"),
    "api_gateway": Field(
        "string",
        "accepted and ignored (no API gateway here)",
        choices=("public", "none"),
        note="ignored: cortex-build serves each API directly, without a gateway",
    ),
    "local_port": Field(
        "int",
        "port of `cortex deploy --env local` (v0.19-v0.24)",
        min=1,
        max=65535,
        note="ignored: the server listens on port 8888; choose the published port when running it",
    ),
}

_REPLICAS: dict[str, Field] = {
    "min_replicas": Field("int", "fewest replicas", min=1),
    "max_replicas": Field("int", "most replicas", min=1),
    "init_replicas": Field("int", "replicas at start (default: min_replicas)", min=1),
}


def _workers(processes: str, threads: str, releases: str, current_until: int) -> dict[str, Field]:
    """v0.15-v0.18's names, in autoscaling, of the predictor's processes and threads."""
    return {
        processes: old_name(
            PREDICTOR["processes_per_replica"],
            f"server processes ({releases})",
            "predictor.processes_per_replica",
            current_until,
        ),
        threads: old_name(
            PREDICTOR["threads_per_process"],
            f"threads per process ({releases})",
            "predictor.threads_per_process",
            current_until,
        ),
    }


AUTOSCALING: dict[str, Field] = {
    **_REPLICAS,
    **_workers("processes_per_replica", "threads_per_process", "v0.18", 18),
    **_workers("workers_per_replica", "threads_per_worker", "v0.15-v0.17", 17),
    "target_replica_concurrency": Field(
        "number", "in-flight requests per replica to aim for", min=0, min_exclusive=True
    ),
    "max_replica_concurrency": Field(
        "int", "in-flight requests per replica before 503", min=1, max=30000
    ),
    "window": Field(
        "duration", "time over which concurrency is averaged", min=0, min_exclusive=True
    ),
    "downscale_stabilization_period": Field("duration", "", min=0),
    "upscale_stabilization_period": Field("duration", "", min=0),
    "max_downscale_factor": Field("number", "", min=0, max=1),
    "max_upscale_factor": Field("number", "", min=1, min_exclusive=True),
    "downscale_tolerance": Field("number", "", min=0),
    "upscale_tolerance": Field("number", "", min=0),
    "target_cpu_utilization": Field(
        "int", "CPU utilization (%) that triggers scaling", min=1, max=100
    ),
}

UPDATE_STRATEGY: dict[str, Field] = {
    "max_surge": Field("int_or_percent", "replicas above the desired number during an update"),
    "max_unavailable": Field("int_or_percent", "replicas that may be down during an update"),
}

COMPUTE: dict[str, Field] = {
    "cpu": Field("cpu", "CPU request per replica", nullable=True),
    "gpu": Field("int", "GPUs per replica", min=0),
    "inf": Field("int", "Inferentia chips per replica", min=0),
    "mem": Field("quantity", "memory request per replica", nullable=True),
    # v0.9-v0.13 kept replica counts, the CPU target and the update strategy in compute
    **{key: old_name(f, f.doc, f"autoscaling.{key}", 13) for key, f in _REPLICAS.items()},
    "target_cpu_utilization": old_name(
        AUTOSCALING["target_cpu_utilization"],
        "CPU utilization (%) that triggers scaling (v0.9-v0.13)",
        "autoscaling.target_cpu_utilization",
        13,
    ),
    **{key: old_name(f, "", f"update_strategy.{key}", 13) for key, f in UPDATE_STRATEGY.items()},
}

TRACKER: dict[str, Field] = {
    "key": Field("string", "JSON key of the response to track"),
    "model_type": Field("string", "", required=True, choices=MODEL_TYPES),
}

# v0.9's `kind: api` named its model and request handler at the top level.
V09_API_KEYS = ("model", "model_format", "request_handler", "tf_signature_key")

API: dict[str, Field] = {
    "name": Field("string", "API name", required=True),
    "model": Field("string", "the model (v0.9)", target="predictor.models.path"),
    "model_format": Field(
        "string",
        "tensorflow or onnx (v0.9)",
        target="predictor.type",
        choices=("tensorflow", "onnx"),
    ),
    "request_handler": Field("string", "pre/post_inference file (v0.9)", target="predictor.path"),
    "tf_signature_key": Field(
        "string", "signature def (v0.9)", target="predictor.models.signature_key"
    ),
    # checked by config.py, which tells unsupported kinds from misspelled ones
    "kind": Field(
        "string",
        "RealtimeAPI (v0.19+), BatchAPI (v0.19+), TaskAPI (v0.27+), api (v0.9-v0.11)",
    ),
    "local_port": Field(
        "int",
        "port of `cortex deploy --env local` (v0.16-v0.17)",
        min=1,
        max=65535,
        note="ignored: the server listens on port 8888; choose the published port when running it",
    ),
    "endpoint": Field(
        "string",
        "URL path (before v0.19)",
        target="networking.endpoint",
        old=True,
        current_until=18,
    ),
    "networking": section("networking", NETWORKING),
    "predictor": section("the predictor", PREDICTOR),
    "handler": section(
        "the handler (v0.34-v0.35's name for predictor)", HANDLER, target="predictor"
    ),
    "definition": section("the task of a TaskAPI (v0.27-v0.35)", DEFINITION, target="predictor"),
    "tensorflow": section(
        "a TensorFlow model with request handlers (v0.9)",
        HANDLER_TENSORFLOW,
        target="predictor",
        old=True,
        note="old form, read as predictor with type: tensorflow",
        current_until=11,
    ),
    "onnx": section(
        "an ONNX model with request handlers (v0.9)",
        HANDLER_ONNX,
        target="predictor",
        old=True,
        note="old form, read as predictor with type: onnx",
        current_until=11,
    ),
    "tracker": section("prediction tracking", TRACKER),
    "monitoring": section(
        "prediction monitoring (v0.18-v0.24)",
        TRACKER,
        target="tracker",
        old=True,
        current_until=24,
    ),
    "compute": section("resources per replica", COMPUTE),
    "autoscaling": section("replica autoscaling", AUTOSCALING),
    "update_strategy": section("rolling updates", UPDATE_STRATEGY),
}


def sections_with_key(key: str) -> list[str]:
    """The sections of an API (dotted paths) where `key` is a field, for "it belongs in" hints."""
    found: list[str] = []

    def visit(table: Mapping[str, Field], prefix: str) -> None:
        for name, field in table.items():
            path = f"{prefix}.{name}" if prefix else name
            if name == key and prefix and not field.old:
                found.append(prefix)
            if field.section is not None and not field.old:
                visit(field.section, path)

    visit(API, "")
    return found


DEPLOYMENT: dict[str, Field] = {
    "kind": Field("string", "deployment"),
    "name": Field("string", "deployment name (prefix of default endpoints)", required=True),
}

# Autoscaling defaults by release: v0.14, the first with concurrency autoscaling, documented
# other defaults than v0.15 and later (Cortex v0.14 docs/deployments/autoscaling.md); a config
# read as v0.14 keeps the behaviour it was written against.
AUTOSCALING_DEFAULTS: dict[str, dict[str, float]] = {
    "v0.15+": {
        "window": 60.0,
        "downscale_stabilization_period": 300.0,
        "upscale_stabilization_period": 60.0,
        "max_downscale_factor": 0.75,
        "max_upscale_factor": 1.5,
        "downscale_tolerance": 0.05,
        "upscale_tolerance": 0.05,
    },
    "v0.14": {
        "window": 60.0,
        "downscale_stabilization_period": 300.0,
        "upscale_stabilization_period": 0.0,
        "max_downscale_factor": 0.5,
        "max_upscale_factor": 10.0,
        "downscale_tolerance": 0.1,
        "upscale_tolerance": 0.1,
    },
}


def autoscaling_defaults(release_minor: int) -> dict[str, float]:
    return AUTOSCALING_DEFAULTS["v0.14" if release_minor == 14 else "v0.15+"]
