"""tensorflow_client with the in-process backend on real SavedModels (TensorFlow is imported only
by the tests that need it: importing it takes seconds)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cortex_serve.clients import ModelInputError, ModelLoadError
from cortex_serve.clients.tensorflow_client import TensorFlowClient
from cortex_serve.clients.tensorflow_in_process import InProcessBackend
from cortex_serve.clients.tensorflow_signatures import choose_signature
from cortex_serve.model_sources import resolve_models
from cortex_serve.predictor_loading import load_predictor
from predictor_cases.model_factory import SETOSA, VIRGINICA, write_iris_savedmodel
from predictor_cases.specs import CASES_DIR, api_spec

IRIS = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}


@pytest.mark.parametrize(
    ("available", "configured", "chosen"),
    [
        (["only"], None, "only"),
        (["serving_default", "predict"], None, "predict"),
        (["serving_default", "other"], None, "serving_default"),
        (["serving_default", "other"], "other", "other"),
    ],
)
def test_signature_choice(available: list[str], configured: str | None, chosen: str) -> None:
    assert choose_signature(available, configured, "model") == chosen


def test_signature_choice_errors_list_the_keys() -> None:
    with pytest.raises(ModelLoadError) as caught:
        choose_signature(["b", "a"], None, 'model "m" version 1')
    assert str(caught.value) == (
        'model "m" version 1: the model has several signatures and none is configured; set '
        'signature_key to one of "a", "b"'
    )
    with pytest.raises(ModelLoadError) as caught:
        choose_signature(["a"], "nope", "model")
    assert str(caught.value) == (
        'model: signature_key "nope" is not a signature of the model (available: "a")'
    )


@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris/1 (serving_default), multi (serving_default, predict, scaled), ambiguous (a, scaled)."""
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("savedmodels")
    write_iris_savedmodel(folder / "iris" / "1")
    write_iris_savedmodel(folder / "multi", ("serving_default", "predict", "scaled"))
    write_iris_savedmodel(folder / "ambiguous", ("a", "scaled"))
    return folder


def client_for(folder: Path, path: str, signature_key: str | None = None) -> TensorFlowClient:
    models = {"paths": [{"name": "m", "path": path}], "signature_key": signature_key}
    return TensorFlowClient(resolve_models(models, folder), InProcessBackend())


@pytest.mark.slow
def test_predict_returns_flat_lists_and_adds_the_batch_dimension(savedmodels: Path) -> None:
    client = client_for(savedmodels, "iris")
    assert client.input_signature() == {"features": {"shape": [-1, 4], "type": "float32"}}
    one = client.predict({"features": VIRGINICA})  # [4] for [None, 4]: one sample
    assert one["class_ids"] == [2] and one["label"] == ["virginica"]
    assert len(one["probabilities"]) == 3 and one["probabilities"][2] > 0.9
    two = client.predict([SETOSA, VIRGINICA])  # a single input also takes the value itself
    assert two["class_ids"] == [0, 2] and len(two["probabilities"]) == 6  # flattened, as Cortex


@pytest.mark.slow
def test_input_errors_name_the_input(savedmodels: Path) -> None:
    client = client_for(savedmodels, "iris")
    with pytest.raises(ModelInputError) as caught:
        client.predict({"features": [1.0, 2.0, 3.0]})
    assert (
        str(caught.value) == 'input "features": expected shape [None, 4] (float32), got shape [3]'
    )
    with pytest.raises(ModelInputError, match=r'^input "features": .*does not convert'):
        client.predict({"features": ["a", "b", "c", "d"]})
    with pytest.raises(ModelInputError) as caught:
        client.predict({"feature": SETOSA})
    assert str(caught.value) == (
        'missing key(s) "features"; unknown key(s) "feature" (the signature\'s inputs: features)'
    )


@pytest.mark.slow
def test_signature_selection_on_real_models(savedmodels: Path) -> None:
    assert client_for(savedmodels, "multi").predict({"features": SETOSA})["class_ids"] == [0]
    scaled = client_for(savedmodels, "multi", signature_key="scaled")
    result = scaled.predict({"features": [SETOSA], "factor": 2.0})
    assert result["scaled"] == pytest.approx([10.2, 7.0, 2.8, 0.4])
    with pytest.raises(ModelInputError, match=r"^expected a dict keyed by the signature's input"):
        scaled.predict(SETOSA)
    with pytest.raises(ModelLoadError, match='set signature_key to one of "a", "scaled"'):
        client_for(savedmodels, "ambiguous").load_latest()


@pytest.fixture
def project(tmp_path: Path, savedmodels: Path) -> Path:
    shutil.copytree(savedmodels / "iris", tmp_path / "iris")
    for case in ("v015_tensorflow.py", "v09_tf_handlers.py", "v034_tf_handler.py"):
        shutil.copy(CASES_DIR / case, tmp_path / case)
    return tmp_path


@pytest.mark.slow
def test_tensorflow_predictor_class_and_v09_handlers(project: Path) -> None:
    spec = api_spec("v015_tensorflow.py", type="tensorflow", model="iris")
    assert load_predictor(spec, project).predict(IRIS, {}, {}) == "virginica"

    spec = api_spec(
        "v09_tf_handlers.py",
        type="tensorflow",
        interface="handlers",
        model="iris",
        config={"features": list(IRIS)},
    )
    assert load_predictor(spec, project).predict(IRIS, {}, {}) == {
        "label": "virginica",
        "inputs": ["features"],
    }


@pytest.mark.slow
def test_tensorflow_handler_gets_its_client_and_answers_by_verb(project: Path) -> None:
    spec = api_spec(
        "v034_tf_handler.py", type="tensorflow", interface="handler", model="iris", config={"k": 1}
    )
    handler = load_predictor(spec, project)
    assert list(handler.verbs) == ["POST", "GET"]
    assert handler.predict(IRIS, {}, {}) == "virginica"
    assert handler.verbs["GET"].call(None, {}, {}) == {"inputs": ["features"], "config": {"k": 1}}
