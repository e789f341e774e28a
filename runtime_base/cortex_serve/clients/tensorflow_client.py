"""`tensorflow_client`: predictions from a SavedModel behind Cortex's TensorFlowClient interface.

The model-facing part is a backend (`TensorFlowBackend`), chosen by `default_backend`:
- `GrpcBackend` when CORTEX_TF_SERVING_ADDRESS is set (host:port of a TensorFlow Serving
  sidecar, as in Cortex): the models are loaded into TF Serving through ModelService's
  HandleReloadConfigRequest, their signatures read with GetModelMetadata and run with Predict.
  It needs only grpcio, protobuf and numpy (TF Serving's message types are vendored, see
  tfserving/). Settings: CORTEX_TF_SERVING_MODEL_DIR (where the sidecar sees the models,
  default /mnt/model), CORTEX_TF_SERVING_START_TIMEOUT (seconds to reach the sidecar, 120),
  CORTEX_TF_SERVING_LOAD_TIMEOUT (seconds for a model to become AVAILABLE, 600),
  CORTEX_TF_SERVING_PREDICT_TIMEOUT (seconds a Predict call may take, 60; 0: no deadline),
  CORTEX_TF_SERVING_MAX_MESSAGE_BYTES (gRPC message limit, default 2**31 - 1).
- `InProcessBackend` otherwise (tf.saved_model.load in the worker; `cortex-build serve`).

Contract kept from Cortex:
- `predict(model_input, model_name=None, model_version="latest")`: `model_input` is a dict keyed
  by the signature's input names (a single-input signature also takes the value itself); each
  value is converted to the input's dtype, and a value that lacks only the leading batch
  dimension gets it (one sample for a [None, ...] input).
- It returns {output name: flat list of values}, as Cortex flattened TF Serving's response
  (`prediction["class_ids"][0]`); strings come back as str.
- The signature is `signature_key` if configured, else the model's only one, else "predict",
  else "serving_default", else an error listing the available keys (TF Serving's internal
  "__saved_model_init_op" is not a choice).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import settings
from ..model_sources import LATEST, ModelSource
from ..models import ModelStore
from . import ModelInputError, ModelLoadError

TF_SERVING_ADDRESS_ENV = "CORTEX_TF_SERVING_ADDRESS"
# Where the sidecar sees the models: <dir>/<model name>/<version>/ (the predictor image's
# /mnt/model, copied into a volume shared with the sidecar).
TF_SERVING_MODEL_DIR_ENV = "CORTEX_TF_SERVING_MODEL_DIR"
DEFAULT_TF_SERVING_MODEL_DIR = "/mnt/model"
# The sidecar's timeouts and message limit: settings.py.
PREFERRED_SIGNATURES = ("predict", "serving_default")
INTERNAL_SIGNATURE_PREFIX = "__"  # "__saved_model_init_op", which GetModelMetadata also lists

Dims = list[int | None] | None  # a shape: None for an unknown dimension; None for unknown rank


class TensorFlowServingError(RuntimeError):
    """The TF Serving sidecar failed a request for a reason other than the input."""


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


def batch_dims_to_add(expected: Dims, actual: Sequence[int]) -> int | None:
    """0 when a value of shape `actual` fits `expected`, 1 when it fits once given the leading
    batch dimension Cortex users leave out for one sample, None when it does not fit."""

    def fits(dims: Sequence[int | None], shape: Sequence[int]) -> bool:
        if len(dims) != len(shape):
            return False
        return all(d is None or d == s for d, s in zip(dims, shape, strict=True))

    if expected is None or fits(expected, actual):
        return 0
    if expected and expected[0] is None and fits(expected[1:], actual):
        return 1
    return None


def shape_text(dims: Dims) -> str:
    if dims is None:
        return "(any)"
    return "[" + ", ".join("None" if d is None else str(d) for d in dims) + "]"


def input_mismatch(name: str, dims: Dims, dtype_name: str, problem: str) -> ModelInputError:
    return ModelInputError(
        f'input "{name}": expected shape {shape_text(dims)} ({dtype_name}), {problem}'
    )


class TensorFlowBackend(Protocol):
    """Where a SavedModel's signature runs: in this process, or in a TF Serving sidecar."""

    def configure(self, sources: Mapping[str, ModelSource]) -> None:
        """Called once with every model the API serves, before any load."""

    def load(self, source: ModelSource, version: int) -> Any:
        """Prepares one model version's signature; ModelLoadError if it cannot."""

    def input_signature(self, loaded: Any) -> dict[str, dict[str, Any]]:
        """{input name: {"shape": [dims, -1 when unknown], "type": dtype name}}."""

    def run(self, loaded: Any, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        """{output name: flat list of values}; ModelInputError when the input does not fit."""


def _what(source: ModelSource, version: int) -> str:
    return f'model "{source.name}" version {version}'


def _signature_for_display(inputs: Mapping[str, tuple[Dims, str]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "shape": None if dims is None else [-1 if d is None else d for d in dims],
            "type": dtype_name,
        }
        for name, (dims, dtype_name) in inputs.items()
    }


def _flat_list(array: Any) -> list[Any]:
    values = array.ravel().tolist()
    if values and isinstance(values[0], bytes):
        return [v.decode("utf-8", errors="replace") for v in values]
    return values


# -- in process -----------------------------------------------------------------------------------


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
        what = _what(source, version)
        with source.local(version) as model_dir:  # a fetched s3 version stays on disk meanwhile
            try:
                model = self._tf.saved_model.load(str(model_dir))
            except Exception as error:  # OSError, tf.errors.*, ValueError for a non-SavedModel
                raise ModelLoadError(
                    f"{what} ({model_dir}): not a loadable SavedModel: {error}"
                ) from error
        key = choose_signature(list(model.signatures.keys()), source.signature_key, what)
        function = model.signatures[key]
        return _LoadedSignature(key, function, dict(function.structured_input_signature[1]), model)

    def input_signature(self, loaded: _LoadedSignature) -> dict[str, dict[str, Any]]:
        return _signature_for_display(
            {name: (_dims(spec.shape), spec.dtype.name) for name, spec in loaded.inputs.items()}
        )

    def run(self, loaded: _LoadedSignature, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        tensors = {
            name: self._to_tensor(name, value, loaded.inputs[name])
            for name, value in model_input.items()
        }
        outputs = loaded.function(**tensors)
        return {name: _flat_list(tensor.numpy()) for name, tensor in outputs.items()}

    def _to_tensor(self, name: str, value: Any, spec: Any) -> Any:
        tf = self._tf
        dims = _dims(spec.shape)
        try:
            tensor = tf.convert_to_tensor(value, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            raise input_mismatch(
                name, dims, spec.dtype.name, f"got a value that does not convert: {error}"
            ) from None
        added = batch_dims_to_add(dims, tensor.shape.as_list())
        if added is None:
            raise input_mismatch(name, dims, spec.dtype.name, f"got shape {tensor.shape.as_list()}")
        return tf.expand_dims(tensor, 0) if added else tensor


def _dims(shape: Any) -> Dims:
    return shape.as_list() if shape.rank is not None else None


# -- TensorFlow Serving over gRPC ----------------------------------------------------------------


@dataclass(frozen=True)
class _RemoteSignature:
    model: str
    version: int
    key: str
    inputs: Mapping[str, tuple[Dims, Any]]  # input name -> (dims, tfserving.tensors.DType)


class GrpcBackend:
    """Runs signatures in a TensorFlow Serving sidecar, as Cortex did.

    `configure` waits (bounded) for the sidecar to answer, then sends one HandleReloadConfigRequest
    naming every model (base path <model_dir>/<name>, the versions found locally); `load` waits
    until GetModelStatus says the version is AVAILABLE and reads its signatures with
    GetModelMetadata. Every worker process sends the same config, so the reloads agree.
    """

    def __init__(
        self,
        address: str,
        model_dir: str = DEFAULT_TF_SERVING_MODEL_DIR,
        start_timeout: float = settings.TF_SERVING_START_TIMEOUT.default,
        load_timeout: float = settings.TF_SERVING_LOAD_TIMEOUT.default,
        max_message_bytes: int = int(settings.TF_SERVING_MAX_MESSAGE_BYTES.default),
        predict_timeout: float = settings.TF_SERVING_PREDICT_TIMEOUT.default,
    ) -> None:
        """`predict_timeout`: seconds one Predict call may take (0: no deadline)."""
        import grpc

        from .tfserving.protos import protos
        from .tfserving.tensors import TensorCodec

        self._grpc = grpc
        self.address = address
        self._model_dir = model_dir.rstrip("/")
        self._start_timeout = start_timeout
        self._load_timeout = load_timeout
        self._predict_timeout = predict_timeout
        self._protos = protos()
        self._codec = TensorCodec(self._protos)
        self._channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                # Retry a sidecar that is not up yet every second or so, not after minutes.
                ("grpc.initial_reconnect_backoff_ms", 250),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self._methods = {
            name: self._channel.unary_unary(
                method.path,
                request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString,
            )
            for name, method in self._protos.methods.items()
        }

    @classmethod
    def from_env(cls, address: str) -> GrpcBackend:
        return cls(
            address,
            model_dir=os.environ.get(TF_SERVING_MODEL_DIR_ENV) or DEFAULT_TF_SERVING_MODEL_DIR,
            start_timeout=settings.TF_SERVING_START_TIMEOUT.read(),
            load_timeout=settings.TF_SERVING_LOAD_TIMEOUT.read(),
            predict_timeout=settings.TF_SERVING_PREDICT_TIMEOUT.read(),
            max_message_bytes=int(settings.TF_SERVING_MAX_MESSAGE_BYTES.read()),
        )

    def base_path(self, model_name: str) -> str:
        return f"{self._model_dir}/{model_name}"

    def close(self) -> None:
        self._channel.close()

    def configure(self, sources: Mapping[str, ModelSource]) -> None:
        self._wait_until_connected()
        request = self._protos.message("tensorflow.serving.ReloadConfigRequest")()
        for source in sources.values():
            config = request.config.model_config_list.config.add()
            config.name = source.name
            config.base_path = self.base_path(source.name)
            config.model_platform = "tensorflow"
            # The versions this API serves (an unversioned model is version 1, in <name>/1/).
            config.model_version_policy.specific.versions.extend(sorted(source.versions))
        response = self._load_call("HandleReloadConfigRequest", request, "loading the models")
        if response.status.error_code:
            raise ModelLoadError(
                f"TensorFlow Serving at {self.address} refused the model config ("
                + ", ".join(f"{n} at {self.base_path(n)}" for n in sources)
                + f"): {self._status_text(response.status)}"
            )

    def load(self, source: ModelSource, version: int) -> _RemoteSignature:
        from .tfserving.tensors import UnsupportedDType

        what = _what(source, version)
        self._wait_until_available(source.name, version, what)
        request = self._protos.message("tensorflow.serving.GetModelMetadataRequest")()
        self._model_spec(request.model_spec, source.name, version)
        request.metadata_field.append("signature_def")
        response = self._load_call("GetModelMetadata", request, f"{what}: reading its signatures")
        signature_map = self._protos.message("tensorflow.serving.SignatureDefMap").FromString(
            response.metadata["signature_def"].value
        )
        signatures = {
            key: signature
            for key, signature in signature_map.signature_def.items()
            if not key.startswith(INTERNAL_SIGNATURE_PREFIX)
        }
        key = choose_signature(list(signatures), source.signature_key, what)
        inputs = {}
        for name, info in signatures[key].inputs.items():
            try:
                dtype = self._codec.dtype(info.dtype)
            except UnsupportedDType as error:
                raise ModelLoadError(
                    f'{what}: signature "{key}", input "{name}": {error}'
                ) from None
            shape = info.tensor_shape
            dims = (
                None if shape.unknown_rank else [d.size if d.size >= 0 else None for d in shape.dim]
            )
            inputs[name] = (dims, dtype)
        return _RemoteSignature(source.name, version, key, inputs)

    def input_signature(self, loaded: _RemoteSignature) -> dict[str, dict[str, Any]]:
        return _signature_for_display(
            {name: (dims, dtype.name) for name, (dims, dtype) in loaded.inputs.items()}
        )

    def run(self, loaded: _RemoteSignature, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        from .tfserving.tensors import convert

        request = self._protos.message("tensorflow.serving.PredictRequest")()
        self._model_spec(request.model_spec, loaded.model, loaded.version)
        request.model_spec.signature_name = loaded.key
        for name, value in model_input.items():
            dims, dtype = loaded.inputs[name]
            try:
                array = convert(value, dtype)
            except ValueError as error:
                raise input_mismatch(
                    name, dims, dtype.name, f"got a value that does not convert: {error}"
                ) from None
            added = batch_dims_to_add(dims, array.shape)
            if added is None:
                raise input_mismatch(name, dims, dtype.name, f"got shape {list(array.shape)}")
            self._codec.to_proto(array[None] if added else array, dtype, request.inputs[name])
        try:
            response = self._methods["Predict"](request, timeout=self._predict_timeout or None)
        except self._grpc.RpcError as error:
            if error.code() == self._grpc.StatusCode.INVALID_ARGUMENT:
                raise ModelInputError(f"TensorFlow Serving: {error.details()}") from None
            if error.code() == self._grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TensorFlowServingError(
                    f"TensorFlow Serving at {self.address}: predicting with model "
                    f'"{loaded.model}" version {loaded.version}: no answer within '
                    f"{self._predict_timeout:g}s ({settings.TF_SERVING_PREDICT_TIMEOUT.name}); "
                    "is the sidecar overloaded or stuck?"
                ) from None
            raise TensorFlowServingError(
                f'TensorFlow Serving at {self.address}: predicting with model "{loaded.model}" '
                f"version {loaded.version}: {error.code().name}: {error.details()}"
            ) from None
        return {
            name: _flat_list(self._codec.to_array(tensor))
            for name, tensor in response.outputs.items()
        }

    # -- helpers

    def _wait_until_connected(self) -> None:
        try:
            self._grpc.channel_ready_future(self._channel).result(timeout=self._start_timeout)
        except self._grpc.FutureTimeoutError:
            raise ModelLoadError(
                f"TensorFlow Serving at {self.address} ({TF_SERVING_ADDRESS_ENV}) did not answer "
                f"within {self._start_timeout:g}s; is the sidecar running and listening there?"
            ) from None

    def _wait_until_available(self, name: str, version: int, what: str) -> None:
        request = self._protos.message("tensorflow.serving.GetModelStatusRequest")()
        self._model_spec(request.model_spec, name, version)
        deadline = time.monotonic() + self._load_timeout
        state, pause = "not known to TF Serving", 0.05
        where = f"{self.base_path(name)}/{version}"
        while True:
            try:
                response = self._methods["GetModelStatus"](request, timeout=10)
            except self._grpc.RpcError as error:
                # NOT_FOUND until TF Serving has seen the version folder; UNAVAILABLE while the
                # sidecar restarts: both may pass.
                if error.code() not in (
                    self._grpc.StatusCode.NOT_FOUND,
                    self._grpc.StatusCode.UNAVAILABLE,
                    self._grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise ModelLoadError(
                        f"{what}: TensorFlow Serving at {self.address}: {error.code().name}: "
                        f"{error.details()}"
                    ) from None
                state = f"{error.code().name}: {error.details()}"
            else:
                for status in response.model_version_status:
                    if status.version != version:
                        continue
                    state = self._protos.enum_name(
                        "tensorflow.serving.ModelVersionStatus.State", status.state
                    )
                    if state == "AVAILABLE":
                        return
                    if status.status.error_code:
                        raise ModelLoadError(
                            f"{what}: TensorFlow Serving at {self.address} could not load it "
                            f"from {where}: {self._status_text(status.status)}"
                        )
            if time.monotonic() + pause > deadline:
                raise ModelLoadError(
                    f"{what}: not available in TensorFlow Serving at {self.address} after "
                    f"{self._load_timeout:g}s (last state: {state}); the sidecar loads it from "
                    f"{where}"
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _load_call(self, method: str, request: Any, doing: str) -> Any:
        try:
            return self._methods[method](request, timeout=max(self._load_timeout, 1.0))
        except self._grpc.RpcError as error:
            raise ModelLoadError(
                f"TensorFlow Serving at {self.address}: {doing}: {error.code().name}: "
                f"{error.details()}"
            ) from None

    def _model_spec(self, spec: Any, name: str, version: int) -> None:
        spec.name = name
        spec.version.value = version

    def _status_text(self, status: Any) -> str:
        code = self._protos.enum_name("tensorflow.error.Code", status.error_code)
        return f"{code}: {status.error_message}"


def default_backend(intra_op_threads: int | None = None) -> TensorFlowBackend:
    """The TF Serving sidecar named by CORTEX_TF_SERVING_ADDRESS, else TensorFlow in process."""
    address = os.environ.get(TF_SERVING_ADDRESS_ENV)
    if address:
        return GrpcBackend.from_env(address)
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
        backend.configure(sources)
        self._models: ModelStore[Any] = ModelStore(sources, backend.load, cache_size)

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
