"""A rendered context on a real Docker engine: it builds, serves, caches by layer, and names a
requirement that clashes with the runtime's. (Full end-to-end runs per example: tests/docker/.)"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from cortex_build.config import load_project
from cortex_build.render import RenderOptions, render_project

pytestmark = pytest.mark.docker

CONFIG = """\
- name: greeter
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    env:
      GREETING: from-config
"""

PREDICTOR = """\
import os
import pathlib

import six  # from requirements.txt


class PythonPredictor:
    def __init__(self, config):
        self.word = pathlib.Path("word.txt").read_text().strip()  # a project file, by cwd
        pathlib.Path("/mnt/user/scratch").write_text("writable")

    def predict(self, payload):
        return {
            "version": VERSION,
            "word": self.word,
            "greeting": os.environ["GREETING"],
            "token": os.environ.get("API_TOKEN"),
            "uid": os.getuid(),
            "deps": pathlib.Path("/opt/deps-ran").read_text().strip(),
            "six": six.PY3,
        }
"""


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def make_project(root: Path, version: int, requirements: str = "six\n") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cortex.yaml").write_text(CONFIG)
    (root / "predictor.py").write_text(f"VERSION = {version}\n" + PREDICTOR)
    (root / "word.txt").write_text("hello\n")
    (root / "requirements.txt").write_text(requirements)
    (root / "dependencies.sh").write_text("echo yes > /opt/deps-ran\n")
    (root / ".env").write_text("API_TOKEN=from-dotenv\n")


def build(project: Path, out: Path, base_image: str, image: str) -> str:
    render_project(
        load_project(project), out, RenderOptions(base_image=base_image, tag=image.split(":")[1])
    )
    return docker("build", "--force-rm", "-t", image, str(out / "greeter")).stdout


def cached_steps(build_output: str) -> dict[str, bool]:
    """{Dockerfile instruction: whether the classic builder took it from its cache}."""
    steps: dict[str, bool] = {}
    current = None
    for line in build_output.splitlines():
        match = re.match(r"Step \d+/\d+ : (.*)", line)
        if match and not match.group(1).startswith("FROM "):  # FROM is never "from cache"
            current = match.group(1)
            steps[current] = False
        elif current and "Using cache" in line:
            steps[current] = True
    return steps


def test_rendered_image_builds_serves_and_rebuilds_only_the_code(
    base_image: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:12]
    image = f"greeter:{tag}"
    project = tmp_path / "project"
    make_project(project, version=1)
    container = f"cortex-build-render-{tag}"
    try:
        build(project, tmp_path / "out", base_image, image)
        docker(
            "run", "-d", "--name", container, "-p", "127.0.0.1::8888",
            "--env-file", str(project / ".env"), image,
        )  # fmt: skip
        port = docker("port", container, "8888").stdout.strip().rsplit(":", 1)[1]
        answer = None
        deadline = time.monotonic() + 60
        while answer is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/predict",
                    data=b"{}",
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        logs = docker("logs", container).stdout
        assert answer == {
            "version": 1,
            "word": "hello",
            "greeting": "from-config",
            "token": "from-dotenv",
            "uid": 10001,
            "deps": "yes",
            "six": True,
        }, logs
        # exec-form entrypoint + exec: SIGTERM reaches gunicorn, which stops well before the
        # 10 s after which Docker would SIGKILL
        started = time.monotonic()
        docker("stop", container)
        assert time.monotonic() - started < 8
        assert docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip() == "0"

        # an edit to predictor code rebuilds the code layers only
        (project / "predictor.py").write_text("VERSION = 2\n" + PREDICTOR)
        steps = cached_steps(build(project, tmp_path / "out", base_image, image))
        order = list(steps)
        code = next(
            i
            for i, step in enumerate(order)
            if step.startswith("COPY --chown=10001:10001 project/")
        )
        report = "\n".join(
            f"{'cached' if hit else 'BUILT '} {step[:80]}" for step, hit in steps.items()
        )
        assert all(steps[step] for step in order[:code]), report
        assert not steps[order[code]]
    finally:
        docker("rm", "-f", container, check=False)
        docker("rmi", "-f", image, check=False)


@pytest.mark.parametrize(
    ("requirement", "message"),
    [
        ("starlette==0.20.0", "starlette==0.20.0 clashes"),
        ("fastapi==0.65.0", "fastapi 0.65.0 depends on starlette==0.14.2, which clashes"),
    ],
)
def test_a_requirement_that_clashes_with_the_runtime_fails_the_build_naming_it(
    base_image: str, tmp_path: Path, requirement: str, message: str
) -> None:
    project = tmp_path / "project"
    make_project(project, version=1, requirements=f"six\n{requirement}\n")
    render_project(load_project(project), tmp_path / "out", RenderOptions(base_image=base_image))
    image = f"greeter-clash:{uuid.uuid4().hex[:12]}"
    result = docker(
        "build", "--force-rm", "-t", image, str(tmp_path / "out" / "greeter"), check=False
    )
    docker("rmi", "-f", image, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    expected = (
        f"cortex-build: requirements.txt: {message} with the runtime's requirement starlette>=0.27"
    )
    assert expected in output, output
