"""The field tables of cortex.yaml (every generation at once) and the value grammars they use.

One table per section lists every key any generation accepted there. A key whose name changed
carries `target` (the dotted path it is read as in the newest schema, e.g. `compute.min_replicas`
-> `autoscaling.min_replicas`) and `old=True`, so the loader can note the mapping. Ranges here are
Cortex v0.26's (docs/config-reference.md); cross-field rules live in the config package.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

# ---------------------------------------------------------------------------------------------
# Fields


@dataclass(frozen=True)
class Field:
    # "string", "int", "number", "bool", "duration", "cpu", "quantity", "int_or_percent",
    # "string_map" (env), "any_map" (config), "section" (a nested table), "section_list"
    kind: str
    doc: str = ""
    target: str | None = None  # absolute dotted path it is read as, when not where it is written
    old: bool = False  # an older name: reading it adds a note "old name, read as <target>"
    required: bool = False  # checked by the table walk (rules that depend on others: config.py)
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    section: Mapping[str, Field] | None = None  # for "section" and "section_list"
    list_form: Field | None = None  # a "section" that may also be written as this list
    nullable: bool = False  # `null` means "not set" (e.g. compute.cpu: null = no request)
    note: str | None = None  # the note added when the key is read (default for old names)
    # an old name's last release (minor: 14 for v0.14): APIs of that release or earlier are not
    # told it is old
    current_until: int | None = None


def _section(doc: str, table: Mapping[str, Field], **kw: Any) -> Field:
    return Field("section", doc, section=table, **kw)


TYPES = ("python", "tensorflow", "onnx")
LOG_LEVELS = ("debug", "info", "warning", "error")
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
SPLITTER_KIND = "TrafficSplitter"  # Cortex v0.19+: one endpoint over several realtime APIs

MODEL_PATH_ITEM: dict[str, Field] = {
    "name": Field("string", "model name (used in predict calls and URLs)", required=True),
    "path": Field(
        "string",
        "model folder or file: project-relative, absolute, s3://, http(s)://",
        required=True,
    ),
    "signature_key": Field("string", "signature def to use (tensorflow)"),
    "model_path": Field(
        "string",
        "the model (v0.19-v0.24)",
        target="path",
        old=True,
        note="old name, read as path",
        current_until=24,
    ),
}

MODELS: dict[str, Field] = {
    "path": Field("string", "one model, named _cortex_default"),
    "paths": Field("section_list", "several named models", section=MODEL_PATH_ITEM),
    "dir": Field("string", "a folder whose sub-folders are models named after them"),
    "signature_key": Field("string", "default signature def for every model (tensorflow)"),
    "cache_size": Field("int", "models kept in memory", min=1),
    "disk_cache_size": Field("int", "models kept on disk", min=1),
}

BATCHING: dict[str, Field] = {
    "max_batch_size": Field(
        "int", "largest batch passed to predict", required=True, min=2, max=1024
    ),
    "batch_interval": Field(
        "duration", "longest wait for a batch to fill", required=True, min=0, min_exclusive=True
    ),
}

# v0.30+: where the API's pip requirements, conda packages and shell script are.
DEPENDENCIES: dict[str, Field] = {
    "pip": Field("string", "pip requirements file (default requirements.txt)"),
    "conda": Field("string", "conda packages file (default conda-packages.txt)"),
    "shell": Field("string", "shell script run at build (default dependencies.sh)"),
}

PREDICTOR: dict[str, Field] = {
    "type": Field("string", "predictor type", choices=TYPES),
    "path": Field("string", "predictor Python file, relative to the project"),
    "model": Field(
        "string",
        "the model (v0.10-v0.17)",
        target="predictor.models.path",
        old=True,
        current_until=17,
    ),
    "signature_key": Field(
        "string",
        "signature def (v0.15-v0.17 tensorflow)",
        target="predictor.models.signature_key",
        old=True,
        current_until=17,
    ),
    "model_path": Field(
        "string",
        "the model (v0.18-v0.24)",
        target="predictor.models.path",
        old=True,
        current_until=24,
    ),
    "models": _section(
        "models served (tensorflow, onnx)",
        MODELS,
        list_form=Field(
            "section_list",
            "v0.19-v0.24: a list of named models",
            section=MODEL_PATH_ITEM,
            note="a list of models (v0.19-v0.24), read as predictor.models.paths",
            current_until=24,
        ),
    ),
    "multi_model_reloading": _section("models served (python)", MODELS, target="predictor.models"),
    "server_side_batching": _section("batch requests into one predict call", BATCHING),
    "processes_per_replica": Field("int", "server processes", min=1, max=100),
    "threads_per_process": Field("int", "threads running predict in each process", min=1),
    "config": Field("any_map", "passed to the predictor's constructor"),
    "metadata": Field(
        "any_map",
        "passed to init/predict (v0.9-v0.11)",
        target="predictor.config",
        old=True,
        current_until=11,
    ),
    "python_path": Field("string", "folder added to PYTHONPATH, relative to the project"),
    "env": Field("string_map", "environment variables"),
    "image": Field("string", "image to build on instead of the default base image"),
    "tensorflow_serving_image": Field("string", "TensorFlow Serving image (tensorflow)"),
    "log_level": Field("string", "log level", choices=LOG_LEVELS),
    "shm_size": Field("quantity", "size of /dev/shm"),
    "dependencies": _section("files that install the API's dependencies (v0.30+)", DEPENDENCIES),
}

# v0.34-v0.35 renamed `predictor:` to `handler:`, with the same fields.
HANDLER: dict[str, Field] = {
    **{key: f for key, f in PREDICTOR.items() if not f.old},
    "type": Field("string", "handler type", choices=("python", "tensorflow")),
    "path": Field("string", "Python file of class Handler, relative to the project"),
}

# A TaskAPI's `definition:` (v0.27-v0.35): the Task's file and what a Python predictor had, read
# into the predictor spec (type python, interface "task").
DEFINITION: dict[str, Field] = {
    "path": Field("string", "Python file of class Task, relative to the project", required=True),
    **{
        key: PREDICTOR[key]
        for key in ("config", "python_path", "image", "env", "log_level", "dependencies")
    },
}

# v0.9's `tensorflow:` / `onnx:` sections of a `kind: api`: a model plus optional request handlers.
_HANDLER_COMMON: dict[str, Field] = {
    "model": Field(
        "string",
        "the exported model",
        target="predictor.models.path",
        old=True,
        required=True,
        current_until=11,
    ),
    "request_handler": Field(
        "string",
        "file with pre_inference/post_inference",
        target="predictor.path",
        old=True,
        current_until=11,
    ),
    "metadata": Field(
        "any_map",
        "passed to the handlers",
        target="predictor.config",
        old=True,
        current_until=11,
    ),
    "python_path": Field("string", "folder added to PYTHONPATH", target="predictor.python_path"),
}
HANDLER_TENSORFLOW: dict[str, Field] = {
    **_HANDLER_COMMON,
    "signature_key": Field(
        "string",
        "signature def to use",
        target="predictor.models.signature_key",
        old=True,
        current_until=11,
    ),
}
HANDLER_ONNX: dict[str, Field] = dict(_HANDLER_COMMON)

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
_WORKERS: dict[str, Field] = {
    "processes_per_replica": Field(
        "int",
        "server processes (v0.18)",
        target="predictor.processes_per_replica",
        old=True,
        current_until=18,
        min=1,
        max=100,
    ),
    "threads_per_process": Field(
        "int",
        "threads per process (v0.18)",
        target="predictor.threads_per_process",
        old=True,
        current_until=18,
        min=1,
    ),
    "workers_per_replica": Field(
        "int",
        "server processes (v0.15-v0.17)",
        target="predictor.processes_per_replica",
        old=True,
        current_until=17,
        min=1,
        max=100,
    ),
    "threads_per_worker": Field(
        "int",
        "threads per process (v0.15-v0.17)",
        target="predictor.threads_per_process",
        old=True,
        current_until=17,
        min=1,
    ),
}
_TARGET_CPU = Field(
    "int",
    "CPU utilization (%) that triggers scaling (v0.9-v0.13)",
    target="autoscaling.target_cpu_utilization",
    old=True,
    current_until=13,
    min=1,
    max=100,
)

AUTOSCALING: dict[str, Field] = {
    **_REPLICAS,
    **_WORKERS,
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

COMPUTE: dict[str, Field] = {
    "cpu": Field("cpu", "CPU request per replica", nullable=True),
    "gpu": Field("int", "GPUs per replica", min=0),
    "inf": Field("int", "Inferentia chips per replica", min=0),
    "mem": Field("quantity", "memory request per replica", nullable=True),
    # v0.9-v0.13 kept replica counts and the update strategy in compute
    **{
        key: Field(
            f.kind, f.doc, target=f"autoscaling.{key}", old=True, min=f.min, current_until=13
        )
        for key, f in _REPLICAS.items()
    },
    "target_cpu_utilization": _TARGET_CPU,
    "max_surge": Field(
        "int_or_percent", "", target="update_strategy.max_surge", old=True, current_until=13
    ),
    "max_unavailable": Field(
        "int_or_percent",
        "",
        target="update_strategy.max_unavailable",
        old=True,
        current_until=13,
    ),
}

UPDATE_STRATEGY: dict[str, Field] = {
    "max_surge": Field("int_or_percent", "replicas above the desired number during an update"),
    "max_unavailable": Field("int_or_percent", "replicas that may be down during an update"),
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
    "networking": _section("networking", NETWORKING),
    "predictor": _section("the predictor", PREDICTOR),
    "handler": _section(
        "the handler (v0.34-v0.35's name for predictor)", HANDLER, target="predictor"
    ),
    "definition": _section("the task of a TaskAPI (v0.27-v0.35)", DEFINITION, target="predictor"),
    "tensorflow": _section(
        "a TensorFlow model with request handlers (v0.9)",
        HANDLER_TENSORFLOW,
        target="predictor",
        old=True,
        note="old form, read as predictor with type: tensorflow",
        current_until=11,
    ),
    "onnx": _section(
        "an ONNX model with request handlers (v0.9)",
        HANDLER_ONNX,
        target="predictor",
        old=True,
        note="old form, read as predictor with type: onnx",
        current_until=11,
    ),
    "tracker": _section("prediction tracking", TRACKER),
    "monitoring": _section(
        "prediction monitoring (v0.18-v0.24)",
        TRACKER,
        target="tracker",
        old=True,
        current_until=24,
    ),
    "compute": _section("resources per replica", COMPUTE),
    "autoscaling": _section("replica autoscaling", AUTOSCALING),
    "update_strategy": _section("rolling updates", UPDATE_STRATEGY),
}


# `kind: TrafficSplitter` (Cortex v0.19+; `shadow` v0.31+), as
# https://github.com/cortexlabs/cortex/blob/v0.35.0/docs/workloads/realtime/traffic-splitter/configuration.md
# documents it; the rules between fields (weights summing to 100, one shadow) are in
# config/splitter.py.
SPLITTER_BACKEND: dict[str, Field] = {
    "name": Field("string", "a realtime API of the same file", required=True),
    "weight": Field(
        "int",
        "percentage of requests routed to it (non-shadow weights sum to 100); for the shadow, "
        "percentage of requests copied to it",
        required=True,
        min=0,
        max=100,
    ),
    "shadow": Field("bool", "send it a copy of requests, fire-and-forget (v0.31+)"),
}
SPLITTER_NETWORKING: dict[str, Field] = {
    "endpoint": NETWORKING["endpoint"],
    "api_gateway": NETWORKING["api_gateway"],
}
SPLITTER: dict[str, Field] = {
    "name": Field("string", "traffic splitter name", required=True),
    "kind": Field("string", "TrafficSplitter", required=True, choices=(SPLITTER_KIND,)),
    "networking": _section("networking", SPLITTER_NETWORKING),
    "apis": Field(
        "section_list", "the realtime APIs to route to", required=True, section=SPLITTER_BACKEND
    ),
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


# ---------------------------------------------------------------------------------------------
# Grammars of values that end up in Dockerfiles, shell, YAML and URLs: each is strict enough that
# a value cannot break out of where it is rendered.

RESERVED_ENDPOINTS = {
    "/healthz": "health check",
    "/metrics": "metrics",
    "/openapi.json": "OpenAPI document",
    "/docs": "API docs page",
}
API_NAME_MAX = 42
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def is_api_name(value: object) -> bool:
    """An API name is a DNS-1035 label (it names a Service, a compose service and an image)."""
    if not isinstance(value, str) or len(value) > API_NAME_MAX:
        return False
    return DNS_1035.fullmatch(value) is not None


ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV_PREFIX = "CORTEX_"
# Model names appear in URLs and folder names.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ENDPOINT = re.compile(r"/[A-Za-z0-9._~/-]*")
# Remote model addresses: no whitespace, quotes, backslashes, backticks or `$`.
REMOTE_PATH = re.compile(r"(s3|https?)://[^\s\"'`$\\]+")
# Local paths (predictor files, python_path, models): what file names in projects use, and
# nothing a shell, a Dockerfile or YAML would read as syntax.
SAFE_PATH = re.compile(r"[\w.+@%,=/-]+")
SAFE_PATH_HINT = "letters, digits, '.', '_', '-', '+', '@', '%', ',', '=' and '/'"

# Docker's reference grammar (distribution/reference): [domain/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
# ASCII only: Python's \w would let Unicode letters through, which docker refuses
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_TAG = TAG.pattern
IMAGE_REF = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?")
IMAGE_REF_MAX = 255


def is_image_ref(value: str) -> bool:
    if len(value) > IMAGE_REF_MAX or IMAGE_REF.fullmatch(value) is None:
        return False
    # As Docker splits a reference: the first component is a registry only when it holds "." or
    # ":" or is "localhost"; otherwise it is part of the repository, which must be lower case
    # ("UPPER/x" is refused by `docker build -t` as an invalid reference format).
    name = value.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]  # the tag may hold capitals
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name == name.lower()


class BadValue(ValueError):
    """A value does not follow its grammar; the message says what is expected."""


_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
DURATION_HINT = 'a duration like "250ms", "60s", "5m" or "1h30m"'


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration ("1h30m", "250ms", "0") as float seconds."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match or match.group(1) in ("", "."):
            raise BadValue(f"must be {DURATION_HINT}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise BadValue(f"must be {DURATION_HINT}")
    return sign * total


PORT_HINT = "a port number from 1 to 65535"


def parse_port(value: Any) -> int:
    """A probe's port: 8080 or "8080" (named ports are not declared by cortex-build)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValue(f"must be {PORT_HINT}")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise BadValue(f"must be {PORT_HINT}")
    return int(text)


_CPU = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m?)")
CPU_HINT = 'a number of CPUs like 1, 0.5 or "500m"'


def parse_cpu(value: Any) -> str:
    """A CPU quantity (1, 0.5, "500m", "2") as Kubernetes' canonical string ("1", "500m")."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadValue(f"must be {CPU_HINT}")
    if isinstance(value, str):
        match = _CPU.fullmatch(value.strip())
        if not match:
            raise BadValue(f"must be {CPU_HINT}")
        millis = float(match.group(1)) * (1 if match.group(2) else 1000)
    else:
        if not math.isfinite(value) or value < 0:
            raise BadValue(f"must be {CPU_HINT}")
        millis = float(value) * 1000
    if abs(millis - round(millis)) > 1e-6:
        raise BadValue("must be a whole number of millicores (at most 3 decimals)")
    whole = round(millis)
    if whole <= 0:
        # A zero request is no request: Cortex's way to say so is `cpu: null`.
        raise BadValue("must be greater than 0; write null for no CPU request")
    return str(whole // 1000) if whole % 1000 == 0 else f"{whole}m"


def cpu_millicores(cpu: str) -> int:
    """Millicores in a CPU quantity accepted by parse_cpu ("500m" -> 500, "1.5" -> 1500)."""
    canonical = parse_cpu(cpu)
    return int(canonical[:-1]) if canonical.endswith("m") else int(canonical) * 1000


_QUANTITY = re.compile(
    r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|[eE][-+]?[0-9]+)?"
)
QUANTITY_HINT = 'a size like "512Mi", "2Gi" or "1G"'
_QUANTITY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


# The largest size accepted: far above any machine's memory, far below int64 (Kubernetes and
# Docker count bytes in int64), so that a typo like "100000Ti" is reported, not rendered.
MAX_QUANTITY_BYTES = 2**50
MAX_QUANTITY_SHOWN = "1Pi"


def parse_quantity(value: Any) -> str:
    """A memory size (bytes as an integer, or "512Mi", "1G") as a Kubernetes quantity string.

    The size must be at least 1 byte and at most MAX_QUANTITY_BYTES; it is checked here, once,
    so that everything downstream (quantity_bytes, the renderers) gets a sane byte count.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValue(f"must be {QUANTITY_HINT}")
    text = str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise BadValue(f"must be {QUANTITY_HINT}")
    size = _quantity_size(match)
    if size is None or size > MAX_QUANTITY_BYTES:
        raise BadValue(f"must be at most {MAX_QUANTITY_SHOWN}")
    if size == 0:
        raise BadValue("must be greater than 0")
    if size < 1:
        raise BadValue("must be at least 1 byte")
    return text


def _quantity_size(match: re.Match[str]) -> Fraction | None:
    """The exact size in bytes of a matched quantity; None when it is far beyond any maximum
    (an exponent like "1e400" is never raised to its power, so no value can overflow or hang)."""
    mantissa = Decimal(match.group(1))
    if mantissa == 0:
        return Fraction(0)
    suffix = match.group(2)
    if suffix not in _QUANTITY_FACTORS:  # an exponent, "e9" ("E" alone is exa)
        digits = suffix[1:].lstrip("+-").lstrip("0") or "0"
        exponent = int(digits) if len(digits) <= 6 else 10**7  # clamped: beyond any size
        if suffix[1:2] == "-":
            exponent = -exponent
        factor = None
    else:
        factor = _QUANTITY_FACTORS[suffix]
        exponent = len(str(factor)) - 1
    # The decimal order of magnitude, known before any power is computed.
    magnitude = mantissa.adjusted() + exponent
    if magnitude > 20:  # >= 10**20 bytes: beyond MAX_QUANTITY_BYTES
        return None
    if magnitude < -1:  # < 1 byte (and 10**exponent could be slow to compute exactly)
        return Fraction(1, 100)
    return Fraction(mantissa) * (Fraction(10) ** exponent if factor is None else factor)


def quantity_bytes(quantity: str) -> int:
    """Bytes in a quantity accepted by parse_quantity ("512Mi" -> 536870912), rounded up to a
    whole byte as Kubernetes does; exact arithmetic, so "1.1Gi" is not off by float rounding."""
    match = _QUANTITY.fullmatch(quantity.strip())
    size = _quantity_size(match) if match else None
    if size is None or not 0 < size <= MAX_QUANTITY_BYTES:
        raise BadValue(f"must be {QUANTITY_HINT}, at most {MAX_QUANTITY_SHOWN}")
    return math.ceil(size)


_INT_OR_PERCENT = re.compile(r"([0-9]+)(%?)")
INT_OR_PERCENT_HINT = 'a number of replicas like 1 or a percentage like "25%"'


def parse_int_or_percent(value: Any) -> str:
    """max_surge / max_unavailable: 3 or "25%" (Kubernetes IntOrString, kept as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValue(f"must be {INT_OR_PERCENT_HINT}")
    match = _INT_OR_PERCENT.fullmatch(str(value).strip())
    if not match:
        raise BadValue(f"must be {INT_OR_PERCENT_HINT}")
    return f"{int(match.group(1))}{match.group(2)}"


def is_zero_int_or_percent(value: str) -> bool:
    return int(value.rstrip("%")) == 0


# ---------------------------------------------------------------------------------------------
# Cortex v0.36+: every API is a pod of containers the user built (docs/workloads/*/
# configuration.md of v0.36.0-v0.42.1). Read by config/containers.py.

CONTAINER_API_KINDS = ("RealtimeAPI", "TaskAPI", "BatchAPI", "AsyncAPI")
DEFAULT_POD_PORT = 8080
PORT_FIELD = Field("port", "a container port, 1-65535", required=True)

_PROBE_HANDLERS: dict[str, Field] = {
    "http_get": _section(
        "an HTTP GET that must answer 200",
        {
            "port": PORT_FIELD,
            "path": Field("string", "path to request (default /)"),
        },
    ),
    "tcp_socket": _section("a port that must accept connections", {"port": PORT_FIELD}),
    "exec": _section(
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
    "compute": _section("resources of the container", CONTAINER_COMPUTE),
    "readiness_probe": _section("when the container may take traffic", PROBE),
    "liveness_probe": _section("when the container is restarted", PROBE),
    "pre_stop": _section("run before the container is stopped (v0.41+)", PRE_STOP),
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
    "pod": _section("the pod: its port, concurrency and containers", POD, required=True),
    "autoscaling": _section("replica autoscaling (RealtimeAPI)", CONTAINER_AUTOSCALING),
    "update_strategy": _section("rolling updates (RealtimeAPI)", UPDATE_STRATEGY),
    "networking": _section(
        "networking", {"endpoint": Field("string", "URL path of the API (default: its name)")}
    ),
    "node_groups": Field("string_list", "node groups the API may run on (a cluster's)"),
}
