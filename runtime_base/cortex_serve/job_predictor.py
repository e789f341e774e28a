"""Loading the user's class of a job kind: a BatchAPI's predictor or Handler, a TaskAPI's Task.

user_code.py imports the file and checks the signatures, predictor_clients.py builds the model
clients (as for realtime APIs); this module adds what job kinds changed, after Cortex's
validation tables of v0.19-v0.35
(https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/batch/predictors.md,
https://github.com/cortexlabs/cortex/blob/v0.34.0/docs/workloads/batch/handler.md,
https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/task/definitions.md):

- BatchAPI, interface "class" (v0.19-v0.33): `PythonPredictor.__init__(self, config[, job_spec]
  [, python_client])`, `TensorFlowPredictor`/`ONNXPredictor.__init__(self, <type>_client, config
  [, job_spec])`; `predict(self[, payload][, batch_id])` once per batch; optional
  `on_job_complete(self)` once per job.
- BatchAPI, interface "handler" (v0.34-v0.35): `Handler.__init__(self[, config][, job_spec])`
  (`tensorflow_client` first for type tensorflow), `handle_batch(self[, payload][, batch_id])`,
  optional `on_job_complete(self)`.
- TaskAPI, interface "task" (v0.27-v0.35): `Task.__init__(self)` (optional) and
  `__call__(self, config)` once per job.

`config` is the API's config with the job's config merged over it, nested maps key by key, the
job's values winning, as Cortex merged them.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contract import (
    BATCH_METHODS,
    HANDLER_CLASS,
    ON_JOB_COMPLETE,
    PREDICTOR_CLASSES as CLASS_NAMES,
    TASK_CLASS,
)
from .predictor import PredictorError
from .predictor_clients import CLIENT_ARGS, model_client, python_client
from .user_code import (
    ApiCode,
    Method,
    Where,
    check_class,
    check_method,
    has_own_init,
    import_user_module,
)

# What Cortex's job classes could not use outside its cluster: said plainly instead of failing
# later (its StatsD client needs the cluster's metrics pipeline).
_UNSUPPORTED_ARGS = {
    "metrics_client": "Cortex sent these custom metrics to its cluster's StatsD, which a "
    "standalone job does not have; remove the argument and its calls",
}


def merge_config(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    """`over` merged into a copy of `base`: maps merged key by key, anything else replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in (over or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class BatchPredictor:
    """A loaded BatchAPI class: `handle_batch(payload, batch_id)` calls the user's predict or
    handle_batch with the arguments it names; `on_job_complete` is None when not defined."""

    handle_batch: Callable[[Any, str], Any]
    on_job_complete: Callable[[], Any] | None
    user_object: Any


def _batch_methods(interface: str, predictor_type: str) -> tuple[Method, Method, list[Method]]:
    """(__init__, the per-batch method, optional methods) of a BatchAPI class."""
    batch = Method(BATCH_METHODS[interface], ("self",), ("payload", "batch_id"))
    extra = ("metrics_client",)
    if interface == "handler":
        if predictor_type == "python":
            init = Method("__init__", ("self",), ("config", "job_spec", *extra))
        else:
            init = Method("__init__", ("self", "tensorflow_client"), ("config", "job_spec", *extra))
    elif predictor_type == "python":
        init = Method("__init__", ("self", "config"), ("job_spec", "python_client", *extra))
    else:
        init = Method(
            "__init__", ("self", CLIENT_ARGS[predictor_type], "config"), ("job_spec", *extra)
        )
    optional = [Method(ON_JOB_COMPLETE, ("self",))]
    if predictor_type == "python" and interface == "class":
        optional.append(Method("load_model", ("self", "model_path")))
    return init, batch, optional


def _refuse_unsupported(owner: str, method: str, args: list[str], where: Where) -> None:
    for name, why in _UNSUPPORTED_ARGS.items():
        if name in args:
            raise where.error(
                owner,
                f'invalid signature for method "{method}({", ".join(args)})"',
                f'"{name}" is not supported: {why}',
            )


def load_batch_predictor(
    spec: Mapping[str, Any], project_dir: Path, job_spec: Mapping[str, Any]
) -> BatchPredictor:
    """Imports the BatchAPI's file and builds its class with the merged config and `job_spec`.

    Raises PredictorError with Cortex's message on a bad signature or a failing __init__."""
    predictor_spec = spec["predictor"]
    predictor_type = predictor_spec["type"]
    interface = predictor_spec.get("interface", "class")
    path = predictor_spec.get("path") or ""
    where = Where(spec.get("name", "api"), path, str(project_dir / path))
    if interface not in BATCH_METHODS:
        raise where.error(f'a BatchAPI has interface "class" or "handler" (got "{interface}")')
    module = import_user_module(Path(where.source), where)
    class_name = HANDLER_CLASS if interface == "handler" else CLASS_NAMES[predictor_type]
    cls: Any = getattr(module, class_name, None)  # a user class, checked below
    if not inspect.isclass(cls):
        raise where.error(
            f"{class_name} class is not defined (expected for a BatchAPI of type {predictor_type})"
        )
    owner = f"class {class_name}"
    init, batch, optional = _batch_methods(interface, predictor_type)
    arg_names = check_class(cls, [init, batch], optional, where)
    _refuse_unsupported(owner, "__init__", arg_names["__init__"], where)

    client: Any = None
    code = ApiCode(spec, project_dir, where)
    if predictor_type == "python":
        if interface == "class":
            client = python_client(cls, arg_names, code)
    elif CLIENT_ARGS[predictor_type] in arg_names["__init__"]:
        client = model_client(code)
    available = {
        "config": merge_config(predictor_spec.get("config") or {}, job_spec.get("config")),
        "job_spec": copy.deepcopy(dict(job_spec)),
        CLIENT_ARGS[predictor_type]: client,
    }
    init_args = {name: available[name] for name in arg_names["__init__"][1:]}
    try:
        instance: Any = cls(**init_args)
    except Exception as error:
        raise where.failure(f"{owner}: __init__", error) from error
    if client is not None and predictor_type == "python":
        client.set_load_model(instance.load_model)

    wanted = arg_names[batch.name][1:]
    method = getattr(instance, batch.name)

    def handle_batch(payload: Any, batch_id: str) -> Any:
        values = {"payload": payload, "batch_id": batch_id}
        return method(**{name: values[name] for name in wanted})

    on_complete = getattr(instance, ON_JOB_COMPLETE) if ON_JOB_COMPLETE in arg_names else None
    return BatchPredictor(handle_batch, on_complete, instance)


def load_task(spec: Mapping[str, Any], project_dir: Path) -> Callable[[dict[str, Any]], Any]:
    """The TaskAPI's Task instance (called with the merged config once per job)."""
    path = spec["predictor"].get("path") or ""
    where = Where(spec.get("name", "api"), path, str(project_dir / path))
    module = import_user_module(Path(where.source), where)
    cls: Any = getattr(module, TASK_CLASS, None)
    if not inspect.isclass(cls):
        raise where.error(f"{TASK_CLASS} class is not defined (expected for a TaskAPI)")
    owner = f"class {TASK_CLASS}"
    init_args = ["self"]
    try:
        if has_own_init(cls):
            init_args = check_method(cls, Method("__init__", ("self",), ("metrics_client",)))
        if not any("__call__" in vars(klass) for klass in cls.__mro__[:-1]):
            raise PredictorError(owner, 'required method "__call__" is not defined')
        check_method(cls, Method("__call__", ("self", "config")))
    except PredictorError as error:
        raise where.error(*error.args) from None
    # after the try: its error is located already (as load_batch_predictor does)
    _refuse_unsupported(owner, "__init__", init_args, where)
    try:
        task: Any = cls()  # a user class: its __call__ was checked above
    except Exception as error:
        raise where.failure(f"{owner}: __init__", error) from error
    return task
