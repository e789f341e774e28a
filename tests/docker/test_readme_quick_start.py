"""README's Quick start, run as written on a machine that reaches no container registry.

The block is read from README.md, so the test and the page cannot drift apart. Its install lines
(venv, pip, apt-get) are what this test environment already did; every other line runs in one
`bash -e` in a folder holding the repository's examples and base-image script, and the outputs
the README shows in comments (`# 127.0.0.1:8890`) must be printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Lines the test environment has done already: the venv with cortex-build, and the system packages.
ALREADY_DONE = ("python3 -m venv", "pip install", "apt-get install")


def quick_start_block() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## Quick start\n.*?^```sh\n(.*?)^```$", readme, re.S | re.M)
    assert found, "README.md has no ```sh block under ## Quick start"
    return found.group(1).replace("\\\n", "")


def test_the_readme_quick_start_runs_line_by_line(tmp_path: Path, base_image: str) -> None:
    block = quick_start_block()
    lines = [line for line in block.splitlines() if line.strip()]
    commands = [line for line in lines if not line.startswith("#")]
    shown = [line[2:] for line in lines if re.match(r"# [{0-9]", line)]  # outputs it shows
    assert shown, "the Quick start shows no output to check"
    script = "\n".join(line for line in commands if not line.startswith(ALREADY_DONE))
    assert "--base-image cortex-build-test/python:3.11" in script
    shutil.copytree(REPO / "examples" / "v0.2x-realtime", tmp_path / "examples" / "v0.2x-realtime")
    shutil.copytree(REPO / "tests" / "docker_base", tmp_path / "tests" / "docker_base")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    compose = ["docker-compose", "-f", str(tmp_path / "out/iris/docker-compose.yaml")]
    try:
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        if (tmp_path / "out/iris/docker-compose.yaml").exists():
            subprocess.run([*compose, "down", "--rmi", "local"], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "iris-classifier:latest"], capture_output=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for output in shown:
        assert output in result.stdout, (output, result.stdout[-3000:])
