"""`cortex-build serve` as a user runs it, for tests: start it through the real entry point, wait
until it is healthy, stop it with SIGTERM and read what it printed.

    from native import serve_process, served, stop, wait_healthy

- `serve_process(*args)`: `python -m cortex_build.cli *args` (stdout and stderr together, text,
  a process group of its own).
- `wait_healthy(process, port)`: until GET /healthz is 200; fails with the output if it exits.
- `stop(process)`: SIGTERM, then SIGKILL after `timeout`; its whole output.
- `reloading_project(root)`: a project for `--reload` tests, whose answer comes from helper.py.
- `served(project, *args)`: serve on a free port as a context manager yielding the base URL; on
  leaving, SIGTERM, and it must exit 0.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from servers import free_port

RELEASE_PROJECTS = Path(__file__).resolve().parents[1] / "release_projects"


def serve_process(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "cortex_build.cli", *args]
    options: dict[str, object] = {"start_new_session": True, **kwargs}
    return subprocess.Popen(  # type: ignore[call-overload]
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options
    )


def wait_healthy(process: subprocess.Popen[str], port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"cortex-build serve not healthy on port {port} after {timeout:g}s")


def stop(process: subprocess.Popen[str], timeout: float = 20) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


@contextlib.contextmanager
def served(project: Path, *args: str) -> Iterator[str]:
    port = free_port()
    process = serve_process("serve", str(project), "--port", str(port), *args)
    try:
        wait_healthy(process, port)
        yield f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, process.communicate()[0]
    finally:
        stop(process)


RELOADING_PREDICTOR = """\
from helper import answer


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"answer": answer()}
"""


def reloading_project(root, processes=1):
    """A project whose predictor answers helper.answer() (1), for --reload tests; its helper."""
    project = root / "project"
    project.mkdir()
    (project / "cortex.yaml").write_text(
        "- name: live\n  kind: RealtimeAPI\n  predictor:\n    type: python\n"
        f"    path: predictor.py\n    processes_per_replica: {processes}\n"
    )
    (project / "predictor.py").write_text(RELOADING_PREDICTOR)
    helper = project / "helper.py"
    helper.write_text("def answer():\n    return 1\n")
    return project, helper
