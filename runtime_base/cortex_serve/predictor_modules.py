"""Loading a predictor given as module-level functions: `init`/`predict` (interface
"functions", v0.9-v0.11) or `pre_inference`/`post_inference` around a model (interface
"handlers", v0.9).

- "functions": `init(metadata)` or `init(model_path, metadata)` (optional) and
  `predict(sample, metadata)`;
- "handlers": optional `pre_inference(sample, [signature,] metadata)` and
  `post_inference(prediction, [signature,] metadata)` around a TensorFlow or ONNX model.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .model_sources import LATEST, ModelSourceError, resolve_local_path
from .predictor import REQUEST_ARGS, LoadedPredictor, no_post_predict
from .predictor_clients import model_client
from .user_code import ApiCode, Where, argument_names, injector


def _check_function(
    module: ModuleType, name: str, allowed: Sequence[tuple[str, ...]], where: Where
) -> tuple[str, ...] | None:
    """The argument names of module function `name` (None when not defined), which must be one
    of `allowed`; Cortex's message otherwise."""
    func = getattr(module, name, None)
    if func is None:
        return None
    if not callable(func):
        raise where.error(f'"{name}" is defined, but is not a function')
    args = tuple(argument_names(func))
    if args not in allowed:
        expected = " or ".join(f"({', '.join(option)})" for option in allowed)
        raise where.error(
            f'invalid signature for function "{name}"',
            f"expected arguments {expected} but found ({', '.join(args)})",
        )
    return args


def load_functions(module: ModuleType, api: ApiCode) -> LoadedPredictor:
    where = api.where
    metadata = api.spec["predictor"].get("config") or {}
    _check_function(module, "predict", [("sample", "metadata")], where)
    init_args = _check_function(module, "init", [("metadata",), ("model_path", "metadata")], where)
    if init_args is not None:
        values: dict[str, Any] = {"metadata": metadata}
        if "model_path" in init_args:
            values["model_path"] = _single_model_path(api)
        try:
            module.init(*[values[name] for name in init_args])
        except Exception as error:
            raise where.failure("init", error) from error

    return LoadedPredictor(
        predict=injector(
            functools.partial(module.predict, metadata=metadata), REQUEST_ARGS, ("payload",)
        ),
        post_predict=no_post_predict,
        is_async=inspect.iscoroutinefunction(module.predict),
        has_post_predict=False,
        interface="functions",
        user_object=module,
        predict_args=("payload",),
    )


def _single_model_path(api: ApiCode) -> str | None:
    """`model_path` of init(model_path, metadata): the local path of `model`, or None."""
    models = api.spec["predictor"].get("models") or {}
    paths = models.get("paths") or ()
    if not paths:
        return None
    try:
        return str(resolve_local_path(paths[0]["path"], api.project_dir, "predictor.model"))
    except ModelSourceError as error:
        raise api.where.error(str(error)) from error


def _inference_handler(module: ModuleType | None, name: str, where: Where) -> tuple[Any, bool]:
    """(function or None, whether it takes the signature): 2 arguments (value, metadata) or 3
    (value, signature, metadata), whatever their names."""
    func = getattr(module, name, None) if module is not None else None
    if func is None:
        return None, False
    if not callable(func):
        raise where.error(f'"{name}" is defined, but is not a function')
    args = argument_names(func)
    if len(args) not in (2, 3):
        first = "sample" if name == "pre_inference" else "prediction"
        raise where.error(
            f'invalid signature for function "{name}({", ".join(args)})"',
            f"expected arguments ({first}, metadata) or ({first}, signature, metadata)",
        )
    return func, len(args) == 3


def load_handlers(module: ModuleType | None, api: ApiCode) -> LoadedPredictor:
    spec, where = api.spec, api.where
    predictor_spec = spec["predictor"]
    if predictor_spec["type"] not in ("tensorflow", "onnx"):
        raise where.error(
            "pre_inference/post_inference request handlers need a tensorflow or onnx model"
        )
    metadata = predictor_spec.get("config") or {}
    pre_inference, pre_wants_signature = _inference_handler(module, "pre_inference", where)
    post_inference, post_wants_signature = _inference_handler(module, "post_inference", where)
    client = model_client(api)
    # What Cortex passed as the model's metadata (`signature` of the 3-argument form; v0.9's
    # 2-argument `metadata`): TensorFlow: {input: {"shape", "type"}} for both handlers; ONNX: the
    # session's input metadata to pre_inference and output metadata to post_inference.
    if predictor_spec["type"] == "onnx":
        pre_signature = client.input_metadata()
        post_signature = client.output_metadata()
    else:
        pre_signature = post_signature = client.input_signature()
    if (spec.get("cortex") or {}).get("handler_metadata") == "model":
        # v0.9: the second of two arguments was the model's metadata, not predictor.config
        pre_config, post_config = pre_signature, post_signature
    else:
        pre_config = post_config = metadata

    def predict(payload: Any, query_params: Any, headers: Any) -> Any:
        sample = payload
        if pre_inference is not None:
            if pre_wants_signature:
                sample = pre_inference(sample, pre_signature, metadata)
            else:
                sample = pre_inference(sample, pre_config)
        prediction = client.predict(sample, None, LATEST)
        if post_inference is not None:
            if post_wants_signature:
                return post_inference(prediction, post_signature, metadata)
            return post_inference(prediction, post_config)
        return prediction

    return LoadedPredictor(
        predict=predict,
        post_predict=no_post_predict,
        is_async=False,
        has_post_predict=False,
        interface="handlers",
        user_object=module,
        client=client,
        predict_args=("payload",),
    )
