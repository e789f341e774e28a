"""Pass 2 for Cortex v0.36+ APIs, given as a pod of containers (`pod:`), into ContainerApiSpec.

From v0.36 every kind (RealtimeAPI, AsyncAPI, BatchAPI, TaskAPI) names the images the user
built and how to run them; Cortex added a proxy (or a job dequeuer) beside them. The fields and
defaults are those of docs/workloads/<kind>/configuration.md at v0.36.0-v0.42.1, e.g.
https://github.com/cortexlabs/cortex/blob/v0.42.1/docs/workloads/realtime/configuration.md.
Which fields each kind takes is `KIND_FIELDS`; the table walk (schema.CONTAINER_API) has
checked every key and value already.
"""

from __future__ import annotations

import re
from typing import Any

from .. import schema
from ..spec import (
    AutoscalingSpec,
    ContainerApiSpec,
    ContainerComputeSpec,
    ContainerSpec,
    ProbeSpec,
)
from . import releases
from .api import ApiReader
from .reporting import num, show
from .walk import Located

# The fields each kind had, beyond name, kind, pod.containers and networking (v0.36-v0.42).
KIND_FIELDS: dict[str, frozenset[str]] = {
    "RealtimeAPI": frozenset(
        {
            "pod.port",
            "pod.max_concurrency",
            "pod.max_queue_length",
            "autoscaling",
            "update_strategy",
            "readiness_probe",
            "pre_stop",
        }
    ),
    "BatchAPI": frozenset({"pod.port", "readiness_probe", "pre_stop"}),
    "TaskAPI": frozenset(),
}
# What a kind's missing fields mean, for the message.
KIND_ROLE = {
    "RealtimeAPI": "a RealtimeAPI",
    "BatchAPI": "a BatchAPI (its pod takes batches on pod.port; no autoscaling)",
    "TaskAPI": "a TaskAPI (its pod runs once per job and takes no requests)",
}
# Kubernetes' container names (DNS-1123 labels).
CONTAINER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
CONTAINER_NAME_MAX = 63


class ContainerApiReader(ApiReader):
    """One `pod:` API; the name and endpoint rules are the realtime reader's."""

    def read(self) -> ContainerApiSpec | None:  # type: ignore[override]
        problems_before = len(self.reporter.problems)
        self.walk_fields(schema.CONTAINER_API)
        self.family = releases.V0_36
        self.generation = "v0.36+"
        release = self._release(releases.V0_36)
        self.release_minor = int(release.assumed.removeprefix("v0."))
        kind = self.get("kind")
        if kind == "AsyncAPI":
            line, written = self.where("kind")
            self.error(line, written, schema.ASYNC_API_MESSAGE)
            return None
        name = self._name()
        if kind is None:
            return None  # missing or invalid: reported by the walk
        self._refuse_fields_of_other_kinds(kind)
        containers = self._containers(kind)
        port = self.get("pod.port", schema.DEFAULT_POD_PORT) if kind != "TaskAPI" else None
        max_concurrency = self.get("pod.max_concurrency", 1)
        max_queue_length = self.get("pod.max_queue_length", 100)
        autoscaling = update_strategy = None
        if kind == "RealtimeAPI":
            autoscaling = self._container_autoscaling(max_concurrency, max_queue_length)
            update_strategy = self._update_strategy()
        endpoint = self._endpoint(kind, name)
        if containers:
            self._check_liveness(containers)
        if len(self.reporter.problems) > problems_before or None in (name, endpoint, containers):
            if len(self.reporter.problems) == problems_before:
                self.error(self.item.line, None, "cannot be read")
            return None
        if kind == "RealtimeAPI" and autoscaling is None:
            return None
        assert name is not None and endpoint is not None and containers is not None
        return ContainerApiSpec(
            kind=kind,
            name=name,
            endpoint=endpoint,
            containers=containers,
            port=port,
            max_concurrency=max_concurrency,
            max_queue_length=max_queue_length,
            autoscaling=autoscaling,
            update_strategy=update_strategy,
            node_groups=tuple(self.get("node_groups", ())),
            cortex=release,
            line=self.item.line,
        )

    # -- kinds -------------------------------------------------------------------------------

    def _refuse_fields_of_other_kinds(self, kind: str) -> None:
        allowed = KIND_FIELDS[kind]
        for target in ("pod.port", "pod.max_concurrency", "pod.max_queue_length"):
            if target in self.values and target not in allowed:
                self.fail(target, f"is not a field of {KIND_ROLE[kind]}")
        for section in ("autoscaling", "update_strategy"):
            if section in self.values and section not in allowed:
                self.fail(section, f"is not a field of {KIND_ROLE[kind]}")

    # -- containers --------------------------------------------------------------------------

    def _containers(self, kind: str) -> tuple[ContainerSpec, ...] | None:
        found = self.values.get("pod.containers")
        if found is None:
            if "pod.containers" not in self.rejected:
                self.missing("pod.containers", "must be provided (a list of containers)")
            return None
        if not found.value:
            self.error_at(found, "must hold at least one container")
            return None
        containers: list[ContainerSpec] = []
        names: dict[str, int] = {}
        ok = True
        for index, (line, values) in enumerate(found.value):
            container = self._container(kind, f"{found.written}[{index}]", line, values)
            if container is None:
                ok = False
                continue
            if container.name in names:
                self.error(
                    values["name"].line,
                    f"{found.written}[{index}].name",
                    f"{show(container.name)} is already the name of the container on line "
                    f"{names[container.name]} (names must be unique in the pod)",
                )
                ok = False
                continue
            names[container.name] = values["name"].line
            containers.append(container)
        return tuple(containers) if ok else None

    def _container(
        self, kind: str, written: str, line: int, values: dict[str, Located]
    ) -> ContainerSpec | None:
        def get(key: str, default: Any = None) -> Any:
            found = values.get(key)
            return default if found is None else found.value

        def where(key: str) -> tuple[int, str]:
            found = values.get(key)
            return (found.line, found.written) if found else (line, f"{written}.{key}")

        ok = True
        name = get("name")
        if name is not None and (
            len(name) > CONTAINER_NAME_MAX or not CONTAINER_NAME.fullmatch(name)
        ):
            self.error(
                *where("name"),
                "must be at most 63 lowercase letters, digits and '-', starting and ending "
                f"with a letter or digit (got {show(name)})",
            )
            ok = False
        image = get("image")
        if image is not None and not schema.is_image_ref(image):
            self.error(
                *where("image"),
                f'must be an image reference like "registry.example.com/team/api:1.0" (got '
                f"{show(image)})",
            )
            ok = False
        if kind in ("TaskAPI", "BatchAPI") and "command" not in values:
            # Cortex's TaskAPI and BatchAPI documentation marks command as required
            self.error(line, f"{written}.command", f"must be provided for {KIND_ROLE[kind]}")
            ok = False
        probes: dict[str, ProbeSpec | None] = {}
        for key in ("readiness_probe", "liveness_probe", "pre_stop"):
            if key in values and key != "liveness_probe" and key not in KIND_FIELDS[kind]:
                self.error(*where(key), f"is not a field of {KIND_ROLE[kind]}")
                ok = False
                continue
            probes[key] = self._probe(values, written, key)
            if key in values and probes[key] is None:
                ok = False
        if name is None or image is None or not ok:
            return None
        compute = ContainerComputeSpec(
            cpu=get("compute.cpu", "200m"),
            gpu=get("compute.gpu", 0),
            inf=get("compute.inf", 0),
            mem=get("compute.mem"),
            shm=get("compute.shm"),
        )
        if compute.gpu and compute.inf:
            self.error(*where("compute.inf"), "cannot be used together with compute.gpu")
            return None
        if (
            compute.shm
            and compute.mem
            and schema.quantity_bytes(compute.shm) > schema.quantity_bytes(compute.mem)
        ):
            self.error(
                *where("compute.shm"),
                f"cannot be greater than compute.mem ({compute.shm} > {compute.mem})",
            )
            return None
        return ContainerSpec(
            name=name,
            image=image,
            command=get("command"),
            args=get("args"),
            env=dict(sorted(get("env", {}).items())),
            compute=compute,
            readiness_probe=probes.get("readiness_probe"),
            liveness_probe=probes.get("liveness_probe"),
            pre_stop=probes.get("pre_stop"),
        )

    def _probe(self, values: dict[str, Located], written: str, key: str) -> ProbeSpec | None:
        section = values.get(key)
        if section is None:
            return None
        handlers = [h for h in ("http_get", "tcp_socket", "exec") if f"{key}.{h}" in values]
        if len(handlers) != 1:
            choices = "http_get or exec" if key == "pre_stop" else "http_get, tcp_socket or exec"
            given = f" (got {', '.join(handlers)})" if handlers else ""
            self.error_at(section, f"must give exactly one of {choices}{given}")
            return None
        handler = handlers[0]
        prefix = f"{key}.{handler}"

        def get(field: str, default: Any = None) -> Any:
            found = values.get(f"{key}.{field}")
            return default if found is None else found.value

        port = get(f"{handler}.port")
        command = get(f"{handler}.command", ())
        if handler in ("http_get", "tcp_socket") and port is None:
            return None  # missing or invalid: reported by the walk
        if handler == "exec" and not command:
            return None
        path = get(f"{handler}.path", "/")
        if not path.startswith("/"):
            found = values[f"{prefix}.path"]
            self.error_at(found, f"must start with '/' (got {show(path)})")
            return None
        if not schema.ENDPOINT.fullmatch(path.split("?", 1)[0]):
            found = values[f"{prefix}.path"]
            self.error_at(
                found,
                f"must be a URL path of letters, digits and '-', '.', '_', '~', '/' (got "
                f"{show(path)})",
            )
            return None
        return ProbeSpec(
            handler=handler,  # type: ignore[arg-type]
            port=port,
            path=path,
            command=tuple(command),
            initial_delay_seconds=get("initial_delay_seconds", 0),
            timeout_seconds=get("timeout_seconds", 1),
            period_seconds=get("period_seconds", 10),
            success_threshold=get("success_threshold", 1),
            failure_threshold=get("failure_threshold", 3),
        )

    def _check_liveness(self, containers: tuple[ContainerSpec, ...]) -> None:
        """A liveness probe must succeed on 1 success (Kubernetes refuses more)."""
        for index, container in enumerate(containers):
            probe = container.liveness_probe
            if probe is not None and probe.success_threshold != 1:
                self.fail(
                    f"pod.containers[{index}].liveness_probe.success_threshold",
                    f"must be 1 for a liveness probe (got {probe.success_threshold})",
                )

    # -- autoscaling -------------------------------------------------------------------------

    def _container_autoscaling(
        self, max_concurrency: int, max_queue_length: int
    ) -> AutoscalingSpec | None:
        def value(key: str, default: Any) -> Any:
            return self.get(f"autoscaling.{key}", default)

        min_replicas, max_replicas, init_replicas = replicas = self.replica_counts()
        if min_replicas > max_replicas:
            self.fail(
                "autoscaling.min_replicas",
                f"cannot be greater than max_replicas ({min_replicas} > {max_replicas})",
            )
            return None
        if not min_replicas <= init_replicas <= max_replicas:
            self.fail(
                "autoscaling.init_replicas",
                f"must be between min_replicas and max_replicas ({min_replicas} to "
                f"{max_replicas}, got {init_replicas})",
            )
            return None
        target = value("target_in_flight", float(max_concurrency))
        ceiling = max_concurrency + max_queue_length
        if target > ceiling:
            self.fail(
                "autoscaling.target_in_flight",
                f"cannot be greater than pod.max_concurrency + pod.max_queue_length "
                f"({num(target)} > {ceiling}): requests beyond those are refused",
            )
            return None
        return self.autoscaling_spec(replicas, target, ceiling)
