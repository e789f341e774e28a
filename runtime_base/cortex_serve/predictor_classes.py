"""Loading a predictor class: `PythonPredictor` / `TensorFlowPredictor` / `ONNXPredictor`
(interface "class", v0.12 and later) and a `Handler` (interface "handler", v0.34-v0.35).

- "class": `__init__(self, config[, <type>_client])`, `predict(self[, payload][, query_params]
  [, headers])`, optional `post_predict(self[, response, payload, query_params, headers])` and
  `load_model`;
- "handler" (python or tensorflow type): `__init__(self[, config][, model_client |
  tensorflow_client])` and one method per HTTP verb, `handle_post`, `handle_get`, ...
  `(self[, payload][, query_params][, headers])`, at least one; `load_model` as for "class". The
  server routes each verb through `verbs`.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

from .contract import HANDLER_CLASS, HANDLER_METHODS, PREDICTOR_CLASSES as CLASS_NAMES
from .predictor import (
    POST_PREDICT_ARGS,
    REQUEST_ARGS,
    LoadedPredictor,
    VerbMethod,
    no_post_predict,
)
from .predictor_clients import CLIENT_ARGS, model_client, python_client
from .user_code import ApiCode, Method, check_class, injector


def _class_methods(predictor_type: str) -> tuple[list[Method], list[Method]]:
    """(required, optional) methods of a predictor class, as Cortex validated them."""
    init = (
        Method("__init__", ("self", "config"), ("python_client",))
        if predictor_type == "python"
        else Method("__init__", ("self", CLIENT_ARGS[predictor_type], "config"))
    )
    required = [init, Method("predict", ("self",), REQUEST_ARGS)]
    optional = [Method("post_predict", ("self",), POST_PREDICT_ARGS)]
    return required, optional + _model_loader(predictor_type)


def _model_loader(predictor_type: str) -> list[Method]:
    """A python predictor or Handler may define load_model: the model cache calls it."""
    return [Method("load_model", ("self", "model_path"))] if predictor_type == "python" else []


def load_class(module: ModuleType, api: ApiCode) -> LoadedPredictor:
    where = api.where
    predictor_spec = api.spec["predictor"]
    predictor_type = predictor_spec["type"]
    class_name = CLASS_NAMES[predictor_type]
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        others = [n for n in CLASS_NAMES.values() if inspect.isclass(getattr(module, n, None))]
        raise where.error(
            f"{class_name} class is not defined (the file defines {', '.join(others)}; the "
            f'predictor type is "{predictor_type}")'
        )
    required, optional = _class_methods(predictor_type)
    arg_names = check_class(cls, required, optional, where)

    client: Any = None
    if predictor_type == "python":
        client = python_client(cls, arg_names, api)
    elif CLIENT_ARGS[predictor_type] in arg_names["__init__"]:
        client = model_client(api)

    available = {"config": predictor_spec.get("config") or {}, CLIENT_ARGS[predictor_type]: client}
    init_args = {name: available[name] for name in arg_names["__init__"][1:]}
    try:
        instance: Any = cls(**init_args)  # the user's class: its methods were checked above
    except Exception as error:
        raise where.failure(f"class {class_name}: __init__", error) from error

    if client is not None and predictor_type == "python":
        client.set_load_model(instance.load_model)

    post_predict = no_post_predict
    if "post_predict" in arg_names:
        post_predict = injector(
            instance.post_predict, POST_PREDICT_ARGS, arg_names["post_predict"][1:]
        )
    return LoadedPredictor(
        predict=injector(instance.predict, REQUEST_ARGS, arg_names["predict"][1:]),
        post_predict=post_predict,
        is_async=inspect.iscoroutinefunction(instance.predict),
        has_post_predict="post_predict" in arg_names,
        interface="class",
        user_object=instance,
        client=client,
        predict_args=tuple(arg_names["predict"][1:]),
    )


def _handler_methods(predictor_type: str) -> tuple[Method, list[Method]]:
    """(__init__, optional methods) of a Handler, after Cortex v0.34-v0.35's validation tables.

    Those tables named `config` as required, but Cortex never applied them (realtime.py passed
    the table keyed by protocol, where no "required" key is found) and passed `config` only to an
    __init__ that names it; `tensorflow_client` it passed always, so an __init__ without it failed.
    """
    init = (
        Method("__init__", ("self",), ("config", "model_client", "metrics_client"))
        if predictor_type == "python"
        else Method("__init__", ("self", "tensorflow_client"), ("config", "metrics_client"))
    )
    optional = [Method(name, ("self",), REQUEST_ARGS) for name in HANDLER_METHODS.values()]
    return init, optional + _model_loader(predictor_type)


def load_handler(module: ModuleType, api: ApiCode) -> LoadedPredictor:
    where = api.where
    predictor_spec = api.spec["predictor"]
    predictor_type = predictor_spec["type"]
    if predictor_type not in ("python", "tensorflow"):
        raise where.error(
            f"a {HANDLER_CLASS} class (Cortex v0.34-v0.35) has type python or tensorflow, not "
            f'"{predictor_type}"'
        )
    cls = getattr(module, HANDLER_CLASS)
    owner = f"class {HANDLER_CLASS}"
    init, optional = _handler_methods(predictor_type)
    arg_names = check_class(cls, [init], optional, where)
    verbs = {verb: name for verb, name in HANDLER_METHODS.items() if name in arg_names}
    if not verbs:
        raise where.error(
            owner,
            'no "handle_<verb>" method is defined; define at least one of '
            + ", ".join(HANDLER_METHODS.values()),
        )
    if "metrics_client" in arg_names["__init__"]:
        # Cortex's client pushed custom metrics over UDP to the cluster's StatsD, which an image
        # does not have, and /metrics sums fixed counters in shared memory: nothing to record to.
        raise where.error(
            owner,
            f'invalid signature for method "__init__({", ".join(arg_names["__init__"])})"',
            '"metrics_client" is not supported: Cortex sent these custom metrics to its '
            "cluster's StatsD and Prometheus, which a standalone image does not have; remove the "
            "argument and its gauge/increment/histogram calls",
        )
    if (
        predictor_spec.get("server_side_batching")
        and predictor_type == "python"
        and "POST" not in verbs
    ):
        raise where.error(
            owner,
            "server_side_batching is configured, but no handle_post method is defined (only "
            "POST requests are batched)",
        )

    client: Any = None
    if predictor_type == "python":
        client = python_client(cls, arg_names, api, client_arg="model_client", section="handler")
    elif "tensorflow_client" in arg_names["__init__"]:
        client = model_client(api)

    available = {
        "config": predictor_spec.get("config") or {},
        "model_client": client,
        "tensorflow_client": client,
    }
    init_args = {name: available[name] for name in arg_names["__init__"][1:]}
    try:
        instance = cls(**init_args)
    except Exception as error:
        raise where.failure(f"{owner}: __init__", error) from error
    if client is not None and predictor_type == "python":
        client.set_load_model(instance.load_model)

    methods = {
        verb: VerbMethod(
            call=injector(getattr(instance, name), REQUEST_ARGS, arg_names[name][1:]),
            is_async=inspect.iscoroutinefunction(getattr(cls, name)),
            wants_payload="payload" in arg_names[name],
            args=tuple(arg_names[name][1:]),
        )
        for verb, name in verbs.items()
    }
    post = methods.get("POST")
    return LoadedPredictor(
        predict=post.call if post is not None else _no_handle_post,
        post_predict=no_post_predict,
        is_async=post is not None and post.is_async,
        has_post_predict=False,
        interface="handler",
        user_object=instance,
        client=client,
        verbs=methods,
        predict_args=post.args if post is not None else (),
    )


def _no_handle_post(payload: Any, query_params: Any, headers: Any) -> None:
    # The server answers POST with 405 when the Handler has no handle_post; never called.
    raise RuntimeError(f"class {HANDLER_CLASS} defines no handle_post")
