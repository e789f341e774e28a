"""`cortex-build predict`: one prediction without a server, and samples replayed against a served
API, through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from e2e import cortex_build as cli
from native import RELEASE_PROJECTS, served

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def test_one_prediction_without_a_server(tmp_path: Path) -> None:
    project = shutil.copytree(RELEASE_PROJECTS / "v0.13", tmp_path / "v0.13")
    result = cli("predict", project, "-d", json.dumps(SETOSA))
    assert result.returncode == 0, result.stderr
    assert result.stdout == '"setosa"'  # v0.13 answered a str as JSON
    assert json.loads(result.stderr.splitlines()[-1]) == {
        "status": 200,
        "content_type": "application/json",
    }
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(SETOSA))
    from_file = cli("predict", project, "--sample", sample, "--cortex-version", "0.16")
    assert (from_file.returncode, from_file.stdout) == (0, "setosa")  # text/plain from v0.16


def test_a_handler_prediction_goes_to_handle_post() -> None:
    result = cli(
        "predict", RELEASE_PROJECTS / "v0.35", "-d", '{"petal_length": 5, "petal_width": 2}'
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"label": "virginica"}


def test_a_failing_predict_and_a_failing_init_have_their_exit_statuses(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "cortex.yaml").write_text(
        "- name: api\n  kind: RealtimeAPI\n  predictor: {type: python, path: predictor.py}\n"
    )
    (project / "predictor.py").write_text(
        "class PythonPredictor:\n    def __init__(self, config):\n        pass\n\n"
        "    def predict(self, payload):\n        return 1 / payload\n"
    )
    failed = cli("predict", project, "-d", "0")
    assert failed.returncode == 1
    assert "ZeroDivisionError" in failed.stderr
    (project / "predictor.py").write_text(
        "class PythonPredictor:\n    def __init__(self, config):\n"
        "        raise RuntimeError('no model')\n\n"
        "    def predict(self, payload):\n        return payload\n"
    )
    init = cli("predict", project, "-d", "1")
    assert init.returncode == 3
    assert "RuntimeError: no model" in init.stderr


def test_samples_are_replayed_against_a_served_api(tmp_path: Path) -> None:
    project = RELEASE_PROJECTS / "v0.26"
    samples = project / "samples.yaml"
    wrong = tmp_path / "wrong.yaml"
    entries = yaml.safe_load(samples.read_text())
    entries[0]["response"]["json"] = {"label": "virginica"}
    wrong.write_text(yaml.safe_dump(entries))
    with served(project) as url:
        good = cli("predict", project, "--samples", samples, "--url", url)
        bad = cli("predict", project, "--samples", wrong, "--url", url)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[-1] == "4 of 4 samples answered as expected"
    assert bad.returncode == 1
    assert (
        'FAILED  iris-rules/setosa: body differs at $.label: "setosa" != "virginica"' in bad.stdout
    )
    assert "3 of 4 samples answered as expected" in bad.stdout
