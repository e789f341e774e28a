"""The job runner (`python -m cortex_serve.jobs`) over real worker processes: batches, retries,
on_job_complete, the v0.34-v0.35 Handler, TaskAPI tasks, and the HTTP seam."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cortex_serve.job_callers import HttpCaller
from cortex_serve.job_file import JobFileError, parse_job
from cortex_serve.job_predictor import load_task
from cortex_serve.job_runner import run_local
from cortex_serve.predictor import PredictorError
from servers import PROJECTS, api_spec

BATCH = PROJECTS / "batch_job"
TASK = PROJECTS / "task_job"


def run_job(
    tmp_path: Path,
    project: Path,
    job: dict[str, Any],
    *args: str,
    kind: str = "BatchAPI",
    **spec_fields: Any,
) -> tuple[int, str, dict[str, Any] | None]:
    """Runs one job to its end; (exit status, stderr, the summary file's JSON or None)."""
    spec_fields.setdefault("path", "predictor.py")
    spec = api_spec("job", kind=kind, **spec_fields)
    (tmp_path / "api.json").write_text(spec.to_json())
    (tmp_path / "job.json").write_text(json.dumps(job))
    summary = tmp_path / "summary.json"
    command = [sys.executable, "-m", "cortex_serve.jobs", "--spec", str(tmp_path / "api.json")]
    command += ["--project", str(project), "--job", str(tmp_path / "job.json")]
    command += ["--summary-file", str(summary), *args]
    env = {**os.environ, "CORTEX_LOG_FORMAT": "text"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    found = json.loads(summary.read_text()) if summary.exists() else None
    return done.returncode, done.stderr, found


def out_folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def batch_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*-*.json"))]


def test_every_item_lands_in_exactly_one_batch_with_a_unique_id(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    items = [{"n": n} for n in range(23)]
    job = {
        "job_id": "j1",
        "workers": 2,
        "item_list": {"items": items, "batch_size": 5},
        "config": {"out": str(out), "nested": {"b": 3}},
    }
    status, stderr, summary = run_job(
        tmp_path, BATCH, job, config={"nested": {"a": 1, "b": 2}, "kept": True}
    )
    assert status == 0, stderr
    records = batch_records(out)
    assert sorted(r["batch_id"] for r in records) == [f"j1-{i}" for i in range(5)]
    handled = [item for r in records for item in r["items"]]
    assert sorted(handled, key=lambda item: item["n"]) == items  # each exactly once
    assert [len(r["items"]) for r in sorted(records, key=lambda r: r["batch_id"])] == [5] * 4 + [3]
    # the job's config merged over the API's, nested maps key by key
    assert records[0]["config"] == {"out": str(out), "nested": {"a": 1, "b": 3}, "kept": True}
    spec = records[0]["job_spec"]
    assert spec["job_id"] == "j1" and spec["api_name"] == "job" and spec["workers"] == 2
    assert spec["total_batch_count"] == 5 and spec["config"] == job["config"]
    assert len({r["pid"] for r in records}) <= 2
    assert summary is not None
    assert (summary["succeeded"], summary["failed"], summary["items_succeeded"]) == (5, 0, 23)
    assert summary["on_job_complete"] == "succeeded"
    completions = (out / "complete.txt").read_text().splitlines()
    assert len(completions) == 1 and completions[0].endswith(" 5")  # after all five batches
    assert "5 of 5 batches succeeded" in stderr and "items/s" in stderr


def test_a_failing_batch_is_retried_then_reported_and_the_status_is_1(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    items = ["a", "b", "fail", "c", "d", "e"]
    job = {
        "job_id": "j2",
        "workers": 3,
        "item_list": {"items": items, "batch_size": 2},
        "config": {"out": str(out)},
        "sqs_dead_letter_queue": {"arn": "ignored", "max_receive_count": 3},
    }
    status, stderr, summary = run_job(tmp_path, BATCH, job)
    assert status == 1, stderr
    attempts = Counter(
        json.loads(line)["batch_id"] for line in (out / "attempts.ndjson").read_text().splitlines()
    )
    assert attempts == {"j2-0": 1, "j2-1": 3, "j2-2": 1}
    assert summary is not None and summary["exit_status"] == 1
    assert summary["succeeded"] == 2 and summary["failed"] == 1
    [failed] = summary["failed_batches"]
    assert failed["batch_id"] == "j2-1" and failed["items"] == ["fail", "c"]
    assert failed["receive_count"] == 3 and "ValueError: an item says fail" in failed["error"]
    assert "failed batch j2-1" in stderr
    # on_job_complete still runs once, as Cortex ran it once the queue was empty
    assert len((out / "complete.txt").read_text().splitlines()) == 1


def test_without_a_dead_letter_queue_a_failing_batch_is_tried_once(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    job = {"item_list": {"items": ["fail"], "batch_size": 1}, "config": {"out": str(out)}}
    status, stderr, summary = run_job(tmp_path, BATCH, job)
    assert status == 1, stderr
    assert len((out / "attempts.ndjson").read_text().splitlines()) == 1
    assert summary is not None and summary["failed_batches"][0]["receive_count"] == 1


def test_a_worker_that_dies_loses_no_batch(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    items = ["crash", *range(9)]
    job = {
        "job_id": "j3",
        "workers": 3,
        "item_list": {"items": items, "batch_size": 1},
        "config": {"out": str(out)},
        "sqs_dead_letter_queue": {"max_receive_count": 2},
    }
    status, stderr, summary = run_job(tmp_path, BATCH, job)
    assert status == 1, stderr
    assert summary is not None and summary["succeeded"] == 9
    [failed] = summary["failed_batches"]
    assert failed["batch_id"] == "j3-0" and failed["receive_count"] == 2
    assert "exited (status 7)" in failed["error"]
    assert sorted(item for r in batch_records(out) for item in r["items"]) == list(range(9))


def test_the_jobs_timeout_ends_it_reporting_the_batch_still_held(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    job = {
        "job_id": "j4",
        "workers": 2,
        "timeout": 10,
        "item_list": {"items": ["slow", 1, 2, 3], "batch_size": 1},
        "config": {"out": str(out)},
    }
    started = time.monotonic()
    status, stderr, summary = run_job(tmp_path, BATCH, job)
    assert status == 1, stderr
    assert time.monotonic() - started < 55, "the runner waited for the slow batch (60 s)"
    assert summary is not None and summary["timed_out"] is True
    assert summary["succeeded"] == 3
    [failed] = summary["failed_batches"]
    assert failed["batch_id"] == "j4-0" and failed["items"] == ["slow"]
    assert "timeout of 10s passed" in failed["error"]
    assert summary["on_job_complete"].startswith("not run")
    assert not (out / "complete.txt").exists()


def test_the_v034_handler_shape(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    job = {"job_id": "h", "item_list": {"items": [1, 2, 3], "batch_size": 2}}
    status, stderr, _ = run_job(
        tmp_path, BATCH, job, path="handler.py", interface="handler", config={"out": str(out)}
    )
    assert status == 0, stderr
    assert [r["items"] for r in batch_records(out)] == [[1, 2], [3]]
    assert (out / "complete.txt").read_text() == "h"


def test_a_predictor_that_fails_to_load_exits_3(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    job = {"item_list": {"items": [1], "batch_size": 1}, "config": {"out": str(out)}}
    status, stderr, _ = run_job(tmp_path, BATCH, job, config={"fail_init": True})
    assert status == 3, stderr
    assert "init refused" in stderr and "predictor.py" in stderr
    assert not (out / "attempts.ndjson").exists()


def test_a_bad_job_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    job = {"item_list": {"items": [1], "batch_size": 0}}
    status, stderr, _ = run_job(tmp_path, BATCH, job)
    assert status == 2
    assert "item_list.batch_size: must be an integer >= 1 (got 0)" in stderr


def test_separate_workers_split_the_batches_and_complete_once(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    job = {"job_id": "p", "item_list": {"items": list(range(7)), "batch_size": 2}}
    config = {"out": str(out)}
    for index in (0, 1):
        status, stderr, summary = run_job(
            tmp_path, BATCH, job, "--worker-index", str(index), "--worker-count", "2", config=config
        )
        assert status == 0, stderr
        assert summary is not None
        assert summary["batches"] == 2 and summary["succeeded"] == 2
    assert sorted(r["batch_id"] for r in batch_records(out)) == ["p-0", "p-1", "p-2", "p-3"]
    pids = {r["batch_id"]: r["pid"] for r in batch_records(out)}
    assert pids["p-0"] == pids["p-2"] != pids["p-1"] == pids["p-3"]  # index i: i, i+2
    assert not (out / "complete.txt").exists()
    status, stderr, _ = run_job(tmp_path, BATCH, job, "--on-job-complete", config=config)
    assert status == 0, stderr
    assert (out / "complete.txt").read_text().split()[1] == "4"


def test_a_task_runs_once_with_the_merged_config(tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    job = {"config": {"out": str(result), "deep": {"y": 2}}}
    status, stderr, _ = run_job(
        tmp_path,
        TASK,
        job,
        kind="TaskAPI",
        path="task.py",
        interface="task",
        config={"deep": {"x": 1}, "name": "api"},
    )
    assert status == 0, stderr
    assert json.loads(result.read_text()) == {
        "deep": {"x": 1, "y": 2},
        "name": "api",
        "out": str(result),
    }


def test_a_failing_task_exits_1(tmp_path: Path) -> None:
    status, stderr, _ = run_job(
        tmp_path, TASK, {"config": {"fail": True}}, kind="TaskAPI", path="task.py", interface="task"
    )
    assert status == 1
    assert "the task was told to fail" in stderr and "the task failed" in stderr


def test_batches_can_go_to_a_server_over_http(tmp_path: Path) -> None:
    """The seam the container kinds use: each batch POSTed to a URL, failures retried."""
    received: list[tuple[str, str | None, Any]] = []
    refused: set[str] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or "null")
            batch_id = self.headers.get("X-Cortex-Batch-Id")
            with lock:
                received.append((self.path, batch_id, body))
                status = 200
                if body == [13] and batch_id not in refused:  # the first try of w-2 fails
                    refused.add(batch_id)
                    status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        job = parse_job(
            {
                "job_id": "w",
                "item_list": {"items": [11, 12, 13], "batch_size": 1},
                "sqs_dead_letter_queue": {"max_receive_count": 2},
            },
            "BatchAPI",
        )
        summary = run_local(HttpCaller(url + "/", url + "/on-job-complete"), job, 2, lambda _: None)
    finally:
        server.shutdown()
    assert summary.status() == 0 and summary.succeeded == 3
    assert summary.on_job_complete == "succeeded"
    batch_posts = [(bid, body) for path, bid, body in received if path == "/"]
    assert sorted(bid for bid, _ in batch_posts) == ["w-0", "w-1", "w-2", "w-2"]
    assert [path for path, _, _ in received].count("/on-job-complete") == 1


def test_delimited_files_give_their_lines_as_items(tmp_path: Path) -> None:
    """Cortex's delimited_files (NDJSON files), here local ones, filtered by glob patterns."""
    (tmp_path / "a.ndjson").write_text('{"n": 1}\n\n{"n": 2}\n')
    (tmp_path / "b.ndjson").write_text('{"n": 3}\n')
    (tmp_path / "skip.txt").write_text("not json\n")
    job = parse_job(
        {
            "delimited_files": {
                "s3_paths": [str(tmp_path)],
                "includes": ["*.ndjson"],
                "batch_size": 2,
            }
        },
        "BatchAPI",
    )
    assert job.items == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [b.items for b in job.batches()] == [[{"n": 1}, {"n": 2}], [{"n": 3}]]
    (tmp_path / "b.ndjson").write_text('{"n": 3}\n{"n": \n')
    try:
        parse_job(
            {"delimited_files": {"s3_paths": [str(tmp_path / "b.ndjson")], "batch_size": 1}},
            "BatchAPI",
        )
    except JobFileError as error:
        assert str(error).startswith(f"{tmp_path / 'b.ndjson'}:2: not JSON")
    else:
        raise AssertionError("a bad line was accepted")


def test_sigterm_stops_the_job_reporting_what_was_not_done(tmp_path: Path) -> None:
    out = out_folder(tmp_path)
    spec = api_spec("job", kind="BatchAPI", path="predictor.py", config={"out": str(out)})
    (tmp_path / "api.json").write_text(spec.to_json())
    job = {
        "job_id": "s",
        "workers": 2,
        "item_list": {"items": ["slow", "slow", 1], "batch_size": 1},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    summary = tmp_path / "summary.json"
    command = [sys.executable, "-m", "cortex_serve.jobs", "--spec", str(tmp_path / "api.json")]
    command += ["--project", str(BATCH), "--job", str(tmp_path / "job.json")]
    command += ["--summary-file", str(summary)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    attempts = out / "attempts.ndjson"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both workers are inside a slow batch
        if attempts.exists() and len(attempts.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 10  # not the 60 s of the batches
    assert process.returncode == 1, stderr
    found = json.loads(summary.read_text())
    assert {f["batch_id"] for f in found["failed_batches"]} == {"s-0", "s-1", "s-2"}
    assert all(f["error"] == "stopped by SIGTERM" for f in found["failed_batches"])
    assert "stopping: stopped by SIGTERM" in stderr


def test_a_task_taking_metrics_client_is_refused_once_located(tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text(
        "class Task:\n    def __init__(self, metrics_client):\n        pass\n\n"
        "    def __call__(self, config):\n        pass\n"
    )
    with pytest.raises(PredictorError) as raised:
        load_task({"name": "report", "predictor": {"path": "task.py"}}, tmp_path)
    message = str(raised.value)
    assert '"metrics_client" is not supported' in message
    assert message.count("task.py") == 1, message  # located once, not wrapped twice
