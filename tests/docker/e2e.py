"""Helpers of the end-to-end tests (fixtures in conftest.py): the CLI as a user runs it, waiting
for a server to be healthy, compose projects, and the examples' samples.yaml checks."""

from __future__ import annotations

import base64
import contextlib
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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


@dataclass(frozen=True)
class Sample:
    api: str
    name: str
    request: dict[str, Any]
    response: dict[str, Any]


def load_samples(project: Path) -> list[Sample]:
    entries = yaml.safe_load((project / "samples.yaml").read_text()) or []
    return [Sample(e["api"], e["name"], e["request"], e["response"]) for e in entries]


def check_sample(base_url: str, sample: Sample, client: httpx.Client | None = None) -> None:
    """Sends the sample's request and asserts the response the sample expects."""
    request = sample.request
    headers = dict(request.get("headers") or {})
    kwargs: dict[str, Any] = {"params": request.get("query") or {}}
    if "json" in request:
        kwargs["json"] = request["json"]
    elif "text" in request:
        headers.setdefault("Content-Type", "text/plain")
        kwargs["content"] = request["text"].encode("utf-8")
    elif "body_base64" in request:
        headers.setdefault("Content-Type", "application/octet-stream")
        kwargs["content"] = base64.b64decode(request["body_base64"])
    url = base_url + request.get("path", "/predict")
    method = request.get("method", "POST")
    response = (client or httpx).request(method, url, headers=headers, timeout=60, **kwargs)

    expected = sample.response
    where = f"{sample.api}/{sample.name}: {method} {url}"
    assert response.status_code == expected.get("status", 200), f"{where}: {response.text}"
    if "content_type" in expected:
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        assert media_type == expected["content_type"], (
            f"{where}: Content-Type {media_type!r}, body {response.text[:200]!r}"
        )
    if "json" in expected:
        assert_json_close(response.json(), expected["json"], where)
    elif "text" in expected:
        assert response.text == expected["text"], where
    elif "body_base64" in expected:
        assert response.content == base64.b64decode(expected["body_base64"]), where


def assert_json_close(actual: Any, expected: Any, where: str, path: str = "$") -> None:
    """Equal JSON, floats within 1e-6 relative: a framework's last bits may differ by build."""
    if isinstance(expected, float) and isinstance(actual, int | float):
        assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9), (
            f"{where}: {path}: {actual} != {expected}"
        )
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert sorted(actual) == sorted(expected), f"{where}: {path}: keys {sorted(actual)}"
        for key in expected:
            assert_json_close(actual[key], expected[key], where, f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(actual) == len(expected), f"{where}: {path}: {actual} != {expected}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_json_close(a, e, where, f"{path}[{index}]")
    else:
        assert actual == expected, f"{where}: {path}: {actual!r} != {expected!r}"
