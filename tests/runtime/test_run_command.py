"""`cortex-build run` through its command line, natively: the batch and task examples, bad
items and config files, a failing batch reported, and job APIs refused by serve and predict."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from e2e import cortex_build as cli
from servers import PROJECTS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_batch_example_runs_with_two_workers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (tmp_path / "job.yaml").write_text(f"results_dir: {results}\n")
    summary = tmp_path / "summary.json"
    example = EXAMPLES / "batch"
    done = cli(
        "run",
        example,
        "--items",
        example / "items.ndjson",
        "--batch-size",
        "10",
        "--workers",
        "2",
        "--job-config",
        tmp_path / "job.yaml",
        "--summary",
        summary,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(summary.read_text())
    assert (found["batches"], found["succeeded"], found["items_succeeded"]) == (15, 15, 150)
    [job_dir] = results.iterdir()
    assert job_dir.name == found["job_id"]
    batch_files = sorted(p.name for p in job_dir.iterdir() if p.name != "summary.json")
    assert batch_files == sorted(f"{found['job_id']}-{i}.json" for i in range(15))
    counts = json.loads((job_dir / "summary.json").read_text())
    assert counts["batches"] == 15 and sum(counts["labels"].values()) == 150
    assert "iris-batch: " in done.stdout  # on_job_complete's print, once
    assert done.stdout.count("iris-batch: ") == 1
    print(f"batch example, 2 workers: {found['items_per_second']} items/s")


def test_the_task_example_runs_with_the_merged_config(tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    (tmp_path / "job.json").write_text(json.dumps({"output": str(output), "note": "hi"}))
    done = cli("run", EXAMPLES / "task", "--job-config", tmp_path / "job.json")
    assert done.returncode == 0, done.stderr
    report = json.loads(output.read_text())
    assert report["note"] == "hi" and report["samples"] == 150  # dataset from definition.config


def batch_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(PROJECTS / "batch_job", project)
    (project / "cortex.yaml").write_text(
        "- name: recorder\n  kind: BatchAPI\n  predictor:\n    type: python\n"
        f"    path: predictor.py\n    config: {{out: {tmp_path / 'out'}}}\n"
    )
    (tmp_path / "out").mkdir()
    return project


def test_a_failing_batch_is_retried_and_reported_with_exit_status_1(tmp_path: Path) -> None:
    project = batch_project(tmp_path)
    (tmp_path / "items.json").write_text(json.dumps(["a", "fail", "b", "c"]))
    summary = tmp_path / "summary.json"
    done = cli(
        "run",
        project,
        "--items",
        tmp_path / "items.json",
        "--batch-size",
        "2",
        "--max-receive-count",
        "2",
        "--summary",
        summary,
    )
    assert done.returncode == 1, done.stderr
    [failed] = json.loads(summary.read_text())["failed_batches"]
    assert failed["items"] == ["a", "fail"] and failed["receive_count"] == 2
    assert "1 of 2 batches succeeded, 1 failed" in done.stderr


def test_bad_items_and_config_files_are_named_with_their_line(tmp_path: Path) -> None:
    project = batch_project(tmp_path)
    items = tmp_path / "items.ndjson"
    items.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    done = cli("run", project, "--items", items)
    assert done.returncode == 2
    assert f"{items}:3: not JSON" in done.stderr and "Traceback" not in done.stderr
    config = tmp_path / "config.yaml"
    config.write_text("a: [1,\n")
    items.write_text("[1, 2]")
    done = cli("run", project, "--items", items, "--job-config", config)
    assert done.returncode == 2 and str(config) in done.stderr
    config.write_text("- a list\n")
    done = cli("run", project, "--items", items, "--job-config", config)
    assert done.returncode == 2 and "must be a map of config values" in done.stderr
    done = cli("run", project)
    assert done.returncode == 2 and "the BatchAPI recorder needs --items FILE" in done.stderr


def test_job_apis_are_not_served_and_realtime_apis_not_run(tmp_path: Path) -> None:
    project = batch_project(tmp_path)
    done = cli("serve", project)
    assert done.returncode == 2
    assert "API recorder is a BatchAPI: a job that takes no requests" in done.stderr
    done = cli("predict", project, "-d", "{}")
    assert done.returncode == 2 and "is a BatchAPI" in done.stderr
    done = cli("run", EXAMPLES / "v0.2x-realtime")
    assert done.returncode == 2 and "is a RealtimeAPI, not a job" in done.stderr


def test_the_jobs_bench_still_runs() -> None:
    """bench/jobs_bench.py reaches into the example and the CLI: one short round (no figure is
    checked; bench/README.md has those of full runs)."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "jobs_bench.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--items", "300", "--rounds", "1", "--work-ms", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 worker :" in done.stdout and "2 workers:" in done.stdout


ONNX_BATCH_PREDICTOR = """
import json, os

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class ONNXPredictor:
    def __init__(self, onnx_client, config, job_spec):
        self.client = onnx_client
        self.out = os.path.join(config["out"], job_spec["job_id"])
        os.makedirs(self.out, exist_ok=True)

    def predict(self, payload, batch_id):
        class_ids, _ = self.client.predict([[float(s[n]) for n in FEATURES] for s in payload])
        with open(os.path.join(self.out, batch_id + ".json"), "w") as out:
            json.dump([int(c) for c in class_ids], out)
"""


def test_an_onnx_batch_predictor_gets_its_client(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(EXAMPLES / "onnx-iris" / "model", project / "model")
    (project / "predictor.py").write_text(ONNX_BATCH_PREDICTOR)
    (project / "cortex.yaml").write_text(
        "- name: onnx-batch\n  kind: BatchAPI\n  predictor:\n    type: onnx\n"
        f"    path: predictor.py\n    models: {{path: model/}}\n    config: {{out: {tmp_path}}}\n"
    )
    summary = tmp_path / "summary.json"
    items = EXAMPLES / "batch" / "items.ndjson"
    done = cli("run", project, "--items", items, "--batch-size", "50", "--summary", summary)
    assert done.returncode == 0, done.stderr
    job_id = json.loads(summary.read_text())["job_id"]
    labels = [
        label
        for i in range(3)
        for label in json.loads((tmp_path / job_id / f"{job_id}-{i}.json").read_text())
    ]
    # the iris samples are in class order, 50 of each: the model gets nearly all of them right
    assert len(labels) == 150
    assert sum(label == i // 50 for i, label in enumerate(labels)) >= 140
