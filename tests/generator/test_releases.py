"""Release recognition through the real command line: the release a shape names, what
--cortex-version settles, kinds that are skipped, and shapes refused with their release."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from config_fixtures import make_project
from cortex_build.config import releases
from e2e import cortex_build as cli

REPO = Path(__file__).resolve().parents[2]


SPLIT = """\
- name: iris
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- name: splitter
  kind: TrafficSplitter
  apis:
    - {name: iris, weight: 100}
"""


def test_a_traffic_splitter_is_read_with_the_files_realtime_apis(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SPLIT)
    validated = cli("validate", project)
    assert validated.returncode == 0, validated.stderr
    assert "TrafficSplitter" not in validated.stderr
    assert re.search(r"^iris\s", validated.stdout, re.M)
    assert re.search(r"^splitter\s+/splitter\s+iris 100%\s+-$", validated.stdout, re.M)
    rendered = cli("render", project, "-o", tmp_path / "out", "--api", "iris")
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "out" / "iris" / "Dockerfile").is_file()


def test_job_kinds_are_read_with_their_releases(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "- name: job\n  kind: BatchAPI\n  predictor: {type: python, path: predictor.py}\n"
        "- name: job2\n  kind: BatchAPI\n  handler: {type: python, path: batch_handler.py}\n"
        "- name: chore\n  kind: TaskAPI\n  definition: {path: task.py}\n",
    )
    (project / "task.py").write_text("class Task:\n    def __call__(self, config):\n        pass\n")
    (project / "batch_handler.py").write_text(
        "class Handler:\n    def handle_batch(self, payload):\n        pass\n"
    )
    result = cli("validate", project)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "v0.19-v0.33 as v0.26" in rows["job"] and "BatchAPI python/class" in rows["job"]
    assert "v0.34-v0.35 as v0.35" in rows["job2"] and "BatchAPI python/handler" in rows["job2"]
    assert "v0.27-v0.35 as v0.30" in rows["chore"] and "TaskAPI python/task" in rows["chore"]
    refused = cli("validate", project, "--cortex-version", "0.26")
    assert refused.returncode == 2
    assert "chore: --cortex-version 0.26: the API has the config shape of Cortex v0.27-v0.35" in (
        refused.stderr
    )


V09 = """\
- kind: deployment
  name: iris
- kind: api
  name: tf
  model: models/iris
  tf_signature_key: predict
- kind: api
  name: onnx
  model: model.onnx
  request_handler: handler.py
"""


def test_v09_top_level_model_and_request_handler(tmp_path: Path) -> None:
    project = make_project(tmp_path, V09)
    result = cli("render", project, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    tf = json.loads((tmp_path / "out" / "tf" / "cortex" / "api.json").read_text())
    onnx = json.loads((tmp_path / "out" / "onnx" / "cortex" / "api.json").read_text())
    assert (tf["predictor"]["type"], tf["predictor"]["interface"], tf["endpoint"]) == (
        "tensorflow",
        "handlers",
        "/iris/tf",
    )
    assert tf["predictor"]["models"]["signature_key"] == "predict"
    assert (onnx["predictor"]["type"], onnx["predictor"]["path"]) == ("onnx", "handler.py")
    # v0.9's two-argument handlers get the model's metadata; JSON strings
    assert onnx["cortex"] == {
        "releases": "v0.9",
        "version": None,
        "assumed": "v0.9",
        "string_response": "json",
        "handler_metadata": "model",
    }
    assert "old name" not in result.stderr  # these are v0.9's own names
    assert "k8s/ names the images" in result.stderr  # no --registry: said, at the CLI


def test_cortex_version_is_written_into_the_spec_and_the_image_label(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "- name: iris\n  predictor: {type: python, path: predictor.py}\n"
    )
    result = cli("render", project, "-o", tmp_path / "out", "--cortex-version", "v0.16.1")
    assert result.returncode == 0, result.stderr
    spec = json.loads((tmp_path / "out" / "iris" / "cortex" / "api.json").read_text())
    assert spec["cortex"]["assumed"] == "v0.16"
    assert spec["cortex"]["version"] == "v0.16.1"
    assert spec["cortex"]["string_response"] == "text"
    dockerfile = (tmp_path / "out" / "iris" / "Dockerfile").read_text()
    assert 'dev.cortex-build.cortex-release="v0.16"' in dockerfile


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("latest", 'must be a Cortex release like "0.15" or "v0.35.0" (got "latest")'),
        ("0.8", "Cortex v0.8 is older than the releases cortex-build reads (v0.9 to v0.42)"),
        ("0.43", "Cortex v0.43 was never released (the last release was v0.42)"),
    ],
)
def test_a_cortex_version_outside_v09_to_v042_is_refused(
    tmp_path: Path, version: str, message: str
) -> None:
    project = make_project(
        tmp_path, "- name: iris\n  predictor: {type: python, path: predictor.py}\n"
    )
    result = cli("validate", project, "--cortex-version", version)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cortex-build: --cortex-version: {message}")


def test_a_cortex_version_that_did_not_accept_the_shape_is_refused(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "- name: iris\n  kind: RealtimeAPI\n  predictor: {type: python, path: predictor.py}\n",
    )
    result = cli("validate", project, "--cortex-version", "0.13")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cortex.yaml:1: iris: --cortex-version 0.13: the API has the config shape of Cortex "
        "v0.19-v0.33 (kind: RealtimeAPI (SyncAPI accepted too) with predictor:), which v0.13 "
        "did not accept"
    )


def test_an_import_that_nothing_installs_is_a_warning_at_validate(tmp_path: Path) -> None:
    project = make_project(tmp_path, "- name: iris\n  predictor: {type: python, path: extra.py}\n")
    (project / "extra.py").write_text(
        "import json\nimport yaml_not_a_package\ntry:\n    import ujson\nexcept ImportError:\n"
        "    ujson = None\nimport pandas\n\n\nclass PythonPredictor:\n"
        "    def predict(self, payload):\n        return payload\n"
    )
    result = cli("validate", project, "--cortex-version", "0.15")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "extra.py" in line]
    assert lines == [
        "cortex.yaml: iris: extra.py:7 imports pandas: Cortex v0.15 pre-installed pandas; the "
        "image installs pandas",
        "cortex.yaml: iris: warning: extra.py:2 imports yaml_not_a_package, which nothing "
        "installs (not the standard library, the project, its requirements file, the runtime, "
        "or a package Cortex pre-installed)",
    ]
    off = cli("render", project, "-o", tmp_path / "out", "--no-preinstalled")
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "out" / "iris" / "deps" / "cortex-preinstalled.txt").exists()
    assert "not added (--no-preinstalled)" in off.stderr


def test_every_minor_release_has_a_row_in_the_release_table() -> None:
    table = (REPO / "docs" / "cortex-releases.md").read_text()
    for minor in range(releases.FIRST_MINOR, releases.LAST_CONTAINER_MINOR + 1):
        assert re.search(rf"^\| v0\.{minor}\b", table, re.M), f"v0.{minor} has no row"
