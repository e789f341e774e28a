"""Kubernetes manifests for the job kinds of predictor code (BatchAPI, TaskAPI), from the pod
parts of k8s_workloads.py (names, labels, requests, security contexts) and k8s_files.py's
headers and folders.

Per API (folder `<name>/`, left out of the top kustomization: applying it runs a job, as
submitting one did in Cortex; applying the project only deploys what serves):
- a ConfigMap `api-<name>-job` holding job.json (the job: items, config, workers; Kubernetes
  keeps a ConfigMap under 1 MiB, so larger item sets go as `delimited_files` with s3:// paths),
  mounted at /cortex/spec as Cortex's job spec was;
- TaskAPI: a Job `api-<name>` running the task once (backoffLimit 0: a retry is a new job);
- BatchAPI: an Indexed Job `api-<name>`, completions = parallelism = the job's workers: pod i
  (JOB_COMPLETION_INDEX) takes batches i, i+N, ... and retries each failing one itself up to
  max_receive_count; backoffLimitPerIndex 0, so a worker that failed is not run again (its
  batches would run twice) and the others go on;
- BatchAPI: `on-job-complete.yaml`, a second Job that builds the predictor once and runs its
  on_job_complete. Indexed pods cannot wait for each other, so this runs when applied, after the
  workers' Job completed: `kubectl wait --for=condition=complete job/api-<name>` first.
"""

from __future__ import annotations

from typing import Any

from . import jobs
from .errors import UserError, api_problem
from .images import COPY_MODELS_SCRIPT
from .k8s_files import HEADER, api_folder, dump_manifest
from .k8s_workloads import (
    RESTRICTED_SECURITY_CONTEXT,
    container_resources,
    copy_models_container,
    env_config_map,
    job,
    job_config_map_name,
    k8s_name,
    metadata,
    pod_parts,
    security_context,
    tf_serving_container,
)
from .spec import ApiSpec, Project

JOB_VOLUME = "job-spec"


def render_job_api(project: Project, api: ApiSpec, image: str, has_dotenv: bool) -> dict[str, str]:
    """{path relative to OUT/k8s: content} for one job API."""
    sample = jobs.sample_job(api)
    text = jobs.job_text(sample)
    if len(text.encode()) > jobs.CONFIGMAP_LIMIT_BYTES:  # pragma: no cover - the sample is small
        raise UserError(api_problem(project, api, None, "the job file is over 1 MiB"))
    resources: dict[str, dict[str, Any]] = {}
    env_config = env_config_map(api)
    if env_config is not None:
        resources["configmap.yaml"] = env_config
    resources["job-configmap.yaml"] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(api, job_config_map_name(api)),
        "data": {jobs.JOB_FILE: text},
    }
    workers = int(sample.get("workers", 1))
    resources["job.yaml"] = _job(project, api, image, env_config, has_dotenv, workers)
    header = HEADER.format(config=project.config_file.name, api=api.name)
    files = api_folder(header, api.name, resources)
    if api.kind == "BatchAPI":
        complete = _job(project, api, image, env_config, has_dotenv, 1, on_job_complete=True)
        files[f"{api.name}/on-job-complete.yaml"] = dump_manifest(
            header
            + f"# Apply after the workers' Job completed: kubectl wait --for=condition=complete "
            f"job/{k8s_name(api)} --timeout=-1s\n",
            complete,
        )
    return files


def _job(
    project: Project,
    api: ApiSpec,
    image: str,
    env_config: dict[str, Any] | None,
    has_dotenv: bool,
    workers: int,
    on_job_complete: bool = False,
) -> dict[str, Any]:
    is_tensorflow = api.predictor.type == "tensorflow"
    parts = pod_parts(project, api, env_config, has_dotenv)
    api_requests, tf_requests = parts.api_requests, parts.tf_requests
    env, env_from = parts.env, parts.env_from
    job_volume = {"name": JOB_VOLUME, "configMap": {"name": job_config_map_name(api)}}
    volumes = [job_volume, *parts.volumes]
    mounts = [{"name": JOB_VOLUME, "mountPath": jobs.JOB_SPEC_DIR, "readOnly": True}, *parts.mounts]
    container: dict[str, Any] = {
        "name": "api",
        "image": image,
        **({"args": ["--on-job-complete"]} if on_job_complete else {}),
        **({"env": env} if env else {}),
        **({"envFrom": env_from} if env_from else {}),
        "resources": container_resources(api_requests),
        "volumeMounts": mounts,
        "securityContext": security_context(RESTRICTED_SECURITY_CONTEXT),
    }
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if is_tensorflow:
        # TF Serving as a native sidecar (an init container that keeps running, Kubernetes
        # 1.29+): it is stopped once the worker ended, so the Job can complete.
        serving = tf_serving_container(api, tf_requests)
        serving["restartPolicy"] = "Always"
        serving.pop("lifecycle", None)
        serving["startupProbe"] = {
            "tcpSocket": {"port": "grpc"},
            "periodSeconds": 5,
            "failureThreshold": 120,
        }
        pod_spec["initContainers"] = [
            copy_models_container(image, COPY_MODELS_SCRIPT, api_requests),
            serving,
        ]
    pod_spec["volumes"] = volumes
    spec: dict[str, Any] = {"backoffLimit": 0}
    if api.kind == "BatchAPI" and not on_job_complete:
        spec = {
            "completionMode": "Indexed",
            "completions": workers,
            "parallelism": workers,
            "backoffLimitPerIndex": 0,
        }
    name = k8s_name(api) + ("-on-job-complete" if on_job_complete else "")
    return job(api, pod_spec, spec, name)
