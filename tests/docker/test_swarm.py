"""The rendered docker-compose.yaml as a Swarm stack: `docker stack deploy` takes it (replicas and
resources under deploy:, no service-level resource keys), and the API answers its samples.

On a single-node swarm, initialised here unless the engine is in one already (and left again
then, so that the engine is not left in swarm mode for the other tests). The routing mesh does
not answer on loopback on every machine, so the test publishes the API's port in host mode, on
a free port: everything else is the rendered file as it is.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from e2e import EXAMPLES, SERVER_PORT, check_sample, load_samples, wait_healthy

EXAMPLE = EXAMPLES / "v0.2x-realtime"
API = "iris-classifier"


def docker(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


@pytest.fixture
def swarm(docker_client) -> Iterator[None]:
    """A swarm manager: the engine's own swarm, or a single-node one made and left here."""
    info = docker_client.info().get("Swarm") or {}
    state = info.get("LocalNodeState")
    made = False
    had_gwbridge = bool(docker_client.networks.list(names=["docker_gwbridge"]))
    if state == "inactive":
        result = docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        if result.returncode != 0:
            pytest.fail(f"docker swarm init failed:\n{result.stderr}", pytrace=False)
        made = True
    elif state != "active" or not info.get("ControlAvailable"):
        pytest.skip(f"the engine is in a swarm as a worker, or its state is {state!r}")
    try:
        yield
    finally:
        if made:
            docker("swarm", "leave", "--force")
            if not had_gwbridge:  # swarm init made it; leaving keeps it
                docker("network", "rm", "docker_gwbridge")


def remove_stack(docker_client, stack: str) -> None:
    docker("stack", "rm", stack)
    deadline = time.monotonic() + 90
    label = f"com.docker.stack.namespace={stack}"
    while time.monotonic() < deadline:
        containers = docker_client.containers.list(all=True, filters={"label": label})
        networks = docker_client.networks.list(filters={"label": label})
        if not containers and not networks:
            return
        time.sleep(1)


def test_the_compose_file_deploys_as_a_swarm_stack_that_answers_its_samples(
    build_project, swarm, docker_client, tmp_path: Path
) -> None:
    built = build_project(EXAMPLE)
    rendered = built.out / "docker-compose.yaml"
    if re.search(r"^\s+config\s", docker("stack", "--help").stdout, re.M):  # newer CLIs
        checked = docker("stack", "config", "-c", rendered)
        assert checked.returncode == 0, checked.stderr

    document = yaml.safe_load(rendered.read_text())
    service = document["services"][API]
    assert service["image"] == built.images[API]  # tagged: Swarm builds nothing
    assert service["ports"] == [f"127.0.0.1:8890:{SERVER_PORT}"]
    port = free_port()
    service["ports"] = [
        {"target": SERVER_PORT, "published": port, "protocol": "tcp", "mode": "host"}
    ]
    stack_file = rendered.with_name(f"docker-compose.swarm-{port}.yaml")  # beside it: same paths
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    stack = f"cbswarm{uuid.uuid4().hex[:8]}"
    try:
        deployed = docker(
            "stack", "deploy", "--resolve-image", "never", "-c", stack_file, stack, timeout=300
        )
        output = deployed.stdout + deployed.stderr
        assert deployed.returncode == 0, output
        ignored = re.findall(r"Ignoring unsupported options: (.*)", output)
        assert [option.strip() for line in ignored for option in line.split(",")] in (
            [],
            ["build"],
        ), output

        inspected = json.loads(docker("service", "inspect", f"{stack}_{API}").stdout)[0]["Spec"]
        assert inspected["Mode"] == {"Replicated": {"Replicas": 1}}
        # compute.cpu: 500m, compute.mem: 512Mi, as reservations (requests), no limits
        resources = inspected["TaskTemplate"]["Resources"]
        assert resources.get("Reservations") == {
            "NanoCPUs": 500_000_000,
            "MemoryBytes": 512 * 2**20,
        }
        assert not resources.get("Limits")

        def describe() -> str:
            tasks = docker("service", "ps", "--no-trunc", f"{stack}_{API}").stdout
            logs = docker("service", "logs", "--tail", "60", f"{stack}_{API}")
            return f"{tasks}\n{logs.stdout}{logs.stderr}"

        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, describe)
        label = f"com.docker.stack.namespace={stack}"
        deadline = time.monotonic() + 60
        health = []
        while time.monotonic() < deadline:  # Docker's own healthcheck, every 10 s
            containers = docker_client.containers.list(filters={"label": label})
            health = [c.attrs["State"].get("Health", {}).get("Status") for c in containers]
            if health == ["healthy"]:
                break
            time.sleep(1)
        assert health == ["healthy"], describe()
        with httpx.Client() as client:
            for sample in load_samples(EXAMPLE):
                check_sample(url, sample, client)
    finally:
        with contextlib.suppress(Exception):
            remove_stack(docker_client, stack)
        stack_file.unlink(missing_ok=True)
