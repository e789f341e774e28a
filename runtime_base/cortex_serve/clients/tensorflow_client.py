"""`tensorflow_client`: predictions from a SavedModel behind Cortex's TensorFlowClient interface.

Cortex's client spoke gRPC to a TensorFlow Serving sidecar. The model-facing part is a backend
(`TensorFlowBackend`) so that the transport can change without touching predictors: this module
has the in-process backend (tf.saved_model.load in the worker), used when no sidecar address is
configured (CORTEX_TF_SERVING_ADDRESS unset). A gRPC backend for a sidecar is not implemented
yet; setting the variable gives a clear error instead of a silent fallback.

Contract kept from Cortex:
- `predict(model_input, model_name=None, model_version="latest")`: `model_input` is a dict keyed
  by the signature's input names (a single-input signature also takes the value itself); each
  value is converted to the input's dtype, and a value that lacks only the leading batch
  dimension gets it (one sample for a [None, ...] input).
- It returns {output name: flat list of values}, as Cortex flattened TF Serving's response
  (`prediction["class_ids"][0]`); strings come back as str.
- The signature is `signature_key` if configured, else the model's only one, else "predict",
  else "serving_default", else an error listing the available keys.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..models import LATEST, ModelSource, ModelStore
from . import ModelInputError, ModelLoadError

TF_SERVING_ADDRESS_ENV = "CORTEX_TF_SERVING_ADDRESS"
PREFERRED_SIGNATURES = ("predict", "serving_default")


def choose_signature(available: Sequence[str], signature_key: str | None, what: str) -> str:
    """The signature Cortex would use; ModelLoadError naming the available keys otherwise."""
    keys = ", ".join(f'"{k}"' for k in sorted(available)) or "none"
    if signature_key is not None:
        if signature_key not in available:
            raise ModelLoadError(
                f'{what}: signature_key "{signature_key}" is not a signature of the model '
                f"(available: {keys})"
            )
        return signature_key
    if len(available) == 1:
        return available[0]
    for preferred in PREFERRED_SIGNATURES:
        if preferred in available:
            return preferred
    if not available:
        raise ModelLoadError(f"{what}: the SavedModel has no signatures")
    raise ModelLoadError(
        f"{what}: the model has several signatures and none is configured; set "
        f"signature_key to one of {keys}"
    )


class TensorFlowBackend(Protocol):
    """Where a SavedModel's signature runs: in this process, or (later) a TF Serving sidecar."""

    def load(self, model_dir: Path, signature_key: str | None, what: str) -> Any:
        """Prepares one model version's signature; ModelLoadError if it cannot."""

    def input_signature(self, loaded: Any) -> dict[str, dict[str, Any]]:
        """{input name: {"shape": [dims, -1 when unknown], "type": dtype name}}."""

    def run(self, loaded: Any, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        """{output name: flat list of values}; ModelInputError when the input does not fit."""


@dataclass(frozen=True)
class _LoadedSignature:
    key: str
    function: Any  # the signature's ConcreteFunction
    inputs: Mapping[str, Any]  # input name -> tf.TensorSpec
    model: Any  # the loaded SavedModel, kept alive: the function uses its variables


class InProcessBackend:
    """Runs signatures with TensorFlow in this process (imported on first use)."""

    def __init__(self, intra_op_threads: int | None = None) -> None:
        import tensorflow as tf

        self._tf = tf
        if intra_op_threads:
            # RuntimeError once TensorFlow has started (an earlier model): keep its setting
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)

    def load(self, model_dir: Path, signature_key: str | None, what: str) -> _LoadedSignature:
        try:
            model = self._tf.saved_model.load(str(model_dir))
        except Exception as error:  # OSError, tf.errors.*, ValueError for a non-SavedModel
            raise ModelLoadError(
                f"{what} ({model_dir}): not a loadable SavedModel: {error}"
            ) from error
        key = choose_signature(list(model.signatures.keys()), signature_key, what)
        function = model.signatures[key]
        return _LoadedSignature(key, function, dict(function.structured_input_signature[1]), model)

    def input_signature(self, loaded: _LoadedSignature) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "shape": [-1 if d is None else d for d in spec.shape.as_list()]
                if spec.shape.rank is not None
                else None,
                "type": spec.dtype.name,
            }
            for name, spec in loaded.inputs.items()
        }

    def run(self, loaded: _LoadedSignature, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        tensors = {
            name: self._to_tensor(name, value, loaded.inputs[name])
            for name, value in model_input.items()
        }
        outputs = loaded.function(**tensors)
        return {name: _flat_list(tensor.numpy()) for name, tensor in outputs.items()}

    def _to_tensor(self, name: str, value: Any, spec: Any) -> Any:
        tf = self._tf
        expected = f"shape {_shape_text(spec.shape)} ({spec.dtype.name})"
        try:
            tensor = tf.convert_to_tensor(value, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            raise ModelInputError(
                f'input "{name}": expected {expected}, got a value that does not convert: {error}'
            ) from None
        if spec.shape.is_compatible_with(tensor.shape):
            return tensor
        # One sample for a batched input: add the batch dimension Cortex users left out.
        if (
            spec.shape.rank is not None
            and spec.shape.rank == tensor.shape.rank + 1
            and spec.shape[0] is None
            and spec.shape[1:].is_compatible_with(tensor.shape)
        ):
            return tf.expand_dims(tensor, 0)
        raise ModelInputError(
            f'input "{name}": expected {expected}, got shape {tensor.shape.as_list()}'
        )


def _shape_text(shape: Any) -> str:
    if shape.rank is None:
        return "(any)"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape.as_list()) + "]"


def _flat_list(array: Any) -> list[Any]:
    values = array.ravel().tolist()
    if values and isinstance(values[0], bytes):
        return [v.decode("utf-8", errors="replace") for v in values]
    return values


def default_backend(intra_op_threads: int | None = None) -> TensorFlowBackend:
    """The in-process backend, unless a TF Serving sidecar is configured (not supported yet)."""
    address = os.environ.get(TF_SERVING_ADDRESS_ENV)
    if address:
        raise ModelLoadError(
            f"{TF_SERVING_ADDRESS_ENV}={address}: serving through a TensorFlow Serving sidecar is "
            "not supported yet; unset it to run the model in process"
        )
    return InProcessBackend(intra_op_threads)


class TensorFlowClient:
    """What Cortex passed as `tensorflow_client` to `TensorFlowPredictor.__init__`."""

    def __init__(
        self,
        sources: Mapping[str, ModelSource],
        backend: TensorFlowBackend,
        cache_size: int | None = None,
    ) -> None:
        self._backend = backend
        self._models: ModelStore[Any] = ModelStore(sources, self._load, cache_size)

    def _load(self, source: ModelSource, version: int) -> Any:
        what = f'model "{source.name}" version {version}'
        return self._backend.load(source.path(version), source.signature_key, what)

    def load_latest(self) -> None:
        """Loads the latest version of every model now."""
        self._models.load_latest()

    def input_signature(
        self, model_name: str | None = None, model_version: str | int = LATEST
    ) -> dict[str, dict[str, Any]]:
        """{input name: {"shape": [...], "type": "float32"}} of the model's signature (what v0.9
        passed to pre_inference/post_inference as `signature`)."""
        return self._backend.input_signature(self._models.get(model_name, model_version))

    def predict(
        self, model_input: Any, model_name: str | None = None, model_version: str | int = LATEST
    ) -> dict[str, list[Any]]:
        """Runs the signature; returns {output name: flat list of values}.

        Raises ModelInputError (a ValueError) for missing or unknown input keys and values that
        do not fit, ModelNotFoundError (a LookupError) for an unknown model name or version.
        """
        loaded = self._models.get(model_name, model_version)
        signature = self._backend.input_signature(loaded)
        names = list(signature)
        if not isinstance(model_input, Mapping):
            if len(names) != 1:
                raise ModelInputError(
                    "expected a dict keyed by the signature's input names ("
                    + ", ".join(f'"{n}"' for n in names)
                    + f"), got {type(model_input).__name__}"
                )
            model_input = {names[0]: model_input}
        missing = [n for n in names if n not in model_input]
        unknown = [k for k in model_input if k not in signature]
        if missing or unknown:
            problems = []
            if missing:
                problems.append("missing key(s) " + ", ".join(f'"{n}"' for n in missing))
            if unknown:
                problems.append("unknown key(s) " + ", ".join(f'"{k}"' for k in unknown))
            raise ModelInputError(
                "; ".join(problems) + f" (the signature's inputs: {', '.join(names)})"
            )
        return self._backend.run(loaded, model_input)
