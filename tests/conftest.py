"""Shared by every test: the Docker engine and the local test base image.

- `docker_client` (session): a docker SDK client when an engine answers; otherwise the test is
  skipped saying how to get one.
- `base_image` (session): the name of the local stand-in for `python:3.x-slim` that Docker tests
  pass as `--base-image`; built by tests/docker_base/build-base-image.sh (idempotent) unless
  CORTEX_BUILD_TEST_BASE_IMAGE names one to use instead.
- Tests under tests/docker/ get the `docker` marker without having to say so.
- Under CI=true a skipped test fails: whatever a test skips for (no engine, no kustomize, a
  missing TensorFlow) CI installs, so a skip there means a broken CI machine, never a pass.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
DOCKER_TESTS_DIR = TESTS_DIR / "docker"
BASE_IMAGE_SCRIPT = TESTS_DIR / "docker_base" / "build-base-image.sh"
DEFAULT_BASE_IMAGE = "cortex-build-test/python:3.11"
NO_ENGINE = "no Docker engine reachable: start dockerd or set DOCKER_HOST"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(DOCKER_TESTS_DIR):
            item.add_marker(pytest.mark.docker)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"


@pytest.fixture(scope="session")
def docker_client():
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as err:
        reason = f"{NO_ENGINE} ({err})"
        pytest.skip(reason)  # a failure under CI=true (pytest_runtest_makereport)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    override = os.environ.get("CORTEX_BUILD_TEST_BASE_IMAGE")
    if override:
        return override
    result = subprocess.run(
        ["bash", str(BASE_IMAGE_SCRIPT), DEFAULT_BASE_IMAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{BASE_IMAGE_SCRIPT.name} failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    return DEFAULT_BASE_IMAGE
