"""`--tf-serving-image`: the TF Serving sidecar image for every tensorflow API, the only way to
choose it for configs older than v0.2x (which have no `predictor.tensorflow_serving_image`), e.g.
a mirror where Docker Hub cannot be reached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from config_fixtures import make_render_project
from cortex_build.cli import main
from cortex_build.config import load_project
from cortex_build.errors import UserError
from cortex_build.render import RenderOptions, render_project

MIRROR = "mirror.example.com:5000/tf/serving:2.16.1"


def test_it_replaces_the_sidecar_image_in_compose_kubernetes_and_the_spec(tmp_path: Path) -> None:
    project = load_project(make_render_project(tmp_path / "project"))
    result = render_project(project, tmp_path / "out", RenderOptions(tf_serving_image=MIRROR))
    assert result.api("tf").tf_serving_image == MIRROR
    assert result.api("echo").tf_serving_image is None  # python APIs have no sidecar

    services = yaml.safe_load((tmp_path / "out" / "docker-compose.yaml").read_text())["services"]
    assert services["tf-serving"]["image"] == MIRROR
    assert "echo-serving" not in services
    deployment = yaml.safe_load((tmp_path / "out" / "k8s" / "tf" / "deployment.yaml").read_text())
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert MIRROR in images
    spec = json.loads((tmp_path / "out" / "tf" / "cortex" / "api.json").read_text())
    assert spec["predictor"]["tensorflow_serving_image"] == MIRROR

    plain = render_project(project, tmp_path / "plain")
    assert plain.api("tf").tf_serving_image.startswith("tensorflow/serving:")


def test_it_beats_the_configs_own_sidecar_image(tmp_path: Path) -> None:
    root = make_render_project(tmp_path / "project")
    config = (root / "cortex.yaml").read_text()
    (root / "cortex.yaml").write_text(
        config.replace(
            "    type: tensorflow\n",
            "    type: tensorflow\n    tensorflow_serving_image: team/serving:own\n",
        )
    )
    project = load_project(root)
    assert render_project(project, tmp_path / "a").api("tf").tf_serving_image == "team/serving:own"
    again = render_project(project, tmp_path / "b", RenderOptions(tf_serving_image=MIRROR))
    assert again.api("tf").tf_serving_image == MIRROR


@pytest.mark.parametrize("bad", ["bad image", "tensorflow/serving:2.16.1\nx", "", "-v:1"])
def test_a_bad_image_reference_is_refused_before_anything_is_written(
    tmp_path: Path, bad: str
) -> None:
    project = load_project(make_render_project(tmp_path / "project"))
    with pytest.raises(UserError, match=r"--tf-serving-image: must be an image reference"):
        render_project(project, tmp_path / "out", RenderOptions(tf_serving_image=bad))
    assert not (tmp_path / "out").exists()


def test_render_takes_the_option(tmp_path: Path) -> None:
    root = make_render_project(tmp_path / "project")
    rendered = CliRunner().invoke(
        main, ["render", str(root), "-o", str(tmp_path / "out"), "--tf-serving-image", MIRROR]
    )
    assert rendered.exit_code == 0, rendered.output
    compose = (tmp_path / "out" / "docker-compose.yaml").read_text()
    assert f"image: {MIRROR}\n" in compose


@pytest.mark.docker
def test_build_passes_the_option_to_render(docker_client, tmp_path: Path) -> None:
    # `build` connects to the engine first, then renders: a bad value is refused there, before
    # anything is built (a good one is used by tests/docker/test_tensorflow_example.py's render)
    root = make_render_project(tmp_path / "project")
    refused = CliRunner().invoke(main, ["build", str(root), "--tf-serving-image", "bad image"])
    assert refused.exit_code == 2, refused.output
    assert "--tf-serving-image: must be an image reference" in refused.output
