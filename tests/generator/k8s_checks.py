"""Shared by the Kubernetes tests: small ApiSpecs, rendering k8s/ without a cortex.yaml, and the
offline checks (kubernetes-validate's schemas, strict; kustomize)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
from cortex_build.images import image_ref
from cortex_build.k8s import render_k8s
from cortex_build.spec import ApiSpec, ModelRef, ModelsSpec, PredictorSpec, Project

# behavior.*.tolerance is on by default from 1.35 (beta); older servers: docs/kubernetes.md.
K8S_VERSION = "1.35.0"
# Without the tolerance lines the manifests must also suit older clusters (the documented
# `kubectl apply --validate=warn` fallback drops just those lines).
OLDEST_K8S_VERSION = "1.29.0"


def python_api(name: str = "iris", **changes: Any) -> ApiSpec:
    predictor = changes.pop(
        "predictor", PredictorSpec(type="python", interface="class", path="predictor.py")
    )
    return ApiSpec(
        name=name, generation="v0.26", endpoint=f"/{name}", predictor=predictor, line=3, **changes
    )


def tensorflow_api(name: str = "tf", **changes: Any) -> ApiSpec:
    predictor = PredictorSpec(
        type="tensorflow",
        interface="class",
        path="predictor.py",
        models=ModelsSpec(paths=(ModelRef(name="_cortex_default", path="model"),)),
        processes_per_replica=2,
        threads_per_process=4,
        log_level="warning",
    )
    return python_api(name, predictor=predictor, **changes)


def make_project(root: Path, apis: tuple[ApiSpec, ...], dotenv: str | None = None) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    if dotenv is not None:
        (root / ".env").write_text(dotenv)
    return Project(root=root, config_file=root / "cortex.yaml", apis=apis)


def render(
    tmp_path: Path,
    *apis: ApiSpec,
    autoscaler: str = "hpa",
    dotenv: str | None = None,
    registry: str | None = "registry.example.com/team",
) -> dict[str, str]:
    project = make_project(tmp_path / "project", apis, dotenv)
    refs = {api.name: image_ref(api.name, registry, "v1") for api in apis}
    return render_k8s(project, apis, refs, autoscaler)


def validate_standard(doc: dict[str, Any], version: str = K8S_VERSION) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def write_tree(files: dict[str, str], out: Path) -> None:
    for path, content in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def kustomize_command() -> list[str] | None:
    """`kubectl kustomize` when kubectl embeds kustomize >= 4 (older ones, such as Debian
    bookworm's kubectl 1.20 with kustomize 2.0, cannot build folder resources or `envs`), else a
    standalone `kustomize build`; None when neither is there."""
    if shutil.which("kubectl"):
        version = subprocess.run(
            ["kubectl", "version", "--client"], capture_output=True, text=True
        ).stdout
        embedded = re.search(r"Kustomize Version: v(\d+)", version)
        if embedded and int(embedded.group(1)) >= 4:
            return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


KUSTOMIZE = kustomize_command()
