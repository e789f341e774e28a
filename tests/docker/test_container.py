"""How a built image behaves as a container: its user, and SIGTERM with a request in flight."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

CONFIG = """\
- name: sleeper
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    threads_per_process: 2
"""

PREDICTOR = """\
import os
import time


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        time.sleep(float(payload.get("sleep", 0)))
        return {"slept": payload.get("sleep", 0), "uid": os.getuid()}
"""


@pytest.fixture(scope="session")
def sleeper_image(build_project, tmp_path_factory) -> str:
    project = tmp_path_factory.mktemp("sleeper")
    (project / "cortex.yaml").write_text(CONFIG)
    (project / "predictor.py").write_text(PREDICTOR)
    return build_project(project, "sleeper").images["sleeper"]


def test_the_api_runs_as_an_unprivileged_user(sleeper_image, run_container, docker_client):
    assert docker_client.images.get(sleeper_image).attrs["Config"]["User"] == "10001:10001"
    running = run_container(sleeper_image)
    assert httpx.post(f"{running.url}/predict", json={}).json()["uid"] == 10001
    # the runtime, its packages and the system are not the API's to change
    for folder in ("/opt/cortex/runtime", "/opt/venv", "/etc"):
        exit_code, output = running.container.exec_run(["sh", "-c", f"touch {folder}/x"])
        assert exit_code != 0, f"{folder} must not be writable by the API"
    # where it may write: its working folder, the project (Cortex ran predictors as root there,
    # and many download their model into it), /mnt/user (as Cortex's /mnt) and the cache of
    # models fetched at start
    for folder in ("/mnt/project", "/mnt/user", "/mnt/model-cache"):
        exit_code, output = running.container.exec_run(["sh", "-c", f"touch {folder}/x"])
        assert exit_code == 0, f"{folder} must be writable by the API: {output!r}"


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(sleeper_image, run_container):
    running = run_container(sleeper_image)
    answers: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{running.url}/predict", json={"sleep": 3}, timeout=30)
        )
    )
    request.start()
    time.sleep(1)  # the request is in predict() now
    assert not answers, "the request finished before SIGTERM was sent"
    started = time.monotonic()
    running.container.stop(timeout=30)  # SIGTERM, SIGKILL only after 30 s
    stopped_after = time.monotonic() - started
    request.join(timeout=30)

    assert answers and answers[0].status_code == 200, running.logs()
    assert answers[0].json()["slept"] == 3
    running.container.reload()
    assert running.container.attrs["State"]["ExitCode"] == 0, running.logs()
    # the remaining ~2 s of the request, then a prompt exit, nowhere near the SIGKILL at 30 s
    assert stopped_after < 8, f"stopping took {stopped_after:.1f}s:\n{running.logs()}"
