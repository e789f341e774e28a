"""Every generation of cortex.yaml becomes the same normalized ApiSpec, defaults included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from config_fixtures import make_project
from cortex_build import schema
from cortex_build.cli import main
from cortex_build.config import load_project, releases
from cortex_build.report import print_api_table
from cortex_build.spec import (
    ApiSpec,
    AutoscalingSpec,
    BatchingSpec,
    ComputeSpec,
    CortexRelease,
    ModelRef,
    ModelsSpec,
    PredictorSpec,
    TrackerSpec,
    UpdateStrategySpec,
)
from cortex_serve.contract import DEFAULT_MODEL_NAME


def default_release(family: releases.Family) -> CortexRelease:
    """The release an API of `family`'s shape is read as without --cortex-version."""
    return releases.release_for(family, None, None)


V014_AUTOSCALING = {
    "upscale_stabilization_period": 0.0,
    "max_downscale_factor": 0.5,
    "max_upscale_factor": 10.0,
    "downscale_tolerance": 0.1,
    "upscale_tolerance": 0.1,
}


def test_v09_functions_and_request_handlers(tmp_path: Path) -> None:
    project = load_project(
        make_project(
            tmp_path,
            """\
- kind: deployment
  name: iris

- kind: api
  name: classifier
  tensorflow:
    model: models/iris
    request_handler: handler.py
    signature_key: predict
  tracker:
    model_type: classification
    key: label

- kind: api
  name: raw-onnx
  onnx:
    model: s3://cortex-examples/iris/model.onnx
    metadata:
      labels: [setosa, versicolor, virginica]

- kind: api
  name: pytorch
  predictor:
    path: functions_v09.py
    metadata:
      bucket: my-bucket
  compute:
    cpu: 1
    min_replicas: 2
""",
        )
    )
    classifier, raw_onnx, pytorch = project.apis
    assert classifier == ApiSpec(
        name="classifier",
        generation="v0.9",
        endpoint="/iris/classifier",
        predictor=PredictorSpec(
            type="tensorflow",
            interface="handlers",
            path="handler.py",
            models=ModelsSpec(
                paths=(ModelRef(DEFAULT_MODEL_NAME, "models/iris"),), signature_key="predict"
            ),
        ),
        tracker=TrackerSpec(model_type="classification", key="label"),
        cortex=default_release(releases.V0_10),
        line=4,
    )
    assert raw_onnx == ApiSpec(
        name="raw-onnx",
        generation="v0.9",
        endpoint="/iris/raw-onnx",
        # no request_handler: requests go straight to the model
        predictor=PredictorSpec(
            type="onnx",
            interface="handlers",
            path="",
            config={"labels": ["setosa", "versicolor", "virginica"]},
            models=ModelsSpec(
                paths=(ModelRef(DEFAULT_MODEL_NAME, "s3://cortex-examples/iris/model.onnx"),)
            ),
        ),
        cortex=default_release(releases.V0_10),
        line=14,
    )
    assert pytorch == ApiSpec(
        name="pytorch",
        generation="v0.9",
        endpoint="/iris/pytorch",
        predictor=PredictorSpec(
            type="python",
            interface="functions",
            path="functions_v09.py",
            config={"bucket": "my-bucket"},
        ),
        compute=ComputeSpec(cpu="1"),
        autoscaling=AutoscalingSpec(min_replicas=2, init_replicas=2),
        cortex=default_release(releases.V0_10),
        line=21,
    )
    # every name above is v0.10-v0.11's own: none is noted as old
    assert project.notes == ()


def test_v010_module_functions_with_a_model(tmp_path: Path) -> None:
    project = load_project(
        make_project(
            tmp_path,
            """\
- kind: api
  name: iris
  endpoint: /classify
  predictor:
    path: functions.py
    model: ./models/iris/
    python_path: src
  compute:
    min_replicas: 1
    max_replicas: 4
    init_replicas: 2
    target_cpu_utilization: 70
    gpu: 1
    mem: 1G
- kind: api
  name: plain
  predictor:
    path: functions.py
""",
        )
    )
    iris, plain = project.apis
    assert iris == ApiSpec(
        name="iris",
        generation="v0.10",
        endpoint="/classify",
        predictor=PredictorSpec(
            type="python",
            interface="functions",
            path="functions.py",
            python_path="src",
            models=ModelsSpec(paths=(ModelRef(DEFAULT_MODEL_NAME, "models/iris"),)),
        ),
        compute=ComputeSpec(cpu="200m", gpu=1, mem="1G"),
        autoscaling=AutoscalingSpec(
            min_replicas=1, max_replicas=4, init_replicas=2, target_cpu_utilization=70
        ),
        cortex=default_release(releases.V0_10),
        line=1,
    )
    # no deployment: the default endpoint is /<api>
    assert plain.endpoint == "/plain"
    assert plain.generation == "v0.10"  # init(model_path, metadata)
    assert plain.predictor.models is None


def test_v012_python_class(tmp_path: Path) -> None:
    project = load_project(
        make_project(
            tmp_path,
            """\
- name: iris
  endpoint: iris-classifier/
  predictor:
    type: python
    path: predictor.py
    config:
      bucket: cortex-examples
      threshold: 0.5
    python_path: src
    env:
      TOKENIZERS_PARALLELISM: "false"
  tracker:
    model_type: regression
  compute:
    min_replicas: 2
    max_replicas: 5
    target_cpu_utilization: 90
    cpu: 500m
    mem: 512Mi
    max_surge: 1
    max_unavailable: 0
""",
        )
    )
    assert project.apis == (
        ApiSpec(
            name="iris",
            generation="v0.12",
            endpoint="/iris-classifier",
            predictor=PredictorSpec(
                type="python",
                interface="class",
                path="predictor.py",
                config={"bucket": "cortex-examples", "threshold": 0.5},
                python_path="src",
                env={"TOKENIZERS_PARALLELISM": "false"},
            ),
            compute=ComputeSpec(cpu="500m", mem="512Mi"),
            autoscaling=AutoscalingSpec(
                min_replicas=2, max_replicas=5, init_replicas=2, target_cpu_utilization=90
            ),
            update_strategy=UpdateStrategySpec(max_surge="1", max_unavailable="0"),
            tracker=TrackerSpec(model_type="regression"),
            cortex=default_release(releases.V0_13),
            line=1,
        ),
    )
    assert project.notes == ()  # these are v0.12-v0.14's own names


def test_v015_tensorflow_onnx_and_autoscaling(tmp_path: Path) -> None:
    project = load_project(
        make_project(
            tmp_path,
            """\
- name: tf
  predictor:
    type: tensorflow
    path: tf_predictor.py
    model: s3://cortex-examples/tensorflow/iris-classifier/nn
    signature_key: predict
  autoscaling:
    workers_per_replica: 2
    threads_per_worker: 3
    max_replica_concurrency: 100
    window: 1m30s
    downscale_stabilization_period: 10m
  update_strategy:
    max_surge: 50%
- name: onnx
  predictor:
    type: onnx
    path: onnx_predictor.py
    model: model.onnx
""",
        )
    )
    tf, onnx = project.apis
    assert tf == ApiSpec(
        name="tf",
        generation="v0.15",
        endpoint="/tf",
        predictor=PredictorSpec(
            type="tensorflow",
            interface="class",
            path="tf_predictor.py",
            models=ModelsSpec(
                paths=(
                    ModelRef(
                        DEFAULT_MODEL_NAME, "s3://cortex-examples/tensorflow/iris-classifier/nn"
                    ),
                ),
                signature_key="predict",
            ),
            processes_per_replica=2,
            threads_per_process=3,
        ),
        autoscaling=AutoscalingSpec(
            target_replica_concurrency=6.0,  # processes x threads
            max_replica_concurrency=100,
            window=90.0,
            downscale_stabilization_period=600.0,
        ),
        update_strategy=UpdateStrategySpec(max_surge="50%"),
        cortex=default_release(releases.V0_15),
        line=1,
    )
    assert onnx == ApiSpec(
        name="onnx",
        generation="v0.15",
        endpoint="/onnx",
        predictor=PredictorSpec(
            type="onnx",
            interface="class",
            path="onnx_predictor.py",
            models=ModelsSpec(paths=(ModelRef(DEFAULT_MODEL_NAME, "model.onnx"),)),
        ),
        autoscaling=AutoscalingSpec(),
        cortex=default_release(releases.V0_13),  # no autoscaling: v0.13-v0.18,
        line=15,
    )
    assert project.notes == ()  # workers_per_replica is v0.15-v0.17's own name


def test_v02x_realtime_api(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "model.onnx").write_text("")
    project_dir = make_project(
        tmp_path / "project",
        f"""\
- name: text
  kind: RealtimeAPI
  predictor:
    type: python
    path: mmr_predictor.py
    multi_model_reloading:
      paths:
        - name: iris
          path: models/iris
        - name: flowers.v2
          path: https://example.com/flowers.zip
      cache_size: 1
      disk_cache_size: 2
    processes_per_replica: 4
    log_level: debug
    shm_size: 64Mi
    image: registry.example.com:5000/team/python-predictor:0.26@sha256:{"a" * 64}
    env:
      MODE: "fast"
  networking:
    endpoint: /v1/text
    api_gateway: none
  compute:
    cpu: 1.5
    mem: 1Gi
  autoscaling:
    min_replicas: 3
    target_replica_concurrency: 2.5
- name: tf
  kind: SyncAPI
  endpoint: /tf
  predictor:
    type: tensorflow
    path: tf_predictor.py
    models:
      dir: models
      signature_key: serving_default
    server_side_batching:
      max_batch_size: 8
      batch_interval: 250ms
    threads_per_process: 8
    tensorflow_serving_image: tensorflow/serving:2.3.0-gpu
  compute:
    gpu: 1
    cpu: null
- name: onnx
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: onnx_predictor.py
    models:
      path: {outside / "model.onnx"}
""",
    )
    project = load_project(project_dir)
    text, tf, onnx = project.apis
    assert text == ApiSpec(
        name="text",
        generation="v0.2x",
        endpoint="/v1/text",
        predictor=PredictorSpec(
            type="python",
            interface="class",
            path="mmr_predictor.py",
            env={"MODE": "fast"},
            models=ModelsSpec(
                paths=(
                    ModelRef("iris", "models/iris"),
                    ModelRef("flowers.v2", "https://example.com/flowers.zip"),
                ),
                cache_size=1,
                disk_cache_size=2,
            ),
            processes_per_replica=4,
            image=f"registry.example.com:5000/team/python-predictor:0.26@sha256:{'a' * 64}",
            log_level="debug",
            shm_size="64Mi",
        ),
        compute=ComputeSpec(cpu="1500m", mem="1Gi"),
        autoscaling=AutoscalingSpec(
            min_replicas=3, init_replicas=3, target_replica_concurrency=2.5
        ),
        line=1,
    )
    assert tf == ApiSpec(
        name="tf",
        generation="v0.2x",
        endpoint="/tf",
        predictor=PredictorSpec(
            type="tensorflow",
            interface="class",
            path="tf_predictor.py",
            models=ModelsSpec(dir="models", signature_key="serving_default"),
            server_side_batching=BatchingSpec(max_batch_size=8, batch_interval=0.25),
            threads_per_process=8,
            tensorflow_serving_image="tensorflow/serving:2.3.0-gpu",
        ),
        compute=ComputeSpec(cpu=None, gpu=1),
        autoscaling=AutoscalingSpec(target_replica_concurrency=8.0),
        line=29,
    )
    assert onnx.predictor.models == ModelsSpec(
        paths=(ModelRef(DEFAULT_MODEL_NAME, str(outside / "model.onnx")),)
    )
    assert project.notes == (
        "cortex.yaml:22: text: networking.api_gateway: ignored: cortex-build serves each API "
        "directly, without a gateway",
        "cortex.yaml:30: tf: kind: old name, read as RealtimeAPI",
        "cortex.yaml:31: tf: endpoint: old name, read as networking.endpoint",
    )


def test_config_file_given_with_c(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        "- name: iris\n  predictor: {type: python, path: predictor.py}\n",
        name="staging.yaml",
    )
    project = load_project(tmp_path, tmp_path / "staging.yaml")
    assert project.config_file == tmp_path / "staging.yaml"
    assert [api.name for api in project.apis] == ["iris"]


def test_to_json_round_trips_as_plain_json(tmp_path: Path) -> None:
    project = load_project(
        make_project(
            tmp_path,
            (
                "- name: iris\n  predictor:\n    type: python\n    path: predictor.py\n"
                "    config:\n      when: 2020-01-01\n      shared: &s {a: 1}\n      again: *s\n"
            ),
        )
    )
    data = json.loads(project.apis[0].to_json())
    assert data["predictor"]["config"] == {
        "when": "2020-01-01",
        "shared": {"a": 1},
        "again": {"a": 1},
    }


def test_merge_keys_copy_an_api_and_written_keys_override(tmp_path: Path) -> None:
    """YAML's merge rule: keys written beside `<<` win over merged ones; among several merged
    mappings, values are what yaml.safe_load reads (its precedence changed in PyYAML 6.0.4); none
    of them is a key "given twice"."""
    config = (
        "- &iris\n  name: iris\n  predictor: &p {type: python, path: predictor.py}\n"
        "  compute: {cpu: 1}\n"
        "- <<: *iris\n  name: iris-2\n  compute: {cpu: 2}\n"
        "- <<: [{name: x, compute: {cpu: 3}}, *iris]\n  name: iris-3\n"
    )
    project = load_project(make_project(tmp_path, config))
    several_merged = yaml.safe_load(config)[2]["compute"]["cpu"]
    assert [(api.name, api.compute.cpu) for api in project.apis] == [
        ("iris", "1"),
        ("iris-2", "2"),
        ("iris-3", str(several_merged)),
    ]


def test_validate_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = load_project(
        make_project(
            tmp_path,
            """\
- name: iris
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, processes_per_replica: 2, threads_per_process: 4}
  compute: {gpu: 1}
- name: tf-iris
  predictor: {type: tensorflow, path: tf_predictor.py, model: models/iris}
  endpoint: /tf
""",
        )
    )
    print_api_table(project)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "API      CORTEX                GENERATION  PREDICTOR         "
        "BASE IMAGE                                    PROCESSES x THREADS  ENDPOINT",
        "iris     v0.19-v0.33 as v0.26  v0.2x       python/class      "
        "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04  2 x 4                /iris",
        "tf-iris  v0.13-v0.18 as v0.13  v0.15       tensorflow/class  "
        "python:3.11-slim-bookworm                     1 x 1                /tf",
    ]
    assert err == ""  # predictor.model and endpoint are v0.15-v0.17's own names


# -- value grammars ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("0", 0.0),
        ("1.5s", 1.5),
        ("100us", 0.0001),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert schema.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["60", "", "s", "5 m", "1d", "1h30", "-"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(schema.BadValue):
        schema.parse_duration(text)


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        (1, "1"),
        (0.5, "500m"),
        ("200m", "200m"),
        ("2", "2"),
        ("0.25", "250m"),
        (1.0, "1"),
        ("1000m", "1"),
    ],
)
def test_cpu_quantities(value: object, normalized: str) -> None:
    assert schema.parse_cpu(value) == normalized


@pytest.mark.parametrize("value", ["lots", "1.5m", 0.0001, True, "-1", "1Gi", 0, "0", "0m", 0.0])
def test_bad_cpu_quantities(value: object) -> None:
    with pytest.raises(schema.BadValue):
        schema.parse_cpu(value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512Mi", 512 * 2**20),
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("1024", 1024),
        ("1.5Gi", 3 * 2**29),
        ("1e3", 1000),
        ("100k", 100_000),
        ("1E5", 100_000),  # an exponent; "E" alone is exa
        ("1.1Gi", 1_181_116_007),  # exact: 1.1 * 2**30 = 1181116006.4, rounded up as Kubernetes
        ("1Pi", 2**50),  # the largest accepted
        ("0.0000000000000000000001e30", 10**8),  # exact, however the digits are spread
    ],
)
def test_memory_quantities(text: str, size: int) -> None:
    assert schema.quantity_bytes(schema.parse_quantity(text)) == size


@pytest.mark.parametrize("text", ["1GB", "lots", "1 Gi", "-1Gi", "1gi"])
def test_bad_memory_quantities(text: str) -> None:
    with pytest.raises(schema.BadValue):
        schema.parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e400", "must be at most 1Pi"),
        ("1e" + "9" * 5000, "must be at most 1Pi"),  # more exponent digits than int() reads
        ("100000Ti", "must be at most 1Pi"),
        ("1E", "must be at most 1Pi"),
        ("1Ei", "must be at most 1Pi"),
        (2**70, "must be at most 1Pi"),
        ("0", "must be greater than 0"),
        (0, "must be greater than 0"),
        ("0.0Gi", "must be greater than 0"),
        ("0.5", "must be at least 1 byte"),
        ("1e-" + "9" * 5000, "must be at least 1 byte"),
    ],
)
def test_memory_quantities_out_of_range(value: object, message: str) -> None:
    """Checked once, exactly, when read: no overflow, no float rounding, no huge power computed."""
    with pytest.raises(schema.BadValue) as caught:
        schema.parse_quantity(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "ref",
    [
        "python:3.11-slim",
        "ubuntu",
        "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
        "localhost:5000/a/b:tag",
        "quay.io/org/img@sha256:" + "0" * 64,
        "my_registry.example/x",
    ],
)
def test_image_references(ref: str) -> None:
    assert schema.is_image_ref(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "Python:3",
        "python:3.11 ",
        "a b",
        "python:3.11\nRUN x",
        "img:$(id)",
        "img;rm",
        "-img",
        "img:tag:tag",
        "python:3.11-\u00e9",  # docker's tags are ASCII; Python's \w is not
        "",
        "a" * 256,
    ],
)
def test_bad_image_references(ref: str) -> None:
    assert not schema.is_image_ref(ref)


def test_reference_documents_every_field() -> None:
    text = (Path(__file__).parents[2] / "docs" / "config-reference.md").read_text()
    tables = [
        schema.API,
        schema.PREDICTOR,
        schema.HANDLER,
        schema.DEPENDENCIES,
        schema.MODELS,
        schema.MODEL_PATH_ITEM,
        schema.BATCHING,
        schema.HANDLER_TENSORFLOW,
        schema.NETWORKING,
        schema.COMPUTE,
        schema.AUTOSCALING,
        schema.UPDATE_STRATEGY,
        schema.TRACKER,
    ]
    undocumented = {
        key
        for table in tables
        for key in table
        if f"`{key}" not in text and f".{key}`" not in text and f"{key}}}" not in text
    }
    assert not undocumented


def test_v019_to_v024_names(tmp_path: Path) -> None:
    project = load_project(
        make_project(
            tmp_path,
            """\
- name: tf
  kind: SyncAPI
  predictor:
    type: tensorflow
    path: tf_predictor.py
    models:
      - name: iris
        model_path: models/iris
        signature_key: predict
      - name: flowers
        model_path: s3://bucket/flowers
  networking:
    local_port: 8890
  monitoring:
    model_type: classification
- name: onnx
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: onnx_predictor.py
    model_path: model.onnx
- name: py
  kind: RealtimeAPI
  predictor:
    type: python
    path: mmr_predictor.py
    models:
      dir: models
""",
        )
    )
    tf, onnx, py = project.apis
    assert tf.predictor.models == ModelsSpec(
        paths=(
            ModelRef("iris", "models/iris", "predict"),
            ModelRef("flowers", "s3://bucket/flowers"),
        )
    )
    assert tf.tracker == TrackerSpec(model_type="classification")
    assert onnx.predictor.models == ModelsSpec(paths=(ModelRef(DEFAULT_MODEL_NAME, "model.onnx"),))
    assert py.predictor.models == ModelsSpec(dir="models")
    assert {api.generation for api in project.apis} == {"v0.2x"}
    assert [note.split(": ", 2)[2] for note in project.notes] == [
        # model_path, monitoring and the list of models were names of v0.19-v0.24, which the
        # shape's releases (v0.19-v0.33) include: not noted
        "kind: old name, read as RealtimeAPI",
        "networking.local_port: ignored: the server listens on port 8888; choose the published "
        "port when running it",
        "predictor.models: read as multi_model_reloading for type: python (its name since v0.25)",
    ]


def test_validate_command_prints_table_and_notes(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        # v0.14+'s shape (autoscaling), where compute.min_replicas was no longer current
        "- name: iris\n  predictor: {type: python, path: predictor.py}\n"
        "  compute: {min_replicas: 2}\n  autoscaling: {max_replicas: 3}\n",
        name="old.yaml",
    )
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "-c", "old.yaml"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == [
        "iris",
        "v0.14-v0.18",
        "as",
        "v0.16",
        "v0.15",
        "python/class",
        "python:3.11-slim-bookworm",
        "1",
        "x",
        "1",
        "/iris",
    ]
    assert result.stderr == (
        "old.yaml:3: iris: compute.min_replicas: old name, read as autoscaling.min_replicas\n"
    )


EXAMPLES = sorted(
    path.parent for path in (Path(__file__).parents[2] / "examples").glob("*/cortex.yaml")
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_every_example_project_loads(example: Path) -> None:
    project = load_project(example)
    assert project.apis or project.container_apis
    for api in project.apis:
        assert json.loads(api.to_json())["name"] == api.name


def test_old_names_are_noted_only_after_the_releases_that_used_them(tmp_path: Path) -> None:
    # compute.min_replicas was v0.9-v0.13's name: current in a v0.13-v0.18 shape, old in v0.19+
    project = load_project(
        make_project(
            tmp_path,
            """\
- name: plain
  predictor: {type: python, path: predictor.py}
  compute: {min_replicas: 2}
- name: realtime
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
  compute: {min_replicas: 2}
""",
        )
    )
    assert project.notes == (
        "cortex.yaml:7: realtime: compute.min_replicas: old name, read as autoscaling.min_replicas",
    )
    assert [api.autoscaling.min_replicas for api in project.apis] == [2, 2]


def test_v014_reads_with_the_autoscaling_defaults_v014_documented(tmp_path: Path) -> None:
    config = "- name: iris\n  predictor: {type: python, path: predictor.py}\n  autoscaling: {}\n"
    default, v014 = (
        load_project(make_project(tmp_path / name, config), cortex_version=version).apis[0]
        for name, version in (("default", None), ("v014", "0.14"))
    )
    assert default.cortex.assumed == "v0.16"
    assert default.autoscaling == AutoscalingSpec()  # v0.15 and later
    assert v014.autoscaling == AutoscalingSpec(**V014_AUTOSCALING)


TF_BATCHING = """\
- name: tf
  kind: {kind}
  predictor:
    type: tensorflow
    path: tf_predictor.py
    models:
      path: s3://bucket/model
    server_side_batching:
      max_batch_size: 8
      batch_interval: 10ms
{counts}"""


@pytest.mark.parametrize(
    ("kind", "counts", "batching"),
    [
        # 2 processes x 4 threads: 8 requests in flight fill a batch of 8
        (
            "RealtimeAPI",
            "    processes_per_replica: 2\n    threads_per_process: 4\n",
            BatchingSpec(max_batch_size=8, batch_interval=0.01),
        ),
        # a job's batching is ignored (noted), so no concurrency is asked of it
        ("BatchAPI", "", None),
    ],
)
def test_tf_serving_batches_that_can_fill_are_accepted(
    tmp_path: Path, kind: str, counts: str, batching: BatchingSpec | None
) -> None:
    project = load_project(make_project(tmp_path, TF_BATCHING.format(kind=kind, counts=counts)))
    (api,) = project.apis
    assert api.predictor.server_side_batching == batching
