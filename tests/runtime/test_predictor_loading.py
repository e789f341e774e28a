"""load_predictor on real predictor files of every generation (in process; no HTTP here)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from cortex_serve.model_sources import ModelNotFoundError
from cortex_serve.predictor import PredictorError
from cortex_serve.predictor_loading import load_predictor
from cortex_serve.user_code import MODULE_NAME
from predictor_cases.specs import CASES_DIR, api_spec


def write_predictor(project: Path, source: str, name: str = "predictor.py") -> str:
    (project / name).write_text(textwrap.dedent(source))
    return name


def load_source(project: Path, source: str, **spec: Any) -> Any:
    return load_predictor(api_spec(write_predictor(project, source), **spec), project)


def load_error(project: Path, source: str, **spec: Any) -> str:
    with pytest.raises(PredictorError) as caught:
        load_source(project, source, **spec)
    return str(caught.value)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding a copy of the predictor cases."""
    for case in CASES_DIR.glob("v*.py"):
        shutil.copy(case, tmp_path / case.name)
    return tmp_path


# -- class predictors ------------------------------------------------------------------------------


def test_v012_class_gets_config_and_payload(project: Path) -> None:
    predictor = load_predictor(api_spec("v012_class.py", config={"threshold": 2.5}), project)
    assert not predictor.is_async and not predictor.has_post_predict
    assert predictor.predict({"petal_length": 1.4}, {}, {}) == "setosa"
    assert predictor.predict({"petal_length": 6.0}, {}, {}) == "virginica"
    assert predictor.post_predict("setosa", {}, {}, {}) is None  # a no-op when not defined


ARGUMENT_SETS = [
    (),
    ("payload",),
    ("query_params",),
    ("headers",),
    ("payload", "query_params"),
    ("payload", "headers"),
    ("query_params", "headers"),
    ("payload", "query_params", "headers"),
    ("headers", "payload"),  # any order: arguments go by name
]


@pytest.mark.parametrize("names", ARGUMENT_SETS, ids=lambda names: ",".join(names) or "none")
def test_predict_receives_only_the_arguments_it_names(
    project: Path, names: tuple[str, ...]
) -> None:
    params = "".join(f", {name}" for name in names)
    returned = "{" + ", ".join(f'"{name}": {name}' for name in names) + "}"
    predictor = load_source(
        project,
        f"""
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self{params}):
                return {returned}
        """,
    )
    values = {"payload": {"p": 1}, "query_params": {"q": "2"}, "headers": {"h": "3"}}
    result = predictor.predict(values["payload"], values["query_params"], values["headers"])
    assert result == {name: values[name] for name in names}


@pytest.mark.parametrize(
    "names",
    [(), ("response",), ("response", "payload"), ("headers", "response", "query_params")],
    ids=lambda names: ",".join(names) or "none",
)
def test_post_predict_receives_only_the_arguments_it_names(
    project: Path, names: tuple[str, ...]
) -> None:
    params = "".join(f", {name}" for name in names)
    stored = "{" + ", ".join(f'"{name}": {name}' for name in names) + "}"
    predictor = load_source(
        project,
        f"""
        class PythonPredictor:
            def __init__(self, config):
                self.seen = None

            def predict(self):
                return "answer"

            def post_predict(self{params}):
                self.seen = {stored}
        """,
    )
    assert predictor.has_post_predict
    predictor.post_predict("answer", "payload", {"q": "1"}, {"h": "2"})
    values = {"response": "answer", "payload": "payload", "query_params": {"q": "1"}}
    values["headers"] = {"h": "2"}
    assert predictor.user_object.seen == {name: values[name] for name in names}


def test_constructor_arguments_go_by_name_and_config_is_the_spec_config(project: Path) -> None:
    predictor = load_source(
        project,
        """
        class PythonPredictor:
            def predict(self, payload):
                return payload * 2
        """,
    )
    assert predictor.predict(21, {}, {}) == 42  # a class without __init__ is built with no args

    predictor = load_source(
        project,
        """
        class PythonPredictor:
            def __init__(self, config):
                self.config = config

            def predict(self):
                return self.config
        """,
        config={"nested": {"a": [1, 2]}},
    )
    assert predictor.predict(None, {}, {}) == {"nested": {"a": [1, 2]}}


def test_async_predict_and_post_predict_are_coroutine_functions(project: Path) -> None:
    predictor = load_predictor(api_spec("v02x_async.py", config={"prefix": ">"}), project)
    assert predictor.is_async and predictor.has_post_predict
    assert asyncio.iscoroutinefunction(predictor.predict)
    assert asyncio.iscoroutinefunction(predictor.post_predict)

    async def round_trip() -> Any:
        response = await predictor.predict("hi", {"suffix": "!"}, {})
        await predictor.post_predict(response, "hi", {}, {"x-id": "7"})
        return response

    assert asyncio.run(round_trip()) == ">hi!"
    assert sys.modules[MODULE_NAME].seen == [(">hi!", "7")]


def test_sync_predict_with_async_post_predict_is_not_async(project: Path) -> None:
    predictor = load_source(
        project,
        """
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                return payload

            async def post_predict(self, response):
                pass
        """,
    )
    assert not predictor.is_async
    assert asyncio.iscoroutinefunction(predictor.post_predict)


def test_module_state_and_project_relative_files(project: Path, monkeypatch: Any) -> None:
    (project / "values.json").write_text('{"answer": 42}')
    monkeypatch.chdir(project)  # the server makes the project root the working folder
    predictor = load_source(
        project,
        """
        import json

        with open("values.json") as values_file:
            VALUES = json.load(values_file)

        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self):
                return VALUES["answer"]
        """,
    )
    assert predictor.predict(None, {}, {}) == 42


# -- signature errors, with Cortex's messages ------------------------------------------------------

PREFIX = "test-api: predictor.py: "


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            """
            class PythonPredictor:
                def __init__(self, config):
                    pass

                def predict(self, foo):
                    pass
            """,
            'class PythonPredictor: invalid signature for method "predict(self, foo)": '
            '"foo" is not a supported argument',
        ),
        (
            """
            class PythonPredictor:
                def __init__(self):
                    pass

                def predict(self, payload):
                    pass
            """,
            'class PythonPredictor: invalid signature for method "__init__(self)": '
            '"config" is a required argument, but was not provided',
        ),
        (
            """
            class PythonPredictor:
                def __init__(config, self):
                    pass

                def predict(self, payload):
                    pass
            """,
            'class PythonPredictor: invalid signature for method "__init__(config, self)": '
            '"self" must be the first argument',
        ),
        (
            """
            class PythonPredictor:
                def __init__(self, config):
                    pass
            """,
            'class PythonPredictor: required method "predict" is not defined',
        ),
        (
            """
            class PythonPredictor:
                predict = 3

                def __init__(self, config):
                    pass
            """,
            'class PythonPredictor: "predict" is defined, but is not a method',
        ),
        (
            """
            class PythonPredictor:
                def __init__(self, config):
                    pass

                def predict(self, payload):
                    pass

                def post_predict(self, response, extra):
                    pass
            """,
            "class PythonPredictor: invalid signature for method "
            '"post_predict(self, response, extra)": "extra" is not a supported argument',
        ),
        (
            """
            class PythonPredictor:
                def __init__(self, config, python_client):
                    pass

                def predict(self, payload):
                    pass
            """,
            'class PythonPredictor: invalid signature for method "__init__": "python_client" is '
            "only available when predictor.multi_model_reloading is configured",
        ),
    ],
    ids=[
        "unsupported-predict-arg",
        "init-without-config",
        "self-not-first",
        "no-predict",
        "predict-not-callable",
        "bad-post-predict",
        "python-client-without-models",
    ],
)
def test_class_signature_errors(project: Path, source: str, message: str) -> None:
    assert load_error(project, source) == PREFIX + message


def test_tensorflow_class_needs_its_client_argument(project: Path) -> None:
    source = """
    class TensorFlowPredictor:
        def __init__(self, config):
            pass

        def predict(self, payload):
            pass
    """
    assert load_error(project, source, type="tensorflow", model="missing") == PREFIX + (
        'class TensorFlowPredictor: invalid signature for method "__init__(self, config)": '
        '"tensorflow_client" is a required argument, but was not provided'
    )


def test_wrong_class_for_the_predictor_type(project: Path) -> None:
    source = """
    class PythonPredictor:
        def __init__(self, config):
            pass

        def predict(self, payload):
            pass
    """
    assert load_error(project, source, type="onnx", model="model.onnx") == PREFIX + (
        "ONNXPredictor class is not defined (the file defines PythonPredictor; the predictor "
        'type is "onnx")'
    )


# -- import and init failures ----------------------------------------------------------------------


def test_syntax_error_names_file_and_line(project: Path) -> None:
    message = load_error(project, "class PythonPredictor:\n    def predict(self payload):\n")
    assert message.startswith(PREFIX + "line 2: syntax error: ")


def test_missing_package_says_requirements_txt(project: Path) -> None:
    message = load_error(project, "import torchvision_not_installed.models\n")
    assert message == PREFIX + (
        'import failed (line 1): no module named "torchvision_not_installed"; if it is a pip '
        "package, add it to requirements.txt in the project root"
    )


def test_error_at_import_names_the_line(project: Path) -> None:
    message = load_error(project, "x = 1\nLABELS = {}['missing']\n")
    assert message == PREFIX + "import failed (line 2): KeyError: 'missing'"


def test_failing_constructor_is_a_predictor_error(project: Path) -> None:
    with pytest.raises(PredictorError) as caught:
        load_source(
            project,
            """
            class PythonPredictor:
                def __init__(self, config):
                    raise ValueError("no model at " + config["model"])

                def predict(self, payload):
                    pass
            """,
            config={"model": "/nowhere"},
        )
    assert str(caught.value) == PREFIX + (
        "class PythonPredictor: __init__ failed (line 4): ValueError: no model at /nowhere"
    )
    assert isinstance(caught.value.__cause__, ValueError)  # kept for the server's traceback


def test_missing_file(project: Path) -> None:
    with pytest.raises(PredictorError, match=r"test-api: nothere\.py: file not found"):
        load_predictor(api_spec("nothere.py"), project)


@pytest.mark.parametrize(
    ("source", "interface", "found"),
    [
        (
            "def predict(sample, metadata):\n    pass\n",
            "class",
            "module-level predict/init functions (the v0.9-v0.11 interface)",
        ),
        (
            "def pre_inference(sample, metadata):\n    pass\n",
            "functions",
            "pre_inference/post_inference request handlers (the v0.9 interface)",
        ),
        ("x = 1\n", "class", "none of these"),
        (
            "class Handler:\n    def handle_post(self):\n        pass\n",
            "class",
            "a class Handler (the v0.34-v0.35 interface)",
        ),
        ("class PythonPredictor:\n    pass\n", "handler", "a predictor class"),
    ],
)
def test_interface_mismatch(project: Path, source: str, interface: str, found: str) -> None:
    message = load_error(project, source, interface=interface)
    assert message.startswith(PREFIX + "the configuration expects ")
    assert message.endswith(f"but the file defines {found}")


# -- module functions (v0.9-v0.11) -----------------------------------------------------------------


def test_v09_init_metadata_and_predict_sample_metadata(project: Path) -> None:
    spec = api_spec("v09_functions.py", interface="functions", config={"scale": 3, "unit": "cm"})
    predictor = load_predictor(spec, project)
    assert not predictor.is_async and not predictor.has_post_predict
    assert predictor.predict({"value": 2}, {}, {}) == {"scaled": 6, "unit": "cm"}


def test_v010_init_receives_the_local_model_path(project: Path) -> None:
    (project / "model.json").write_text(json.dumps({"weight": 0.5}))
    spec = api_spec("v010_functions.py", interface="functions", model="model.json")
    predictor = load_predictor(spec, project)
    assert predictor.predict(4, {}, {}) == {"weight": 2.0, "path": str(project / "model.json")}


def test_v010_init_model_path_is_none_without_a_model(project: Path) -> None:
    predictor = load_source(
        project,
        """
        seen = []

        def init(model_path, metadata):
            seen.append(model_path)

        def predict(sample, metadata):
            return seen
        """,
        interface="functions",
    )
    assert predictor.predict(None, {}, {}) == [None]


def test_functions_without_init_and_async_predict(project: Path) -> None:
    predictor = load_source(
        project,
        """
        async def predict(sample, metadata):
            return [sample, metadata]
        """,
        interface="functions",
        config={"k": "v"},
    )
    assert predictor.is_async
    assert asyncio.run(predictor.predict(1, {}, {})) == [1, {"k": "v"}]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def predict(payload):\n    pass\n",
            'invalid signature for function "predict": expected arguments (sample, metadata) '
            "but found (payload)",
        ),
        (
            "def init(config):\n    pass\n\ndef predict(sample, metadata):\n    pass\n",
            'invalid signature for function "init": expected arguments (metadata) or '
            "(model_path, metadata) but found (config)",
        ),
        (
            "def init(metadata):\n    raise RuntimeError('boom')\n\n"
            "def predict(sample, metadata):\n    pass\n",
            "init failed (line 2): RuntimeError: boom",
        ),
    ],
    ids=["predict-args", "init-args", "init-fails"],
)
def test_function_errors(project: Path, source: str, message: str) -> None:
    assert load_error(project, source, interface="functions") == PREFIX + message


# -- python_client (multi_model_reloading) ---------------------------------------------------------


def write_model(folder: Path, answer: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"answer": answer}))


def test_python_client_loads_lazily_once_and_resolves_versions(project: Path) -> None:
    write_model(project / "models" / "adder" / "1", "adder v1")
    write_model(project / "models" / "adder" / "2", "adder v2")
    write_model(project / "models" / "adder" / "10", "adder v10")  # numeric order, not text
    write_model(project / "models" / "plain", "plain")  # unversioned: version 1
    spec = api_spec("v02x_multi_model.py", models_dir="models", config={"load_delay": 0.05})
    predictor = load_predictor(spec, project)
    loads = sys.modules[MODULE_NAME].loads
    assert loads == []  # nothing is loaded before it is asked for

    def answer(query: dict[str, str]) -> Any:
        return predictor.predict("x", query, {})["answer"]

    # Concurrent first uses of one model load it once.
    threads = [threading.Thread(target=answer, args=({"model": "adder"},)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [str(project / "models" / "adder" / "10")]

    assert answer({"model": "adder"}) == "adder v10"
    assert answer({"model": "adder", "version": "2"}) == "adder v2"
    assert answer({"model": "adder", "version": "1"}) == "adder v1"
    assert answer({"model": "plain"}) == "plain"
    assert answer({"model": "plain", "version": "1"}) == "plain"
    assert len(loads) == 4

    client = predictor.client
    with pytest.raises(ModelNotFoundError, match='model "adder" has no version 3 '):
        client.get_model("adder", "3")
    with pytest.raises(ModelNotFoundError, match="name one of: adder, plain"):
        client.get_model()
    with pytest.raises(ModelNotFoundError, match='model "nope" is not served'):
        client.get_model("nope")


def test_python_client_cache_size_reloads_evicted_models(project: Path) -> None:
    for name in ("a", "b"):
        write_model(project / "models" / name, name)
    spec = api_spec("v02x_multi_model.py", models_dir="models", cache_size=1)
    predictor = load_predictor(spec, project)
    for model in ("a", "b", "b", "a"):
        assert predictor.predict(None, {"model": model}, {})["answer"] == model
    loads = [Path(path).name for path in sys.modules[MODULE_NAME].loads]
    assert loads == ["a", "b", "a"]


def test_python_client_single_model_needs_no_name(project: Path) -> None:
    write_model(project / "only", "the only one")
    predictor = load_predictor(api_spec("v02x_multi_model.py", model="only"), project)
    assert predictor.predict(None, {}, {})["answer"] == "the only one"


def test_python_client_works_in_the_constructor(project: Path) -> None:
    write_model(project / "only", "warm")
    predictor = load_source(
        project,
        """
        import json

        class PythonPredictor:
            def __init__(self, config, python_client):
                self.client = python_client
                self.at_start = python_client.get_model()["answer"]  # load_model(self=None)

            def load_model(self, model_path):
                with open(model_path + "/model.json") as model_file:
                    return json.load(model_file)

            def predict(self):
                return [self.at_start, self.client.get_model("_cortex_default", 1)["answer"]]
        """,
        model="only",
    )
    assert predictor.predict(None, {}, {}) == ["warm", "warm"]


def test_models_require_python_client_and_load_model(project: Path) -> None:
    write_model(project / "m", 1)
    message = load_error(
        project,
        """
        class PythonPredictor:
            def __init__(self, config):
                pass

            def predict(self, payload):
                pass
        """,
        model="m",
    )
    assert message == PREFIX + (
        'class PythonPredictor: invalid signature for method "__init__": "python_client" is a '
        "required argument when predictor.multi_model_reloading (or models) is configured"
    )
    message = load_error(
        project,
        """
        class PythonPredictor:
            def __init__(self, config, python_client):
                pass

            def predict(self, payload):
                pass
        """,
        model="m",
    )
    assert message == PREFIX + (
        'class PythonPredictor: required method "load_model" is not defined: it is required when'
        " predictor.multi_model_reloading (or models) is configured"
    )


def test_missing_and_remote_models_are_clear_errors(project: Path) -> None:
    message = load_error(project, "x = 1", type="onnx", interface="handlers", model="gone.onnx")
    assert message == PREFIX + (
        f'predictor.models: model "_cortex_default": "gone.onnx" does not exist (looked for '
        f"{project / 'gone.onnx'})"
    )
    message = load_error(
        project, "x = 1", type="onnx", interface="handlers", model="gs://bucket/model.onnx"
    )
    assert message == PREFIX + (
        'predictor.models: model "_cortex_default": "gs://bucket/model.onnx": gs:// model '
        "sources are not supported; use s3://, http(s):// or a local path"
    )


# -- Handler (v0.34-v0.35) -------------------------------------------------------------------------


def test_handler_methods_by_verb_get_only_the_arguments_they_name(project: Path) -> None:
    predictor = load_source(
        project,
        """
        class Handler:
            def __init__(self, config):
                self.config = config

            def handle_post(self, headers, payload):
                return [payload, headers, self.config]

            async def handle_get(self, query_params):
                return query_params

            def handle_delete(self):
                return "deleted"
        """,
        interface="handler",
        config={"k": "v"},
    )
    assert predictor.interface == "handler"
    assert list(predictor.verbs) == ["POST", "GET", "DELETE"]
    assert not predictor.is_async and not predictor.has_post_predict
    assert predictor.predict("p", "q", "h") == ["p", "h", {"k": "v"}]  # predict is handle_post
    get = predictor.verbs["GET"]
    assert get.is_async and not get.wants_payload
    assert asyncio.run(get.call("p", {"a": "1"}, "h")) == {"a": "1"}
    assert predictor.verbs["POST"].wants_payload
    assert predictor.verbs["DELETE"].call("p", "q", "h") == "deleted"


def test_a_handler_without_init_or_config_is_built_without_arguments(project: Path) -> None:
    # Cortex passed `config` only to an __init__ that names it (and validated nothing else).
    source = """
    class Handler:
        def handle_get(self):
            return "no init"
    """
    assert load_source(project, source, interface="handler").verbs["GET"].call(1, 2, 3) == (
        "no init"
    )
    source = """
    class Handler:
        def __init__(self):
            self.ready = True

        async def handle_post(self):
            return self.ready
    """
    predictor = load_source(project, source, interface="handler")
    assert predictor.is_async and asyncio.run(predictor.predict(1, 2, 3)) is True


HANDLER_PREFIX = PREFIX + "class Handler: "


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "class Handler:\n    def __init__(self, config):\n        pass\n",
            'no "handle_<verb>" method is defined; define at least one of handle_post, '
            "handle_get, handle_put, handle_patch, handle_delete",
        ),
        (
            "class Handler:\n    def handle_get(self, payload, body):\n        pass\n",
            'invalid signature for method "handle_get(self, payload, body)": "body" is not a '
            "supported argument",
        ),
        (
            "class Handler:\n    handle_put = 1\n",
            '"handle_put" is defined, but is not a method',
        ),
        (
            "class Handler:\n    def __init__(self, python_client):\n        pass\n"
            "    def handle_post(self):\n        pass\n",
            'invalid signature for method "__init__(self, python_client)": "python_client" is '
            "not a supported argument",
        ),
        (
            "class Handler:\n    def __init__(self, config, model_client):\n        pass\n"
            "    def handle_post(self):\n        pass\n",
            'invalid signature for method "__init__": "model_client" is only available when '
            "handler.multi_model_reloading is configured",
        ),
        (
            "class Handler:\n    def __init__(self, config, metrics_client):\n        pass\n"
            "    def handle_post(self):\n        pass\n",
            'invalid signature for method "__init__(self, config, metrics_client)": '
            '"metrics_client" is not supported: Cortex sent these custom metrics to its '
            "cluster's StatsD and Prometheus, which a standalone image does not have; remove the"
            " argument and its gauge/increment/histogram calls",
        ),
    ],
    ids=["no-verb", "bad-argument", "not-a-method", "v02x-client", "no-models", "metrics"],
)
def test_handler_signature_errors(project: Path, source: str, message: str) -> None:
    assert load_error(project, source, interface="handler") == HANDLER_PREFIX + message


def test_handler_batching_needs_handle_post(project: Path) -> None:
    source = "class Handler:\n    def handle_get(self):\n        pass\n"
    spec = api_spec(write_predictor(project, source), interface="handler")
    spec["predictor"]["server_side_batching"] = {"max_batch_size": 2, "batch_interval": 0.1}
    with pytest.raises(PredictorError) as caught:
        load_predictor(spec, project)
    assert str(caught.value) == HANDLER_PREFIX + (
        "server_side_batching is configured, but no handle_post method is defined (only POST "
        "requests are batched)"
    )


def test_handler_types_and_the_tensorflow_client_argument(project: Path) -> None:
    source = "class Handler:\n    def __init__(self, config):\n        pass\n"
    source += "    def handle_post(self):\n        pass\n"
    assert load_error(project, source, interface="handler", type="tensorflow") == (
        HANDLER_PREFIX + 'invalid signature for method "__init__(self, config)": '
        '"tensorflow_client" is a required argument, but was not provided'
    )
    assert load_error(project, source, interface="handler", type="onnx") == PREFIX + (
        'a Handler class (Cortex v0.34-v0.35) has type python or tensorflow, not "onnx"'
    )


def test_handler_model_client_works_in_the_constructor_and_in_methods(project: Path) -> None:
    write_model(project / "only", "warm")
    source = """
    import json

    class Handler:
        def __init__(self, config, model_client):
            self.client = model_client
            self.at_start = model_client.get_model()["answer"]  # load_model(self=None)

        def load_model(self, model_path):
            with open(model_path + "/model.json") as model_file:
                return json.load(model_file)

        def handle_get(self):
            return [self.at_start, self.client.get_model("_cortex_default", 1)["answer"]]
    """
    predictor = load_source(project, source, interface="handler", model="only")
    assert predictor.verbs["GET"].call(None, {}, {}) == ["warm", "warm"]

    source = "class Handler:\n    def __init__(self, config):\n        pass\n"
    source += "    def handle_post(self):\n        pass\n"
    assert load_error(project, source, interface="handler", model="only") == HANDLER_PREFIX + (
        'invalid signature for method "__init__": "model_client" is a required argument when '
        "handler.multi_model_reloading is configured"
    )
    source = source.replace("config)", "config, model_client)")
    assert load_error(project, source, interface="handler", model="only") == HANDLER_PREFIX + (
        'required method "load_model" is not defined: it is required when '
        "handler.multi_model_reloading is configured"
    )
