"""Readiness, admission, worker death, shutdown and init failure of a real gunicorn server."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cortex_build.spec import BatchingSpec
from servers import PROJECTS, RunningServer, api_spec, metric, simultaneously

ECHO = PROJECTS / "echo"


def sleep_request(server: RunningServer, seconds: float) -> httpx.Response:
    # One fresh connection per request, as separate clients would make.
    return httpx.post(
        server.url(), params={"return": "sleep", "seconds": str(seconds)}, json={}, timeout=30
    )


def sleep_on_a_new_connection(server: RunningServer, seconds: float) -> tuple[int, dict, float]:
    """(status, JSON body, when it ended) of a sleep request on a connection of its own. An
    httpx client per request would cost this 2-core machine 0.2 s of CPU in a burst of 8."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        path = f"/predict?return=sleep&seconds={seconds}"
        connection.request("POST", path, b"{}", {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), time.monotonic()
    finally:
        connection.close()


def wait_in_flight(server: RunningServer, count: int, timeout: float = 10) -> None:
    """Until the replica reports `count` requests in flight (admitted, not yet answered)."""
    deadline = time.monotonic() + timeout
    while (now := metric(server, "cortex_in_flight_requests")) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{now} requests in flight after {timeout}s, not {count}")
        time.sleep(0.02)


def worker_pids(server: RunningServer) -> set[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return {int(pid) for pid in children.read_text().split()}


@pytest.mark.parametrize(("limit", "extra"), [(3, 2), (4, 5)])
def test_requests_over_max_replica_concurrency_get_exactly_that_many_503s_replica_wide(
    start_server, limit, extra
):
    # Two processes with room for every request: only the replica-wide limit can refuse.
    server = start_server(ECHO, api_spec("busy", processes=2, threads=8, max_concurrency=limit))
    started = time.monotonic()
    results = simultaneously(limit + extra, lambda: (sleep_request(server, 1.5), time.monotonic()))
    statuses = sorted(response.status_code for response, _ in results)
    assert statuses == [200] * limit + [503] * extra
    for response, finished in results:
        if response.status_code == 503:
            assert finished - started < 1.0  # refused at once, not after waiting
            assert "max_replica_concurrency" in response.json()["error"]
    assert metric(server, "cortex_in_flight_requests") == 0


@pytest.mark.parametrize(("processes", "threads"), [(1, 1), (1, 3), (3, 1)])
def test_processes_and_threads_are_what_the_spec_says(start_server, processes, threads):
    spec = api_spec("sized", processes=processes, threads=threads)
    server = start_server(ECHO, spec)
    assert len(worker_pids(server)) == processes
    if processes > 1:
        return  # that processes serve side by side: the test below
    # Three 0.6 s predictions at once: side by side with 3 threads, one after another in one.
    started = time.monotonic()
    results = simultaneously(3, lambda: sleep_request(server, 0.6))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in results] == [200] * 3
    if threads == 1:
        assert elapsed >= 1.8
    else:
        assert elapsed < 1.5


def thread_policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of a process."""
    return {os.sched_getscheduler(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


@pytest.mark.parametrize(("setting", "policy"), [("1", "SCHED_BATCH"), ("0", "SCHED_OTHER")])
def test_worker_threads_run_under_sched_batch_unless_turned_off(start_server, setting, policy):
    spec = api_spec("policy", processes=2, threads=2)
    server = start_server(ECHO, spec, env={"CORTEX_SERVE_BATCH_SCHEDULING": setting})
    # Predictions in every thread of both processes: the predict threads start with the first.
    results = simultaneously(8, lambda: sleep_request(server, 0.3))
    assert [r.status_code for r in results] == [200] * 8
    workers = worker_pids(server)
    assert len(workers) == 2
    for pid in workers:  # each worker sets it after its fork
        assert thread_policies(pid) == {getattr(os, policy)}
    # Threads started later inherit it: a worker that served has its loop and 2 predict threads
    # (which worker the kernel hands a connection to is its choice, so not necessarily both).
    assert max(len(list(Path(f"/proc/{pid}/task").iterdir())) for pid in workers) >= 3
    assert thread_policies(server.process.pid) == {os.SCHED_OTHER}  # the master is left alone


def test_three_single_threaded_processes_serve_three_requests_at_once(start_server, tmp_path):
    # Which process accepts a connection is the kernel's choice, and an idle event loop accepts
    # while its one predict thread is busy. So each request here blocks its process' event loop
    # (an async predict that sleeps without awaiting): a busy process accepts nothing, and each
    # next request, sent once the previous one is in flight, must land on another process. "In
    # flight" is a file the predictor writes (asking /metrics could reach a process that had
    # accepted that connection just before it blocked).
    spec = api_spec("three", processes=3, threads=1)
    server = start_server(PROJECTS / "async_echo", spec)
    assert len(worker_pids(server)) == 3
    with ThreadPoolExecutor(3) as pool:
        requests = []
        for number in (1, 2, 3):
            marker = tmp_path / f"started-{number}"
            params = {"block": "2", "started_marker": str(marker)}
            requests.append(pool.submit(httpx.post, server.url(), params=params, json={}))
            deadline = time.monotonic() + 10
            while not marker.exists():
                assert time.monotonic() < deadline, f"request {number} never started"
                time.sleep(0.01)
        results = [request.result(timeout=30).json() for request in requests]
    assert len({result["pid"] for result in results}) == 3
    # All three predictions ran at the same time: each started before any ended.
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)


@pytest.mark.parametrize(("processes", "threads", "bursts"), [(3, 1, 10), (2, 4, 3)])
def test_simultaneous_requests_on_new_connections_go_to_processes_with_a_free_thread(
    start_server, processes, threads, bursts
):
    # A burst of processes x threads requests of 1 s each, every one on a connection of its own:
    # one per free thread, the burst takes 1 s; two on one thread, 2 s.
    spec = api_spec("spread", processes=processes, threads=threads)
    server = start_server(ECHO, spec)
    count = processes * threads
    durations = []
    for _ in range(bursts):
        started = time.monotonic()
        results = simultaneously(count, lambda: sleep_on_a_new_connection(server, 1))
        durations.append(round(time.monotonic() - started, 3))
        assert [status for status, _, _ in results] == [200] * count
        per_process = Counter(body["pid"] for _, body, _ in results)
        assert sorted(per_process.values()) == [threads] * processes, (per_process, durations)
    print(f"{processes} x {threads}: bursts took {durations} s")
    assert max(durations) < 1.5, durations


def test_a_full_replica_still_accepts_queues_evenly_and_refuses_past_its_limit_at_once(
    start_server,
):
    # Every thread busy: connections are still accepted (none waits long unseen in the socket's
    # backlog), so requests queue in the processes, two per thread here, or get 503 at once.
    server = start_server(ECHO, api_spec("full", processes=3, threads=1, max_concurrency=6))
    started = time.monotonic()
    results = simultaneously(8, lambda: sleep_on_a_new_connection(server, 1))
    assert sorted(status for status, _, _ in results) == [200] * 6 + [503] * 2
    finished = sorted(round(end - started, 3) for status, _, end in results if status == 200)
    refused = [end - started for status, _, end in results if status == 503]
    print(f"3 x 1, 8 requests: answered after {finished} s, refused after {refused} s")
    assert max(refused) < 0.5
    per_process = Counter(body["pid"] for status, body, _ in results if status == 200)
    assert sorted(per_process.values()) == [2, 2, 2]
    assert max(finished) < 2.5  # three on one thread: 3 s


def test_healthz_is_503_until_every_process_initialised(start_server):
    spec = api_spec("slow-init", processes=2, config={"init_seconds": 2})
    server = start_server(PROJECTS / "slow_init", spec, wait=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # up, but not ready
        try:
            health = httpx.get(server.url("/healthz"))
            break
        except httpx.TransportError:
            time.sleep(0.05)
    assert health.status_code == 503
    early = httpx.post(server.url(), json={})
    assert early.status_code == 503
    assert "initialising" in early.json()["error"]
    server.wait_healthy(20)
    assert httpx.post(server.url(), json={}).json() == {"ready": True}


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_a_predictor_whose_init_fails_stops_the_server_with_status_3(start_server, processes):
    spec = api_spec("broken", processes=processes)
    server = start_server(PROJECTS / "failing_init", spec, wait=False)
    healthy = False
    deadline = time.monotonic() + 20
    while server.process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            healthy |= httpx.get(server.url("/healthz")).status_code == 200
        time.sleep(0.05)
    assert server.wait_exit(10) == 3  # whichever number of processes failed at once
    assert not healthy
    records = [json.loads(line) for line in server.log().splitlines()]  # no bare traceback
    error = next(r for r in records if "model file is corrupt" in r["message"])
    assert error["levelname"] == "ERROR"
    assert "broken" in error["message"]
    assert "Traceback" in error["exception"]


@pytest.mark.parametrize(("death", "processes"), [("sigkill", 2), ("exit0", 1)])
def test_a_process_that_dies_while_its_predictor_initialises_is_retried_then_stops_the_server(
    start_server, death, processes
):
    # The OOM killer's SIGKILL, or a C extension's exit(0), during __init__: no Python error to
    # report, so the server retries, a few times, then gives up as for an __init__ that raises.
    spec = api_spec("dying", processes=processes, config={"death": death})
    server = start_server(PROJECTS / "dying_init", spec, wait=False)
    assert server.wait_exit(20) == 3
    records = [json.loads(line) for line in server.log().splitlines()]
    boots = [r for r in records if r["message"].startswith("Booting worker")]
    assert 3 <= len(boots) <= 3 + processes - 1  # three tries, and those already under way
    final = [r for r in records if "giving up" in r["message"]]
    assert len(final) == 1, final
    assert final[0]["levelname"] == "ERROR"
    assert "dying" in final[0]["message"]
    if death == "sigkill":
        assert "SIGKILL" in final[0]["message"]
        assert "OOM killer" in final[0]["message"]
    else:
        assert "exited with status 0" in final[0]["message"]


def test_a_killed_worker_fails_its_request_is_replaced_and_leaks_no_capacity(
    start_server, tmp_path
):
    server = start_server(ECHO, api_spec("fragile", processes=2, threads=2, max_concurrency=3))
    pids_before = worker_pids(server)
    pid_file = tmp_path / "slow.pid"
    params = {"return": "sleep", "seconds": "1.5", "pid_file": str(pid_file)}
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.post, server.url(), params=params, json={}, timeout=30)
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        busy_worker = pid_file.read_text()
        # A request whose worker dies mid-request fails (the predictor kills its own process,
        # unless it landed on the busy worker: then it is spared and we ask again).
        for _ in range(50):
            try:
                httpx.post(
                    server.url(),
                    params={"return": "die", "unless_pid": busy_worker},
                    json={},
                    timeout=10,
                )
            except httpx.TransportError:
                break
        else:
            pytest.fail("never reached the idle worker")
        # The request in flight on the other worker is unharmed.
        assert slow.result().status_code == 200
    for _ in range(5):  # serving goes on while the replacement boots
        assert httpx.post(server.url(), json={}).status_code == 200
    deadline = time.monotonic() + 20
    while metric(server, "cortex_processes_ready") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids_after = worker_pids(server)
    assert len(pids_after) == 2
    assert int(busy_worker) in pids_after
    assert pids_after != pids_before
    # The dead worker's admission unit came back: the full limit is usable again.
    assert metric(server, "cortex_in_flight_requests") == 0
    results = simultaneously(3, lambda: sleep_request(server, 0.5))
    assert [r.status_code for r in results] == [200, 200, 200]


def test_a_replacement_worker_takes_no_request_before_its_predictor_is_ready(start_server):
    # The replica is healthy; one worker dies and its replacement takes 4 s to load its model.
    # Until it is ready it must not accept connections on the shared socket (every request goes
    # to the ready worker), and the arbiter (worker timeout 2 s, the least uvicorn's once-a-second
    # heartbeat allows) must not kill it during the long load. (gunicorn >= 22 never times out a
    # worker that has not beaten yet; the worker beats anyway, for versions that do.)
    spec = api_spec("slow-replacement", processes=2, config={"init_seconds": 4})
    server = start_server(PROJECTS / "slow_init", spec, args=("--worker-timeout", "2"), timeout=30)
    before = worker_pids(server)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while len((now := worker_pids(server)) - before) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    replacement = (now - before).pop()
    statuses = []
    for _ in range(20):  # over ~1 s, while the replacement initialises
        statuses.append(httpx.post(server.url(), json={}, timeout=10).status_code)
        time.sleep(0.05)
    assert statuses == [200] * 20
    assert httpx.get(server.url("/healthz")).status_code == 200
    deadline = time.monotonic() + 20
    while metric(server, "cortex_processes_ready") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(server, "cortex_processes_ready") == 2
    assert worker_pids(server) == (before - {victim}) | {replacement}  # loaded, never killed
    assert "WORKER TIMEOUT" not in server.log()


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0(start_server):
    server = start_server(ECHO, api_spec("graceful", processes=2, threads=2))
    with ThreadPoolExecutor(3) as pool:
        in_flight = [pool.submit(sleep_request, server, 2) for _ in range(3)]
        wait_in_flight(server, 3)  # all three inside predict before the signal
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):
            httpx.post(server.url(), json={}, timeout=2)
        assert [f.result().status_code for f in in_flight] == [200, 200, 200]
    assert server.wait_exit(15) == 0


def test_the_grace_period_is_bounded(start_server):
    server = start_server(ECHO, api_spec("impatient"), args=("--graceful-timeout", "1"))
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(sleep_request, server, 20)
        wait_in_flight(server, 1)  # it arrived: what follows cuts a request in predict
        stopped = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        exit_code = server.wait_exit(15)
        waited = time.monotonic() - stopped
        assert 0.9 < waited < 6  # the request had its grace period, and no more
        with pytest.raises(httpx.TransportError):
            stuck.result()
    assert exit_code == 0  # stopping was asked for: not a failure of the server


def test_server_side_batching_groups_concurrent_requests_and_answers_each(start_server):
    batching = BatchingSpec(max_batch_size=4, batch_interval=0.1)
    spec = api_spec("batch", config={"delay": 0.3}, server_side_batching=batching)
    server = start_server(PROJECTS / "batch_doubler", spec)
    values = iter(range(8))
    results = simultaneously(8, lambda: (v := next(values), httpx.post(server.url(), json=v)))
    for value, response in results:
        assert response.json()["doubled"] == value * 2
    sizes = [response.json()["batch_size"] for _, response in results]
    assert max(sizes) > 1
    # /metrics counts each batch once, with its size: the requests of a batch of n each saw n
    batches = sum(1 / size for size in sizes)
    assert metric(server, "cortex_batch_size_count") == round(batches)
    assert metric(server, "cortex_batch_size_sum") == 8
    wrong = httpx.post(server.url(), json="short")
    assert wrong.status_code == 500
    assert "one prediction per request" in wrong.json()["error"]
