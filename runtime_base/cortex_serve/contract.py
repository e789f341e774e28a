"""The names both sides of api.json agree on: what the generator checks in a predictor file and
what the runtime loads from it. Dependency-free, so the generator imports it (as
`cortex_serve.contract`, the name it has everywhere) without the runtime's packages."""

from __future__ import annotations

# The class each predictor type defines (interface "class", Cortex v0.12-v0.33).
PREDICTOR_CLASSES = {
    "python": "PythonPredictor",
    "tensorflow": "TensorFlowPredictor",
    "onnx": "ONNXPredictor",
}
# The class of interface "handler" (Cortex v0.34-v0.35), whatever the type, and the method that
# answers each HTTP verb.
HANDLER_CLASS = "Handler"
HANDLER_METHODS = {
    "POST": "handle_post",
    "GET": "handle_get",
    "PUT": "handle_put",
    "PATCH": "handle_patch",
    "DELETE": "handle_delete",
}
# Job kinds (Cortex v0.19-v0.35): a BatchAPI's class handles one batch per call (`predict` up to
# v0.33, `handle_batch` in v0.34-v0.35's Handler) and may define `on_job_complete`; a TaskAPI
# (v0.27-v0.35) defines a callable class Task.
BATCH_METHODS = {"class": "predict", "handler": "handle_batch"}
ON_JOB_COMPLETE = "on_job_complete"
TASK_CLASS = "Task"
JOB_KINDS = ("BatchAPI", "TaskAPI")

# v0.9-v0.11's optional request handlers around a TensorFlow or ONNX model.
REQUEST_HANDLER_FUNCTIONS = ("pre_inference", "post_inference")

# The runtime's own packages, copied into every image beside the project (importable by it).
RUNTIME_MODULES = ("cortex_serve", "cortex_internal")

DEFAULT_MODEL_NAME = "_cortex_default"  # a single `path` model's name
MODEL_DIR = "/mnt/model"  # where an image holds its API's models, one folder per name


def is_version_folder(name: str) -> bool:
    """A model version folder is named by ASCII digits ("²".isdigit() is true, int() fails)."""
    return name.isascii() and name.isdigit()
