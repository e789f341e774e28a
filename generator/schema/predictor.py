"""The tables of an API's predictor section (`predictor:`, v0.34's `handler:`, a TaskAPI's
`definition:`, v0.9's `tensorflow:` / `onnx:`) and of its models, with every generation's names."""

from __future__ import annotations

from .fields import Field, old_name, section

TYPES = ("python", "tensorflow", "onnx")
LOG_LEVELS = ("debug", "info", "warning", "error")

MODEL_PATH_ITEM: dict[str, Field] = {
    "name": Field("string", "model name (used in predict calls and URLs)", required=True),
    "path": Field(
        "string",
        "model folder or file: project-relative, absolute, s3://, http(s)://",
        required=True,
    ),
    "signature_key": Field("string", "signature def to use (tensorflow)"),
}
MODEL_PATH_ITEM["model_path"] = old_name(
    MODEL_PATH_ITEM["path"],
    "the model (v0.19-v0.24)",
    "path",
    24,
    note="old name, read as path",
)

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

_CONFIG = Field("any_map", "passed to the predictor's constructor")

PREDICTOR: dict[str, Field] = {
    "type": Field("string", "predictor type", choices=TYPES),
    "path": Field("string", "predictor Python file, relative to the project"),
    "model": old_name(MODELS["path"], "the model (v0.10-v0.17)", "predictor.models.path", 17),
    "signature_key": old_name(
        MODELS["signature_key"],
        "signature def (v0.15-v0.17 tensorflow)",
        "predictor.models.signature_key",
        17,
    ),
    "model_path": old_name(MODELS["path"], "the model (v0.18-v0.24)", "predictor.models.path", 24),
    "models": section(
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
    "multi_model_reloading": section("models served (python)", MODELS, target="predictor.models"),
    "server_side_batching": section("batch requests into one predict call", BATCHING),
    "processes_per_replica": Field("int", "server processes", min=1, max=100),
    "threads_per_process": Field("int", "threads running predict in each process", min=1),
    "config": _CONFIG,
    "metadata": old_name(_CONFIG, "passed to init/predict (v0.9-v0.11)", "predictor.config", 11),
    "python_path": Field("string", "folder added to PYTHONPATH, relative to the project"),
    "env": Field("string_map", "environment variables"),
    "image": Field("string", "image to build on instead of the default base image"),
    "tensorflow_serving_image": Field("string", "TensorFlow Serving image (tensorflow)"),
    "log_level": Field("string", "log level", choices=LOG_LEVELS),
    "shm_size": Field("quantity", "size of /dev/shm"),
    "dependencies": section("files that install the API's dependencies (v0.30+)", DEPENDENCIES),
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
    "model": old_name(
        MODELS["path"], "the exported model", "predictor.models.path", 11, required=True
    ),
    "request_handler": old_name(
        PREDICTOR["path"], "file with pre_inference/post_inference", "predictor.path", 11
    ),
    "metadata": old_name(_CONFIG, "passed to the handlers", "predictor.config", 11),
    "python_path": Field("string", "folder added to PYTHONPATH", target="predictor.python_path"),
}
HANDLER_TENSORFLOW: dict[str, Field] = {
    **_HANDLER_COMMON,
    "signature_key": old_name(
        MODELS["signature_key"], "signature def to use", "predictor.models.signature_key", 11
    ),
}
HANDLER_ONNX: dict[str, Field] = dict(_HANDLER_COMMON)
