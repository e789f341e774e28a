"""Every example's image, built on the test base image, answers its samples.yaml exactly."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from e2e import EXAMPLES, check_sample, load_samples

# Not alone in a container: chaining's APIs call each other, so they run together
# (test_compose.py), as traffic-splitter's splitter and its APIs do (test_traffic_splitter.py);
# the TensorFlow example needs its TF Serving sidecar, so it runs through its
# docker-compose.yaml with the TF Serving stand-in (test_tensorflow_example.py).
RUN_ELSEWHERE = {
    "chaining": "test_compose.py",
    "traffic-splitter": "test_traffic_splitter.py",
    "v0.15-tensorflow": "test_tensorflow_example.py",
    "v0.42-containers": "test_containers_compose.py",  # images built by the user, not here
}
STANDALONE = sorted(
    path.parent.name
    for path in EXAMPLES.glob("*/samples.yaml")
    if path.parent.name not in RUN_ELSEWHERE
)


@pytest.mark.parametrize("example", STANDALONE)
def test_example_image_answers_its_samples(example, build_project, run_container, docker_client):
    built = build_project(EXAMPLES / example)
    samples = load_samples(EXAMPLES / example)
    assert samples, f"{example}/samples.yaml has no samples"
    for api, image in built.images.items():
        # the labels as the engine read them from the Dockerfile: the normalized spec (api.json)
        labels = docker_client.images.get(image).labels
        spec = json.loads((built.out / api / "cortex" / "api.json").read_text())
        assert json.loads(labels["dev.cortex-build.spec"]) == spec
        assert labels["dev.cortex-build.project"] == example
        assert labels["dev.cortex-build.api"] == api
        running = run_container(image)
        with httpx.Client() as client:
            for sample in (s for s in samples if s.api == api):
                check_sample(running.url, sample, client)
    assert {s.api for s in samples} <= set(built.images), "samples name an API the project lacks"


def test_every_example_left_out_here_runs_elsewhere() -> None:
    here = Path(__file__).parent
    for example, test_file in RUN_ELSEWHERE.items():
        assert (EXAMPLES / example / "samples.yaml").is_file(), f"{example} has no samples"
        assert f'EXAMPLES / "{example}"' in (here / test_file).read_text(), (
            f"{test_file} does not run {example}"
        )
