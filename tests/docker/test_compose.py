"""The rendered docker-compose.yaml on the real engine: APIs reach each other by their Cortex
address, and the project's .env reaches the containers but no image."""

from __future__ import annotations

import shutil
import uuid

import httpx
from e2e import EXAMPLES, check_sample, load_samples, wait_healthy


def test_chained_apis_answer_their_samples_through_compose(build_project, compose_up):
    built = build_project(EXAMPLES / "chaining")
    assert sorted(built.images) == ["iris-batch", "iris-classifier"]
    compose = compose_up(built)
    urls = {api: compose.url(api) for api in built.images}
    for url in urls.values():
        wait_healthy(url, compose.logs)
    samples = load_samples(EXAMPLES / "chaining")
    # iris-batch's samples pass only if it reached iris-classifier at http://api-iris-classifier
    assert any(s.api == "iris-batch" for s in samples)
    with httpx.Client() as client:
        for sample in samples:
            check_sample(urls[sample.api], sample, client)


def test_dotenv_reaches_the_running_api_but_no_image_layer(
    build_project, compose_up, docker_client, tmp_path
):
    project = tmp_path / "v0.2x-realtime"
    shutil.copytree(EXAMPLES / "v0.2x-realtime", project)
    secret = f"secret-{uuid.uuid4().hex}"
    (project / ".env").write_text(f"IRIS_API_KEY={secret}\n")
    built = build_project(project, "dotenv")
    image = built.images["iris-classifier"]

    saved = b"".join(docker_client.images.get(image).save(named=True))
    assert len(saved) > 1_000_000, "docker save returned too little to be the image"
    assert secret.encode() not in saved, ".env value found in `docker save` output"

    compose = compose_up(built)
    url = compose.url("iris-classifier")
    wait_healthy(url, compose.logs)
    sample = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    without_key = httpx.post(f"{url}/predict", json=sample)
    assert without_key.status_code == 401, without_key.text
    with_key = httpx.post(f"{url}/predict", json=sample, headers={"X-Api-Key": secret})
    assert with_key.status_code == 200, with_key.text
    assert with_key.json() == {"label": "setosa"}
