"""`cortex-build serve --reload` survives a save with a syntax error: it goes on serving the last
good code, says why it did not reload, and reloads on the next good save."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from native import reloading_project, serve_process, stop, wait_healthy
from servers import free_port


def answers_until(url: str, wanted: dict[str, int], seconds: float = 30) -> list[dict[str, int]]:
    seen: list[dict[str, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and seen[-1:] != [wanted]:
        try:
            response = httpx.post(url, json={}, timeout=30)
        except httpx.RemoteProtocolError:  # a connection an old process closed as it stopped
            continue
        assert response.status_code == 200, response.text
        seen.append(response.json())
        time.sleep(0.1)
    return seen


def test_a_syntax_error_keeps_the_last_good_code_serving(tmp_path: Path) -> None:
    project, helper = reloading_project(tmp_path)
    port = free_port()
    process = serve_process("serve", str(project), "--port", str(port), "--reload")
    url = f"http://127.0.0.1:{port}/predict"
    try:
        wait_healthy(process, port)
        assert httpx.post(url, json={}).json() == {"answer": 1}
        helper.write_text("def answer(:\n    return 2\n")  # saved half-typed
        time.sleep(2)  # several times what the watcher takes to act on a save
        for _ in range(5):
            response = httpx.post(url, json={}, timeout=10)
            assert (response.status_code, response.json()) == (200, {"answer": 1})
        assert process.poll() is None, "the server stopped on a syntax error"
        helper.write_text("def answer():\n    return 3\n")  # the next good save
        assert answers_until(url, {"answer": 3})[-1] == {"answer": 3}
    finally:
        output = stop(process)
    assert "not reloading: helper.py:1:" in output
    assert "still serving the code before it" in output
