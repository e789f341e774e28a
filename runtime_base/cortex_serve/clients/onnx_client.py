"""`onnx_client`: an onnxruntime InferenceSession per model version, in process (as Cortex ran it).

`predict(model_input, model_name=None, model_version="latest")` keeps the contract of Cortex's
ONNXClient: it returns what `InferenceSession.run` returns, the list of the model's outputs in
order (numpy arrays; a scikit-learn ZipMap output is a list of dicts). Predictors index it
(`self.client.predict(x)[0]`) and use numpy on it, as they did with Cortex; the server turns numpy
values it is handed into JSON lists, so returning the outputs as they are also works.

Inputs: a model with one input takes the value itself (list, nested list, numpy array) or a dict
holding it under the input's name; a model with several inputs takes a dict keyed by input name.
Each value is converted to the input's dtype and reshaped to its shape (unknown dimensions are
inferred), so `[5.1, 3.5, 1.4, 0.2]` fits an input of shape [None, 4].
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..model_sources import LATEST, ModelSource
from ..models import ModelStore
from . import ModelInputError, ModelLoadError

logger = logging.getLogger("cortex")

# onnxruntime's type strings -> numpy dtypes
ONNX_TO_NUMPY: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def find_onnx_file(path: Path) -> Path:
    """The .onnx file of a model version: the path itself, or the one .onnx file in the folder."""
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.onnx"))
    if len(candidates) != 1:
        found = ", ".join(c.name for c in candidates) or "none"
        raise ModelLoadError(
            f"{path}: expected exactly one .onnx file in the folder (found {found})"
        )
    return candidates[0]


class ONNXClient:
    """What Cortex passed as `onnx_client` to `ONNXPredictor.__init__`."""

    def __init__(
        self,
        sources: Mapping[str, ModelSource],
        *,
        gpu: bool = False,
        intra_op_threads: int = 1,
        cache_size: int | None = None,
    ) -> None:
        import onnxruntime

        self._ort = onnxruntime
        self._options = onnxruntime.SessionOptions()
        self._options.intra_op_num_threads = intra_op_threads
        self._options.inter_op_num_threads = 1  # graphs run sequentially; parallelism is intra-op
        self._providers = self._pick_providers(gpu)
        # Without cache_size, new and removed version folders are followed (models.py).
        self._sessions: ModelStore[Any] = ModelStore(
            sources, self._load, cache_size, live_reload=True
        )

    def _pick_providers(self, gpu: bool) -> list[str]:
        if not gpu:
            return ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in self._ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        logger.warning(
            "compute.gpu is set but this onnxruntime has no CUDAExecutionProvider (install "
            "onnxruntime-gpu); running the ONNX model on the CPU"
        )
        return ["CPUExecutionProvider"]

    def _load(self, source: ModelSource, version: int) -> Any:
        with source.local(version) as path:  # a fetched s3 version stays on disk meanwhile
            file = find_onnx_file(path)
            try:
                return self._ort.InferenceSession(
                    str(file), sess_options=self._options, providers=self._providers
                )
            except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/...
                raise ModelLoadError(
                    f'model "{source.name}" version {version} ({file}): {error}'
                ) from error

    def load_latest(self) -> None:
        """Opens the latest version of every model now."""
        self._sessions.load_latest()

    def close(self) -> None:
        """Stops following the model sources (live reload)."""
        self._sessions.close()

    def session(self, model_name: str | None = None, model_version: str | int = LATEST) -> Any:
        """The onnxruntime.InferenceSession of a model version."""
        return self._sessions.get(model_name, model_version)

    def input_metadata(
        self, model_name: str | None = None, model_version: str | int = LATEST
    ) -> list[Any]:
        """The model's inputs (onnxruntime NodeArg: .name, .shape, .type)."""
        return self.session(model_name, model_version).get_inputs()

    def output_metadata(
        self, model_name: str | None = None, model_version: str | int = LATEST
    ) -> list[Any]:
        """The model's outputs (onnxruntime NodeArg: .name, .shape, .type)."""
        return self.session(model_name, model_version).get_outputs()

    def predict(
        self, model_input: Any, model_name: str | None = None, model_version: str | int = LATEST
    ) -> list[Any]:
        """Runs the model; returns the list of its outputs as onnxruntime gives them.

        `model_name` may be left out when the API serves one model; `model_version` is "latest"
        or a version number. Raises ModelInputError (a ValueError) when the input does not fit.
        """
        session = self.session(model_name, model_version)
        return session.run(None, to_onnx_feed(model_input, session.get_inputs()))


def to_onnx_feed(model_input: Any, inputs: list[Any]) -> dict[str, np.ndarray]:
    """{input name: array of the input's dtype and shape}, from what predict was given."""
    names = [node.name for node in inputs]
    if len(inputs) == 1 and not (isinstance(model_input, Mapping) and names[0] in model_input):
        if isinstance(model_input, Mapping):
            raise ModelInputError(
                f'missing key "{names[0]}": the model\'s input is "{names[0]}"; pass its value '
                f"directly or in a dict under that key (got keys: {_keys(model_input)})"
            )
        return {names[0]: _to_array(model_input, inputs[0])}
    if not isinstance(model_input, Mapping):
        raise ModelInputError(
            "expected a dict keyed by the model's input names ("
            + ", ".join(f'"{n}"' for n in names)
            + f"), got {type(model_input).__name__}"
        )
    missing = [name for name in names if name not in model_input]
    if missing:
        raise ModelInputError(
            "missing key(s) "
            + ", ".join(f'"{n}"' for n in missing)
            + f" (the model's inputs: {', '.join(names)}; got keys: {_keys(model_input)})"
        )
    return {node.name: _to_array(model_input[node.name], node) for node in inputs}


def _keys(mapping: Mapping[Any, Any]) -> str:
    return ", ".join(f'"{k}"' for k in mapping) or "none"


def _shape_text(shape: list[Any]) -> str:
    return "[" + ", ".join("None" if not isinstance(d, int) else str(d) for d in shape) + "]"


def _expected(node: Any) -> str:
    # only on the error paths: predict runs _to_array on every request
    return f"shape {_shape_text(node.shape)} ({node.type})"


def _to_array(value: Any, node: Any) -> np.ndarray:
    dtype = ONNX_TO_NUMPY.get(node.type)
    if dtype is None:
        raise ModelInputError(f'input "{node.name}": unsupported input type {node.type}')
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ModelInputError(
            f'input "{node.name}": expected {_expected(node)}, got a value that does not convert: '
            f"{error}"
        ) from None
    # Unknown dimensions are None or symbolic names ("batch"); reshape infers at most one.
    target = [d if isinstance(d, int) and d > 0 else -1 for d in node.shape]
    if target.count(-1) <= 1:
        try:
            return array.reshape(target)
        except ValueError:
            pass
    elif array.ndim == len(target) and all(
        t in (-1, got) for t, got in zip(target, array.shape, strict=True)
    ):
        return array
    raise ModelInputError(
        f'input "{node.name}": expected {_expected(node)}, got shape {list(array.shape)}'
    )
