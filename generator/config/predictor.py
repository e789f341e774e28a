"""The predictor section: type, interface, file, python_path, batching, images."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import schema
from ..spec import BatchingSpec, DependenciesSpec, PredictorSpec
from . import releases
from .kinds import code_section_problem
from .models import ModelReading
from .predictor_file import PredictorFileRules
from .reporting import choices, show


class PredictorReading(ModelReading, PredictorFileRules):
    def _predictor(self, kind: str | None) -> PredictorSpec | None:
        sections = ("predictor", "handler", "definition", "tensorflow", "onnx")
        given = [key for key in sections if key in self.item.value]
        problem = code_section_problem(kind, given)
        if problem is not None:
            line = self.item.key_lines[given[0]] if given else self.item.line
            self.error(line, given[0] if given else "definition", problem)
            return None
        v09 = [key for key in schema.V09_API_KEYS if key in self.item.value]
        if v09 and given:
            self.error(
                self.item.key_lines[v09[0]],
                v09[0],
                f"Cortex v0.9's top-level {v09[0]} cannot be given together with {given[0]}: "
                "(use one or the other)",
            )
            return None
        if v09:
            given = ["v0.9"]
        if not given:
            expected = "predictor, tensorflow or onnx" if kind == "api" else "predictor"
            self.error(
                self.item.line,
                "predictor",
                f"must be provided (one of {expected})" if kind == "api" else "must be provided",
            )
            return None
        source = given[0]
        if len(given) > 1 or (source != "v0.9" and "predictor" not in self.values):
            return None  # reported by the walk (two sections set `predictor`) or not a map
        ptype, interface = self._type_and_interface(source, kind)
        path = self._predictor_path(interface)
        python_path = self._project_path("predictor.python_path", want="dir")
        models = self._models(ptype, interface)
        batching = self._batching()
        processes = self.get("predictor.processes_per_replica", 1)
        threads = self.get("predictor.threads_per_process", 1)
        image = self._image("predictor.image")
        tf_serving_image = self._image("predictor.tensorflow_serving_image")
        if tf_serving_image and ptype not in (None, "tensorflow"):
            self.fail(
                "predictor.tensorflow_serving_image",
                f"only applies to type: tensorflow (got type: {ptype})",
            )
        dependencies = self._dependencies()
        if ptype is None or interface is None or path is None:
            return None
        if interface != "handlers" and path:
            self._check_predictor_file(path, ptype, interface, models)
        return PredictorSpec(
            type=ptype,
            interface=interface,
            path=path,
            config=self.get("predictor.config", {}),
            python_path=python_path,
            env=self.get("predictor.env", {}),
            models=models,
            server_side_batching=batching,
            processes_per_replica=processes,
            threads_per_process=threads,
            image=image,
            tensorflow_serving_image=tf_serving_image,
            log_level=self.get("predictor.log_level", "info"),
            shm_size=self.get("predictor.shm_size"),
            dependencies=dependencies,
        )

    def _type_and_interface(self, source: str, kind: str | None) -> tuple[Any, Any]:
        if source in ("tensorflow", "onnx"):
            return source, "handlers"
        if source == "definition":
            return "python", "task"  # a TaskAPI's Task
        ptype = self.get("predictor.type")
        if source == "v0.9":
            return self._v09_model_format(ptype), "handlers"
        if source == "handler":
            if ptype is None and "predictor.type" not in self.rejected:
                self.fail("predictor.type", 'must be provided (one of "python" or "tensorflow")')
            return ptype, "handler"
        if kind == "api" and self.family == releases.V0_12:
            return ptype, "class"  # v0.12.0: kind: api with the predictor classes
        if kind == "api":
            if ptype not in (None, "python"):
                self.fail(
                    "predictor.type",
                    "a kind: api predictor is a Python file of module "
                    "functions; give a TensorFlow or ONNX model as tensorflow: or onnx:",
                )
                return None, None
            return "python", "functions"
        if ptype is None:
            self.missing("predictor.type", f"must be provided (one of {choices(schema.TYPES)})")
        return ptype, "class"

    def _dependencies(self) -> DependenciesSpec:
        """`dependencies: {pip, conda, shell}` (v0.30+): a file named there must exist; the
        defaults are optional, as they always were."""
        defaults = DependenciesSpec()
        chosen = {}
        for key in ("pip", "conda", "shell"):
            target = f"predictor.dependencies.{key}"
            if target in self.values:
                path = self._project_path(target, want="file")
                if path is not None:
                    chosen[key] = path
        found = dataclasses.replace(defaults, **chosen)
        if (self.root / found.conda).is_file():
            line, written = self.where("predictor.dependencies.conda")
            self.note(
                line,
                written,
                f"{found.conda} is not installed: the images have no conda; list its packages "
                f"in {found.pip} where pip has them",
            )
        return found

    def _v09_model_format(self, given: str | None) -> str | None:
        """v0.9's model_format, by default from the model's path: .onnx is ONNX, a folder or a
        .zip TensorFlow."""
        if given is not None:
            return given
        model = self.get("predictor.models.path")
        if model is None:
            self.missing("model", "must be provided (the model the API serves)")
            return None
        return "onnx" if str(model).endswith(".onnx") else "tensorflow"

    def _predictor_path(self, interface: str | None) -> str | None:
        if "predictor.path" not in self.values:
            if interface == "handlers" and "predictor.path" not in self.rejected:
                return ""  # no request_handler: requests go straight to the model
            self.missing(
                "predictor.path",
                "must be provided (the predictor's Python file, relative to the project folder)",
            )
            return None
        path = self._project_path("predictor.path", want="file")
        if path is not None and interface == "handlers":
            self._check_python_file(path, "predictor.path", self._handlers_rule)
        return path

    def _batching(self) -> BatchingSpec | None:
        size = self.get("predictor.server_side_batching.max_batch_size")
        interval = self.get("predictor.server_side_batching.batch_interval")
        if size is None or interval is None:
            return None  # absent, or a missing field was reported by the walk
        return BatchingSpec(max_batch_size=size, batch_interval=interval)

    def check_tf_serving_batch(self, predictor: PredictorSpec) -> None:
        """TF Serving batches only the requests in flight at once, and each holds a predict
        thread while it waits: a batch larger than the replica's threads never fills, so every
        request would wait the whole batch_interval. Cortex refused such a config (v0.19 to
        v0.35, the releases with TensorFlow predictors and batching). For the batching a realtime
        API keeps (a job's is dropped: see kinds.py)."""
        batching = predictor.server_side_batching
        if predictor.type != "tensorflow" or batching is None:
            return
        counts = {"predictor.processes_per_replica", "predictor.threads_per_process"}
        if counts & self.rejected:
            return  # reported as it is; a product of defaults would quote numbers never written
        processes, threads = predictor.processes_per_replica, predictor.threads_per_process
        if batching.max_batch_size > processes * threads:
            self.fail(
                "predictor.server_side_batching.max_batch_size",
                f"must be less than or equal to processes_per_replica x threads_per_process "
                f"({processes} x {threads} = {processes * threads}) with type: tensorflow "
                f"(got {batching.max_batch_size}): TF Serving batches only the requests in "
                "flight at once",
            )

    def _image(self, target: str) -> str | None:
        found = self.values.get(target)
        if found is None:
            return None
        if not schema.is_image_ref(found.value):
            self.error_at(
                found,
                'must be an image reference like "python:3.11-slim" or '
                f'"registry.example.com/team/image:tag" (got {show(found.value)})',
            )
            return None
        return found.value
