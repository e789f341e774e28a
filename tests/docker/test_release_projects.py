"""Projects in the shape of each Cortex release family (tests/release_projects), built into
images, answer their samples.yaml as they do natively; what only an image can show: a predictor
that writes into its working folder, and the packages Cortex pre-installed that the project
imports without listing them."""

from __future__ import annotations

import httpx
import pytest
from e2e import REPO, check_sample, load_samples

RELEASE_PROJECTS = REPO / "tests" / "release_projects"
# (v0.42's APIs are containers of the user's images: tests/generator/test_container_apis.py
# reads them)
FAMILIES = sorted(
    p.parent.name for p in RELEASE_PROJECTS.glob("*/cortex.yaml") if p.parent.name != "v0.42"
)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_release_project_image_answers_its_samples(
    family: str, build_project, run_container, docker_client
) -> None:
    built = build_project(RELEASE_PROJECTS / family, key=f"release-{family.replace('.', '')}")
    samples = load_samples(RELEASE_PROJECTS / family)
    for api, image in built.images.items():
        labels = docker_client.images.get(image).labels
        assert labels["dev.cortex-build.cortex-release"].startswith("v0.")
        running = run_container(image)
        with httpx.Client() as client:
            for sample in (s for s in samples if s.api == api):
                check_sample(running.url, sample, client)


def test_the_image_lets_the_predictor_write_its_working_folder(build_project, run_container):
    built = build_project(RELEASE_PROJECTS / "v0.12", key="release-v012")
    running = run_container(built.images["classifier"])
    # __init__ downloaded the model into /mnt/project as the API's own (non-root) user
    exit_code, output = running.container.exec_run(
        ["stat", "-c", "%U %n", "/mnt/project/model.json"]
    )
    assert exit_code == 0, output
    assert output.decode().split() == ["cortex", "/mnt/project/model.json"]


def test_the_image_adds_the_preinstalled_package_the_project_imports(
    build_project, run_container
) -> None:
    built = build_project(RELEASE_PROJECTS / "v0.13", key="release-v013")
    assert (
        "predictor.py:1 imports sklearn: Cortex v0.13 pre-installed scikit-learn; the image "
        "installs scikit-learn" in built.output
    )
    added = (built.out / "iris" / "deps" / "cortex-preinstalled.txt").read_text()
    assert "scikit-learn>=" in added
    running = run_container(built.images["iris"])
    exit_code, output = running.container.exec_run(["pip", "show", "scikit-learn"])
    assert exit_code == 0, output


def test_a_dependencies_shell_script_named_in_the_config_runs_at_build(build_project) -> None:
    built = build_project(RELEASE_PROJECTS / "v0.30", key="release-v030")
    assert "deps/setup.sh ran" in built.output
    assert (built.out / "iris-yaml" / "deps" / "requirements.txt").read_text() == (
        (RELEASE_PROJECTS / "v0.30" / "deps" / "api-requirements.txt").read_text()
    )


def test_the_handler_image_answers_every_verb_it_has(build_project, run_container) -> None:
    built = build_project(RELEASE_PROJECTS / "v0.35", key="release-v035")
    running = run_container(built.images["iris-handler"])
    url = f"{running.url}/iris-handler"
    assert httpx.get(url).json()["post"] == ["petal_length", "petal_width"]
    refused = httpx.delete(url)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST, GET"
    assert refused.json()["status"] == 405
    assert "DELETE" in refused.json()["error"]
