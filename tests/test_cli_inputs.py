"""Bad input through the real command line: one line per problem and exit 2, never a traceback,
and nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from config_fixtures import make_project

API = "- name: iris\n  predictor:\n    type: python\n    path: predictor.py\n"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
