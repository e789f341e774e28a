"""End-to-end fixtures: images built by `cortex-build build` on the local test base image, run as
containers or compose projects on the real engine, and the examples' samples.yaml checks.

Builds are slow (2 cores in CI), so each project is built once per session (`build_project`)
and every test that needs its images shares them. Everything a session creates (images,
containers, compose projects) is named with its own random tag and removed at the end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e import (
    SERVER_PORT,
    BuiltProject,
    ComposeProject,
    RunningContainer,
    cortex_build,
    wait_healthy,
)


@dataclass
class Session:
    """The session's tag, and what it built, to share and to remove at the end."""

    tag: str
    work: Path
    base_image: str
    built: dict[str, BuiltProject] = field(default_factory=dict)

    def registry(self, key: str) -> str:
        return f"cortex-build-e2e/{key}"


@pytest.fixture(scope="session")
def e2e_session(docker_client, base_image, tmp_path_factory) -> Iterator[Session]:
    session = Session(
        tag=f"e2e-{uuid.uuid4().hex[:10]}",
        work=tmp_path_factory.mktemp("e2e"),
        base_image=base_image,
    )
    yield session
    references = {ref for built in session.built.values() for ref in built.images.values()}
    for reference in sorted(references):
        with contextlib.suppress(Exception):
            docker_client.images.remove(reference, force=True)


@pytest.fixture(scope="session")
def build_project(e2e_session: Session) -> Callable[..., BuiltProject]:
    """build_project(project_dir, key=None) -> BuiltProject, built once per key (default: the
    folder's name).

    Builds with --base-image = the test base image, --registry cortex-build-e2e/<key>, the
    session's tag, one API at a time (2 cores); fails the test with the CLI's output if the
    build fails.
    """

    def build(project: Path, key: str | None = None) -> BuiltProject:
        key = key or project.name
        if key not in e2e_session.built:
            out = e2e_session.work / f"{key}-contexts"
            result = cortex_build(
                "build",
                project,
                "-o",
                out,
                "--base-image",
                e2e_session.base_image,
                "--registry",
                e2e_session.registry(key),
                "--tag",
                e2e_session.tag,
                "--jobs",
                "1",
            )
            if result.returncode != 0:
                pytest.fail(
                    f"cortex-build build {project} exited {result.returncode}:\n"
                    f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}",
                    pytrace=False,
                )
            apis = sorted(p.parent.name for p in out.glob("*/Dockerfile"))
            images = {api: f"{e2e_session.registry(key)}/{api}:{e2e_session.tag}" for api in apis}
            e2e_session.built[key] = BuiltProject(project, out, images, result.stdout)
        return e2e_session.built[key]

    return build


# ---------------------------------------------------------------------------------------------
# Containers


@pytest.fixture
def run_container(docker_client) -> Iterator[Callable[..., RunningContainer]]:
    """run_container(image, **run_kwargs) -> a started container, healthy, on a loopback port;
    removed when the test ends."""
    started: list[Any] = []

    def run(image: str, *, wait: bool = True, **kwargs: Any) -> RunningContainer:
        container = docker_client.containers.run(
            image, detach=True, ports={f"{SERVER_PORT}/tcp": ("127.0.0.1", None)}, **kwargs
        )
        started.append(container)
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"][f"{SERVER_PORT}/tcp"][0]["HostPort"]
        running = RunningContainer(container, f"http://127.0.0.1:{port}")
        if wait:
            wait_healthy(running.url, running.logs, running.exited)
        return running

    yield run
    for container in started:
        with contextlib.suppress(Exception):
            container.remove(force=True)


# ---------------------------------------------------------------------------------------------
# Compose


@pytest.fixture
def compose_up(docker_client) -> Iterator[Callable[[BuiltProject], ComposeProject]]:
    """compose_up(built) -> `docker-compose up -d` of its docker-compose.yaml; `down` at the end."""
    projects: list[ComposeProject] = []

    def up(built: BuiltProject) -> ComposeProject:
        project = ComposeProject(built.out / "docker-compose.yaml", f"cbe2e{uuid.uuid4().hex[:8]}")
        projects.append(project)
        result = project.run("up", "-d", "--no-build")
        if result.returncode != 0:
            pytest.fail(f"docker-compose up failed:\n{result.stdout}{result.stderr}", pytrace=False)
        return project

    yield up
    for project in projects:
        project.run("down", "--volumes", "--remove-orphans", "--timeout", "5")
