"""onnx_client on real onnxruntime sessions of real models, alone and behind load_predictor."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from cortex_serve.clients import ModelInputError, ModelLoadError, intra_op_threads
from cortex_serve.clients.onnx_client import ONNXClient
from cortex_serve.model_sources import ModelNotFoundError, resolve_models
from cortex_serve.predictor import PredictorError
from cortex_serve.predictor_loading import load_predictor
from predictor_cases.model_factory import (
    SETOSA,
    VIRGINICA,
    write_iris_onnx,
    write_two_input_onnx,
)
from predictor_cases.specs import CASES_DIR, api_spec

IRIS = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris.onnx, and two/ with versions 1 (sum) and 2 (sum x 10)."""
    folder = tmp_path_factory.mktemp("models")
    write_iris_onnx(folder / "iris.onnx")
    write_two_input_onnx(folder / "two" / "1" / "model.onnx", scale=1.0)
    write_two_input_onnx(folder / "two" / "2" / "model.onnx", scale=10.0)
    return folder


def client_for(models: Path, **paths: str) -> ONNXClient:
    sources = resolve_models(
        {"paths": [{"name": name, "path": path} for name, path in paths.items()]}, models
    )
    return ONNXClient(sources)


def test_single_input_takes_the_value_or_a_dict(models: Path) -> None:
    client = client_for(models, iris="iris.onnx")
    labels, probabilities = client.predict(SETOSA)  # [4] reshaped to [1, 4]
    assert labels.tolist() == [0] and probabilities[0][0] > 0.9
    labels, _ = client.predict(np.array([SETOSA, VIRGINICA]))  # float64 array -> float32
    assert labels.tolist() == [0, 2]
    labels, _ = client.predict({"float_input": [VIRGINICA]})
    assert labels.tolist() == [2]


def test_single_input_errors_name_the_input(models: Path) -> None:
    client = client_for(models, iris="iris.onnx")
    with pytest.raises(ModelInputError) as caught:
        client.predict([1.0, 2.0, 3.0])
    assert str(caught.value) == (
        'input "float_input": expected shape [None, 4] (tensor(float)), got shape [3]'
    )
    with pytest.raises(ModelInputError, match=r'^missing key "float_input": .*got keys: "x"\)$'):
        client.predict({"x": SETOSA})
    with pytest.raises(ModelInputError, match=r'^input "float_input": expected shape .* convert'):
        client.predict(["a", "b", "c", "d"])


def test_several_inputs_take_a_dict_and_versions_resolve(models: Path) -> None:
    client = client_for(models, two="two")
    (latest,) = client.predict({"a": [1.0, 2.0], "b": [3, 4]})
    assert latest.tolist() == [[40.0, 60.0]]  # version 2 multiplies by 10
    (first,) = client.predict({"a": [[1.0, 2.0]], "b": [[3, 4]]}, "two", "1")
    assert first.tolist() == [[4.0, 6.0]]
    with pytest.raises(ModelInputError) as caught:
        client.predict([1.0, 2.0])
    assert str(caught.value) == (
        'expected a dict keyed by the model\'s input names ("a", "b"), got list'
    )
    with pytest.raises(ModelInputError) as caught:
        client.predict({"a": [1.0, 2.0]})
    assert str(caught.value) == 'missing key(s) "b" (the model\'s inputs: a, b; got keys: "a")'
    with pytest.raises(ModelNotFoundError, match='model "two" has no version 3'):
        client.predict({"a": [1.0, 2.0], "b": [3, 4]}, "two", 3)


def test_model_names_and_metadata(models: Path) -> None:
    client = client_for(models, iris="iris.onnx", two="two")
    with pytest.raises(ModelNotFoundError, match="name one of: iris, two"):
        client.predict(SETOSA)
    assert client.predict(SETOSA, "iris")[0].tolist() == [0]
    assert [node.name for node in client.input_metadata("two")] == ["a", "b"]
    assert [node.name for node in client.output_metadata("iris")] == [
        "output_label",
        "output_probability",
    ]


def test_sessions_share_the_cpus_and_fall_back_from_gpu(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert intra_op_threads(1, 1) >= 1 and intra_op_threads(1000, 1) == 1
    sources = resolve_models({"paths": [{"name": "iris", "path": "iris.onnx"}]}, models)
    cortex_logger = logging.getLogger("cortex")  # does not propagate once cortex_internal's
    cortex_logger.addHandler(caplog.handler)  # log module is imported: listen on it directly
    try:
        with caplog.at_level(logging.WARNING, logger="cortex"):
            client = ONNXClient(sources, gpu=True, intra_op_threads=3)
    finally:
        cortex_logger.removeHandler(caplog.handler)
    session = client.session()
    assert session.get_session_options().intra_op_num_threads == 3
    if "CUDAExecutionProvider" not in session.get_providers():
        assert session.get_providers() == ["CPUExecutionProvider"]
        assert "no CUDAExecutionProvider" in caplog.text


def test_unloadable_models(models: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r'^model "m" version 1 \(.*broken\.onnx\): '):
        client_for(tmp_path, m="broken.onnx").load_latest()
    shutil.copy(models / "iris.onnx", tmp_path / "a.onnx")
    shutil.copy(models / "iris.onnx", tmp_path / "b.onnx")
    with pytest.raises(ModelLoadError, match=r"exactly one \.onnx file .*found a\.onnx, b\.onnx"):
        client_for(tmp_path.parent, m=tmp_path.name).load_latest()


# -- behind load_predictor -------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, models: Path) -> Path:
    shutil.copy(models / "iris.onnx", tmp_path / "iris.onnx")
    for case in ("v02x_onnx.py", "v09_onnx_handlers.py"):
        shutil.copy(CASES_DIR / case, tmp_path / case)
    return tmp_path


def test_onnx_predictor_class(project: Path) -> None:
    spec = api_spec("v02x_onnx.py", type="onnx", model="iris.onnx")
    predictor = load_predictor(spec, project)
    result = predictor.predict(IRIS, {}, {})
    assert result["label"] == "virginica" and result["confidence"] > 0.9


def test_v09_onnx_handlers_receive_metadata(project: Path) -> None:
    config = {"features": list(IRIS), "labels": ["setosa", "versicolor", "virginica"]}
    spec = api_spec(
        "v09_onnx_handlers.py", type="onnx", interface="handlers", model="iris.onnx", config=config
    )
    predictor = load_predictor(spec, project)
    assert predictor.predict(IRIS, {}, {}) == {
        "label": "virginica",
        "outputs": ["output_label", "output_probability"],
    }


def test_two_argument_handlers_and_a_bare_model(project: Path) -> None:
    (project / "handlers.py").write_text(
        "from operator import itemgetter as predict  # not the v0.10 predict: still handlers\n"
        "def pre_inference(sample, metadata):\n"
        "    return [sample[name] for name in metadata['features']]\n"
    )
    config = {"features": list(IRIS)}
    spec = api_spec(
        "handlers.py", type="onnx", interface="handlers", model="iris.onnx", config=config
    )
    labels, _ = load_predictor(spec, project).predict(IRIS, {}, {})
    assert labels.tolist() == [2]
    # v0.9 without request_handler: the payload goes to the model as it is.
    spec = api_spec("", type="onnx", interface="handlers", model="iris.onnx")
    labels, _ = load_predictor(spec, project).predict([SETOSA], {}, {})
    assert labels.tolist() == [0]


def test_handler_signature_error(project: Path) -> None:
    (project / "handlers.py").write_text("def post_inference(prediction):\n    pass\n")
    spec = api_spec("handlers.py", type="onnx", interface="handlers", model="iris.onnx")
    with pytest.raises(PredictorError) as caught:
        load_predictor(spec, project)
    assert str(caught.value) == (
        'test-api: handlers.py: invalid signature for function "post_inference(prediction)": '
        "expected arguments (prediction, metadata) or (prediction, signature, metadata)"
    )


def test_broken_model_fails_at_load(project: Path) -> None:
    (project / "iris.onnx").write_bytes(b"garbage")
    spec = api_spec("v02x_onnx.py", type="onnx", model="iris.onnx")
    with pytest.raises(PredictorError, match=r"^test-api: v02x_onnx\.py: loading the model failed"):
        load_predictor(spec, project)
