"""Pass 2, one API: its kind, generation, name and endpoint, and the concerns read in order."""

from __future__ import annotations

import difflib
import json

from .. import schema
from ..spec import ApiSpec
from .predictor import PredictorReading
from .reporting import choices, show
from .scaling import ScalingReading
from .walk import check_dns_name, walk_table

# Fields that only configs written for v0.18 and later use (a config without `kind` that uses one
# is read with v0.2x's defaults).
V02X_ONLY = {
    "networking",
    "monitoring",
    "predictor.model_path",
    "predictor.models",
    "predictor.multi_model_reloading",
    "predictor.server_side_batching",
    "predictor.processes_per_replica",
    "predictor.threads_per_process",
    "predictor.image",
    "predictor.tensorflow_serving_image",
    "predictor.log_level",
    "predictor.shm_size",
    "autoscaling.processes_per_replica",
    "autoscaling.threads_per_process",
}


class ApiReader(PredictorReading, ScalingReading):
    # -- the API -----------------------------------------------------------------------------

    def read(self) -> ApiSpec | None:
        problems_before = len(self.reporter.problems)
        kind = self._kind()
        walk_table(
            self.item, schema.API, "", "", self.values, self.reporter, self.label, self.rejected
        )
        self.generation = self._generation(kind)
        name = self._name()
        predictor = self._predictor(kind)
        compute = self._compute()
        if predictor is not None and compute is not None:
            self._check_shm(predictor, compute)
        autoscaling = self._autoscaling(predictor)
        update_strategy = self._update_strategy()
        tracker = self._tracker()
        endpoint = self._endpoint(kind, name)
        if (
            len(self.reporter.problems) > problems_before
            or name is None
            or predictor is None
            or compute is None
            or autoscaling is None
            or endpoint is None
        ):
            if not self.reporter.problems:  # never drop an API silently
                self.error(self.item.line, None, "cannot be read")
            return None
        return ApiSpec(
            name=name,
            generation=self.generation,
            endpoint=endpoint,
            predictor=predictor,
            compute=compute,
            autoscaling=autoscaling,
            update_strategy=update_strategy,
            tracker=tracker,
            line=self.item.line,
        )

    def _kind(self) -> str | None:
        node = self.item.value.get("kind")
        if node is None or node.refused:
            return None
        line = self.item.key_lines["kind"]
        kind = node.value
        if kind in schema.UNSUPPORTED_KINDS:
            self.error(
                line,
                "kind",
                f"kind {kind} is not supported: cortex-build serves realtime "
                "APIs (kind: RealtimeAPI)",
            )
        elif kind == "SyncAPI":
            self.note(line, "kind", "old name, read as RealtimeAPI")
            return "RealtimeAPI"
        elif kind in ("RealtimeAPI", "api"):
            return kind
        elif isinstance(kind, str):
            message = f"invalid value (got {show(kind)}, must be {choices(schema.API_KINDS)})"
            close = difflib.get_close_matches(kind, schema.API_KINDS, n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {json.dumps(close[0])}?)"
            self.error(line, "kind", message)
        return None  # a kind that is not a string is reported by the table walk

    def _generation(self, kind: str | None) -> str:
        """Which generation the API was written against (refined for kind: api predictors once
        their file is read: init(metadata) is v0.9's, init(model_path, metadata) v0.10's)."""
        if kind == "api" or "tensorflow" in self.item.value or "onnx" in self.item.value:
            return "v0.9" if "predictor" not in self.item.value else "v0.10"
        if kind == "RealtimeAPI":
            return "v0.2x"
        written = {loc.written for loc in self.values.values()}
        if written & V02X_ONLY:
            return "v0.2x"
        if (
            written & {"predictor.model", "predictor.signature_key"}
            or "autoscaling" in self.item.value
            or "update_strategy" in self.item.value
            or self.get("predictor.type") in ("tensorflow", "onnx")
        ):
            return "v0.15"
        return "v0.12"

    def _name(self) -> str | None:
        found = self.values.get("name")
        if found is None:
            return None  # reported by the walk
        if not check_dns_name(found.value, found.line, self.label, "name", self.reporter):
            return None
        return found.value

    def _endpoint(self, kind: str | None, name: str | None) -> str | None:
        found = self.values.get("networking.endpoint")
        if found is None:
            if name is None:
                return None
            if kind == "api" and self.deployment:
                return f"/{self.deployment}/{name}"
            return f"/{name}"
        endpoint = found.value
        if not endpoint.startswith("/"):
            endpoint = "/" + endpoint
        if len(endpoint) > 1:
            endpoint = endpoint.rstrip("/")
        segments = endpoint.split("/")
        if (
            not schema.ENDPOINT.fullmatch(endpoint)
            or "//" in endpoint
            or any(seg in (".", "..") for seg in segments)
        ):
            self.error(
                found.line,
                found.written,
                "must be a URL path of letters, digits and '-', '.', '_', '~', '/' "
                f"(got {show(found.value)})",
            )
            return None
        if endpoint in schema.RESERVED_ENDPOINTS:
            self.error(
                found.line,
                found.written,
                f"{endpoint} is reserved (the server's "
                f"{schema.RESERVED_ENDPOINTS[endpoint]}); choose another endpoint",
            )
            return None
        return endpoint
