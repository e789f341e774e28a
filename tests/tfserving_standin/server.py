"""A stand-in for the TensorFlow Serving sidecar (TEST FIXTURE, see README.md).

Serves the part of TF Serving's gRPC API that cortex-build's predictor uses, with TensorFlow
itself: PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus and
HandleReloadConfigRequest. Models follow TF Serving's rules: a model's base path holds integer
version folders, the version policy (latest N, all, specific) picks which are served, a reload
replaces the whole config (unloading what it no longer names), versions load in the background
(START -> LOADING -> AVAILABLE, or END with the error), and base paths are polled every second
for new version folders. Like tensorflow_model_server, it accepts messages up to INT32_MAX.

    python server.py --port=9000 [--model_config_file=models.config]
                     [--model_name=NAME --model_base_path=PATH]

Other tensorflow_model_server flags (--rest_api_port, --grpc_channel_arguments, ...) are
accepted and ignored, so a sidecar command line written for TF Serving starts it unchanged.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

log = logging.getLogger("tfserving-standin")

MAX_MESSAGE_BYTES = 2**31 - 1
POLL_SECONDS = 1.0
State = get_model_status_pb2.ModelVersionStatus.State
SERVE_TAG = "serve"
INTERNAL_ERROR = 13  # tensorflow.error.Code


@dataclass
class Version:
    path: Path
    state: int = State.START
    error: str = ""
    model: Any = None  # the tf.saved_model.load result
    signature_defs: dict[str, Any] = field(default_factory=dict)  # key -> SignatureDef


@dataclass
class Model:
    config: Any  # model_server_config_pb2.ModelConfig
    versions: dict[int, Version] = field(default_factory=dict)


def version_folders(base_path: Path) -> dict[int, Path]:
    if not base_path.is_dir():
        return {}
    return {
        int(child.name): child
        for child in base_path.iterdir()
        if child.is_dir() and child.name.isdigit()
    }


def wanted_versions(config: Any, found: dict[int, Path]) -> set[int]:
    """The versions TF Serving's model_version_policy serves among those on disk."""
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(found)
    if choice == "specific":
        return set(policy.specific.versions) & set(found)
    count = policy.latest.num_versions if choice == "latest" else 1
    return set(sorted(found)[-max(count, 1) :])


def load_version(version: Version) -> None:
    version.state = State.LOADING
    try:
        saved_model = saved_model_pb2.SavedModel.FromString(
            (version.path / "saved_model.pb").read_bytes()
        )
        graphs = [g for g in saved_model.meta_graphs if SERVE_TAG in g.meta_info_def.tags]
        if not graphs:
            raise ValueError(f'no MetaGraph tagged "{SERVE_TAG}" in {version.path}')
        version.signature_defs = dict(graphs[0].signature_def)
        version.model = tf.saved_model.load(str(version.path), tags=[SERVE_TAG])
        version.state = State.AVAILABLE
    except Exception as error:  # a broken model ends its version, as in TF Serving
        log.error("loading %s failed: %s", version.path, error)
        version.error = f"{type(error).__name__}: {error}"
        version.state = State.END


class ModelManager:
    """The served models by name; a reload or a poll starts loads in background threads."""

    def __init__(self) -> None:
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()

    def reload(self, config_list: Any) -> None:
        names = [config.name for config in config_list.config]
        for config in config_list.config:
            if config.model_platform not in ("", "tensorflow"):
                raise ValueError(f'model "{config.name}": unsupported platform')
            if not config.name or not config.base_path:
                raise ValueError("every model config needs a name and a base_path")
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        with self._lock:
            for name in list(self._models):
                if name not in names:
                    del self._models[name]  # unloaded, as TF Serving does
            for config in config_list.config:
                model = self._models.setdefault(config.name, Model(config))
                model.config = config
        self.poll()

    def poll(self) -> None:
        """Starts loading wanted versions that appeared, drops versions no longer wanted."""
        with self._lock:
            for model in self._models.values():
                found = version_folders(Path(model.config.base_path))
                wanted = wanted_versions(model.config, found)
                for number in list(model.versions):
                    if number not in wanted:
                        del model.versions[number]
                for number in sorted(wanted - set(model.versions)):
                    version = Version(found[number])
                    model.versions[number] = version
                    threading.Thread(target=load_version, args=(version,), daemon=True).start()

    def versions(self, name: str) -> dict[int, Version]:
        with self._lock:
            model = self._models.get(name)
            return dict(model.versions) if model else {}

    def find(self, model_spec: Any, context: Any) -> tuple[int, Version]:
        """The AVAILABLE version a request names (the latest one without a version)."""
        versions = self.versions(model_spec.name)
        available = {n: v for n, v in versions.items() if v.state == State.AVAILABLE}
        if model_spec.HasField("version"):
            number = model_spec.version.value
            if number not in available:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({model_spec.name}, {number})",
                )
            return number, available[number]
        if not available:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({model_spec.name})",
            )
        number = max(available)
        return number, available[number]


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:
        response = model_management_pb2.ReloadConfigResponse()
        if request.config.WhichOneof("config") != "model_config_list":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only model_config_list is served")
        try:
            self.manager.reload(request.config.model_config_list)
        except ValueError as error:
            response.status.CopyFrom(
                status_pb2.StatusProto(error_code=3, error_message=str(error))  # INVALID_ARGUMENT
            )
        return response

    def GetModelStatus(self, request: Any, context: Any) -> Any:
        versions = self.manager.versions(request.model_spec.name)
        if request.model_spec.HasField("version"):
            number = request.model_spec.version.value
            versions = {number: versions[number]} if number in versions else {}
        if not versions:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find any versions of model {request.model_spec.name}",
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, version in sorted(versions.items()):
            status = response.model_version_status.add(version=number, state=version.state)
            if version.error:
                status.status.error_code = INTERNAL_ERROR
                status.status.error_message = version.error
        return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def GetModelMetadata(self, request: Any, context: Any) -> Any:
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be exactly signature_def"
            )
        number, version = self.manager.find(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = number
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in version.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def Predict(self, request: Any, context: Any) -> Any:
        number, version = self.manager.find(request.model_spec, context)
        key = request.model_spec.signature_name or "serving_default"
        signature = version.signature_defs.get(key)
        if signature is None or key not in version.model.signatures:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{key}" not found.',
            )
        expected, given = set(signature.inputs), set(request.inputs)
        if expected != given:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input size does not match signature: {len(given)}!={len(expected)} len({{"
                + ",".join(sorted(given))
                + "}) != len({"
                + ",".join(sorted(expected))
                + "})",
            )
        try:
            inputs = {name: tf.constant(tf.make_ndarray(t)) for name, t in request.inputs.items()}
            outputs = version.model.signatures[key](**inputs)
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).strip().splitlines()[0])
        names = list(request.output_filter) or list(outputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = number
        response.model_spec.signature_name = key
        for name in names:
            if name not in outputs:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"output tensor alias not found: {name}"
                )
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
        return response


def initial_config(args: argparse.Namespace) -> Any:
    config_list = model_server_config_pb2.ModelConfigList()
    if args.model_config_file:
        server_config = text_format.Parse(
            Path(args.model_config_file).read_text(), model_server_config_pb2.ModelServerConfig()
        )
        config_list.CopyFrom(server_config.model_config_list)
    elif args.model_base_path:
        config_list.config.add(
            name=args.model_name, base_path=args.model_base_path, model_platform="tensorflow"
        )
    return config_list


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--model_config_file", default="")
    parser.add_argument("--model_name", default="default")
    parser.add_argument("--model_base_path", default="")
    args, ignored = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tfserving-standin %(message)s")
    if ignored:
        log.info("ignoring tensorflow_model_server flags: %s", " ".join(ignored))

    manager = ModelManager()
    manager.reload(initial_config(args))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    if not server.add_insecure_port(f"{args.host}:{args.port}"):
        sys.exit(f"cannot listen on {args.host}:{args.port}")
    server.start()
    log.info("Running gRPC ModelServer at %s:%d", args.host, args.port)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(POLL_SECONDS):
        manager.poll()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
