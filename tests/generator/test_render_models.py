"""Model sources at render and validate time: remote models (s3:// on a local S3-compatible
server, http:// on http.server) fetched into the models layer, or left to the runtime with
--models-at-start; TensorFlow and ONNX layout checks of local models."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cortex_build.cli import main
from cortex_build.config import load_project
from cortex_build.errors import UserError
from cortex_build.render import RenderOptions, render_project
from model_servers import S3, http_server, s3_server

PREDICTOR = """
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        return model_path

    def predict(self, payload):
        return self.client.get_model()
"""

CONFIG = """
- name: remote
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    multi_model_reloading:
      paths:
        - name: iris
          path: {s3}
        - name: setosa
          path: {http}
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with s3_server() as server:
        server.put("r/iris/1/model.json", b'{"version": 1}')
        server.put("r/iris/2/model.json", b'{"version": 2}')
        yield server


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "site"
    folder.mkdir()
    with zipfile.ZipFile(folder / "setosa.zip", "w") as zipped:
        zipped.writestr("model.json", '{"name": "setosa"}')
    (folder / "model.onnx").write_bytes(b"onnx")
    with http_server(folder) as base:
        yield base


def make_project(root: Path, s3_url: str, http_url: str) -> Path:
    root.mkdir(parents=True)
    (root / "predictor.py").write_text(PREDICTOR)
    (root / "cortex.yaml").write_text(CONFIG.format(s3=s3_url, http=http_url))
    return root


def test_remote_models_are_fetched_into_the_models_layer(s3: S3, site: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", s3.url("r/iris"), f"{site}/setosa.zip")
    render_project(load_project(project), tmp_path / "out")
    context = tmp_path / "out" / "remote"
    assert json.loads((context / "models/iris/2/model.json").read_text()) == {"version": 2}
    assert (context / "models/iris/1/model.json").is_file()
    assert (context / "models/setosa/model.json").is_file()
    assert not (context / "models/setosa/setosa.zip").exists()  # unpacked
    assert oct((context / "models/iris/2/model.json").stat().st_mode & 0o777) == "0o644"
    refs = json.loads((context / "cortex/api.json").read_text())["predictor"]["models"]["paths"]
    assert [r["path"] for r in refs] == ["/mnt/model/iris", "/mnt/model/setosa"]
    assert "COPY models/ /mnt/model/" in (context / "Dockerfile").read_text()
    assert "boto3" not in (context / "cortex/runtime-requirements.txt").read_text()


def test_models_at_start_leaves_remote_models_to_the_runtime(
    s3: S3, site: str, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project", s3.url("r/iris"), f"{site}/setosa.zip")
    render_project(load_project(project), tmp_path / "out", RenderOptions(models_at_start=True))
    context = tmp_path / "out" / "remote"
    assert not (context / "models").exists()
    assert "COPY models/" not in (context / "Dockerfile").read_text()
    refs = json.loads((context / "cortex/api.json").read_text())["predictor"]["models"]["paths"]
    assert [r["path"] for r in refs] == [s3.url("r/iris"), f"{site}/setosa.zip"]
    requirements = (context / "cortex/runtime-requirements.txt").read_text()
    assert requirements.endswith(
        "# models fetched at start (s3://: boto3, http(s)://: urllib3)\n"
        "boto3>=1.28\nurllib3>=1.26\n"
    )

    # http(s) alone needs urllib3 (its retries), not boto3
    http_only = make_project(tmp_path / "http-only", f"{site}/model.onnx", f"{site}/setosa.zip")
    render_project(load_project(http_only), tmp_path / "out2", RenderOptions(models_at_start=True))
    requirements = (tmp_path / "out2/remote/cortex/runtime-requirements.txt").read_text()
    assert "boto3>=" not in requirements
    assert requirements.endswith("urllib3>=1.26\n")


def test_cli_models_at_start(s3: S3, site: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", s3.url("r/iris"), f"{site}/setosa.zip")
    for flags, fetched in (([], True), (["--models-at-start"], False)):
        out = tmp_path / f"out-{fetched}"
        result = CliRunner().invoke(main, ["render", str(project), "-o", str(out), *flags])
        assert result.exit_code == 0, result.output
        assert (out / "remote/models/iris/2/model.json").is_file() == fetched


def test_a_model_that_cannot_be_fetched_fails_the_render(s3: S3, site: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", s3.url("r/nothing"), f"{site}/setosa.zip")
    out = tmp_path / "out"
    with pytest.raises(UserError) as caught:
        render_project(load_project(project), out)
    assert str(caught.value.problems[0]) == (
        f'cortex.yaml:2: remote: predictor.models: fetching the model failed: "'
        f'{s3.url("r/nothing")}": no objects found at this address'
    )
    assert not out.exists()
    missing = make_project(tmp_path / "p2", s3.url("r/iris"), f"{site}/gone.zip")
    with pytest.raises(UserError, match=r"gone\.zip\": HTTP 404"):
        render_project(load_project(missing), out)


def test_tensorflow_models_cannot_wait_for_start(tmp_path: Path) -> None:
    root = layout_project(tmp_path / "project", "tensorflow", "s3://bucket/tf")
    with pytest.raises(UserError) as caught:
        render_project(load_project(root), tmp_path / "out", RenderOptions(models_at_start=True))
    assert "--models-at-start is not available for type: tensorflow" in str(
        caught.value.problems[0]
    )


# -- layouts at validate time ---------------------------------------------------------------------


def layout_project(root: Path, ptype: str, model: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cls = {"tensorflow": "TensorFlowPredictor", "onnx": "ONNXPredictor"}[ptype]
    client = f"{ptype}_client"
    (root / "predictor.py").write_text(
        f"class {cls}:\n    def __init__(self, {client}, config):\n        pass\n"
        "    def predict(self, payload):\n        return 1\n"
    )
    (root / "cortex.yaml").write_text(
        f"- name: api\n  kind: RealtimeAPI\n  predictor:\n    type: {ptype}\n"
        f"    path: predictor.py\n    models:\n      path: {model}\n"
    )
    return root


def layout_errors(root: Path) -> list[str]:
    try:
        load_project(root)
    except UserError as error:
        return [str(problem) for problem in error.problems]
    return []


def test_tensorflow_layouts(tmp_path: Path) -> None:
    root = tmp_path / "tf"
    (root / "saved").mkdir(parents=True)
    (root / "saved/saved_model.pb").write_bytes(b"")
    for version in ("1", "2"):
        (root / "versions" / version).mkdir(parents=True)
        (root / "versions" / version / "saved_model.pb").write_bytes(b"")
    (root / "bad/1").mkdir(parents=True)
    (root / "bad/1/saved_model.pb").write_bytes(b"")
    (root / "bad/2/variables").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "model.h5").write_bytes(b"")
    for good in ("saved", "versions"):
        assert layout_errors(layout_project(root, "tensorflow", good)) == []
    layout = (
        "expected a SavedModel folder holding saved_model.pb (version 1), or integer version "
        "folders (1/, 2/, ...) each holding saved_model.pb"
    )
    assert layout_errors(layout_project(root, "tensorflow", "bad")) == [
        'cortex.yaml:7: api: predictor.models.path: "bad": invalid tensorflow model: version '
        f"folder 2 holds no saved_model.pb; {layout}"
    ]
    assert layout_errors(layout_project(root, "tensorflow", "empty")) == [
        'cortex.yaml:7: api: predictor.models.path: "empty": invalid tensorflow model: the '
        f"folder holds no saved_model.pb; {layout}"
    ]
    assert layout_errors(layout_project(root, "tensorflow", "model.h5")) == [
        'cortex.yaml:7: api: predictor.models.path: "model.h5": invalid tensorflow model: must '
        f"be a SavedModel folder (got the file model.h5); {layout}"
    ]


def test_onnx_layouts(tmp_path: Path) -> None:
    root = tmp_path / "onnx"
    root.mkdir()
    (root / "model.onnx").write_bytes(b"")
    (root / "folder").mkdir()
    (root / "folder/iris.onnx").write_bytes(b"")
    for version in ("1", "2"):
        (root / "versions" / version).mkdir(parents=True)
        (root / "versions" / version / "m.onnx").write_bytes(b"")
    (root / "two/1").mkdir(parents=True)
    for name in ("a.onnx", "b.onnx"):
        (root / "two/1" / name).write_bytes(b"")
    (root / "model.pkl").write_bytes(b"")
    for good in ("model.onnx", "folder", "versions"):
        assert layout_errors(layout_project(root, "onnx", good)) == []
    layout = (
        "expected a .onnx file or a folder holding one (version 1), or integer version folders "
        "(1/, 2/, ...) each holding one .onnx file"
    )
    assert layout_errors(layout_project(root, "onnx", "two")) == [
        'cortex.yaml:7: api: predictor.models.path: "two": invalid onnx model: version folder 1 '
        f"must hold exactly one .onnx file (found a.onnx, b.onnx); {layout}"
    ]
    assert layout_errors(layout_project(root, "onnx", "model.pkl")) == [
        'cortex.yaml:7: api: predictor.models.path: "model.pkl": invalid onnx model: must be a '
        f".onnx file or a folder (got the file model.pkl); {layout}"
    ]
    # a model of a `dir` is shown by its path as written (not the absolute one, which `_show`
    # would cut short in a deep project)
    (root / "models/good/1").mkdir(parents=True)
    (root / "models/good/1/m.onnx").write_bytes(b"")
    (root / "models/good/\u00b2").mkdir()  # not a version folder ("²".isdigit() is True)
    shutil.copytree(root / "two", root / "models/bad")
    (root / "cortex.yaml").write_text(
        (root / "cortex.yaml").read_text().replace("path: model.pkl", "dir: models/")
    )
    assert layout_errors(root) == [
        'cortex.yaml:7: api: predictor.models.dir: "models/bad": invalid onnx model: version '
        f"folder 1 must hold exactly one .onnx file (found a.onnx, b.onnx); {layout}"
    ]
