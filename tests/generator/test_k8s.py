"""Kubernetes manifests: every Cortex field's mapping, and validation against the real schemas.

Standard kinds are validated offline with `kubernetes-validate` (the Kubernetes OpenAPI schemas,
strict: unknown fields fail). KEDA's ScaledObject is a CRD: it is checked against the models
`cloudcoil-models-keda` generates from KEDA's published CRD and field by field.
When `kubectl` is on PATH, the kustomization itself is built with its embedded kustomize.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject as KedaScaledObject  # KEDA 2.16 CRD
from cortex_build.errors import UserError
from cortex_build.images import TF_SERVING_CPU, TF_SERVING_GPU, USER_ID, image_ref
from cortex_build.k8s import render_k8s
from cortex_build.k8s_workloads import DRAIN_SECONDS, PRESTOP_SECONDS
from cortex_build.spec import (
    ApiSpec,
    AutoscalingSpec,
    BatchingSpec,
    ComputeSpec,
    PredictorSpec,
    UpdateStrategySpec,
)
from k8s_checks import (
    KUSTOMIZE,
    OLDEST_K8S_VERSION,
    make_project,
    python_api,
    render,
    tensorflow_api,
    validate_standard,
    write_tree,
)

DOTENV_VALUES = ("s3cr3t-token-6f1d9a", "postgres://user:pw-83bc@db/prod")


# Every case the issue names: defaults, GPU, shm, the TF sidecar, CPU utilization, env.
CASES: dict[str, ApiSpec] = {
    "defaults": python_api("defaults"),
    "gpu-onnx": python_api(
        "gpu-onnx",
        predictor=PredictorSpec(type="onnx", interface="class", path="p.py", shm_size="1Gi"),
        compute=ComputeSpec(cpu="2", gpu=2, mem="4Gi"),
    ),
    "tf-gpu": tensorflow_api("tf-gpu", compute=ComputeSpec(cpu="1", gpu=1, mem="3Gi")),
    "tf-cpu": tensorflow_api("tf-cpu", compute=ComputeSpec(cpu="250m", mem=None)),
    "cpu-util": python_api(
        "cpu-util",
        autoscaling=AutoscalingSpec(target_cpu_utilization=70),
        update_strategy=UpdateStrategySpec(max_surge="3", max_unavailable="0"),
    ),
    "env": python_api(
        "env",
        predictor=PredictorSpec(
            type="python", interface="class", path="p.py", env={"B": "2", "A": "x y"}
        ),
        autoscaling=AutoscalingSpec(
            window=30.0, target_replica_concurrency=2.5, max_upscale_factor=10.0
        ),
    ),
    "no-requests": python_api("no-requests", compute=ComputeSpec(cpu=None, mem=None)),
}


def manifest(files: dict[str, str], path: str) -> dict[str, Any]:
    return yaml.safe_load(files[path])


def pod_spec(files: dict[str, str], api: str) -> dict[str, Any]:
    return manifest(files, f"{api}/deployment.yaml")["spec"]["template"]["spec"]


def container(files: dict[str, str], api: str, name: str = "api") -> dict[str, Any]:
    (found,) = [c for c in pod_spec(files, api)["containers"] if c["name"] == name]
    return found


def validate_scaled_object(doc: dict[str, Any]) -> None:
    """A field the CRD's models do not know is dropped by pydantic, and a wrong type raises: the
    round trip must give back the document unchanged."""
    model = KedaScaledObject.model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == doc


def rendered_manifests(files: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object and kustomization (not the adapter's Helm values)."""
    return [
        yaml.safe_load(content)
        for path, content in files.items()
        if path.endswith(".yaml") and path != "prometheus-adapter-values.yaml"
    ]


def without_tolerance(doc: dict[str, Any]) -> dict[str, Any]:
    for rules in doc["spec"]["behavior"].values():
        rules.pop("tolerance")
    return doc


# ---------------------------------------------------------------------------------------------
# Schema validation


@pytest.mark.parametrize("autoscaler", ["hpa", "keda"])
def test_every_manifest_validates_against_the_kubernetes_schemas(
    tmp_path: Path, autoscaler: str
) -> None:
    files = render(tmp_path, *CASES.values(), autoscaler=autoscaler, dotenv="A=1\n")
    checked = 0
    for doc in rendered_manifests(files):
        if doc["kind"] in ("Kustomization", "ScaledObject"):
            continue  # kustomize builds the first below; the second is a CRD: tests below
        validate_standard(doc)
        if doc["kind"] == "HorizontalPodAutoscaler":
            doc = without_tolerance(doc)
        validate_standard(doc, OLDEST_K8S_VERSION)
        checked += 1
    # per API a Deployment, a Service (and an HPA); the "env" case also a ConfigMap
    assert checked == (3 if autoscaler == "hpa" else 2) * len(CASES) + 1


def test_scaled_objects_match_kedas_published_crd(tmp_path: Path) -> None:
    files = render(tmp_path, *CASES.values(), autoscaler="keda")
    scaled_objects = [doc for doc in rendered_manifests(files) if doc["kind"] == "ScaledObject"]
    assert len(scaled_objects) == len(CASES)
    for doc in scaled_objects:
        validate_scaled_object(doc)
    with pytest.raises(AssertionError):  # the check notices a field the CRD lacks
        hpa_config = scaled_objects[0]["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
        hpa_config["behavior"]["scaleUp"]["tolerance"] = "0.05"
        validate_scaled_object(scaled_objects[0])


def test_the_validator_rejects_what_kubernetes_rejects(tmp_path: Path) -> None:
    """Guards the validation above against passing everything."""
    doc = manifest(render(tmp_path, CASES["defaults"]), "defaults/deployment.yaml")
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_standard(doc)
    hpa = manifest(render(tmp_path, CASES["defaults"]), "defaults/hpa.yaml")
    with pytest.raises(kubernetes_validate.ValidationError):  # no tolerance before 1.33
        validate_standard(hpa, "1.32.0")


@pytest.mark.skipif(
    KUSTOMIZE is None, reason="neither kubectl >= 1.21 nor kustomize on PATH (CI installs it)"
)
@pytest.mark.parametrize("autoscaler", ["hpa", "keda"])
def test_kustomize_build_validates(tmp_path: Path, autoscaler: str) -> None:
    assert KUSTOMIZE is not None  # the skipif
    dotenv = f"TOKEN={DOTENV_VALUES[0]}\n"
    files = render(tmp_path, *CASES.values(), autoscaler=autoscaler, dotenv=dotenv)
    out = tmp_path / "out" / "k8s"
    write_tree(files, out)
    shutil.copy(tmp_path / "project" / ".env", out / ".env")  # the documented step
    built = subprocess.run(
        [*KUSTOMIZE, str(out)], capture_output=True, text=True, check=True
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    secrets = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Secret"}
    for doc in docs:
        if doc["kind"] != "ScaledObject":  # the CRD: test_scaled_objects_match_kedas_published_crd
            validate_standard(doc)
        if doc["kind"] == "Deployment":
            # kustomize renamed the generated Secret (hash suffix) and the reference with it.
            (api,) = doc["spec"]["template"]["spec"]["containers"][:1]
            secret_refs = [src["secretRef"]["name"] for src in api["envFrom"] if "secretRef" in src]
            assert len(secret_refs) == 1
            assert secret_refs[0] in secrets
    assert len(secrets) == len(CASES)


# ---------------------------------------------------------------------------------------------
# Autoscaling


def test_autoscaling_fields_map_to_the_hpa(tmp_path: Path) -> None:
    scaling = AutoscalingSpec(
        min_replicas=2,
        max_replicas=7,
        init_replicas=3,
        target_replica_concurrency=2.5,
        window=30.0,
        downscale_stabilization_period=120.0,
        upscale_stabilization_period=0.0,
        max_downscale_factor=0.5,
        max_upscale_factor=3.0,
        downscale_tolerance=0.1,
        upscale_tolerance=0.02,
    )
    files = render(tmp_path, python_api(autoscaling=scaling))
    spec = manifest(files, "iris/hpa.yaml")["spec"]
    assert manifest(files, "iris/deployment.yaml")["spec"]["replicas"] == 3
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api-iris",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 7)
    assert spec["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "cortex_in_flight_requests_avg_30s"},
                "target": {"type": "AverageValue", "averageValue": "2.5"},
            },
        }
    ]
    assert spec["behavior"] == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 200, "periodSeconds": 30}],
            "tolerance": "0.02",
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 120,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}],
            "tolerance": "0.1",
        },
    }
    adapter = manifest(files, "prometheus-adapter-values.yaml")["rules"]["custom"]
    assert [rule["name"]["as"] for rule in adapter] == ["cortex_in_flight_requests_avg_30s"]
    assert "[30s]" in adapter[0]["metricsQuery"]
    assert adapter[0]["name"]["matches"] == "^cortex_in_flight_requests$"


def test_default_autoscaling_is_cortexs(tmp_path: Path) -> None:
    behavior = manifest(render(tmp_path, python_api()), "iris/hpa.yaml")["spec"]["behavior"]
    # max_upscale_factor 1.5 -> +50% per window; max_downscale_factor 0.75 -> -25% per window
    assert behavior["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 50, "periodSeconds": 60}
    ]
    assert behavior["scaleDown"]["policies"] == [
        {"type": "Percent", "value": 25, "periodSeconds": 60}
    ]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 60
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleUp"]["tolerance"] == behavior["scaleDown"]["tolerance"] == "0.05"


def test_one_adapter_rule_per_distinct_window(tmp_path: Path) -> None:
    apis = [
        python_api("a", autoscaling=AutoscalingSpec(window=60.0)),
        python_api("b", autoscaling=AutoscalingSpec(window=60.0)),
        python_api("c", autoscaling=AutoscalingSpec(window=90.5)),  # rounded up to 91s
        python_api("d", autoscaling=AutoscalingSpec(target_cpu_utilization=50, window=15.0)),
    ]
    files = render(tmp_path, *apis)
    rules = manifest(files, "prometheus-adapter-values.yaml")["rules"]["custom"]
    assert [rule["name"]["as"] for rule in rules] == [
        "cortex_in_flight_requests_avg_60s",
        "cortex_in_flight_requests_avg_91s",
    ]
    assert manifest(files, "c/hpa.yaml")["spec"]["metrics"][0]["pods"]["metric"]["name"] == (
        "cortex_in_flight_requests_avg_91s"
    )


def test_target_cpu_utilization_scales_on_cpu(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["cpu-util"])
    spec = manifest(files, "cpu-util/hpa.yaml")["spec"]
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    assert "prometheus-adapter-values.yaml" not in files  # no API needs the custom metric


def test_keda_scaled_object(tmp_path: Path) -> None:
    scaling = AutoscalingSpec(
        min_replicas=2, max_replicas=9, target_replica_concurrency=4.0, window=45.0
    )
    files = render(tmp_path, python_api(autoscaling=scaling), CASES["cpu-util"], autoscaler="keda")
    assert "iris/hpa.yaml" not in files  # KEDA owns the HPA
    assert "prometheus-adapter-values.yaml" not in files
    doc = manifest(files, "iris/scaledobject.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    spec = doc["spec"]
    assert spec["scaleTargetRef"]["name"] == "api-iris"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 9)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["query"] == (
        'sum(avg_over_time(cortex_in_flight_requests{api="iris"}[45s]))'
    )
    assert trigger["metadata"]["threshold"] == "4"
    assert all(isinstance(value, str) for value in trigger["metadata"].values())
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 50, "periodSeconds": 45}
    ]
    assert "tolerance" not in behavior["scaleUp"]  # KEDA's CRD has no such field (documented)
    cpu = manifest(files, "cpu-util/scaledobject.yaml")["spec"]["triggers"]
    assert cpu == [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}]
    assert "scaledobject.yaml" in manifest(files, "iris/kustomization.yaml")["resources"]


# ---------------------------------------------------------------------------------------------
# Deployment


@pytest.mark.parametrize(
    ("surge", "unavailable", "expected"),
    [
        ("25%", "25%", {"maxSurge": "25%", "maxUnavailable": "25%"}),
        ("3", "0", {"maxSurge": 3, "maxUnavailable": 0}),
        ("0", "10%", {"maxSurge": 0, "maxUnavailable": "10%"}),
    ],
)
def test_update_strategy_maps_to_rolling_update(
    tmp_path: Path, surge: str, unavailable: str, expected: dict[str, Any]
) -> None:
    api = python_api(
        update_strategy=UpdateStrategySpec(max_surge=surge, max_unavailable=unavailable)
    )
    strategy = manifest(render(tmp_path, api), "iris/deployment.yaml")["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": expected}


def test_gpu_and_resources_on_the_predictor(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["gpu-onnx"])
    api = container(files, "gpu-onnx")
    assert api["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "2"},
        "limits": {"nvidia.com/gpu": "2"},
    }
    assert len(pod_spec(files, "gpu-onnx")["containers"]) == 1


RESTRICTED_VOLUME_KINDS = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What the Pod Security Standard "restricted" refuses in a pod spec (the checks of
    k8s.io/pod-security-admission for this level; baseline's hold as no host field is set)."""
    found: list[str] = []
    pod_context = spec.get("securityContext", {})
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_KINDS:
            found.append(f"volume {volume['name']}: {sorted(kinds)}")
    for c in spec.get("initContainers", []) + spec["containers"]:
        context = c.get("securityContext", {})
        merged = {**pod_context, **context}
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{c['name']}: allowPrivilegeEscalation")
        if merged.get("runAsNonRoot") is not True or merged.get("runAsUser") == 0:
            found.append(f"{c['name']}: runAsNonRoot")
        if merged.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{c['name']}: seccompProfile")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or set(capabilities.get("add", [])) - {
            "NET_BIND_SERVICE"
        }:
            found.append(f"{c['name']}: capabilities")
        if context.get("privileged"):
            found.append(f"{c['name']}: privileged")
    return found


def test_pods_run_as_the_images_user_under_the_restricted_pod_security_level(
    tmp_path: Path,
) -> None:
    files = render(tmp_path, *CASES.values())
    for name, api in CASES.items():
        spec = pod_spec(files, name)
        context = container(files, name)["securityContext"]
        assert context["runAsUser"] == context["runAsGroup"] == USER_ID == 10001
        if api.predictor.type != "tensorflow":
            assert restricted_violations(spec) == [], name
            continue
        # the stock TF Serving image runs as root: only its sidecar falls short of "restricted"
        assert restricted_violations(spec) == [
            "tensorflow-serving: runAsNonRoot",
            "tensorflow-serving: capabilities",
        ], name
        serving = container(files, name, "tensorflow-serving")["securityContext"]
        assert serving == {
            "allowPrivilegeEscalation": False,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        (init,) = spec["initContainers"]
        assert init["securityContext"] == context  # copy-models runs as the API's user too
    # the checker does refuse what it should
    assert restricted_violations({"containers": [{"name": "root"}]}) == [
        "root: allowPrivilegeEscalation",
        "root: runAsNonRoot",
        "root: seccompProfile",
        "root: capabilities",
    ]


def test_no_requests_when_compute_sets_none(tmp_path: Path) -> None:
    assert container(render(tmp_path, CASES["no-requests"]), "no-requests")["resources"] == {}


def test_shm_size_is_a_memory_backed_empty_dir(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["gpu-onnx"])
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}} in pod_spec(
        files, "gpu-onnx"
    )["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(files, "gpu-onnx")["volumeMounts"]
    assert "volumes" not in pod_spec(render(tmp_path, CASES["defaults"]), "defaults")


def test_tensorflow_serving_sidecar_holds_the_gpu(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["tf-gpu"])
    spec = pod_spec(files, "tf-gpu")
    api, serving = container(files, "tf-gpu"), container(files, "tf-gpu", "tensorflow-serving")
    # cpu and mem split in two as Cortex did; every GPU on TF Serving
    assert api["resources"] == {"requests": {"cpu": "500m", "memory": "1536Mi"}}
    assert serving["resources"] == {
        "requests": {"cpu": "500m", "memory": "1536Mi", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    assert serving["image"] == TF_SERVING_GPU
    assert serving["ports"] == [{"name": "grpc", "containerPort": 9000}]
    assert "--port=9000" in serving["args"]
    assert "--model_config_file=/mnt/model/models.config" in serving["args"]
    assert "--grpc_channel_arguments=grpc.max_concurrent_streams=18" in serving["args"]
    assert {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "1"} in serving["env"]
    assert {"name": "CORTEX_TF_SERVING_ADDRESS", "value": "localhost:9000"} in api["env"]
    # the models reach both containers through one emptyDir, filled by the init container
    assert {"name": "models", "emptyDir": {}} in spec["volumes"]
    for mounted in (api, serving):
        assert {"name": "models", "mountPath": "/mnt/model"} in mounted["volumeMounts"]
    (init,) = spec["initContainers"]
    assert init["image"] == "registry.example.com/team/tf-gpu:v1"
    assert init["volumeMounts"] == [{"name": "models", "mountPath": "/mnt/model-store"}]
    assert "cp -a /mnt/model/. /mnt/model-store/" in init["command"][-1]
    assert "/mnt/model-store/models.config" in init["command"][-1]


def test_tensorflow_serving_image_follows_the_config(tmp_path: Path) -> None:
    assert (
        container(render(tmp_path, CASES["tf-cpu"]), "tf-cpu", "tensorflow-serving")["image"]
        == TF_SERVING_CPU
    )
    custom = tensorflow_api("tf-cpu")
    custom = replace(
        custom, predictor=replace(custom.predictor, tensorflow_serving_image="me/tfs:2")
    )
    serving = container(render(tmp_path, custom), "tf-cpu", "tensorflow-serving")
    assert serving["image"] == "me/tfs:2"
    assert "limits" not in serving["resources"]


def test_tf_copy_models_script_builds_the_model_config(tmp_path: Path) -> None:
    """Runs the init container's script (sh) on a real folder, paths moved under tmp_path."""
    files = render(tmp_path, CASES["tf-cpu"])
    (init,) = pod_spec(files, "tf-cpu")["initContainers"]
    script = init["command"][-1]
    image_models, store = tmp_path / "image-models", tmp_path / "store"
    for model in ("_cortex_default/1", "other/3"):
        (image_models / model).mkdir(parents=True)
        (image_models / model / "saved_model.pb").write_bytes(b"pb")
    (image_models / "flat" / "variables").mkdir(parents=True)  # an unversioned SavedModel
    (image_models / "flat" / "saved_model.pb").write_bytes(b"flat")
    (image_models / "flat" / "variables" / "variables.index").write_bytes(b"index")
    store.mkdir()
    script = script.replace("/mnt/model-store", str(store)).replace(
        "/mnt/model/.", f"{image_models}/."
    )
    subprocess.run(["sh", "-c", script], check=True)
    assert (store / "other" / "3" / "saved_model.pb").read_bytes() == b"pb"
    assert sorted(p.name for p in (store / "flat").iterdir()) == ["1"]  # now version 1
    assert (store / "flat" / "1" / "saved_model.pb").read_bytes() == b"flat"
    assert (store / "flat" / "1" / "variables" / "variables.index").read_bytes() == b"index"
    assert (image_models / "flat" / "saved_model.pb").exists()  # the image's copy is untouched
    config = (store / "models.config").read_text()
    assert "name: '_cortex_default' base_path: '/mnt/model/_cortex_default'" in config
    assert "name: 'other' base_path: '/mnt/model/other'" in config
    assert "name: 'flat' base_path: '/mnt/model/flat'" in config
    assert config.startswith("model_config_list {") and config.rstrip().endswith("}")


def test_tf_serving_batches_with_server_side_batching(tmp_path: Path) -> None:
    """As in Cortex: TF Serving runs with --enable_batching and parameters from the same fields
    (the init container writes them beside models.config); without batching, neither."""
    plain = tensorflow_api("tf-cpu")
    batched = replace(
        plain,
        name="tf-batch",
        predictor=replace(
            plain.predictor,
            server_side_batching=BatchingSpec(max_batch_size=16, batch_interval=0.0025),
        ),
    )
    files = render(tmp_path, plain, batched)
    assert not any(
        "batching" in arg for arg in container(files, "tf-cpu", "tensorflow-serving")["args"]
    )
    args = container(files, "tf-batch", "tensorflow-serving")["args"]
    assert "--enable_batching=true" in args
    assert "--batching_parameters_file=/mnt/model/batching.config" in args
    (init,) = pod_spec(files, "tf-batch")["initContainers"]
    store = tmp_path / "store"
    store.mkdir()
    script = init["command"][-1].replace("/mnt/model-store", str(store))
    script = script.replace("/mnt/model/.", f"{tmp_path / 'no-models'}/.")
    (tmp_path / "no-models").mkdir()
    subprocess.run(["sh", "-c", script], check=True)
    assert (store / "batching.config").read_text().splitlines() == [
        "max_batch_size { value: 16 }",
        "batch_timeout_micros { value: 2500 }",
        "num_batch_threads { value: 2 }",  # one per predictor process, as Cortex set it
    ]
    (plain_init,) = pod_spec(files, "tf-cpu")["initContainers"]
    assert "batching.config" not in plain_init["command"][-1]


def test_probes_and_graceful_shutdown(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["tf-gpu"])
    spec, api = pod_spec(files, "tf-gpu"), container(files, "tf-gpu")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["ports"] == [{"name": "http", "containerPort": 8888}]
    prestop = int(api["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = int(
        next(e["value"] for e in api["env"] if e["name"] == "CORTEX_SERVE_GRACEFUL_TIMEOUT")
    )
    assert (prestop, drain) == (PRESTOP_SECONDS, DRAIN_SECONDS)
    assert spec["terminationGracePeriodSeconds"] > prestop + drain
    serving = container(files, "tf-gpu", "tensorflow-serving")
    serving_prestop = int(serving["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert prestop + drain <= serving_prestop < spec["terminationGracePeriodSeconds"]


def test_service_keeps_cortexs_name_and_port(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["defaults"])
    service = manifest(files, "defaults/service.yaml")
    deployment = manifest(files, "defaults/deployment.yaml")
    assert service["metadata"]["name"] == "api-defaults"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8888, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_images_follow_registry_and_tag(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["defaults"], registry="ghcr.io/acme")
    assert container(files, "defaults")["image"] == "ghcr.io/acme/defaults:v1"
    files = render(tmp_path, CASES["defaults"], registry=None)
    assert container(files, "defaults")["image"] == "defaults:v1"


# ---------------------------------------------------------------------------------------------
# Environment and .env


def test_predictor_env_is_a_config_map_that_dotenv_overrides(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["env"], dotenv="A=1\n")
    config_map = manifest(files, "env/configmap.yaml")
    assert config_map["metadata"]["name"] == "api-env-predictor-env"
    assert config_map["data"] == {"A": "x y", "B": "2"}
    # envFrom: a later source wins, so .env (the Secret) beats predictor.env, as in Cortex
    assert container(files, "env")["envFrom"] == [
        {"configMapRef": {"name": "api-env-predictor-env"}},
        {"secretRef": {"name": "api-env-env"}},
    ]
    annotations = manifest(files, "env/deployment.yaml")["spec"]["template"]["metadata"][
        "annotations"
    ]
    changed = replace(
        CASES["env"], predictor=replace(CASES["env"].predictor, env={"A": "x y", "B": "3"})
    )
    changed_annotations = manifest(render(tmp_path, changed), "env/deployment.yaml")["spec"][
        "template"
    ]["metadata"]["annotations"]
    key = "cortex-build/predictor-env-sha256"
    assert annotations[key] != changed_annotations[key]  # a changed env rolls the pods


def test_dotenv_values_never_reach_a_rendered_file(tmp_path: Path) -> None:
    dotenv = f"TOKEN={DOTENV_VALUES[0]}\nexport DATABASE_URL='{DOTENV_VALUES[1]}'\n"
    files = render(tmp_path, *CASES.values(), dotenv=dotenv)
    files.update(render(tmp_path, *CASES.values(), dotenv=dotenv, autoscaler="keda"))
    for path, content in files.items():
        for value in DOTENV_VALUES:
            assert value not in content, path
    top = manifest(files, "kustomization.yaml")
    assert top["secretGenerator"][0] == {"name": "api-cpu-util-env", "envs": [".env"]}
    assert files[".gitignore"] == ".env\n"


def test_without_dotenv_no_secret_is_referenced(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["defaults"])
    assert "secretGenerator" not in manifest(files, "kustomization.yaml")
    assert "envFrom" not in container(files, "defaults")


# ---------------------------------------------------------------------------------------------
# Layout, determinism, errors


def test_layout_is_a_kustomization_plus_one_folder_per_api(tmp_path: Path) -> None:
    files = render(tmp_path, CASES["env"], CASES["defaults"])
    assert manifest(files, "kustomization.yaml")["resources"] == ["defaults", "env"]
    assert manifest(files, "env/kustomization.yaml")["resources"] == [
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
    ]
    assert sorted(files) == [
        ".gitignore",
        "defaults/deployment.yaml",
        "defaults/hpa.yaml",
        "defaults/kustomization.yaml",
        "defaults/service.yaml",
        "env/configmap.yaml",
        "env/deployment.yaml",
        "env/hpa.yaml",
        "env/kustomization.yaml",
        "env/service.yaml",
        "kustomization.yaml",
        "prometheus-adapter-values.yaml",
    ]


@pytest.mark.parametrize("autoscaler", ["hpa", "keda"])
def test_manifests_keep_the_usual_key_order_not_a_sorted_one(
    tmp_path: Path, autoscaler: str
) -> None:
    files = render(tmp_path, *CASES.values(), autoscaler=autoscaler, dotenv="A=1\n")
    for path, content in files.items():
        if not path.endswith(".yaml") or path == "prometheus-adapter-values.yaml":
            continue
        body = [line for line in content.splitlines() if not line.startswith("#")]
        doc = yaml.safe_load(content)  # a dict in the document's order
        expected = [key for key in ("apiVersion", "kind", "metadata", "spec") if key in doc]
        assert list(doc)[: len(expected)] == expected, path
        assert body[0].startswith("apiVersion: "), path
        if "metadata" in doc:
            assert next(iter(doc["metadata"])) == "name", path
    config_map = manifest(files, "env/configmap.yaml")
    assert list(config_map) == ["apiVersion", "kind", "metadata", "data"]
    for api in ("env", "tf-gpu"):
        pod = pod_spec(files, api)
        for item in pod["containers"] + pod.get("initContainers", []):
            assert list(item)[:2] == ["name", "image"], f"{api}: {list(item)}"
            for port in item.get("ports", []):
                assert next(iter(port)) == "name"
    api_container = container(files, "env")
    assert list(api_container).index("envFrom") == list(api_container).index("env") + 1


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    apis = tuple(CASES.values())
    first = render(tmp_path, *apis, dotenv="A=1\n")
    second = render(tmp_path, *reversed(apis), dotenv="A=1\n")
    assert first == second
    assert list(first) == sorted(first)


@pytest.mark.parametrize(
    ("api", "field", "message"),
    [
        (
            python_api(
                autoscaling=AutoscalingSpec(target_cpu_utilization=50),
                compute=ComputeSpec(cpu=None),
            ),
            "compute.cpu",
            "needs a CPU request",
        ),
        (
            python_api(autoscaling=AutoscalingSpec(downscale_stabilization_period=7200.0)),
            "autoscaling.downscale_stabilization_period",
            "0s to 3600s",
        ),
        (
            python_api(autoscaling=AutoscalingSpec(window=3600.0)),
            "autoscaling.window",
            "1s to 1800s",
        ),
        (
            python_api(autoscaling=AutoscalingSpec(max_upscale_factor=1.0)),
            "autoscaling.max_upscale_factor",
            "greater than 1",
        ),
        (
            python_api(update_strategy=UpdateStrategySpec(max_surge="0%", max_unavailable="0")),
            "update_strategy",
            "cannot both be zero",
        ),
        (python_api(compute=ComputeSpec(cpu="lots")), "compute.cpu", 'got "lots"'),
    ],
)
def test_what_cannot_be_rendered_is_a_user_error(
    tmp_path: Path, api: ApiSpec, field: str, message: str
) -> None:
    with pytest.raises(UserError) as caught:
        render(tmp_path, api)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.api, problem.field) == (
        "cortex.yaml",
        3,
        "iris",
        field,
    )
    assert message in problem.message


def test_bad_autoscaler_and_missing_image_are_user_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path, (python_api(),))
    with pytest.raises(UserError, match="--autoscaler"):
        render_k8s(project, project.apis, {"iris": "iris:v1"}, autoscaler="knative")
    with pytest.raises(UserError, match="iris: no image reference"):
        render_k8s(project, project.apis, {})


# ---------------------------------------------------------------------------------------------
# The examples


EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*/cortex.yaml"))


@pytest.mark.parametrize("config", EXAMPLES, ids=[path.parent.name for path in EXAMPLES])
@pytest.mark.parametrize("autoscaler", ["hpa", "keda"])
def test_every_example_validates(config: Path, autoscaler: str) -> None:
    from cortex_build.config import load_project

    project = load_project(config.parent)
    # (a container BatchAPI's image is its batch worker's)
    names = [api.name for api in (*project.apis, *project.container_apis)]
    refs = {name: image_ref(name, "registry.example.com", "v1") for name in names}
    files = render_k8s(project, project.apis, refs, autoscaler, project.container_apis)
    for doc in rendered_manifests(files):
        if doc["kind"] == "ScaledObject":
            validate_scaled_object(doc)
        elif doc["kind"] != "Kustomization":
            validate_standard(doc)
