"""The TF Serving stand-in image (tests/tfserving_standin/, a test fixture) started the way the
generated manifests start tensorflow/serving, and the predictor's gRPC backend driving it from
the host, with the models where the sidecar sees them (/mnt/model), not where the host has them.

The image build downloads TensorFlow (minutes the first time); it is built once per session and
Docker's layer cache makes later builds instant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tfserving import build_standin_image

TESTS_DIR = Path(__file__).parent.parent
# the runtime as the installed package ships it, and the model builders of the runtime tests

SIDECAR_MODEL_DIR = "/mnt/model"


@pytest.fixture(scope="session")
def standin_image(docker_client: Any, base_image: str) -> str:
    return build_standin_image(docker_client)


@pytest.fixture
def sidecar_models(tmp_path: Path) -> Path:
    """Laid out as the init container leaves /mnt/model: <name>/<version>/ and models.config."""
    # tox installs tensorflow-cpu in the docker env: this test must run there, not skip.
    from predictor_cases.model_factory import write_iris_savedmodel

    folder = tmp_path / "mnt-model"
    write_iris_savedmodel(folder / "iris" / "1")
    (folder / "models.config").write_text(
        "model_config_list {\n  config { name: 'iris' base_path: '/mnt/model/iris' "
        "model_platform: 'tensorflow' model_version_policy { all {} } }\n}\n"
    )
    folder.chmod(0o755)
    return folder


@pytest.fixture
def standin_container(
    docker_client: Any, standin_image: str, sidecar_models: Path
) -> Iterator[Any]:
    container = docker_client.containers.run(
        standin_image,
        # the arguments the generated Kubernetes and compose sidecars give tensorflow/serving
        command=[
            "--port=9000",
            "--rest_api_port=0",
            f"--model_config_file={SIDECAR_MODEL_DIR}/models.config",
            "--grpc_channel_arguments=grpc.max_concurrent_streams=11",
        ],
        volumes={str(sidecar_models): {"bind": SIDECAR_MODEL_DIR, "mode": "ro"}},
        ports={"9000/tcp": ("127.0.0.1", None)},
        detach=True,
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def host_port(container: Any) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        container.reload()
        bindings = container.ports.get("9000/tcp")
        if bindings:
            return int(bindings[0]["HostPort"])
        time.sleep(0.2)
    raise AssertionError(f"port 9000 was never published:\n{container.logs().decode()}")


def test_grpc_backend_serves_through_the_standin_image(standin_container: Any) -> None:
    from cortex_serve.clients.tensorflow_client import TensorFlowClient
    from cortex_serve.clients.tfserving.grpc_backend import GrpcBackend
    from cortex_serve.model_sources import ModelSource
    from predictor_cases.model_factory import SETOSA, VIRGINICA

    address = f"127.0.0.1:{host_port(standin_container)}"
    # The predictor knows the model's versions; the sidecar finds it under /mnt/model/iris.
    sources = {"iris": ModelSource("iris", {1: Path("/unused/on/the/host")})}
    backend = GrpcBackend(address, model_dir=SIDECAR_MODEL_DIR, start_timeout=120)
    try:
        client = TensorFlowClient(sources, backend)
        client.load_latest()
        result = client.predict({"features": [SETOSA, VIRGINICA]})
    finally:
        backend.close()
    logs = standin_container.logs().decode(errors="replace")
    assert result["label"] == ["setosa", "virginica"], logs
    assert result["class_ids"] == [0, 2]
    assert "ignoring tensorflow_model_server flags: --rest_api_port=0" in logs
