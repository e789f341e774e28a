"""BatchAPI and TaskAPI rendered: images that run a job, one-shot compose services in the profile
`jobs`, and Kubernetes Jobs (an Indexed Job for a BatchAPI) validated against the schemas."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cortex_build.cli import main
from cortex_build.spec import ComputeSpec, PredictorSpec
from k8s_checks import (
    KUSTOMIZE,
    OLDEST_K8S_VERSION,
    python_api,
    render,
    tensorflow_api,
    validate_standard,
    write_tree,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def render_examples(tmp_path: Path) -> Path:
    """One project of a realtime API, the batch example and the task example."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "batch", project)
    shutil.copy(EXAMPLES / "task" / "task.py", project / "task.py")
    shutil.copytree(EXAMPLES / "task" / "data", project / "data")
    (project / "realtime.py").write_text(
        "class PythonPredictor:\n"
        "    def __init__(self, config):\n        pass\n\n"
        "    def predict(self, payload):\n        return payload\n"
    )
    config = (project / "cortex.yaml").read_text()
    config += (EXAMPLES / "task" / "cortex.yaml").read_text()
    config += "- name: echo\n  kind: RealtimeAPI\n  predictor: {type: python, path: realtime.py}\n"
    (project / "cortex.yaml").write_text(config)
    out = tmp_path / "out"
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["render", str(project), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_job_images_run_the_job_runner_without_port_or_health_check(tmp_path: Path) -> None:
    out = render_examples(tmp_path)
    for job in ("iris-batch", "iris-report"):
        dockerfile = (out / job / "Dockerfile").read_text()
        assert "HEALTHCHECK" not in dockerfile and "EXPOSE" not in dockerfile
        entrypoint = (out / job / "cortex" / "entrypoint.sh").read_text()
        assert "exec python -m cortex_serve.jobs --spec /opt/cortex/api.json" in entrypoint
        assert '"$@"' in entrypoint
    realtime = (out / "echo" / "Dockerfile").read_text()
    assert "HEALTHCHECK" in realtime and "EXPOSE 8888" in realtime
    batch_spec = yaml.safe_load((out / "iris-batch" / "cortex" / "api.json").read_text())
    assert batch_spec["kind"] == "BatchAPI" and batch_spec["predictor"]["interface"] == "class"
    task_spec = yaml.safe_load((out / "iris-report" / "cortex" / "api.json").read_text())
    assert task_spec["kind"] == "TaskAPI" and task_spec["predictor"]["interface"] == "task"
    assert "kind" not in yaml.safe_load((out / "echo" / "cortex" / "api.json").read_text())


def test_compose_runs_jobs_once_and_only_when_asked(tmp_path: Path) -> None:
    out = render_examples(tmp_path)
    text = (out / "docker-compose.yaml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {"job-iris-batch", "job-iris-report", "echo"}
    for name, folder in (("job-iris-batch", "iris-batch"), ("job-iris-report", "iris-report")):
        job = services[name]
        assert job["profiles"] == ["jobs"]
        assert "ports" not in job and "healthcheck" not in job
        assert job["volumes"] == [f"./{folder}/job:/cortex/spec:ro"]
        assert (out / folder / "job" / "job.json").is_file()
    # the realtime API keeps the first host port: jobs publish none
    assert services["echo"]["ports"] == ["127.0.0.1:8890:8888"]
    assert "docker-compose run --rm job-iris-batch" in text
    assert "version" not in compose  # profiles: not for docker stack deploy
    if shutil.which("docker-compose"):  # 1.29 reads profiles (since 1.28)
        subprocess.run(
            ["docker-compose", "-f", str(out / "docker-compose.yaml"), "config", "-q"],
            check=True,
        )


def job_files(tmp_path: Path, *apis: Any) -> dict[str, str]:
    return render(tmp_path, *apis)


def batch_api(name: str = "batch", **changes: Any) -> Any:
    return replace(python_api(name, **changes), kind="BatchAPI")


def test_a_batch_api_is_an_indexed_job_and_a_task_api_a_job(tmp_path: Path) -> None:
    task = replace(
        python_api(
            "task", predictor=PredictorSpec(type="python", interface="task", path="task.py")
        ),
        kind="TaskAPI",
    )
    files = job_files(
        tmp_path,
        batch_api(compute=ComputeSpec(cpu="1", mem="1Gi")),
        task,
        python_api("web"),
        replace(tensorflow_api("tf-batch"), kind="BatchAPI"),
    )
    for path, content in files.items():
        job_api = path.split("/")[0] in ("batch", "task", "tf-batch")
        if job_api and "kustomization" not in path:
            doc = yaml.safe_load(content)
            validate_standard(doc)
            validate_standard(doc, OLDEST_K8S_VERSION)  # native sidecars, backoffLimitPerIndex
    top = yaml.safe_load(files["kustomization.yaml"])
    assert top["resources"] == ["web"]  # applying a job's folder runs it: applied on its own
    job = yaml.safe_load(files["batch/job.yaml"])
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1
    assert job["spec"]["backoffLimitPerIndex"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert {"name": "job-spec", "mountPath": "/cortex/spec", "readOnly": True} in container[
        "volumeMounts"
    ]
    config_map = yaml.safe_load(files["batch/job-configmap.yaml"])
    assert config_map["metadata"]["name"] == "api-batch-job"
    assert yaml.safe_load(config_map["data"]["job.json"])["workers"] == 1
    assert yaml.safe_load(files["batch/kustomization.yaml"])["resources"] == [
        "job-configmap.yaml",
        "job.yaml",
    ]
    complete = yaml.safe_load(files["batch/on-job-complete.yaml"])
    assert complete["metadata"]["name"] == "api-batch-on-job-complete"
    assert complete["spec"]["backoffLimit"] == 0 and "completionMode" not in complete["spec"]
    assert complete["spec"]["template"]["spec"]["containers"][0]["args"] == ["--on-job-complete"]
    assert (
        "kubectl wait --for=condition=complete job/api-batch" in files["batch/on-job-complete.yaml"]
    )
    task_job = yaml.safe_load(files["task/job.yaml"])
    assert task_job["spec"]["backoffLimit"] == 0 and "completionMode" not in task_job["spec"]
    assert "task/on-job-complete.yaml" not in files
    # TF Serving beside a job worker is a native sidecar, stopped when the worker ends
    tf_pod = yaml.safe_load(files["tf-batch/job.yaml"])["spec"]["template"]["spec"]
    sidecar = [c for c in tf_pod["initContainers"] if c["name"] == "tensorflow-serving"]
    assert sidecar and sidecar[0]["restartPolicy"] == "Always"
    assert [c["name"] for c in tf_pod["containers"]] == ["api"]


@pytest.mark.skipif(KUSTOMIZE is None, reason="neither kubectl >= 1.21 nor kustomize on PATH")
def test_a_job_folder_builds_with_kustomize_and_names_the_env_secret(tmp_path: Path) -> None:
    assert KUSTOMIZE is not None
    files = render(tmp_path, batch_api(), python_api("web"), dotenv="TOKEN=x\n")
    out = tmp_path / "out" / "k8s"
    write_tree(files, out)
    shutil.copy(tmp_path / "project" / ".env", out / ".env")
    top = subprocess.run([*KUSTOMIZE, str(out)], capture_output=True, text=True, check=True)
    secrets = [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(top.stdout)
        if doc and doc["kind"] == "Secret"
    ]
    assert "api-batch-env" in secrets  # no hash suffix: the job's folder names it so
    built = subprocess.run(
        [*KUSTOMIZE, str(out / "batch")], capture_output=True, text=True, check=True
    )
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert [doc["kind"] for doc in docs] == ["ConfigMap", "Job"]
    for doc in docs:
        validate_standard(doc)
    env_from = docs[1]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "api-batch-env"}} in env_from
