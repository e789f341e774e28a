"""The batch worker of container BatchAPIs (`python -m cortex_serve.dequeuer`) as a real process
POSTing to a real server on loopback: every batch once, Cortex's headers, /on-job-complete once
(its 404 ignored), a failing batch reported with its items and exit status 1, a server that
never listens, and SIGTERM (docker stop) ending it at once."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class Recorder(ThreadingHTTPServer):
    def __init__(
        self, fail_item: Any = None, with_complete: bool = True, hold_seconds: float = 0
    ) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hold_seconds = hold_seconds  # each batch answered after this long
        self.held = threading.Event()  # a batch arrived and is being held
        self.batches: list[tuple[str, str, list[Any]]] = []
        self.completed: list[str] = []
        self.fail_item = fail_item
        self.with_complete = with_complete
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        job_id = self.headers.get("X-Cortex-Job-ID", "")
        if self.path == "/on-job-complete":
            if not self.server.with_complete:
                self.send_response(404)
                self.end_headers()
                return
            with self.server.lock:
                self.server.completed.append(job_id)
        else:
            assert self.headers["Content-Type"] == "application/json"
            items = json.loads(body)
            if self.server.hold_seconds:
                self.server.held.set()
                time.sleep(self.server.hold_seconds)
            if self.server.fail_item in items:
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"cannot sum")
                return
            with self.server.lock:
                self.server.batches.append((job_id, self.headers["X-Cortex-Batch-Id"], items))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    recorder = Recorder(**getattr(request, "param", {}))
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.shutdown()


def command(tmp_path: Path, url: str, job: dict[str, Any], *args: str) -> list[str]:
    (tmp_path / "job.json").write_text(json.dumps(job))
    return [
        sys.executable,
        "-m",
        "cortex_serve.dequeuer",
        "--url",
        url,
        "--job",
        str(tmp_path / "job.json"),
        "--summary-file",
        str(tmp_path / "summary.json"),
        *args,
    ]


def dequeue(tmp_path: Path, url: str, job: dict[str, Any], *args: str):
    argv = command(tmp_path, url, job, *args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    summary = tmp_path / "summary.json"
    return result, json.loads(summary.read_text()) if summary.exists() else None


JOB = {"job_id": "j1", "workers": 2, "item_list": {"items": list(range(10)), "batch_size": 3}}


def test_every_batch_is_posted_once_then_on_job_complete(server: Recorder, tmp_path: Path):
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    result, summary = dequeue(tmp_path, url, JOB)
    assert result.returncode == 0, result.stderr
    assert sorted(batch_id for _, batch_id, _ in server.batches) == ["j1-0", "j1-1", "j1-2", "j1-3"]
    assert sorted(item for _, _, items in server.batches for item in items) == list(range(10))
    assert {job_id for job_id, _, _ in server.batches} == {"j1"}
    assert server.completed == ["j1"]
    assert summary["succeeded"] == 4 and summary["on_job_complete"] == "succeeded"


@pytest.mark.parametrize("server", [{"with_complete": False}], indirect=True)
def test_a_server_without_on_job_complete_is_fine(server: Recorder, tmp_path: Path):
    result, summary = dequeue(tmp_path, f"http://127.0.0.1:{server.server_address[1]}/", JOB)
    assert result.returncode == 0, result.stderr
    assert summary["on_job_complete"] == "not defined"


@pytest.mark.parametrize("server", [{"fail_item": 4}], indirect=True)
def test_a_failing_batch_is_reported_with_its_items(server: Recorder, tmp_path: Path):
    result, summary = dequeue(tmp_path, f"http://127.0.0.1:{server.server_address[1]}/", JOB)
    assert result.returncode == 1
    assert [(f["batch_id"], f["items"]) for f in summary["failed_batches"]] == [("j1-1", [3, 4, 5])]
    assert "answered 500: cannot sum" in result.stderr
    assert sorted(b for _, b, _ in server.batches) == ["j1-0", "j1-2", "j1-3"]


def test_a_server_that_never_listens_fails_the_job(tmp_path: Path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result, _ = dequeue(tmp_path, f"http://127.0.0.1:{port}/", JOB, "--ready-timeout", "1")
    assert result.returncode == 1
    assert f"nothing listens at http://127.0.0.1:{port}/ after 1s" in result.stderr


def test_a_bad_job_file_is_named(tmp_path: Path):
    result, _ = dequeue(tmp_path, "http://127.0.0.1:1/", {"workers": 1})
    assert result.returncode == 2
    assert "the job file" in result.stderr


@pytest.mark.parametrize("server", [{"hold_seconds": 60}], indirect=True)
def test_sigterm_stops_it_at_once_with_the_batches_not_done_failed(
    server: Recorder, tmp_path: Path
):
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    process = subprocess.Popen(command(tmp_path, url, JOB), stderr=subprocess.PIPE, text=True)
    assert server.held.wait(30), "no batch reached the server"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 10  # not the 60 s a batch is held
    assert process.returncode == 1, stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {f["batch_id"] for f in summary["failed_batches"]} == {"j1-0", "j1-1", "j1-2", "j1-3"}
    assert all(f["error"] == "stopped by SIGTERM" for f in summary["failed_batches"])
    assert summary["on_job_complete"] == "not run: stopped by SIGTERM"


def wait_catching(pid: int, signum: int, timeout: float = 30) -> None:
    """Until process `pid` has a handler for `signum` (its SigCgt mask in /proc): sent earlier,
    the signal would get the default action and say nothing of the code under test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(status.split("SigCgt:")[1].split()[0], 16)
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} installed no handler for signal {signum}")


def test_sigterm_while_waiting_for_the_server_stops_it(tmp_path: Path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    process = subprocess.Popen(
        command(tmp_path, f"http://127.0.0.1:{port}/", JOB), stderr=subprocess.PIPE, text=True
    )
    wait_catching(process.pid, signal.SIGTERM)  # then waiting for a listener (600 s by default)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    assert "job j1: stopped by SIGTERM" in stderr
    assert "Traceback" not in stderr
