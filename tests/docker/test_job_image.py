"""The batch and task examples built as images and run as jobs on the engine: `cortex-build run
--image` with two worker containers, and `docker-compose run` of the rendered one-shot service."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from e2e import EXAMPLES, cortex_build


def test_a_batch_job_runs_in_two_worker_containers(
    build_project, docker_client, tmp_path: Path
) -> None:
    built = build_project(EXAMPLES / "batch")
    image = built.images["iris-batch"]
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)  # written by the image's user
    (tmp_path / "job.yaml").write_text("results_dir: /results\n")
    summary = tmp_path / "summary.json"
    before = {c.id for c in docker_client.containers.list(all=True)}
    done = cortex_build(
        "run",
        EXAMPLES / "batch",
        "--image",
        image,
        "--items",
        EXAMPLES / "batch" / "items.ndjson",
        "--batch-size",
        "10",
        "--workers",
        "2",
        "--job-config",
        tmp_path / "job.yaml",
        "-v",
        f"{results}:/results",
        "--summary",
        summary,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    total = json.loads(summary.read_text())
    assert total["workers"] == 2 and total["batches"] == 15 and total["items_succeeded"] == 150
    assert total["on_job_complete"] == "succeeded"
    [job_dir] = results.iterdir()
    names = sorted(p.name for p in job_dir.iterdir())
    assert names == sorted([*(f"{total['job_id']}-{i}.json" for i in range(15)), "summary.json"])
    counts = json.loads((job_dir / "summary.json").read_text())
    assert counts["batches"] == 15 and sum(counts["labels"].values()) == 150
    # both workers handled batches (index i: batches i, i+2, ...), output prefixed per worker
    assert "[worker 0]" in done.stderr and "[worker 1]" in done.stderr
    assert "[on_job_complete] iris-batch: " in done.stderr
    assert {c.id for c in docker_client.containers.list(all=True)} <= before  # all removed
    print(f"--image, 2 containers: {total['items_per_second']} items/s")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs docker-compose 1.29")
def test_a_task_runs_once_with_docker_compose_run(build_project, tmp_path: Path) -> None:
    built = build_project(EXAMPLES / "task")
    out = built.out
    compose = ["docker-compose", "-f", str(out / "docker-compose.yaml"), "-p", tmp_path.name]
    job_file = out / "iris-report" / "job" / "job.json"
    job_file.write_text(json.dumps({"config": {"output": "/tmp/report.json", "note": "compose"}}))
    # the rendered service names the image built above (the session's registry and tag)
    done = subprocess.run(
        [*compose, "run", "--rm", "job-iris-report"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert '"note": "compose"' in done.stdout and '"samples": 150' in done.stdout
        up = subprocess.run(
            [*compose, "config", "--services"], capture_output=True, text=True, check=True
        )
        assert "job-iris-report" in up.stdout
    finally:
        subprocess.run([*compose, "down", "--remove-orphans"], capture_output=True, check=False)
