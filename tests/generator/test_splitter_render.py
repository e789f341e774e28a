"""A traffic splitter in a render (examples/traffic-splitter): its own small build context, a
compose service `api-<splitter>` in front of its APIs, a Deployment + Service in k8s/ that the
Kubernetes schemas and kustomize accept, and --api choosing it with its APIs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cortex_build.config import load_project
from cortex_build.errors import UserError
from cortex_build.render import RenderOptions, render_project
from cortex_build.render_options import image_refs
from k8s_checks import KUSTOMIZE

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "traffic-splitter"
K8S_VERSION = "1.35.0"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render") / "out"
    render_project(
        load_project(EXAMPLE), out, RenderOptions(registry="registry.example.com/team", tag="v1")
    )
    return out


def test_the_splitter_gets_a_small_build_context_of_its_own(rendered: Path) -> None:
    context = rendered / "iris"
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "cortex", "runtime"]
    assert sorted(p.name for p in (context / "cortex").iterdir()) == [
        "runtime-requirements.lock",
        "runtime-requirements.txt",
        "splitter.json",
    ]
    assert (context / "runtime" / "cortex_serve" / "splitter.py").is_file()
    spec = json.loads((context / "cortex" / "splitter.json").read_text())
    assert spec["endpoint"] == "/iris"
    assert [
        (b["api"], b["weight"], b["shadow"], b["url"], b["endpoint"]) for b in spec["backends"]
    ] == [
        ("iris-v1", 80, False, "http://api-iris-v1:8888", "/iris-v1"),
        ("iris-v2", 20, False, "http://api-iris-v2:8888", "/iris-v2"),
        ("iris-shadow", 100, True, "http://api-iris-shadow:8888", "/iris-shadow"),
    ]
    dockerfile = (context / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes" in dockerfile
    assert "COPY cortex/splitter.json /opt/cortex/splitter.json\n" in dockerfile
    assert (
        'ENTRYPOINT ["python", "-m", "cortex_serve.splitter", "--spec", '
        '"/opt/cortex/splitter.json", "--host", "0.0.0.0", "--port", "8888"]'
    ) in dockerfile
    assert "project/" not in dockerfile and "requirements.txt /opt/cortex/build" not in dockerfile


def test_compose_runs_the_splitter_as_api_splitter_after_its_apis(rendered: Path) -> None:
    compose = yaml.safe_load((rendered / "docker-compose.yaml").read_text())
    service = compose["services"]["iris"]
    assert service["image"] == "registry.example.com/team/iris:v1"
    assert service["build"] == {"context": "./iris"}
    assert service["networks"] == {"default": {"aliases": ["api-iris"]}}
    assert service["depends_on"] == ["iris-v1", "iris-v2", "iris-shadow"]
    assert service["ports"] == ["127.0.0.1:8893:8888"]  # after the APIs' 8890-8892
    text = (rendered / "docker-compose.yaml").read_text()
    assert (
        "#   iris: http://127.0.0.1:8893/iris -> "
        "iris-v1 80%, iris-v2 20%, iris-shadow 100% (shadow)" in text
    )


def test_k8s_has_a_deployment_and_service_for_the_splitter_that_validate(rendered: Path) -> None:
    k8s = rendered / "k8s"
    top = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    assert top["resources"] == ["iris", "iris-shadow", "iris-v1", "iris-v2"]
    deployment = yaml.safe_load((k8s / "iris" / "deployment.yaml").read_text())
    service = yaml.safe_load((k8s / "iris" / "service.yaml").read_text())
    for doc in (deployment, service):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"]["name"] == "api-iris"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/team/iris:v1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert service["spec"]["ports"][0]["port"] == 8888
    if KUSTOMIZE is None:
        pytest.skip("neither kubectl >= 1.21 nor kustomize on PATH")
    built = subprocess.run(
        [*KUSTOMIZE, str(k8s)], capture_output=True, text=True, check=True
    ).stdout
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built) if d}
    assert {("Deployment", "api-iris"), ("Service", "api-iris")} <= kinds
    assert ("Service", "api-iris-v2") in kinds


def test_api_option_takes_a_splitter_with_its_apis(tmp_path: Path) -> None:
    project = load_project(EXAMPLE)
    chosen = render_project(project, tmp_path / "with", RenderOptions(api_names=("iris",)))
    assert [api.name for api in chosen.apis] == ["iris-v1", "iris-v2", "iris-shadow", "iris"]
    assert [api.splitter for api in chosen.apis] == [False, False, False, True]
    alone = render_project(project, tmp_path / "alone", RenderOptions(api_names=("iris-v1",)))
    assert [api.name for api in alone.apis] == ["iris-v1"]
    assert not (tmp_path / "alone" / "iris").exists()
    assert (
        "iris"
        not in yaml.safe_load((tmp_path / "alone" / "docker-compose.yaml").read_text())["services"]
    )


def test_a_splitter_whose_service_name_collides_is_refused(tmp_path: Path) -> None:
    project_dir = tmp_path / "p"
    project_dir.mkdir()
    (project_dir / "cortex.yaml").write_text(
        "- name: a\n  kind: RealtimeAPI\n  pod:\n    port: 8080\n    containers:\n"
        "      - {name: api, image: example/a:1}\n      - {name: side, image: example/side:1}\n"
        "- name: a-side\n  kind: TrafficSplitter\n  apis: [{name: a, weight: 100}]\n"
    )
    project = load_project(project_dir)
    (splitter,) = project.splitters
    assert (
        json.loads(splitter.runtime_json({"a": project.container_apis[0]}, {"a": "x"}))["backends"][
            0
        ]["endpoint"]
        == "/"
    )
    with pytest.raises(UserError) as caught:
        render_project(project, tmp_path / "out")
    assert [str(p) for p in caught.value.problems] == [
        'cortex.yaml:8: a-side: name: the compose service "a-side" of this traffic splitter '
        'collides with one of the API "a"; rename one of them'
    ]
    assert not (tmp_path / "out").exists()


def test_push_names_the_splitters_image_too() -> None:
    project = load_project(EXAMPLE)
    assert image_refs(project, ["iris"], "registry.example.com/team", "v1") == [
        f"registry.example.com/team/{name}:v1"
        for name in ("iris-v1", "iris-v2", "iris-shadow", "iris")
    ]
    assert image_refs(project, ["iris-v2"], "r.example.com", "v1") == ["r.example.com/iris-v2:v1"]
