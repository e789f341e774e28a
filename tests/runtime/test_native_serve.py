"""`cortex-build serve`: the same runtime on this host, from a cortex.yaml, without Docker."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from native import reloading_project, serve_process, stop, wait_healthy
from servers import PROJECTS, free_port

NATIVE = PROJECTS / "native"


def test_serve_runs_the_runtime_with_dotenv_and_stops_cleanly_on_sigterm():
    port = free_port()
    process = serve_process("serve", str(NATIVE), "--api", "greeter", "--port", str(port))
    try:
        wait_healthy(process, port)
        response = httpx.post(f"http://127.0.0.1:{port}/greet", json={"name": "Ada"})
        assert response.json() == {
            "greeting": "from .env",
            "salutation": "from predictor.env",
            "name": "Ada!",
        }
        summary = httpx.get(f"http://127.0.0.1:{port}/predict").json()
        assert summary["predictor"]["processes_per_replica"] == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        output = process.stdout.read()
        assert f"serving API greeter at http://127.0.0.1:{port}" in output
    finally:
        stop(process)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie (its new parent has not reaped it yet) has stopped


def test_the_server_does_not_outlive_a_killed_serve_command():
    port = free_port()
    process = serve_process(
        "serve", str(NATIVE), "--api", "greeter", "--port", str(port), start_new_session=True
    )
    try:
        wait_healthy(process, port)
        [master] = children(process.pid)
        server = [master, *children(master)]
        assert len(server) == 3  # the gunicorn master and its 2 workers
        arguments = Path(f"/proc/{master}/cmdline").read_bytes().split(b"\0")
        spec_dir = Path(arguments[arguments.index(b"--spec") + 1].decode()).parent
        assert spec_dir.name.startswith("cortex-build-serve-")
        process.kill()  # as the OOM killer or a closed terminal's SIGKILL would
        process.wait(5)
        deadline = time.monotonic() + 15
        while any(map(alive, server)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in server if alive(pid)], "the server outlived serve"
        assert not spec_dir.exists()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its process group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def test_a_missing_requirement_is_named_before_anything_starts():
    process = serve_process("serve", str(PROJECTS / "native_missing_req"), "--port", "1")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert output.strip().splitlines() == [
        'requirements.txt:2: package "surely-not-installed-pkg" is not installed in this Python '
        f"({sys.executable}); install the project's requirements first: "
        f"pip install -r {(PROJECTS / 'native_missing_req' / 'requirements.txt').resolve()}"
    ]


def test_a_requirements_file_that_is_not_utf8_is_a_problem_not_a_traceback(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECTS / "native_missing_req", project)
    (project / "requirements.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    process = serve_process("serve", str(project), "--port", "1")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert output.startswith("requirements.txt: cannot be read as UTF-8 text:"), output


def test_a_project_with_several_apis_needs_api():
    process = serve_process("serve", str(NATIVE), "--port", "1")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "the project has 2 APIs (greeter, other): choose one with --api NAME" in output
    process = serve_process("serve", str(NATIVE), "--api", "nope", "--port", "1")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert 'cortex-build: --api: no API is named "nope" (the APIs are: greeter, other)' in output


def test_reload_serves_edited_code_without_a_restart_or_an_error_status(tmp_path):
    project, helper = reloading_project(tmp_path, processes=2)
    # The edit below keeps the size and lands in the same whole second: what a .pyc checks.
    second = int(time.time()) * 10**9
    os.utime(helper, ns=(second, second))
    port = free_port()
    process = serve_process("serve", str(project), "--port", str(port), "--reload")
    url = f"http://127.0.0.1:{port}/predict"
    try:
        wait_healthy(process, port)
        assert httpx.post(url, json={}).json() == {"answer": 1}
        # an edit to a module the predictor imports, not only to the predictor itself
        helper.write_text("def answer():\n    return 2\n")
        os.utime(helper, ns=(second, second + 500_000_000))
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and answers[-1:] != [{"answer": 2}]:
            try:
                response = httpx.post(url, json={}, timeout=30)
            except httpx.RemoteProtocolError:
                # A connection an old process accepted just as it stopped, before its request
                # was read: uvicorn closes those (a client retries). Never an error status.
                continue
            assert response.status_code == 200, response.text  # no 503 while processes reload
            answers.append(response.json())
            time.sleep(0.05)
        assert answers[-1] == {"answer": 2}, answers[-5:]
        # every process runs the new code, not only the one that answered first
        assert [httpx.post(url, json={}).json() for _ in range(10)] == [{"answer": 2}] * 10
    finally:
        stop(process)


PID_PREDICTOR = """
import os


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"pid": os.getpid()}
"""


def test_reload_watches_the_projects_own_folders_not_its_virtualenvs(tmp_path):
    project = tmp_path / "project"
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / "venv" / "lib").mkdir(parents=True)
    (project / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtualenv, any name
    (project / "cortex.yaml").write_text(
        "- name: live\n  kind: RealtimeAPI\n  predictor:\n    type: python\n"
        "    path: predictor.py\n"
    )
    (project / "predictor.py").write_text(PID_PREDICTOR)
    port = free_port()
    process = serve_process("serve", str(project), "--port", str(port), "--reload")
    url = f"http://127.0.0.1:{port}/predict"

    def pid() -> int | None:
        try:
            return httpx.post(url, json={}, timeout=30).json()["pid"]
        except httpx.RemoteProtocolError:  # a connection an old process closed as it stopped
            return None

    try:
        wait_healthy(process, port)
        first = pid()
        (project / ".venv" / "lib" / "site.py").write_text("x = 1\n")
        (project / "venv" / "lib" / "installed.py").write_text("x = 1\n")
        (project / "notes.txt").write_text("not code\n")
        time.sleep(2)  # longer than the watcher takes to act on a change
        assert pid() == first, "an edit outside the project's code reloaded the workers"
        (project / "pkg").mkdir()  # a folder made after the server started is watched too
        time.sleep(1)
        (project / "pkg" / "util.py").write_text("x = 1\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pid() in (first, None):
            time.sleep(0.1)
        assert pid() not in (first, None), "an edit in a new code folder did not reload the workers"
    finally:
        output = stop(process)
    assert "reloading on changes to the project's Python files (OS notifications" in output
