"""`cortex-build serve` checks the project's requirements against this Python before it starts:
a package that is missing or installed in another version than asked is named with its line."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from native import RELEASE_PROJECTS


def serve(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", "serve", str(project), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_requirement_installed_in_another_version_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    for name in ("cortex.yaml", "predictor.py"):
        (project / name).write_text((RELEASE_PROJECTS / "v0.30" / name).read_text())
    (project / "cortex.yaml").write_text(
        "- name: api\n  kind: RealtimeAPI\n  predictor: {type: python, path: predictor.py}\n"
    )
    click = importlib.metadata.version("click")
    (project / "requirements.txt").write_text(
        f"click=={click}\npyyaml<1.0\nsix ; python_version < '3.0'\nnot-a-real-package-x>=1\n"
    )
    result = serve(project)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    installed = importlib.metadata.version("pyyaml")
    assert lines[0].startswith(
        f'requirements.txt:2: package "pyyaml" is installed in version {installed}, but '
        "requirements.txt asks for pyyaml<1.0"
    )
    assert lines[1].startswith(
        'requirements.txt:4: package "not-a-real-package-x" is not installed in this Python'
    )
    assert len(lines) == 2  # click matches; six's marker excludes this Python
