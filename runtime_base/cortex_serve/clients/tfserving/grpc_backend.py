"""The TF Serving backend: signatures run in a TensorFlow Serving sidecar over gRPC, as in
Cortex (models loaded with HandleReloadConfigRequest, read with GetModelMetadata, run with
Predict), with only grpcio, protobuf and numpy (the message types are vendored here)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import contract, settings
from ...model_sources import ModelSource
from .. import ModelInputError, ModelLoadError
from ..tensorflow_signatures import (
    INTERNAL_SIGNATURE_PREFIX,
    Dims,
    batch_dims_to_add,
    choose_signature,
    flat_list,
    input_mismatch,
    model_label,
    signature_for_display,
)

TF_SERVING_ADDRESS_ENV = "CORTEX_TF_SERVING_ADDRESS"  # host:port of the sidecar
# Where the sidecar sees the models: <dir>/<model name>/<version>/ (the predictor image's
# /mnt/model, copied into a volume shared with the sidecar).
TF_SERVING_MODEL_DIR_ENV = "CORTEX_TF_SERVING_MODEL_DIR"
DEFAULT_TF_SERVING_MODEL_DIR = contract.MODEL_DIR
# The sidecar's timeouts and message limit: settings.py.


class TensorFlowServingError(RuntimeError):
    """The TF Serving sidecar failed a request for a reason other than the input."""


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

        from .protos import protos
        from .tensors import TensorCodec

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
        from .tensors import UnsupportedDType

        what = model_label(source, version)
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
        return signature_for_display(
            {name: (dims, dtype.name) for name, (dims, dtype) in loaded.inputs.items()}
        )

    def run(self, loaded: _RemoteSignature, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        from .tensors import convert

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
            name: flat_list(self._codec.to_array(tensor))
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
