"""Cortex v0.36+ APIs given as containers, on the real engine: examples/v0.42-containers' image
built with docker, `cortex-build render`, `docker-compose up`: the API answers its samples
through its published port, its health checks (from the readiness probes, http_get and exec)
turn healthy, the sidecar is reached on localhost, and the TaskAPI runs once with
`docker-compose run`; the BatchAPI's batch worker, built by `cortex-build build`, POSTs a job's
batches to the API's container on localhost."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
from e2e import EXAMPLES, ComposeProject, check_sample, cortex_build, load_samples

EXAMPLE = EXAMPLES / "v0.42-containers"
EXAMPLE_IMAGE = "cortex-build-examples/v042-iris:latest"


@pytest.fixture
def example_project(tmp_path, docker_client, base_image):
    """The example with its image built under a name of this test's own."""
    project = tmp_path / "v0.42-containers"
    shutil.copytree(EXAMPLE, project)
    image = f"cortex-build-e2e/v042-iris:{uuid.uuid4().hex[:10]}"
    config = project / "cortex.yaml"
    assert config.read_text().count(EXAMPLE_IMAGE) == 4
    config.write_text(config.read_text().replace(EXAMPLE_IMAGE, image))
    built = subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "-t",
            image,
            str(project / "image"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    yield project, image
    docker_client.images.remove(image, force=True)


def health(compose: ComposeProject, service: str) -> str:
    container = compose.run("ps", "-q", service).stdout.strip()
    inspected = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Health.Status}}", container],
        capture_output=True,
        text=True,
    )
    return inspected.stdout.strip()


def test_the_container_example_answers_its_samples_through_compose(example_project, tmp_path):
    project, image = example_project
    out = tmp_path / "out"
    rendered = cortex_build("render", project, "-o", out)
    assert rendered.returncode == 0, rendered.stderr
    assert f"iris-rules: images are given: {image}, {image}; nothing to build" in rendered.stdout
    built = cortex_build("build", project, "--api", "iris-rules", "--api", "iris-summary")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "nothing to build" in built.stdout
    compose = ComposeProject(out / "docker-compose.yaml", f"cbe2e{uuid.uuid4().hex[:8]}")
    try:
        up = compose.run("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        deadline = time.monotonic() + 120
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {s: health(compose, s) for s in ("iris-rules", "iris-rules-labels")}
            if set(states.values()) == {"healthy"}:
                break
            time.sleep(1)
        assert set(states.values()) == {"healthy"}, (states, compose.logs())
        port = compose.run("port", "iris-rules", "8080").stdout.strip().rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        samples = load_samples(EXAMPLE)
        assert len(samples) == 3
        with httpx.Client() as client:
            for sample in samples:
                check_sample(url, sample, client)
        # the TaskAPI is left by `up` (profile jobs) and runs once under `run`
        assert compose.run("ps", "-q", "job-iris-summary").stdout.strip() == ""
        ran = compose.run("run", "--rm", "job-iris-summary")
        assert ran.returncode == 0, ran.stderr
        summary = json.loads(ran.stdout.strip().splitlines()[-1])
        assert summary == {
            "samples": 7,
            "counts": {"setosa": 3, "versicolor": 2, "virginica": 2},
        }
    finally:
        compose.run("down", "--volumes", "--remove-orphans", "--timeout", "5")


def test_a_failing_readiness_probe_keeps_the_container_unhealthy(example_project, tmp_path):
    """The health check follows the probe: a path the server answers 404 never turns healthy."""
    project, _ = example_project
    config = project / "cortex.yaml"
    config.write_text(config.read_text().replace("path: /healthz", "path: /missing", 1))
    out = tmp_path / "out"
    assert cortex_build("render", project, "-o", out).returncode == 0
    compose = ComposeProject(out / "docker-compose.yaml", f"cbe2e{uuid.uuid4().hex[:8]}")
    try:
        assert compose.run("up", "-d", "iris-rules", "iris-rules-labels").returncode == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and health(compose, "iris-rules-labels") != "healthy":
            time.sleep(1)
        assert health(compose, "iris-rules-labels") == "healthy", compose.logs()
        time.sleep(6)  # three more checks of iris-rules, each a 404
        assert health(compose, "iris-rules") in ("starting", "unhealthy")
    finally:
        compose.run("down", "--volumes", "--remove-orphans", "--timeout", "5")


def test_the_batch_worker_posts_a_jobs_batches_to_the_container(
    example_project, tmp_path, base_image, docker_client
):
    project, _ = example_project
    out = tmp_path / "out"
    tag = uuid.uuid4().hex[:10]
    built = cortex_build(
        "build",
        project,
        "-o",
        out,
        "--base-image",
        base_image,
        "--registry",
        "cortex-build-e2e",
        "--tag",
        tag,
        "--api",
        "iris-batch",
    )
    assert built.returncode == 0, built.stdout + built.stderr
    worker = f"cortex-build-e2e/iris-batch:{tag}"
    compose = ComposeProject(out / "docker-compose.yaml", f"cbe2e{uuid.uuid4().hex[:8]}")
    try:
        ran = compose.run(
            "run",
            "--rm",
            "-v",
            f"{project / 'job.json'}:/cortex/spec/job.json:ro",
            "job-iris-batch-dequeuer",
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        output = ran.stdout + ran.stderr
        assert "3 of 3 batches succeeded, 0 failed; 7 of 7 items" in output, output
        assert "on_job_complete: succeeded" in output
        logs = compose.run("logs", "--no-color", "job-iris-batch").stdout
        assert logs.count(": batch ") == 3, logs
        totals = json.loads(
            next(line.split("|", 1)[1] for line in logs.splitlines() if '"counts"' in line)
        )
        assert totals["counts"] == {"setosa": 3, "versicolor": 2, "virginica": 2}
    finally:
        compose.run("down", "--volumes", "--remove-orphans", "--timeout", "5")
        docker_client.images.remove(worker, force=True)
