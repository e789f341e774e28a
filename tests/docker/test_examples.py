"""Every example's image, built on the test base image, answers its samples.yaml exactly."""

from __future__ import annotations

import httpx
import pytest
from e2e import EXAMPLES, check_sample, load_samples

# Not here: chaining's APIs call each other, so they run together (test_compose.py); the
# TensorFlow example needs a TF Serving sidecar.
STANDALONE = sorted(
    path.parent.name
    for path in EXAMPLES.glob("*/samples.yaml")
    if path.parent.name not in ("chaining", "v0.15-tensorflow")
)


@pytest.mark.parametrize("example", STANDALONE)
def test_example_image_answers_its_samples(example, build_project, run_container):
    built = build_project(EXAMPLES / example)
    samples = load_samples(EXAMPLES / example)
    assert samples, f"{example}/samples.yaml has no samples"
    for api, image in built.images.items():
        running = run_container(image)
        with httpx.Client() as client:
            for sample in (s for s in samples if s.api == api):
                check_sample(running.url, sample, client)
    assert {s.api for s in samples} <= set(built.images), "samples name an API the project lacks"
