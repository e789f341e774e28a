"""The TensorFlow Serving gRPC backend against the stand-in sidecar (tests/tfserving_standin/, real
TensorFlow behind TF Serving's gRPC API) running on a free loopback port, with real SavedModels
of the iris classifier.

The stand-in runs on this machine, so it sees the models where the predictor does: the sidecar
model folder (CORTEX_TF_SERVING_MODEL_DIR) is the folder the models are resolved from.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cortex_build.spec import ModelRef, ModelsSpec
from cortex_serve.clients import ModelInputError, ModelLoadError
from cortex_serve.clients.tensorflow_client import TensorFlowClient
from cortex_serve.clients.tfserving.grpc_backend import (
    TF_SERVING_ADDRESS_ENV,
    TF_SERVING_MODEL_DIR_ENV,
    GrpcBackend,
    TensorFlowServingError,
    _RemoteSignature,
)
from cortex_serve.clients.tfserving.protos import protos
from cortex_serve.clients.tfserving.tensors import DTYPES, TensorCodec, convert
from cortex_serve.model_sources import resolve_models
from cortex_serve.predictor import PredictorError
from cortex_serve.predictor_loading import load_predictor
from cortex_serve.settings import TF_SERVING_PREDICT_TIMEOUT, TF_SERVING_START_TIMEOUT
from predictor_cases.model_factory import SETOSA, VIRGINICA, write_iris_savedmodel
from predictor_cases.specs import CASES_DIR, api_spec as predictor_api_spec
from servers import api_spec, free_port, running_server

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).parent.parent
STANDIN = TESTS_DIR / "tfserving_standin" / "server.py"
IRIS = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}


# -- numpy <-> TensorProto parity with TensorFlow (no sidecar needed) -----------------------------

PARITY_VALUES = [
    np.array([[5.1, 3.5], [1.4, 0.2]], dtype=np.float32),
    np.array([1, -2, 2**40], dtype=np.int64),
    np.array([["setosa", "virginica"], ["", "é"]], dtype=object),
    np.array([True, False, True]),
    np.array(2.5, dtype=np.float64),
    np.zeros((0, 4), dtype=np.float32),
    np.array([7, 8], dtype=np.int32),
]


@pytest.mark.parametrize("value", PARITY_VALUES, ids=lambda v: f"{v.dtype}{list(v.shape)}")
def test_tensor_conversion_matches_tensorflow(value: np.ndarray) -> None:
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.framework import tensor_pb2

    codec = TensorCodec(protos())
    reference = tf.make_tensor_proto(value)
    dtype = codec.dtype(reference.dtype)
    array = convert(value.tolist() if value.size else value, dtype)  # lists, as JSON gives

    ours = codec.to_proto(array, dtype)
    theirs = tf.make_ndarray(tensor_pb2.TensorProto.FromString(ours.SerializeToString()))
    back = codec.to_array(codec.tensor_proto.FromString(reference.SerializeToString()))
    if dtype.name == "string":
        value = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(value)
    for result in (theirs, back):
        assert result.shape == value.shape
        assert result.dtype == value.dtype
        np.testing.assert_array_equal(result, value)


def test_typed_value_fields_follow_tensorflow() -> None:
    """Protos written with float_val / int64_val (a single value fills the shape) read as TF
    reads them."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.framework import tensor_pb2

    codec = TensorCodec(protos())
    from google.protobuf import text_format

    for text in (
        "dtype: DT_FLOAT tensor_shape { dim { size: 3 } } float_val: 1.5",
        "dtype: DT_INT64 tensor_shape { dim { size: 2 } dim { size: 2 } } int64_val: [1, 2, 3, 4]",
        "dtype: DT_BOOL tensor_shape { dim { size: 2 } } bool_val: [true, false]",
        "dtype: DT_HALF tensor_shape { dim { size: 1 } } half_val: 15360",
        'dtype: DT_STRING tensor_shape { dim { size: 2 } } string_val: ["a", "b"]',
    ):
        reference = text_format.Parse(text, tensor_pb2.TensorProto())
        ours = codec.to_array(codec.tensor_proto.FromString(reference.SerializeToString()))
        np.testing.assert_array_equal(ours, tf.make_ndarray(reference))


def test_conversion_refuses_what_tensorflow_refuses() -> None:
    by_name = {dtype.name: dtype for dtype in DTYPES}
    for value, dtype, reason in (
        ([1.5, 2.0], "int64", "expected integers, got floating-point numbers"),
        (["1.5"], "float32", "expected numbers, got strings"),
        ([1, 0], "bool", "expected booleans, got integers"),
        ([2**40], "int32", "values out of the range of int32"),
        ([1, b"x"], "string", "expected strings, got int"),
    ):
        with pytest.raises(ValueError, match=reason):
            convert(value, by_name[dtype])


def test_vendored_descriptors_are_what_the_tool_generates() -> None:
    """_descriptors.py is tools/vendor_tfserving_protos.py's output for the installed versions
    (skipped when other versions are installed: then the tool would rightly differ)."""
    pytest.importorskip("tensorflow_serving")
    from cortex_serve.clients.tfserving import _descriptors

    tool_path = TESTS_DIR.parent / "tools" / "vendor_tfserving_protos.py"
    module_spec = importlib.util.spec_from_file_location("vendor_tfserving_protos", tool_path)
    assert module_spec is not None and module_spec.loader is not None
    tool = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(tool)
    installed = importlib.metadata.version("tensorflow-serving-api")
    if installed != _descriptors.SERVING_API_VERSION:
        pytest.skip(
            f"tensorflow-serving-api {installed} installed, vendored from "
            f"{_descriptors.SERVING_API_VERSION}"
        )
    assert tool.generate() == Path(_descriptors.__file__).read_text()


# -- a sidecar that never answers Predict ---------------------------------------------------------


@contextlib.contextmanager
def wedged_sidecar() -> Iterator[str]:
    """A real gRPC server on a free loopback port whose Predict handler blocks (a wedged TF
    Serving); yields its address. The handler is released when the block ends."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    released = threading.Event()

    def predict(_request: bytes, _context: Any) -> bytes:
        released.wait(60)
        return b""  # an empty PredictResponse, had anyone still waited

    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(predict)},
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        released.set()
        server.stop(None)


def test_a_predict_the_sidecar_never_answers_fails_after_the_predict_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    float32 = next(dtype for dtype in DTYPES if dtype.name == "float32")
    signature = _RemoteSignature("iris", 1, "serving_default", {"x": ([None, 4], float32)})
    monkeypatch.setenv(TF_SERVING_PREDICT_TIMEOUT.name, "1.5")
    with wedged_sidecar() as address:
        backend = GrpcBackend.from_env(address)
        try:
            start = time.monotonic()
            with pytest.raises(TensorFlowServingError) as raised:
                backend.run(signature, {"x": [[6.3, 3.3, 6.0, 2.5]]})
            waited = time.monotonic() - start
        finally:
            backend.close()
    assert 1.4 <= waited < 5.0  # the deadline, not the handler's 60 s (nor forever)
    message = str(raised.value)
    assert f"TensorFlow Serving at {address}" in message
    assert 'model "iris" version 1' in message
    assert f"no answer within 1.5s ({TF_SERVING_PREDICT_TIMEOUT.name})" in message


# -- the stand-in sidecar --------------------------------------------------------------------------


@dataclass
class Sidecar:
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def standin(log_dir: Path, *args: str) -> Iterator[Sidecar]:
    """The stand-in on a free loopback port, started without waiting for it to listen."""
    pytest.importorskip("tensorflow_serving", reason="the stand-in needs tensorflow-serving-api")
    port = free_port()
    log_path = log_dir / f"standin-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(STANDIN), "--host=127.0.0.1", f"--port={port}", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    sidecar = Sidecar(process, f"127.0.0.1:{port}", log_path)
    try:
        yield sidecar
    finally:
        sidecar.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder, laid out as the sidecar sees /mnt/model: iris/1 (serving_default),
    iris/2 (only "scaled"), multi/1 (serving_default, predict, scaled), ambiguous/1 (a,
    scaled), broken/1 (not a SavedModel), _cortex_default/1 (= iris/1)."""
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("sidecar-models")
    write_iris_savedmodel(folder / "iris" / "1")
    write_iris_savedmodel(folder / "iris" / "2", ("scaled",))
    write_iris_savedmodel(folder / "multi" / "1", ("serving_default", "predict", "scaled"))
    write_iris_savedmodel(folder / "ambiguous" / "1", ("a", "scaled"))
    (folder / "broken" / "1").mkdir(parents=True)
    (folder / "broken" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    shutil.copytree(folder / "iris" / "1", folder / "_cortex_default" / "1")
    return folder


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    with standin(tmp_path_factory.mktemp("standin")) as running:
        yield running


def backend_for(sidecar: Sidecar, models: Path, **options: Any) -> GrpcBackend:
    options.setdefault("start_timeout", 60.0)
    options.setdefault("load_timeout", 30.0)
    return GrpcBackend(sidecar.address, model_dir=str(models), **options)


def client_for(
    sidecar: Sidecar,
    models: Path,
    names: tuple[str, ...],
    signature_key: str | None = None,
    **options: Any,
) -> TensorFlowClient:
    spec = {"paths": [{"name": n, "path": n} for n in names], "signature_key": signature_key}
    return TensorFlowClient(resolve_models(spec, models), backend_for(sidecar, models, **options))


def served_versions(sidecar: Sidecar, name: str) -> dict[int, str]:
    """{version: state} as the sidecar's ModelService reports them (TF Serving's own stubs)."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    with grpc.insecure_channel(sidecar.address) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request)
    state = get_model_status_pb2.ModelVersionStatus.State
    return {s.version: state.Name(s.state) for s in response.model_version_status}


def test_reload_config_serves_every_model_and_version(sidecar: Sidecar, models: Path) -> None:
    client = client_for(sidecar, models, ("iris", "multi"))
    client.load_latest()
    assert served_versions(sidecar, "iris") == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert served_versions(sidecar, "multi") == {1: "AVAILABLE"}

    latest = client.predict({"features": [SETOSA], "factor": 2.0}, "iris")  # version 2: scaled
    assert latest == {"scaled": pytest.approx([10.2, 7.0, 2.8, 0.4])}
    one = client.predict({"features": VIRGINICA}, "iris", "1")  # [4] for [None, 4]: one sample
    assert one["class_ids"] == [2] and one["label"] == ["virginica"]
    assert client.input_signature("iris", 1) == {"features": {"shape": [-1, 4], "type": "float32"}}

    two = client.predict([SETOSA, VIRGINICA], "multi")  # a single input takes the value itself
    assert two["class_ids"] == [0, 2] and two["label"] == ["setosa", "virginica"]
    assert len(two["probabilities"]) == 6  # flattened, as Cortex did
    assert all(isinstance(p, float) for p in two["probabilities"])


def test_signature_choice(sidecar: Sidecar, models: Path) -> None:
    backend = backend_for(sidecar, models)
    sources = resolve_models(
        {"paths": [{"name": n, "path": n} for n in ("multi", "ambiguous")]}, models
    )
    backend.configure(sources)
    # "predict" over "serving_default"; TF Serving's "__saved_model_init_op" is never a choice
    assert backend.load(sources["multi"], 1).key == "predict"
    with pytest.raises(ModelLoadError) as caught:
        backend.load(sources["ambiguous"], 1)
    assert str(caught.value) == (
        'model "ambiguous" version 1: the model has several signatures and none is configured; '
        'set signature_key to one of "a", "scaled"'
    )

    scaled = client_for(sidecar, models, ("ambiguous",), signature_key="scaled")
    assert scaled.predict({"features": [SETOSA], "factor": 0.5})["scaled"] == pytest.approx(
        [2.55, 1.75, 0.7, 0.1]
    )
    wrong = client_for(sidecar, models, ("multi",), signature_key="classify")
    with pytest.raises(ModelLoadError) as caught:
        wrong.load_latest()
    assert str(caught.value) == (
        'model "multi" version 1: signature_key "classify" is not a signature of the model '
        '(available: "predict", "scaled", "serving_default")'
    )


def test_inputs_are_checked_against_the_signature(sidecar: Sidecar, models: Path) -> None:
    client = client_for(sidecar, models, ("multi",), signature_key="scaled")
    with pytest.raises(ModelInputError) as caught:
        client.predict({"features": [1.0, 2.0, 3.0], "factor": 1.0})
    assert str(caught.value) == (
        'input "features": expected shape [None, 4] (float32), got shape [3]'
    )
    with pytest.raises(ModelInputError) as caught:
        client.predict({"features": [SETOSA], "factor": [1.0, 2.0]})
    assert str(caught.value) == 'input "factor": expected shape [] (float32), got shape [2]'
    with pytest.raises(ModelInputError, match=r'^input "features": .*expected numbers, got str'):
        client.predict({"features": ["a", "b", "c", "d"], "factor": 1.0})
    with pytest.raises(ModelInputError, match=r'^missing key\(s\) "factor" \(the signature'):
        client.predict({"features": [SETOSA]})
    with pytest.raises(ModelInputError, match=r"^expected a dict keyed by the signature's input"):
        client.predict(SETOSA)
    # integers convert to a float input, as tf.convert_to_tensor does
    assert client.predict({"features": [[5, 3, 1, 0]], "factor": 1})["scaled"] == [5, 3, 1, 0]


def test_payloads_above_grpc_default_4mb(sidecar: Sidecar, models: Path) -> None:
    rows = 300_000  # 4.8 MB of float32 features; the response is bigger still
    features = np.tile(np.array([VIRGINICA], dtype=np.float32), (rows, 1))
    client = client_for(sidecar, models, ("multi",))
    result = client.predict({"features": features})
    assert len(result["class_ids"]) == rows and set(result["class_ids"]) == {2}
    assert len(result["probabilities"]) == 3 * rows

    small = client_for(sidecar, models, ("multi",), max_message_bytes=1_000_000)
    with pytest.raises(TensorFlowServingError, match="RESOURCE_EXHAUSTED"):
        small.predict({"features": features})


def test_model_load_failures_name_the_model_and_sidecar(sidecar: Sidecar, models: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        client_for(sidecar, models, ("broken",)).load_latest()
    message = str(caught.value)
    assert message.startswith(
        f'model "broken" version 1: TensorFlow Serving at {sidecar.address} could not load it '
        f"from {models}/broken/1: INTERNAL: "
    )

    # The predictor sees a model that the sidecar's folder lacks: bounded wait, then the error.
    elsewhere = models.parent / "predictor-side"
    shutil.copytree(models / "iris" / "1", elsewhere / "lonely" / "1", dirs_exist_ok=True)
    sources = resolve_models({"paths": [{"name": "lonely", "path": "lonely"}]}, elsewhere)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as caught:
        TensorFlowClient(sources, backend_for(sidecar, models, load_timeout=1.5)).load_latest()
    assert time.monotonic() - started < 10
    assert str(caught.value) == (
        f'model "lonely" version 1: not available in TensorFlow Serving at {sidecar.address} '
        f"after 1.5s (last state: NOT_FOUND: Could not find any versions of model lonely); the "
        f"sidecar loads it from {models}/lonely/1"
    )


def test_sidecar_that_starts_late_is_waited_for(models: Path, tmp_path: Path) -> None:
    # Nothing listens: a bounded wait, then an error naming the address and the variable.
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as caught:
        GrpcBackend(f"127.0.0.1:{port}", start_timeout=1).configure({})
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"TensorFlow Serving at 127.0.0.1:{port} ({TF_SERVING_ADDRESS_ENV}) did not answer within "
        "1s; is the sidecar running and listening there?"
    )

    # The client starts with the sidecar (importing TensorFlow takes it seconds): it retries.
    with standin(tmp_path) as late:
        host, port = late.address.split(":")
        with pytest.raises(ConnectionRefusedError):  # not listening yet when the client starts
            socket.create_connection((host, int(port)), timeout=1).close()
        client = client_for(late, models, ("multi",))
        client.load_latest()
        assert client.predict({"features": SETOSA})["label"] == ["setosa"]
        assert "Running gRPC ModelServer" in late.log()


@pytest.fixture
def tf_project(tmp_path: Path, models: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(models / "iris" / "1", project / "iris")  # unversioned in the project
    shutil.copy(CASES_DIR / "v015_tensorflow.py", project / "predictor.py")
    return project


def test_load_predictor_uses_the_sidecar_when_configured(
    sidecar: Sidecar, models: Path, tf_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = predictor_api_spec("predictor.py", type="tensorflow", model="iris")
    monkeypatch.setenv(TF_SERVING_ADDRESS_ENV, sidecar.address)
    monkeypatch.setenv(TF_SERVING_MODEL_DIR_ENV, str(models))
    predictor = load_predictor(spec, tf_project)
    assert isinstance(predictor.client._backend, GrpcBackend)  # type: ignore[attr-defined]
    assert predictor.predict(IRIS, {}, {}) == "virginica"

    monkeypatch.setenv(TF_SERVING_ADDRESS_ENV, f"127.0.0.1:{free_port()}")
    monkeypatch.setenv(TF_SERVING_START_TIMEOUT.name, "0.5")
    with pytest.raises(PredictorError, match=r"loading the model failed: TensorFlow Serving at "):
        load_predictor(spec, tf_project)


def test_server_serves_through_the_sidecar_without_tensorflow(
    sidecar: Sidecar, models: Path, tf_project: Path, tmp_path: Path
) -> None:
    """The real server (gunicorn + uvicorn workers, 2 processes), with `import tensorflow` made
    to fail in it: the gRPC backend needs only grpcio, protobuf and numpy."""
    blocker = tmp_path / "no-tensorflow" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        'raise ImportError("tensorflow is not installed in the predictor image")\n'
    )
    spec = api_spec(
        "iris-api",
        type="tensorflow",
        processes=2,
        models=ModelsSpec(paths=(ModelRef("_cortex_default", "iris"),)),
    )
    env = {
        "PYTHONPATH": str(blocker.parent),
        TF_SERVING_ADDRESS_ENV: sidecar.address,
        TF_SERVING_MODEL_DIR_ENV: str(models),
    }
    with running_server(tf_project, spec, env=env, timeout=90) as server:
        for _ in range(4):
            response = httpx.post(server.url("/predict"), json=IRIS, timeout=30)
            assert response.status_code == 200, server.log()
            assert response.text == "virginica"  # a str: text/plain, as in Cortex
        bad = httpx.post(server.url("/predict"), json={"sepal_length": 1.0}, timeout=30)
        assert bad.status_code == 500
