"""Kubernetes manifests for a project: OUT/k8s/kustomization.yaml plus one folder per API.

`render_k8s` returns {path relative to OUT/k8s: content}; the caller writes the files. Every
mapping from a Cortex field to a Kubernetes field lives in this module and those it names
(docs/kubernetes.md has the table). The output is deterministic: same project, same bytes.

Per API (folder `<name>/`): a Deployment and a Service `api-<name>` on port 8888 (the name Cortex
gave it, so chaining URLs keep working in the cluster; k8s_workloads.py), a
HorizontalPodAutoscaler (autoscaling/v2) or a KEDA ScaledObject (k8s_autoscaling.py), a
ConfigMap with `predictor.env` when it has any, and a kustomization. At the top: a kustomization
listing the API folders and, when the project has a `.env`, a secretGenerator per API reading
`.env` from OUT/k8s at apply time. The renderer only checks that `.env` exists; its values never
reach a rendered file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .container_k8s import in_top_kustomization, render_container_api
from .errors import Problem, UserError, api_problem
from .job_k8s import render_job_api
from .k8s_autoscaling import adapter_values, autoscaler_manifests, autoscaler_problem
from .k8s_files import HEADER, TOP_HEADER, api_folder, dump_manifest
from .k8s_workloads import (
    api_deployment,
    dotenv_secret_name,
    env_config_map,
    service,
)
from .spec import SERVER_PORT, ApiSpec, ContainerApiSpec, Project, SplitterSpec
from .splitters import k8s_manifests


def render_k8s(
    project: Project,
    apis: Sequence[ApiSpec],
    image_refs: Mapping[str, str],
    autoscaler: str = "hpa",
    container_apis: Sequence[ContainerApiSpec] = (),
    splitters: Sequence[SplitterSpec] = (),
) -> dict[str, str]:
    """{path relative to OUT/k8s: content} for `apis`, `container_apis` (container_k8s.py) and
    traffic `splitters` (splitters.py); raises UserError naming API and field."""
    config_name = project.config_file.name
    bad_option = autoscaler_problem(autoscaler)
    if bad_option is not None:
        raise UserError(bad_option)
    has_dotenv = (project.root / ".env").is_file()  # existence only: values stay unread
    problems: list[Problem] = []
    files: dict[str, str] = {}
    for api in sorted(apis, key=lambda a: a.name):
        try:
            image = image_refs[api.name]
        except KeyError:
            problems.append(api_problem(project, api, None, "no image reference was given for it"))
            continue
        try:
            if api.is_job:
                files.update(render_job_api(project, api, image, has_dotenv))
            else:
                files.update(_render_api(project, api, image, autoscaler, has_dotenv))
        except UserError as err:
            problems.extend(err.problems)
    for container_api in sorted(container_apis, key=lambda a: a.name):
        try:
            files.update(
                render_container_api(project, container_api, image_refs.get(container_api.name))
            )
        except UserError as err:
            problems.extend(err.problems)
    if problems:
        raise UserError(problems)
    for splitter in splitters:
        header = HEADER.format(config=config_name, api=splitter.name)
        resources = k8s_manifests(splitter, image_refs[splitter.name])
        files.update(api_folder(header, splitter.name, resources))
    top = _top_kustomization(apis, has_dotenv)
    top["resources"] = sorted(
        [
            *top["resources"],
            *(a.name for a in container_apis if in_top_kustomization(a)),
            *(s.name for s in splitters),
        ]
    )
    files["kustomization.yaml"] = dump_manifest(TOP_HEADER.format(config=config_name), top)
    # The .env copied here for kustomize must never be committed with the manifests.
    files[".gitignore"] = ".env\n"
    adapter = adapter_values([api for api in apis if not api.is_job], autoscaler)
    if adapter is not None:
        files["prometheus-adapter-values.yaml"] = dump_manifest(
            TOP_HEADER.format(config=config_name)
            + "# Helm values for prometheus-community/prometheus-adapter: the custom metrics\n"
            + "# the HorizontalPodAutoscalers read (see docs/kubernetes.md).\n",
            adapter,
        )
    return dict(sorted(files.items()))


def _render_api(
    project: Project, api: ApiSpec, image: str, autoscaler: str, has_dotenv: bool
) -> dict[str, str]:
    resources: dict[str, dict[str, Any]] = {}
    env_config = env_config_map(api)
    if env_config is not None:
        resources["configmap.yaml"] = env_config
    resources["deployment.yaml"] = api_deployment(project, api, image, env_config, has_dotenv)
    resources["service.yaml"] = service(api, SERVER_PORT)
    resources.update(autoscaler_manifests(project, api, autoscaler))
    return api_folder(
        HEADER.format(config=project.config_file.name, api=api.name), api.name, resources
    )


def _top_kustomization(apis: Sequence[ApiSpec], has_dotenv: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # a job API's folder runs a job when applied: it is applied on its own (job_k8s.py)
        "resources": sorted(api.name for api in apis if not api.is_job),
    }
    if has_dotenv:
        # Read at `kubectl apply -k` time from OUT/k8s/.env (kustomize loads no file outside its
        # root): the user copies the project's .env there; see docs/kubernetes.md. A job API's
        # Secret keeps its plain name: its Job, applied from its own folder, names it so.
        doc["secretGenerator"] = [
            {
                "name": dotenv_secret_name(api),
                "envs": [".env"],
                **({"options": {"disableNameSuffixHash": True}} if api.is_job else {}),
            }
            for api in sorted(apis, key=lambda a: a.name)
        ]
    return doc
