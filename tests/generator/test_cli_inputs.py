"""Bad input through the real command line: one line per problem and exit 2, never a traceback,
and nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_fixtures import make_project
from e2e import cortex_build as cli

API = "- name: iris\n  predictor:\n    type: python\n    path: predictor.py\n"


@pytest.mark.parametrize("depth", [80, 10_000])
def test_a_config_nested_deeper_than_any_needs_is_a_problem(tmp_path: Path, depth: int) -> None:
    project = make_project(tmp_path, API + "    config: " + "[" * depth + "]" * depth + "\n")
    result = cli("validate", project)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nested" in result.stderr and "64 levels" in result.stderr
    assert result.stdout == ""


def test_validate_refuses_the_dotenv_that_render_refuses(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", API)
    (project / ".env").write_text("A=1\nnot a variable\n")
    validated = cli("validate", project)
    rendered = cli("render", project, "-o", tmp_path / "out")
    assert (validated.returncode, rendered.returncode) == (2, 2)
    assert (
        validated.stderr == rendered.stderr == ".env:2: must be VARIABLE=value (cannot be parsed)\n"
    )
    assert validated.stdout == ""  # no table for a project that cannot render
    assert not (tmp_path / "out").exists()


def test_render_into_a_symlink_renders_into_its_target(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", API)
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    for _ in range(2):  # the second render replaces the first
        result = cli("render", project, "-o", link)
        assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    assert (target / "iris" / "Dockerfile").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "p", "target"]


@pytest.mark.parametrize("args", [["-h"], ["render", "-h"], ["serve", "-h"]])
def test_h_is_help(args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ")


def test_a_port_outside_1_to_65535_is_refused_before_anything_starts(tmp_path: Path) -> None:
    project = make_project(tmp_path, API)
    result = cli("serve", project, "--port", "70000")
    assert result.returncode == 2
    assert "Invalid value for '--port': 70000 is not in the range 1<=x<=65535" in result.stderr
    assert "serving" not in result.stderr


@pytest.mark.parametrize("registry", ["UPPER/x", "team/Models"])
def test_a_registry_path_docker_would_refuse_is_refused_at_render(
    tmp_path: Path, registry: str
) -> None:
    project = make_project(tmp_path / "p", API)
    result = cli("render", project, "-o", tmp_path / "out", "--registry", registry)
    assert result.returncode == 2
    assert result.stderr.startswith("cortex-build: --registry: must be a registry and optional")
    assert not (tmp_path / "out").exists()
    # a registry host may have capitals; it is the repository path that may not
    ok = cli("render", project, "-o", tmp_path / "ok", "--registry", "Registry.example.com/team")
    assert ok.returncode == 0, ok.stderr


def test_render_does_not_replace_another_projects_render(tmp_path: Path) -> None:
    first = make_project(tmp_path / "first", API)
    second = make_project(tmp_path / "second", API)
    out = tmp_path / "build"
    assert cli("render", first, "-o", out).returncode == 0
    assert cli("render", first, "-o", out).returncode == 0  # its own render: replaced
    result = cli("render", second, "-o", out)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cortex-build: -o: {out} holds the render of another project (first); choose another "
        "output folder with -o, or remove that one first"
    )
    assert (out / ".cortex-build-render").read_text().endswith("project: first\n")


def test_validate_json_is_one_document_for_machines(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "ok",
        API
        + "- name: split\n  kind: TrafficSplitter\n  apis: [{name: iris, weight: 100}]\n"
        + "- name: jobs\n  kind: BatchAPI\n  predictor: {type: python, path: predictor.py}\n",
    )
    result = cli("validate", project, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    (api, job) = document["apis"]
    assert (api["name"], api["generation"], api["line"]) == ("iris", "v0.12", 1)
    assert api["cortex"]["releases"] == "v0.13-v0.18"
    assert api["table"]["CORTEX"] == "v0.13-v0.18 as v0.13"
    assert "kind" not in api  # a realtime API's spec names no kind
    assert (job["name"], job["kind"], job["table"]["PREDICTOR"]) == (
        "jobs",
        "BatchAPI",
        "BatchAPI python/class",
    )
    assert document["skipped"] == {}
    assert document["splitters"] == [
        {
            "name": "split",
            "endpoint": "/split",
            "line": document["splitters"][0]["line"],
            "apis": [{"name": "iris", "weight": 100, "shadow": False}],
        }
    ]

    bad = make_project(tmp_path / "bad", API.replace("python", "pyton"))
    result = cli("validate", bad, "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "problems": [
            {
                "file": "cortex.yaml",
                "line": 3,
                "api": "iris",
                "field": "predictor.type",
                "message": 'invalid value (got "pyton", must be "python", "tensorflow", or "onnx")',
            }
        ],
    }
