"""The clients a user's predictor is handed: the TensorFlow or ONNX client of its models, or
the python_client of `multi_model_reloading` (`model_client` for a Handler)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .model_sources import ModelSourceError, resolve_models
from .user_code import ApiCode

CLIENT_ARGS = {"python": "python_client", "tensorflow": "tensorflow_client", "onnx": "onnx_client"}


def _model_sources(api: ApiCode) -> dict[str, Any]:
    try:
        return resolve_models(api.spec["predictor"].get("models"), api.project_dir)
    except ModelSourceError as error:
        raise api.where.error("predictor.models", str(error)) from error


def _cache_size(spec: Mapping[str, Any]) -> int | None:
    return (spec["predictor"].get("models") or {}).get("cache_size")


def model_client(api: ApiCode) -> Any:
    """The TensorFlow or ONNX client of the API's models, with the latest versions loaded (so a
    broken model fails at start, not on the first request)."""
    from .clients import ModelLoadError, intra_op_threads

    spec, where = api.spec, api.where
    predictor_spec = spec["predictor"]
    predictor_type = predictor_spec["type"]
    sources = _model_sources(api)
    if not sources:
        raise where.error(
            f"predictor.models: a {predictor_type} predictor needs a model (predictor.models.path,"
            " paths or dir; `model` before v0.18)"
        )
    threads = intra_op_threads(
        int(predictor_spec.get("processes_per_replica") or 1),
        int(predictor_spec.get("threads_per_process") or 1),
    )
    gpu = int((spec.get("compute") or {}).get("gpu") or 0) > 0
    try:
        if predictor_type == "onnx":
            from .clients.onnx_client import ONNXClient

            client: Any = ONNXClient(
                sources, gpu=gpu, intra_op_threads=threads, cache_size=_cache_size(spec)
            )
        else:
            from .clients.tensorflow_client import TensorFlowClient, default_backend

            backend = default_backend(intra_op_threads=threads)
            client = TensorFlowClient(sources, backend, _cache_size(spec))
        client.load_latest()
    except (ModelLoadError, ModelSourceError) as error:  # a remote version may not fetch
        raise where.error("loading the model failed", str(error)) from error
    return client


def python_client(
    cls: Any,
    arg_names: Mapping[str, list[str]],
    api: ApiCode,
    client_arg: str = "python_client",
    section: str = "predictor",
) -> Any:
    """The python_client of `multi_model_reloading` (None without models), which then needs
    `client_arg` in __init__ and a load_model method. A Handler (v0.34-v0.35) names it
    `model_client`, under the config's `handler:` section."""
    where = api.where
    sources = _model_sources(api)
    owner = f"class {cls.__name__}"
    wants_client = client_arg in arg_names["__init__"]
    configured = f"{section}.multi_model_reloading"
    if section == "predictor":
        configured += " (or models)"
    if not sources:
        if wants_client:
            raise where.error(
                owner,
                'invalid signature for method "__init__"',
                f'"{client_arg}" is only available when {section}.multi_model_reloading is'
                " configured",
            )
        return None
    if not wants_client:
        raise where.error(
            owner,
            'invalid signature for method "__init__"',
            f'"{client_arg}" is a required argument when {configured} is configured',
        )
    if "load_model" not in arg_names:
        raise where.error(
            owner,
            'required method "load_model" is not defined',
            f"it is required when {configured} is configured",
        )
    from .clients.python_client import PythonClient

    client = PythonClient(sources, _cache_size(api.spec))
    # As Cortex did, get_model works in the constructor too: until the instance exists,
    # load_model runs unbound (self=None).
    client.set_load_model(functools.partial(cls.load_model, None))
    return client
