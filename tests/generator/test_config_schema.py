"""The JSON Schema of cortex.yaml published for editors (docs/cortex.schema.json): current with
the field tables, valid, and agreeing with `validate` on the projects here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from cortex_build.config_schema import schema_text

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "docs" / "cortex.schema.json"
PROJECTS = sorted(
    [*REPO.glob("examples/*/cortex.yaml"), *REPO.glob("tests/release_projects/*/cortex.yaml")]
)


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(PUBLISHED.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_published_schema_is_what_cortex_build_schema_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", "schema"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == schema_text()
    assert PUBLISHED.read_text() == printed, (
        "regenerate: cortex-build schema > docs/cortex.schema.json"
    )


@pytest.mark.parametrize("config", PROJECTS, ids=lambda p: p.parent.name)
def test_every_project_here_follows_the_schema(config: Path) -> None:
    errors = list(validator().iter_errors(yaml.safe_load(config.read_text())))
    assert not errors, [error.message for error in errors]


def test_the_schema_flags_what_validate_refuses() -> None:
    check = validator()
    misspelled = [{"name": "iris", "predictor": {"type": "python", "pth": "predictor.py"}}]
    best = jsonschema.exceptions.best_match(check.iter_errors(misspelled))
    assert best is not None and "'pth' was unexpected" in best.message
    bad_type = [{"name": "iris", "predictor": {"type": "pyton", "path": "p.py"}}]
    assert list(check.iter_errors(bad_type))
    too_many = [{"name": "iris", "predictor": {"type": "python", "processes_per_replica": 101}}]
    assert list(check.iter_errors(too_many))
    # v0.9-v0.12's deployment is an entry of its own shape; job kinds are APIs
    batch = {"name": "j", "kind": "BatchAPI", "predictor": {"type": "python", "path": "p.py"}}
    task = {"name": "t", "kind": "TaskAPI", "definition": {"path": "t.py", "config": {"a": 1}}}
    assert not list(check.iter_errors([{"kind": "deployment", "name": "iris"}, batch, task]))
    assert list(check.iter_errors([{**batch, "anything": {"goes": 1}}]))
    assert list(check.iter_errors([{**task, "definition": {"pth": "t.py"}}]))
    # a traffic splitter's fields are checked like an API's
    splitter = {"name": "s", "kind": "TrafficSplitter", "apis": [{"name": "a", "weight": 100}]}
    shadow = {"name": "b", "weight": 100, "shadow": True}
    assert not list(check.iter_errors([{**splitter, "apis": [*splitter["apis"], shadow]}]))
    assert list(check.iter_errors([{**splitter, "apis": [{"name": "a", "weight": 101}]}]))
    assert list(check.iter_errors([{**splitter, "apis": [{"name": "a", "wieght": 100}]}]))
    assert list(check.iter_errors([{**splitter, "apis": [{**shadow, "shadow": "yes"}]}]))
    assert list(check.iter_errors([{"name": "s", "kind": "TrafficSplitter"}]))
