"""examples/traffic-splitter built and run by its docker-compose.yaml: requests through the
splitter's service reach both APIs by weight, the shadow gets its copies, and each API answers
its samples."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from e2e import EXAMPLES, check_sample, load_samples, wait_healthy

SAMPLE = {"sepal_length": 6.3, "sepal_width": 2.5, "petal_length": 4.9, "petal_width": 1.5}


def test_requests_through_the_splitter_service_reach_both_apis(build_project, compose_up):
    built = build_project(EXAMPLES / "traffic-splitter")
    assert sorted(built.images) == ["iris", "iris-shadow", "iris-v1", "iris-v2"]
    compose = compose_up(built)
    urls = {name: compose.url(name) for name in built.images}
    for url in urls.values():
        wait_healthy(url, compose.logs)
    with httpx.Client(timeout=30) as client:
        for sample in load_samples(EXAMPLES / "traffic-splitter"):
            check_sample(urls[sample.api], sample, client)
        backends: Counter[str] = Counter()
        for _ in range(50):
            answer = client.post(f"{urls['iris']}/iris", json=SAMPLE)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert answer.headers["x-cortex-backend"] == f"iris-{body['version']}"
            assert body["label"] == {"v1": "versicolor", "v2": "virginica"}[body["version"]]
            backends[answer.headers["x-cortex-backend"]] += 1
        # the splitter reached its APIs at http://api-<name>:8888, their compose aliases
        assert backends == {"iris-v1": 40, "iris-v2": 10}, backends
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = client.get(f"{urls['iris']}/healthz").json()
            if (
                health["backends"]["iris-shadow"]["requests"] >= 50
                and not health["shadow_in_flight"]
            ):
                break
            time.sleep(0.5)
        shadow = health["backends"]["iris-shadow"]
        assert shadow["requests"] == 50 and shadow["state"] == "up", health
