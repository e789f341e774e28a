"""`kind: TrafficSplitter` in each shape Cortex documented: v0.19-v0.24 (with
`networking.api_gateway`), v0.31+ with a `shadow`, and v0.36-v0.42 over APIs given as containers;
read into `Project.splitters` beside the file's APIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_fixtures import make_project
from cortex_build.config import load_project
from cortex_build.errors import UserError, unknown_api_message
from cortex_build.serve import pick_api
from cortex_build.spec import BackendSpec
from cortex_build.splitters import backend_urls

V019 = """\
- name: iris-onnx
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- name: iris-tf
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- name: iris-classifier
  kind: TrafficSplitter
  networking:
    endpoint: /classify
    api_gateway: none
  apis:
    - name: iris-onnx
      weight: 30
    - name: iris-tf
      weight: 70
"""

V031_SHADOW = """\
- name: a
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- name: b
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- name: split
  kind: TrafficSplitter
  apis:
    - {name: a, weight: 100}
    - {name: b, weight: 0, shadow: true}
"""

V042_PODS = """\
- name: hello-a
  kind: RealtimeAPI
  pod:
    port: 8080
    containers:
      - name: api
        image: example/hello:1
- name: hello-b
  kind: RealtimeAPI
  pod:
    port: 9000
    containers:
      - name: api
        image: example/hello:1
- name: hello
  kind: TrafficSplitter
  apis:
    - {name: hello-a, weight: 30}
    - {name: hello-b, weight: 70, shadow: false}
"""


def test_the_v019_shape_with_an_endpoint_and_api_gateway(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path, V019))
    assert [api.name for api in project.apis] == ["iris-onnx", "iris-tf"]
    (splitter,) = project.splitters
    assert (splitter.name, splitter.endpoint, splitter.line) == ("iris-classifier", "/classify", 7)
    assert splitter.backends == (BackendSpec("iris-onnx", 30), BackendSpec("iris-tf", 70))
    assert splitter.shadow is None
    assert any("api_gateway: ignored" in note for note in project.notes), project.notes


def test_a_shadow_of_weight_0_is_read_and_noted_to_get_no_copies(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path, V031_SHADOW))
    (splitter,) = project.splitters
    assert splitter.routed == (BackendSpec("a", 100),)
    assert splitter.shadow == BackendSpec("b", 0, shadow=True)
    assert any(
        "apis[1].weight: a shadow's weight is the percentage of requests copied to it: 0 copies "
        "none" in note
        for note in project.notes
    ), project.notes


def test_a_splitter_over_apis_given_as_containers(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path, V042_PODS))
    (splitter,) = project.splitters
    apis = {api.name: api for api in project.container_apis}
    spec = splitter.runtime_dict(apis, {"hello-a": "http://api-hello-a:8080", "hello-b": "u"})
    assert [(b["api"], b["weight"], b["endpoint"]) for b in spec["backends"]] == [
        ("hello-a", 30, "/"),
        ("hello-b", 70, "/"),
    ]
    assert backend_urls(splitter, apis) == {
        "hello-a": "http://api-hello-a:8080",
        "hello-b": "http://api-hello-b:9000",
    }


def test_messages_choosing_an_api_name_the_splitters_too() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "traffic-splitter"
    project = load_project(example)
    assert unknown_api_message(project, "irs") == (
        'no API is named "irs" (the APIs are: iris-v1, iris-v2, iris-shadow; the traffic '
        "splitters: iris)"
    )
    with pytest.raises(UserError) as caught:
        pick_api(project, None)
    assert str(caught.value.problems[0]) == (
        "cortex.yaml: the project has 3 APIs (iris-v1, iris-v2, iris-shadow; traffic splitter "
        "iris): choose one with --api NAME"
    )
