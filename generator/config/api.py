"""Pass 2, one API: its kind, generation, name and endpoint, and the concerns read in order."""

from __future__ import annotations

import dataclasses
import difflib
import json

from .. import schema
from ..spec import ApiSpec, CortexRelease
from . import releases
from .predictor import PredictorReading
from .reporting import choices, show
from .scaling import ScalingReading
from .walk import check_dns_name

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
        if self._refuse_unsupported_shape():
            return None
        kind = self._kind()
        self.kind = kind if kind in schema.JOB_KINDS else "RealtimeAPI"
        self.walk_fields(schema.API)
        family = self._family(kind)
        self.family = family
        self.reporter.settle_old_names(self.label, family.first)
        self.generation = self._generation(family)
        release = self._release(family)
        self.release_minor = int(release.assumed.removeprefix("v0."))
        name = self._name()
        self._check_kind_fields()
        predictor = self._predictor(kind)
        if predictor is not None and self.kind != "RealtimeAPI":
            predictor = dataclasses.replace(predictor, server_side_batching=None)  # see kinds.py
        if predictor is not None:
            self.check_tf_serving_batch(predictor)
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
            kind=self.kind,  # type: ignore[arg-type]
            generation=self.generation,
            endpoint=endpoint,
            predictor=predictor,
            compute=compute,
            autoscaling=autoscaling,
            update_strategy=update_strategy,
            tracker=tracker,
            cortex=release,
            line=self.item.line,
        )

    def _refuse_unsupported_shape(self) -> bool:
        """Shapes of Cortex releases that cortex-build does not build: one message per API that
        names the release and the feature, instead of an error per unknown key. (APIs given as
        containers, `pod:`, are read by containers.py.)"""
        top = self.item.value
        for section in ("predictor", "handler"):
            node = top.get(section)
            if node is not None and node.is_map and "protobuf_path" in node.value:
                self.error(
                    node.key_lines["protobuf_path"],
                    f"{section}.protobuf_path",
                    "gRPC APIs (protobuf_path, Cortex v0.32-v0.35) are not supported yet: "
                    "cortex-build serves HTTP; without protobuf_path the same "
                    f"{'Handler' if section == 'handler' else 'predictor'} is served over HTTP",
                )
                return True
        return False

    def _kind(self) -> str | None:
        node = self.item.value.get("kind")
        if node is None or node.refused:
            return None
        line = self.item.key_lines["kind"]
        kind = node.value
        if kind == "SyncAPI":
            self.note(line, "kind", "old name, read as RealtimeAPI")
            return "RealtimeAPI"
        elif kind in ("RealtimeAPI", "api", *schema.JOB_KINDS):
            return kind
        elif isinstance(kind, str):
            message = f"invalid value (got {show(kind)}, must be {choices(schema.API_KINDS)})"
            close = difflib.get_close_matches(kind, schema.API_KINDS, n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {json.dumps(close[0])}?)"
            self.error(line, "kind", message)
        return None  # a kind that is not a string is reported by the table walk

    def _family(self, kind: str | None) -> releases.Family:
        """The releases whose config shape this API has (see releases.py)."""
        top = self.item.value
        if kind == "TaskAPI":
            return releases.TASK_V0_27
        if kind == "BatchAPI":
            return releases.BATCH_V0_34 if "handler" in top else releases.BATCH_V0_19
        if "handler" in top:
            return releases.V0_34
        if kind == "api" or "tensorflow" in top or "onnx" in top:
            if any(key in top for key in schema.V09_API_KEYS):
                return releases.V0_9
            if "predictor" in top and self.get("predictor.type") is not None:
                return releases.V0_12
            return releases.V0_10
        if kind == "RealtimeAPI":
            return releases.V0_19
        # no kind: v0.13-v0.18, narrowed by the sections and fields that came later
        written = {loc.written for loc in self.values.values()}
        # (predictor.image came in v0.16, monitoring in v0.17: neither needs v0.18)
        if written & (V02X_ONLY - {"monitoring", "predictor.image"}):
            return releases.V0_18
        if "monitoring" in top:
            return releases.V0_17
        if "autoscaling" in top or "update_strategy" in top:
            return releases.V0_15
        return releases.V0_13

    def _generation(self, family: releases.Family) -> str:
        """Which interface document the API follows (refined for kind: api predictors once their
        file is read: init(metadata) is v0.9's, init(model_path, metadata) v0.10's)."""
        if family in (releases.V0_9, releases.V0_10):
            return "v0.9" if "predictor" not in self.item.value else "v0.10"
        if family in (releases.V0_34, releases.BATCH_V0_34):
            return "v0.34"
        if family in (releases.V0_12, releases.V0_13, releases.V0_15):
            written = {loc.written for loc in self.values.values()}
            if (
                written & {"predictor.model", "predictor.signature_key"}
                or family == releases.V0_15
                or self.get("predictor.type") in ("tensorflow", "onnx")
            ):
                return "v0.15"  # the document of the TensorFlow/ONNX classes and autoscaling
            return "v0.12"
        return "v0.2x"

    def _release(self, family: releases.Family) -> CortexRelease:
        """The release read as: --cortex-version when it fits the shape, else the family's."""
        if self.cortex_minor is not None and not releases.fits(family, self.cortex_minor):
            self.error(
                self.item.line,
                None,
                f"--cortex-version {self.cortex_version}: the API has the config shape of Cortex "
                f"{family.name} ({family.shape}), which v0.{self.cortex_minor} did not accept",
            )
        return releases.release_for(family, self.cortex_minor, self.cortex_version)

    def _name(self) -> str | None:
        found = self.values.get("name")
        if found is None:
            return None  # reported by the walk
        if not check_dns_name(found.value, found.line, self.label, "name", self.reporter):
            return None
        return found.value
