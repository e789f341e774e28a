"""Cortex v0.36+ APIs given as containers (`pod:`): every field read from
tests/release_projects/v0.42 (the shapes of Cortex v0.36-v0.42's docs), its docker-compose
services, its Kubernetes manifests validated offline against the Kubernetes schemas, and the
health-check commands run for real against a server on loopback."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from config_fixtures import make_project
from cortex_build.config import load_project
from cortex_build.container_compose import healthcheck, http_check, tcp_check
from cortex_build.errors import UserError
from cortex_build.render import render_project
from cortex_build.spec import ProbeSpec
from k8s_checks import KUSTOMIZE

PROJECT = Path(__file__).parents[1] / "release_projects" / "v0.42"
K8S_VERSION = "1.35.0"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("v042") / "out"
    render_project(load_project(PROJECT), out)
    return out


def compose(out: Path) -> dict[str, Any]:
    return yaml.safe_load((out / "docker-compose.yaml").read_text())


def manifest(out: Path, path: str) -> dict[str, Any]:
    return yaml.safe_load((out / "k8s" / path).read_text())


# -- config ------------------------------------------------------------------------------------


def test_every_field_is_read() -> None:
    project = load_project(PROJECT)
    assert project.apis == ()
    generator, hello, trainer = project.container_apis
    assert (generator.kind, generator.port, generator.endpoint) == (
        "RealtimeAPI",
        9000,
        "/generate",
    )
    assert (generator.max_concurrency, generator.max_queue_length) == (8, 50)
    api, rtd = generator.containers
    assert api.command == ("/usr/local/bin/serve",)
    assert api.args == (
        "--port=$(CORTEX_PORT)",
        "--model=$(MODEL_NAME)",
        "--literal=$$(MODEL_NAME)",
    )
    assert api.env == {"MODEL_NAME": "gpt2", "S3_USE_HTTPS": "1"}
    assert (api.compute.cpu, api.compute.gpu, api.compute.mem, api.compute.shm) == (
        "1",
        1,
        "2Gi",
        "512Mi",
    )
    assert api.readiness_probe == ProbeSpec(
        handler="http_get",
        port=9000,
        path="/healthz",
        initial_delay_seconds=5,
        timeout_seconds=3,
        period_seconds=7,
        success_threshold=2,
        failure_threshold=4,
    )
    assert api.liveness_probe == ProbeSpec(
        handler="tcp_socket", port=9000, initial_delay_seconds=30, period_seconds=20
    )
    assert api.pre_stop == ProbeSpec(handler="exec", command=("sleep", "5"))
    assert (rtd.compute.cpu, rtd.compute.inf, rtd.compute.mem) == ("500m", 1, None)
    assert rtd.pre_stop == ProbeSpec(handler="http_get", port=8081, path="/drain")
    assert rtd.liveness_probe == ProbeSpec(handler="http_get", port=8081, path="/")
    scaling = generator.autoscaling
    assert scaling is not None
    assert (scaling.min_replicas, scaling.max_replicas, scaling.init_replicas) == (2, 10, 3)
    assert scaling.target_replica_concurrency == 12.5
    assert scaling.max_replica_concurrency == 58  # max_concurrency + max_queue_length
    assert (scaling.window, scaling.downscale_stabilization_period) == (30.0, 120.0)
    assert (scaling.upscale_stabilization_period, scaling.max_downscale_factor) == (30.0, 0.5)
    assert (scaling.max_upscale_factor, scaling.downscale_tolerance) == (2.0, 0.1)
    assert scaling.upscale_tolerance == 0.2
    assert (generator.update_strategy.max_surge, generator.update_strategy.max_unavailable) == (
        "1",
        "0",
    )
    assert generator.node_groups == ("gpu-spot",)
    # defaults: port 8080, max_concurrency 1 (the target too), scale to zero allowed
    assert (hello.port, hello.max_concurrency, hello.max_queue_length) == (8080, 1, 100)
    assert hello.autoscaling.min_replicas == 0 and hello.autoscaling.target_replica_concurrency == 1
    assert hello.containers[0].command is None and hello.containers[0].args is None
    assert (trainer.kind, trainer.port, trainer.autoscaling, trainer.endpoint) == (
        "TaskAPI",
        None,
        None,
        "/tasks/trainer",
    )
    assert trainer.containers[0].args == ("--epochs", "3")


def test_validate_lists_them_with_their_generation_and_images() -> None:
    result = cli("validate", PROJECT)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "v0.36-v0.42 as v0.42  v0.36+ (containers)  RealtimeAPI" in rows["text-generator"]
    assert "registry.example.com/team/neuron-rtd:0.42" in rows["text-generator"]
    assert "max_concurrency 8" in rows["text-generator"]
    assert "TaskAPI" in rows["trainer"]
    document = json.loads(cli("validate", PROJECT, "--json").stdout)
    assert [api["name"] for api in document["container_apis"]] == [
        "text-generator",
        "hello-world",
        "trainer",
    ]
    assert document["container_apis"][0]["generation"] == "v0.36+ (containers)"


def test_cortex_version_picks_a_container_release_and_refuses_older_shapes(
    tmp_path: Path,
) -> None:
    assert cli("validate", PROJECT, "--cortex-version", "0.38").returncode == 0
    old = cli("validate", PROJECT, "--cortex-version", "0.35")
    assert old.returncode == 2
    assert (
        "text-generator: --cortex-version 0.35: the API has the config shape of Cortex "
        "v0.36-v0.42 (pod: with containers (images the user built)), which v0.35 did not accept"
    ) in old.stderr
    project = make_project(
        tmp_path, "- name: iris\n  predictor: {type: python, path: predictor.py}\n"
    )
    code = cli("validate", project, "--cortex-version", "0.40")
    assert code.returncode == 2 and "which v0.40 did not accept" in code.stderr


def test_a_traffic_splitter_over_container_apis_is_read(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "- name: a\n  kind: RealtimeAPI\n  pod:\n    containers:\n"
        "      - {name: api, image: example/a:1}\n"
        "- name: split\n  kind: TrafficSplitter\n  apis: [{name: a, weight: 100}]\n",
    )
    loaded = load_project(project)
    assert [api.name for api in loaded.container_apis] == ["a"]
    assert loaded.skipped == {}
    (splitter,) = loaded.splitters
    assert (splitter.name, splitter.endpoint) == ("split", "/split")
    assert [(b.api, b.weight, b.shadow) for b in splitter.backends] == [("a", 100, False)]


def test_serve_and_push_say_there_is_nothing_of_theirs(tmp_path: Path) -> None:
    served = cli("serve", PROJECT)
    assert served.returncode == 2
    assert "every API here is given as containers (Cortex v0.36+)" in served.stderr
    named = cli("serve", PROJECT, "--api", "hello-world")
    assert named.returncode == 2
    assert 'API "hello-world" is given as containers' in named.stderr


# -- docker-compose ------------------------------------------------------------------------------


def test_compose_runs_each_container_in_the_pods_network(rendered: Path) -> None:
    services = compose(rendered)["services"]
    assert sorted(services) == [
        "hello-world",
        "job-trainer",
        "job-trainer-logger",
        "text-generator",
        "text-generator-rtd",
    ]
    api = services["text-generator"]
    assert api["image"] == "registry.example.com/team/text-generator:0.42"
    # Kubernetes' command is Docker's entrypoint, args its command; $(VAR) expanded, $$ a $
    assert api["entrypoint"] == ["/usr/local/bin/serve"]
    # (in the file every $ is doubled: Compose reads $$ as one $)
    assert api["command"] == ["--port=9000", "--model=gpt2", "--literal=$$(MODEL_NAME)"]
    assert api["environment"] == {"CORTEX_PORT": "9000", "MODEL_NAME": "gpt2", "S3_USE_HTTPS": "1"}
    assert api["ports"] == ["127.0.0.1:8890:9000"]  # one replica: a pod of several containers
    assert api["networks"] == {"default": {"aliases": ["api-text-generator"]}}
    assert api["volumes"] == ["text-generator-mnt:/mnt"]
    assert api["shm_size"] == f"{512 * 2**20}b"
    assert api["deploy"] == {
        "replicas": 1,
        "resources": {
            "reservations": {
                "cpus": "1",
                "memory": f"{2 * 2**30}b",
                "devices": [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}],
            }
        },
    }
    assert api["healthcheck"]["interval"] == "7s" and api["healthcheck"]["retries"] == 4
    assert api["healthcheck"]["timeout"] == "3s" and api["healthcheck"]["start_period"] == "5s"
    rtd = services["text-generator-rtd"]
    assert rtd["network_mode"] == "service:text-generator"
    assert "ports" not in rtd and "networks" not in rtd
    assert rtd["entrypoint"] == ["neuron-rtd", "-g", "unix:/mnt/neuron.sock"]
    assert rtd["healthcheck"]["test"] == ["CMD", "test", "-S", "/mnt/neuron.sock"]
    # one container: replicas and ports follow init_replicas... of at least one
    hello = services["hello-world"]
    assert hello["ports"] == ["127.0.0.1:8891:8080"] and hello["deploy"]["replicas"] == 1
    assert hello["healthcheck"]["test"][0] == "CMD-SHELL"  # Cortex's default: the port is bound
    assert "volumes" not in hello
    # a TaskAPI is a job: not started by `up`, run once by `docker-compose run`
    task = services["job-trainer"]
    assert task["profiles"] == ["jobs"] and task["restart"] == "no"
    assert task["command"] == ["--epochs", "3"] and "ports" not in task
    assert "CORTEX_PORT" not in task["environment"]
    assert services["job-trainer-logger"]["network_mode"] == "service:job-trainer"
    text = (rendered / "docker-compose.yaml").read_text()
    assert "\nversion:" not in text  # profiles and network_mode are Compose's, not Swarm's
    assert "docker-compose run --rm job-trainer" in text


def test_compose_file_is_read_by_docker_compose(rendered: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    result = subprocess.run(
        ["docker-compose", "-f", str(rendered / "docker-compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_several_replicas_of_a_single_container_api_publish_a_port_each(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "- name: a\n  kind: RealtimeAPI\n  pod:\n    containers:\n"
        "      - {name: api, image: example/a:1}\n"
        "  autoscaling: {init_replicas: 3, min_replicas: 3}\n",
    )
    result = render_project(load_project(project), tmp_path / "out")
    service = compose(tmp_path / "out")["services"]["a"]
    assert service["ports"] == ["127.0.0.1:8890-8892:8080"]
    assert service["deploy"]["replicas"] == 3
    assert result.container_apis[0].host_ports == (8890, 8891, 8892)


def test_a_container_service_name_that_collides_is_a_problem(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "- name: a\n  kind: RealtimeAPI\n  pod:\n    containers:\n"
        "      - {name: api, image: example/a:1}\n      - {name: b, image: example/b:1}\n"
        "- name: a-b\n  kind: RealtimeAPI\n  pod:\n    containers:\n"
        "      - {name: api, image: example/a:1}\n",
    )
    with pytest.raises(UserError) as caught:
        render_project(load_project(project), tmp_path / "out")
    assert [str(p) for p in caught.value.problems] == [
        'cortex.yaml:7: a-b: pod.containers: the compose service "a-b" of container api '
        'collides with one of the API "a"; rename one of them'
    ]


# -- health checks, run for real --------------------------------------------------------------


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def only(tools: list[str], tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds just these tools (and sh), as a minimal image would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ["sh", *tools]:
        # python3: the real interpreter (a PATH entry may be a shell wrapper)
        found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (bin_dir / tool).symlink_to(found)
    return {**os.environ, "PATH": str(bin_dir)}


def run_check(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("tool", ["curl", "wget", "python3"])
def test_http_checks_pass_and_fail_with_each_tool(tool: str, server: int, tmp_path: Path) -> None:
    env = only([tool], tmp_path)
    assert run_check(http_check(server, "/healthz", 2), env).returncode == 0
    assert run_check(http_check(server, "/missing", 2), env).returncode != 0


def test_an_image_without_any_http_client_is_unhealthy(server: int, tmp_path: Path) -> None:
    result = run_check(http_check(server, "/healthz", 2), only([], tmp_path))
    assert result.returncode == 1
    assert "no curl, wget or python3" in result.stderr


@pytest.mark.parametrize("tool", ["python3", "bash"])
def test_tcp_checks_pass_and_fail_with_each_tool(tool: str, server: int, tmp_path: Path) -> None:
    env = only([tool], tmp_path)
    assert run_check(tcp_check(server, 2), env).returncode == 0
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    assert run_check(tcp_check(closed, 2), env).returncode != 0


def test_an_exec_probe_is_the_check_itself() -> None:
    check = healthcheck(ProbeSpec(handler="exec", command=("cat", "/tmp/ready")))
    assert check["test"] == ["CMD", "cat", "/tmp/ready"]


# -- Kubernetes ---------------------------------------------------------------------------------


def test_manifests_validate_against_the_kubernetes_schemas(rendered: Path) -> None:
    checked = []
    for path in sorted((rendered / "k8s").rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked.append(f"{path.parent.name}/{doc['kind']}")
    assert checked == [
        "hello-world/Deployment",
        "hello-world/Service",
        "text-generator/Deployment",
        "text-generator/Service",
        "trainer/Job",
    ]


def test_the_deployment_runs_the_containers_as_given(rendered: Path) -> None:
    deployment = manifest(rendered, "text-generator/deployment.yaml")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    api, rtd = pod["containers"]
    assert api["command"] == ["/usr/local/bin/serve"]
    # Kubernetes expands $(VAR) itself: the args stay as written
    assert api["args"] == [
        "--port=$(CORTEX_PORT)",
        "--model=$(MODEL_NAME)",
        "--literal=$$(MODEL_NAME)",
    ]
    assert api["env"][0] == {"name": "CORTEX_PORT", "value": "9000"}
    assert api["ports"] == [{"name": "http", "containerPort": 9000}]
    assert api["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    assert api["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": 9000},
        "initialDelaySeconds": 5,
        "timeoutSeconds": 3,
        "periodSeconds": 7,
        "successThreshold": 2,
        "failureThreshold": 4,
    }
    assert api["livenessProbe"]["tcpSocket"] == {"port": 9000}
    assert api["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert {"name": "dshm-api", "mountPath": "/dev/shm"} in api["volumeMounts"]
    assert rtd["resources"] == {
        "requests": {"cpu": "500m", "aws.amazon.com/neuron": "1"},
        "limits": {"aws.amazon.com/neuron": "1"},
    }
    assert rtd["lifecycle"] == {"preStop": {"httpGet": {"path": "/drain", "port": 8081}}}
    assert "ports" not in rtd
    assert {"name": "mnt", "emptyDir": {}} in pod["volumes"]
    assert all({"name": "mnt", "mountPath": "/mnt"} in c["volumeMounts"] for c in (api, rtd))
    service = manifest(rendered, "text-generator/service.yaml")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}
    ]
    hello = manifest(rendered, "hello-world/deployment.yaml")["spec"]
    assert hello["replicas"] == 1  # min_replicas 0: one replica runs (no activator here)
    probe = hello["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["tcpSocket"] == {"port": 8080}


def test_a_task_is_a_job_applied_on_its_own(rendered: Path) -> None:
    job = manifest(rendered, "trainer/job.yaml")
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert [c["name"] for c in pod["containers"]] == ["trainer", "logger"]
    assert pod["containers"][0]["args"] == ["--epochs", "3"]
    assert all(
        not any(e["name"] == "CORTEX_PORT" for e in c.get("env", [])) for c in pod["containers"]
    )
    top = manifest(rendered, "kustomization.yaml")
    assert top["resources"] == ["hello-world", "text-generator"]  # applying runs no task
    assert manifest(rendered, "trainer/kustomization.yaml")["resources"] == ["job.yaml"]


@pytest.mark.skipif(KUSTOMIZE is None, reason="neither kubectl >= 1.21 nor kustomize on PATH")
def test_kustomize_builds_the_project(rendered: Path) -> None:
    assert KUSTOMIZE is not None  # the skipif
    built = subprocess.run([*KUSTOMIZE, str(rendered / "k8s")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(built.stdout)]
    assert sorted(kinds) == ["Deployment", "Deployment", "Service", "Service"]
    job = subprocess.run(
        [*KUSTOMIZE, str(rendered / "k8s" / "trainer")], capture_output=True, text=True
    )
    assert job.returncode == 0 and "kind: Job" in job.stdout


def test_a_container_batch_api_gets_a_batch_worker_beside_it(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "- name: sum\n  kind: BatchAPI\n  pod:\n    port: 9000\n    containers:\n"
        "      - name: api\n        image: example/sum:1\n        command: [uvicorn, main:app]\n"
        "        readiness_probe: {http_get: {port: 9000, path: /healthz}}\n"
        "      - {name: cache, image: example/cache:1, command: [cache]}\n",
    )
    out = tmp_path / "out"
    result = cli("render", project, "-o", out, "--registry", "registry.example.com/t")
    assert result.returncode == 0, result.stderr
    assert "sum: docker build -t registry.example.com/t/sum:latest" in result.stdout
    assert "only the batch worker's is built" in result.stdout
    dockerfile = (out / "sum" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python3", "-m", "cortex_serve.dequeuer"]' in dockerfile
    assert (out / "sum" / "runtime" / "cortex_serve" / "dequeuer.py").is_file()
    services = compose(out)["services"]
    assert sorted(services) == ["job-sum", "job-sum-cache", "job-sum-dequeuer"]
    worker = services["job-sum-dequeuer"]
    assert worker["command"] == ["--url", "http://localhost:9000/"]
    assert worker["network_mode"] == "service:job-sum"
    assert worker["depends_on"] == {"job-sum": {"condition": "service_healthy"}}
    assert worker["profiles"] == ["jobs"] and "ports" not in services["job-sum"]
    job = manifest(out, "sum/job.yaml")
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    # the user's containers are native sidecars: the pod ends when the worker does
    assert [(c["name"], c["restartPolicy"]) for c in pod["initContainers"]] == [
        ("api", "Always"),
        ("cache", "Always"),
    ]
    (dequeuer,) = pod["containers"]
    assert dequeuer["image"] == "registry.example.com/t/sum:latest"
    assert dequeuer["args"] == [
        "--url",
        "http://localhost:9000/",
        "--ready-url",
        "http://localhost:9000/healthz",
    ]
    assert {"name": "job", "configMap": {"name": "api-sum-job"}} in pod["volumes"]
    assert all(
        {"name": "job", "mountPath": "/cortex/spec", "readOnly": True} in c["volumeMounts"]
        for c in [*pod["initContainers"], dequeuer]
    )
    kustomization = manifest(out, "sum/kustomization.yaml")
    assert kustomization["configMapGenerator"] == [{"name": "api-sum-job", "files": ["job.json"]}]
    assert manifest(out, "kustomization.yaml")["resources"] == []  # applying runs no job


def test_one_container_realtime_apis_stay_swarm_deployable(tmp_path: Path) -> None:
    """No network_mode, no profiles: the file declares the version docker stack deploy needs,
    and docker-compose 1.29 checks it against that version's schema (unknown keys fail)."""
    project = make_project(
        tmp_path,
        "- name: a\n  kind: RealtimeAPI\n  pod:\n    containers:\n"
        "      - name: api\n        image: example/a:1\n        compute: {cpu: 1, mem: 1Gi}\n"
        "        readiness_probe: {http_get: {port: 8080, path: /healthz}}\n",
    )
    render_project(load_project(project), tmp_path / "out")
    document = compose(tmp_path / "out")
    assert document["version"] == "3.8"
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    checked = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "out" / "docker-compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_api_selects_container_apis_too(tmp_path: Path) -> None:
    result = cli("render", PROJECT, "-o", tmp_path / "out", "--api", "hello-world")
    assert result.returncode == 0, result.stderr
    assert sorted(compose(tmp_path / "out")["services"]) == ["hello-world"]
    assert sorted(p.name for p in (tmp_path / "out" / "k8s").iterdir() if p.is_dir()) == [
        "hello-world"
    ]
    unknown = cli("render", PROJECT, "-o", tmp_path / "out2", "--api", "nope")
    assert unknown.returncode == 2
    assert (
        'no API is named "nope" (the APIs are: text-generator, hello-world, trainer)'
        in unknown.stderr
    )


@pytest.mark.skipif(KUSTOMIZE is None, reason="neither kubectl >= 1.21 nor kustomize on PATH")
def test_kustomize_makes_the_batch_jobs_config_map_from_job_json(tmp_path: Path) -> None:
    assert KUSTOMIZE is not None  # the skipif
    example = Path(__file__).parents[2] / "examples" / "v0.42-containers"
    out = tmp_path / "out"
    render_project(load_project(example), out)
    folder = out / "k8s" / "iris-batch"
    missing = subprocess.run([*KUSTOMIZE, str(folder)], capture_output=True, text=True)
    assert missing.returncode != 0 and "job.json" in missing.stderr  # the user copies it there
    shutil.copy(example / "job.json", folder / "job.json")
    built = subprocess.run([*KUSTOMIZE, str(folder)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    config_map, job = yaml.safe_load_all(built.stdout)
    assert json.loads(config_map["data"]["job.json"])["item_list"]["batch_size"] == 3
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert {"name": "job", "configMap": {"name": config_map["metadata"]["name"]}} in volumes
