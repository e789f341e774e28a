"""Real servers for runtime tests: `python -m cortex_serve` (gunicorn + uvicorn workers) on a free
loopback port, exactly as images run it, against a project folder and an `ApiSpec`.

Reuse it from any test (tests/runtime is on pytest's `pythonpath`):

    from servers import PROJECTS, api_spec

    def test_something(start_server):
        server = start_server(PROJECTS / "echo", api_spec("echo", processes=2))
        response = httpx.post(server.url("/predict"), json={"x": 1})
        assert "predictor initialised" in server.log()

- `api_spec(name, **fields)` builds a real `cortex_build.spec.ApiSpec` (the api.json contract).
- `start_server(project_dir, spec, ...)` (a fixture, in conftest.py) starts a server, waits until
  GET /healthz is 200 and stops it (SIGTERM, then SIGKILL) when the test ends.
  `running_server(...)` is the same as a context manager, for module-scoped fixtures that share
  one server across tests.
- `metric(server, name)`: a value of its /metrics; `simultaneously(n, call)`: `call()` from n
  threads released together.
- `RunningServer` has `.url(path)`, `.log()` (stdout+stderr so far), `.process`, `.stop()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cortex_build.spec import ApiSpec, AutoscalingSpec, PredictorSpec, TrackerSpec

PROJECTS = Path(__file__).parent / "projects"


def api_spec(
    name: str = "echo",
    *,
    path: str = "predictor.py",
    endpoint: str | None = None,
    processes: int = 1,
    threads: int = 1,
    max_concurrency: int = 1024,
    tracker: TrackerSpec | None = None,
    kind: str = "RealtimeAPI",
    **predictor_fields: Any,
) -> ApiSpec:
    """A v0.2x-style ApiSpec for a class-based Python predictor; `predictor_fields` go into
    PredictorSpec as they are (config, env, log_level, python_path, server_side_batching...)."""
    predictor_fields.setdefault("type", "python")
    predictor_fields.setdefault("interface", "class")
    return ApiSpec(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        generation="v0.2x",
        endpoint=endpoint or f"/{name}",
        predictor=PredictorSpec(
            path=path,
            processes_per_replica=processes,
            threads_per_process=threads,
            **predictor_fields,
        ),
        autoscaling=AutoscalingSpec(max_replica_concurrency=max_concurrency),
        tracker=tracker,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    workdir: Path
    _log_file: Any = field(repr=False, default=None)

    def url(self, path: str = "/predict") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode} before it was healthy:\n"
                    + self.log()
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url("/healthz"), timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"server not healthy after {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful), then SIGKILL to the whole process group if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):  # a worker orphaned by a killed master
            os.killpg(self.process.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.process.returncode


def launch_server(
    project_dir: Path,
    spec: ApiSpec,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> RunningServer:
    """Starts `python -m cortex_serve` without waiting for it (see `running_server`)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"cortex-serve-{spec.name}-"))
    spec_file = workdir / "api.json"
    spec_file.write_text(spec.to_json())
    log_path = workdir / "server.log"
    log_file = log_path.open("wb")
    port = free_port()
    process_env = {**os.environ, **(env or {})}
    process_env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "cortex_serve", "--spec", str(spec_file)]
    command += ["--project", str(project_dir), "--host", "127.0.0.1", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=process_env,
        cwd=workdir,
        start_new_session=True,  # its own process group: teardown can kill orphans too
    )
    return RunningServer(process, port, log_path, workdir, log_file)


@contextlib.contextmanager
def running_server(
    project_dir: Path,
    spec: ApiSpec,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    wait: bool = True,
    timeout: float = 30.0,
) -> Iterator[RunningServer]:
    """A server for the duration of the block; healthy on entry unless `wait=False`."""
    server = launch_server(project_dir, spec, env=env, args=args)
    try:
        if wait:
            server.wait_healthy(timeout)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def simultaneously(count: int, call) -> list:
    """Runs `call()` from `count` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def run(_: int):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def metric(server: RunningServer, name: str) -> float:
    for line in httpx.get(server.url("/metrics")).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)
