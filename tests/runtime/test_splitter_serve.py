"""`cortex-build serve --api SPLITTER --backend API=URL ...`: examples/traffic-splitter served
natively, each API by its own `cortex-build serve`, the splitter in front of them."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
from native import serve_process, stop, wait_healthy
from servers import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "traffic-splitter"
SAMPLE = {"sepal_length": 6.3, "sepal_width": 2.5, "petal_length": 4.9, "petal_width": 1.5}


@contextlib.contextmanager
def serving(*args: str, port: int) -> Iterator[subprocess.Popen[str]]:
    process = serve_process("serve", str(EXAMPLE), *args, "--port", str(port))
    try:
        wait_healthy(process, port)
        yield process
    finally:
        stop(process)


def test_the_example_splitter_served_natively_splits_80_20_and_copies_to_the_shadow() -> None:
    ports = {api: free_port() for api in ("iris-v1", "iris-v2", "iris-shadow", "iris")}
    with contextlib.ExitStack() as stack:
        for api in ("iris-v1", "iris-v2", "iris-shadow"):
            stack.enter_context(serving("--api", api, port=ports[api]))
        backends = [
            f"--backend={api}=http://127.0.0.1:{ports[api]}" for api in ports if api != "iris"
        ]
        splitter = stack.enter_context(serving("--api", "iris", *backends, port=ports["iris"]))
        versions: Counter[str] = Counter()
        with httpx.Client(timeout=10) as client:
            for _ in range(100):
                answer = client.post(f"http://127.0.0.1:{ports['iris']}/iris", json=SAMPLE)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert answer.headers["x-cortex-backend"] == f"iris-{body['version']}"
                versions[body["version"]] += 1
            assert versions == {"v1": 80, "v2": 20}, versions
            deadline = time.monotonic() + 10
            copies = 0
            while time.monotonic() < deadline and copies < 100:
                health = client.get(f"http://127.0.0.1:{ports['iris']}/healthz").json()
                copies = health["backends"]["iris-shadow"]["requests"]
                time.sleep(0.1)
            assert copies == 100 and health["shadow_dropped"] == 0, health
            assert health["backends"]["iris-shadow"]["state"] == "up", health
        splitter.send_signal(signal.SIGTERM)
        assert splitter.wait(20) == 0
        output = splitter.stdout.read() if splitter.stdout else ""
        assert f"serving traffic splitter iris at http://127.0.0.1:{ports['iris']}/iris" in output


def test_a_splitter_without_the_urls_of_its_apis_says_how_to_serve_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", "serve", str(EXAMPLE), "--api", "iris"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "cortex-build: --backend: traffic splitter iris needs the URL of iris-v1, iris-v2, "
        "iris-shadow: serve each (cortex-build serve PROJECT --api iris-v1 --port 8889;"
    ), result.stderr
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "cortex_build.cli",
            "serve",
            str(EXAMPLE),
            "--api",
            "iris-v1",
            "--backend",
            "iris-v2=http://127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2
    assert "--backend: is for --api naming a traffic splitter" in wrong.stderr
