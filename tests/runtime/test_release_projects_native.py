"""Projects in the shape of each Cortex release family (tests/release_projects), served by
`cortex-build serve` as a user runs it, answer their samples.yaml; and the release settles what
the shape leaves open."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from e2e import check_sample, load_samples
from native import RELEASE_PROJECTS, served

# (v0.42's APIs are containers of the user's images: tests/generator/test_container_apis.py
# reads them)
FAMILIES = sorted(
    p.parent.name for p in RELEASE_PROJECTS.glob("*/cortex.yaml") if p.parent.name != "v0.42"
)
# The v0.10-v0.11 shape is in the examples (tests/release_projects/README.md)
V010_EXAMPLES = ("v0.10-deployment", "v0.9-onnx-handlers")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("family", [*FAMILIES, *V010_EXAMPLES])
def test_a_release_project_answers_its_samples_natively(family: str, tmp_path: Path) -> None:
    # a copy: the v0.12 predictor writes its model into its working folder, the project
    source = EXAMPLES / family if family in V010_EXAMPLES else RELEASE_PROJECTS / family
    project = shutil.copytree(source, tmp_path / family)
    samples = load_samples(project)
    assert samples
    with served(project) as url, httpx.Client() as client:
        for sample in samples:
            check_sample(url, sample, client)


def test_the_v012_predictor_downloaded_its_model_into_its_working_folder(tmp_path: Path) -> None:
    project = shutil.copytree(RELEASE_PROJECTS / "v0.12", tmp_path / "v0.12")
    with served(project) as url:
        assert httpx.post(f"{url}/predict", json={"petal_length": 5.0}).json() == "virginica"
    assert (project / "model.json").read_text() == (project / "data/thresholds.json").read_text()


def test_cortex_version_settles_how_a_str_is_answered(tmp_path: Path) -> None:
    # the v0.13-v0.18 shape: JSON strings up to v0.15 (the default, v0.13), text/plain from v0.16
    project = shutil.copytree(RELEASE_PROJECTS / "v0.13", tmp_path / "v0.13")
    setosa = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    for version, content_type, body in [
        ("0.15", "application/json", '"setosa"'),
        ("0.16", "text/plain", "setosa"),
    ]:
        with served(project, "--cortex-version", version) as url:
            response = httpx.post(f"{url}/predict", json=setosa)
        assert response.headers["content-type"].startswith(content_type), version
        assert response.text == body, version
