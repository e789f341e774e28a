"""examples/v0.15-tensorflow as a user without Docker Hub runs it: `cortex-build render
--tf-serving-image <a local TF Serving image>`, then `docker-compose up -d --build` of the rendered
file, which must build every image itself and pull none (no registry is reachable here). The
sidecar is the TF Serving stand-in (tests/tfserving_standin/, real TensorFlow behind TF Serving's
gRPC API); the `<api>-models` service copies the models out of the API's image into the volume
the sidecar serves, and the API answers the example's samples.yaml through gRPC.

The API image is built by Compose here, not by `cortex-build build`: that is what proves that
`up --build` never tries to pull the models service's image (Compose 1.29 pulls the `image:` of a
service without `build:`).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e import EXAMPLES, ComposeProject, check_sample, cortex_build, load_samples, wait_healthy
from tfserving import STANDIN_IMAGE, build_standin_image

EXAMPLE = EXAMPLES / "v0.15-tensorflow"
API = "iris-classifier"
BUILD_TIMEOUT = 1500  # seconds: Compose builds the API image (pip installs the runtime) cold


@pytest.fixture
def rendered(docker_client: Any, base_image: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(OUT, the API's image reference): EXAMPLE rendered with the stand-in as its sidecar; the
    API image (which Compose builds) is removed at the end."""
    standin = build_standin_image(docker_client)
    out = tmp_path / "out"
    tag = f"e2e-{uuid.uuid4().hex[:10]}"
    registry = "cortex-build-e2e/tf-compose"
    result = cortex_build(
        "render",
        EXAMPLE,
        "-o",
        out,
        "--base-image",
        base_image,
        "--tf-serving-image",
        standin,
        "--registry",
        registry,
        "--tag",
        tag,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    image = f"{registry}/{API}:{tag}"
    try:
        yield out, image
    finally:
        with contextlib.suppress(Exception):
            docker_client.images.remove(image, force=True)


def project_containers(docker_client: Any, name: str) -> list[Any]:
    return docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={name}"}
    )


def service_container(docker_client: Any, name: str, service: str) -> Any:
    (container,) = [
        c
        for c in project_containers(docker_client, name)
        if c.labels.get("com.docker.compose.service") == service
    ]
    return container


def test_tensorflow_example_answers_its_samples_through_compose(
    rendered: tuple[Path, str], docker_client: Any
) -> None:
    out, image = rendered
    compose = ComposeProject(out / "docker-compose.yaml", f"cbe2etf{uuid.uuid4().hex[:8]}")
    # the sidecar is the local stand-in, not tensorflow/serving (which cannot be pulled here)
    services = compose.run("config", "--services")
    assert services.returncode == 0, services.stderr
    assert sorted(services.stdout.split()) == [API, f"{API}-models", f"{API}-serving"]
    try:
        up = compose.run("up", "-d", "--build", timeout=BUILD_TIMEOUT)
        assert up.returncode == 0, f"docker-compose up --build failed:\n{up.stdout}{up.stderr}"
        assert "Pulling" not in up.stdout + up.stderr, up.stdout + up.stderr

        url = compose.url(API)
        wait_healthy(url, compose.logs)
        samples = [s for s in load_samples(EXAMPLE) if s.api == API]
        assert len(samples) == 3, "v0.15-tensorflow/samples.yaml lost its samples"
        with httpx.Client() as client:
            for sample in samples:
                check_sample(url, sample, client)

        # the one-shot models service ran to completion and laid the models out for TF Serving
        models = service_container(docker_client, compose.name, f"{API}-models")
        assert models.attrs["State"]["ExitCode"] == 0, models.logs().decode(errors="replace")
        # each service ran the image it should: the API and the models copy the one Compose
        # built, the sidecar the stand-in
        built = docker_client.images.get(image).id
        assert models.image.id == built
        assert service_container(docker_client, compose.name, API).image.id == built
        serving = service_container(docker_client, compose.name, f"{API}-serving")
        assert serving.image.id == docker_client.images.get(STANDIN_IMAGE).id
    finally:
        down = compose.run("down", "--volumes", "--remove-orphans", "--timeout", "5")
    assert down.returncode == 0, down.stdout + down.stderr
    # `down` removes every container of the project, the exited models copy included
    leftover = [c.name for c in project_containers(docker_client, compose.name)]
    assert leftover == [], json.dumps(leftover)
