"""The traffic splitter (`python -m cortex_serve.splitter`) over real HTTP on loopback, in front
of real `python -m cortex_serve` servers: requests split by weight, the shadow gets copies without
slowing answers (and a slow shadow's copies are bounded), a down API is answered and reported."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cortex_build.spec import ApiSpec, BackendSpec, SplitterSpec
from servers import PROJECTS, RunningServer, api_spec, free_port, running_server

PROJECT = PROJECTS / "versioned"


@contextlib.contextmanager
def running_splitter(
    splitter: SplitterSpec,
    apis: dict[str, ApiSpec],
    urls: dict[str, str],
    args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    workdir = Path(tempfile.mkdtemp(prefix=f"cortex-splitter-{splitter.name}-"))
    spec_file = workdir / "splitter.json"
    spec_file.write_text(splitter.runtime_json(apis, urls))
    log_path = workdir / "server.log"
    log_file = log_path.open("wb")
    port = free_port()
    command = [sys.executable, "-m", "cortex_serve.splitter", "--spec", str(spec_file)]
    command += ["--host", "127.0.0.1", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=workdir,
        start_new_session=True,
    )
    server = RunningServer(process, port, log_path, workdir, log_file)
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0, server.log()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def backends(tmp_path_factory) -> Iterator[tuple[dict[str, ApiSpec], dict[str, str], Path]]:
    """iris-a and iris-b answer their version; the shadow records each request, then sleeps 1 s
    (one thread: it takes one copy a second)."""
    record = tmp_path_factory.mktemp("shadow") / "copies.txt"
    apis = {
        "iris-a": api_spec("iris-a", config={"version": "a"}),
        "iris-b": api_spec("iris-b", config={"version": "b"}, endpoint="/models/b"),
        "iris-shadow": api_spec(
            "iris-shadow", config={"version": "shadow", "sleep": 1, "record": str(record)}
        ),
    }
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(running_server(PROJECT, spec)) for name, spec in apis.items()
        }
        urls = {name: f"http://127.0.0.1:{server.port}" for name, server in servers.items()}
        yield apis, urls, record


SPLIT = SplitterSpec(
    name="iris",
    endpoint="/iris",
    backends=(
        BackendSpec("iris-a", 80),
        BackendSpec("iris-b", 20),
        BackendSpec("iris-shadow", 100, shadow=True),
    ),
)


def test_requests_split_by_weight_and_the_shadow_gets_bounded_copies_without_delaying(
    backends,
) -> None:
    apis, urls, record = backends
    with running_splitter(SPLIT, apis, urls, ("--max-shadow", "4")) as splitter:
        counts: Counter[str] = Counter()
        versions: Counter[str] = Counter()
        seconds: list[float] = []
        with httpx.Client(timeout=10) as client:
            for index in range(1000):
                started = time.perf_counter()
                response = client.post(splitter.url("/iris"), json={"n": index})
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                counts[response.headers["x-cortex-backend"]] += 1
                versions[response.json()["version"]] += 1
            # /predict too; method, query, body and headers reach the API
            response = client.post(
                splitter.url("/predict?flower=setosa"),
                json={"sepal": 5.1},
                headers={"X-Test": "kept"},
            )
            health = client.get(splitter.url("/healthz")).json()
        split = {api: counts[api] / 10 for api in ("iris-a", "iris-b")}
        print(f"\n80/20 configured: {split['iris-a']}/{split['iris-b']} over 1,000 requests")
        assert abs(split["iris-a"] - 80) <= 3 and abs(split["iris-b"] - 20) <= 3, split
        assert versions == {"a": counts["iris-a"], "b": counts["iris-b"]}, versions
        assert "iris-shadow" not in counts
        median, p99 = statistics.median(seconds), statistics.quantiles(seconds, n=100)[98]
        print(f"answers with a 1 s shadow: median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        assert p99 < 0.5, f"answers waited for the 1 s shadow: p99 {p99:.3f} s"
        assert response.status_code == 200
        answer = response.json()
        assert answer["payload"] == {"sepal": 5.1}
        assert answer["query"] == {"flower": "setosa"}
        assert answer["test_header"] == "kept"
        # the shadow got copies, at most 4 in flight at a time; the rest were dropped and counted
        shadow = health["backends"]["iris-shadow"]
        dropped = health["shadow_dropped"]
        print(f"shadow: {shadow['requests']} copies sent, {dropped} dropped (at most 4 in flight)")
        assert shadow["requests"] >= 1 and dropped >= 900, health
        assert shadow["requests"] + dropped == 1001, health
        assert health["shadow_in_flight"] <= 4, health
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
            not record.exists() or len(record.read_text().splitlines()) < shadow["requests"]
        ):
            time.sleep(0.2)
        assert len(record.read_text().splitlines()) >= shadow["requests"]
        assert health["backends"]["iris-a"]["state"] == "up"
        assert health["backends"]["iris-b"]["endpoint"] == "/models/b"


def test_a_down_api_is_answered_503_naming_it_and_reported_by_healthz_and_bodies_are_bounded(
    backends,
) -> None:
    apis, urls, _ = backends
    closed = free_port()  # nothing listens there
    splitter = SplitterSpec("half", "/half", (BackendSpec("iris-a", 50), BackendSpec("iris-b", 50)))
    down = {**urls, "iris-b": f"http://127.0.0.1:{closed}"}
    with running_splitter(splitter, apis, down, ("--max-body-bytes", "1000")) as server:
        statuses: Counter[tuple[int, str]] = Counter()
        with httpx.Client(timeout=10) as client:
            # a body past the limit is refused before it takes a turn of the round-robin
            large = client.post(server.url("/half"), content=b"x" * 2000)
            assert large.status_code == 413 and "1000 bytes" in large.json()["error"]
            for _ in range(10):
                response = client.post(server.url("/half"), json={})
                statuses[(response.status_code, response.headers["x-cortex-backend"])] += 1
                if response.status_code == 503:
                    body = response.json()
                    assert body["backend"] == "iris-b"
                    assert "iris-b" in body["error"] and f":{closed}" in body["error"], body
            # turns alternate: a GET to iris-a (its summary), iris-b's turn, a HEAD to iris-a
            got = client.get(server.url("/half"))
            assert client.post(server.url("/half"), json={}).status_code == 503
            head = client.head(server.url("/predict"))
            assert head.status_code == got.status_code == 200, (head, got.text)
            assert got.headers["x-cortex-backend"] == "iris-a", got.headers
            assert head.content == b""
            assert head.headers["content-length"] == str(len(got.content))
            health = client.get(server.url("/healthz")).json()
            missing = client.post(server.url("/elsewhere"), json={})
        assert statuses == {(200, "iris-a"): 5, (503, "iris-b"): 5}, statuses
        assert health["backends"]["iris-b"]["state"] == "down"
        assert health["backends"]["iris-b"]["failures"] == 6
        assert "cannot connect" in health["backends"]["iris-b"]["last_error"]
        assert health["backends"]["iris-a"]["state"] == "up"
        assert missing.status_code == 404 and "/half" in missing.json()["error"]
        assert "API iris-b: cannot connect" in server.log()
