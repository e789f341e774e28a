"""Helpers of the end-to-end tests (fixtures in conftest.py): the CLI as a user runs it, waiting
for a server to be healthy, compose projects, and the examples' samples.yaml checks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cortex_build.predict import (
    Sample,
    check_sample as sample_problem,
    load_samples as load_samples_file,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SERVER_PORT = 8888
HEALTHY_WITHIN = 180.0  # seconds; a cold container on a busy 2-core machine


def cortex_build(*args: str | Path, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """The CLI of the installed package (the Python running the tests), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class BuiltProject:
    project: Path
    out: Path  # the rendered contexts (kept with -o), docker-compose.yaml among them
    images: dict[str, str]  # API name -> image reference
    output: str  # what `cortex-build build` printed


@dataclass
class RunningContainer:
    container: Any  # docker.models.containers.Container
    url: str  # http://127.0.0.1:<published port>

    def logs(self) -> str:
        return self.container.logs().decode("utf-8", "replace")

    def exited(self) -> bool:
        self.container.reload()
        return self.container.status in ("exited", "dead")


def wait_healthy(
    url: str,
    describe: Callable[[], str],
    exited: Callable[[], bool] = lambda: False,
    timeout: float = HEALTHY_WITHIN,
) -> None:
    """Until GET /healthz answers 200; fails with `describe()` (e.g. the logs) when the server
    exits or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        if exited():
            pytest.fail(
                f"the server exited before {url}/healthz was 200:\n{describe()}", pytrace=False
            )
        time.sleep(0.2)
    pytest.fail(f"{url}/healthz not 200 within {timeout:.0f}s:\n{describe()}", pytrace=False)


@dataclass
class ComposeProject:
    file: Path
    name: str

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-f", str(self.file), "-p", self.name, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def url(self, service: str) -> str:
        result = self.run("port", service, str(SERVER_PORT))
        address = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
        if result.returncode != 0 or not address:
            pytest.fail(f"docker-compose port {service}: {result.stderr}", pytrace=False)
        return f"http://{address.replace('0.0.0.0', '127.0.0.1')}"

    def logs(self) -> str:
        result = self.run("logs", "--no-color", "--tail", "60")
        return result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# samples.yaml (format: examples/README.md)


def load_samples(project: Path) -> list[Sample]:
    return load_samples_file(project / "samples.yaml")


def check_sample(base_url: str, sample: Sample, client: object = None) -> None:
    """Sends the sample's request and asserts the response the sample expects, with the checks
    of `cortex-build predict --samples` (the client is not needed: one connection a sample)."""
    problem = sample_problem(sample, base_url)
    assert problem is None, f"{sample.api}/{sample.name}: {problem}"


# A small project of python APIs (echo predictors), for tests that build images of their own.
PREDICTOR = """\
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return payload
"""


def make_project(root: Path, config: str, requirements: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cortex.yaml").write_text(config)
    (root / "predictor.py").write_text(PREDICTOR)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root


def api_config(name: str, image: str | None = None) -> str:
    image_line = f"\n    image: {image}" if image else ""
    return (
        f"- name: {name}\n  kind: RealtimeAPI\n  predictor:\n    type: python\n"
        f"    path: predictor.py{image_line}\n"
    )
