"""The in-process TensorFlow backend: tf.saved_model.load in the worker (`cortex-build serve`, or
an image without a TF Serving sidecar)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..model_sources import ModelSource
from . import ModelLoadError, tensorflow_signatures as signatures


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

    def configure(self, sources: Mapping[str, ModelSource]) -> None:
        pass  # models are loaded from their local folders on demand

    def load(self, source: ModelSource, version: int) -> _LoadedSignature:
        what = signatures.model_label(source, version)
        with source.local(version) as model_dir:  # a fetched s3 version stays on disk meanwhile
            try:
                model = self._tf.saved_model.load(str(model_dir))
            except Exception as error:  # OSError, tf.errors.*, ValueError for a non-SavedModel
                raise ModelLoadError(
                    f"{what} ({model_dir}): not a loadable SavedModel: {error}"
                ) from error
        key = signatures.choose_signature(list(model.signatures.keys()), source.signature_key, what)
        function = model.signatures[key]
        return _LoadedSignature(key, function, dict(function.structured_input_signature[1]), model)

    def input_signature(self, loaded: _LoadedSignature) -> dict[str, dict[str, Any]]:
        return signatures.signature_for_display(
            {name: (_dims(spec.shape), spec.dtype.name) for name, spec in loaded.inputs.items()}
        )

    def run(self, loaded: _LoadedSignature, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        tensors = {
            name: self._to_tensor(name, value, loaded.inputs[name])
            for name, value in model_input.items()
        }
        outputs = loaded.function(**tensors)
        return {name: signatures.flat_list(tensor.numpy()) for name, tensor in outputs.items()}

    def _to_tensor(self, name: str, value: Any, spec: Any) -> Any:
        tf = self._tf
        dims = _dims(spec.shape)
        try:
            tensor = tf.convert_to_tensor(value, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            raise signatures.input_mismatch(
                name, dims, spec.dtype.name, f"got a value that does not convert: {error}"
            ) from None
        added = signatures.batch_dims_to_add(dims, tensor.shape.as_list())
        if added is None:
            raise signatures.input_mismatch(
                name, dims, spec.dtype.name, f"got shape {tensor.shape.as_list()}"
            )
        return tf.expand_dims(tensor, 0) if added else tensor


def _dims(shape: Any) -> signatures.Dims:
    return shape.as_list() if shape.rank is not None else None
