"""Cortex v0.34-v0.35's Handler (interface "handler") over real HTTP: every verb to its own
handle_<verb> method, 405 for the others, callbacks after the response, batching of POST only.

One shared two-process server of the `handler` project answers most tests (module scope).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cortex_build.spec import ApiSpec, BatchingSpec, CortexRelease
from servers import PROJECTS, RunningServer, api_spec, metric, running_server, simultaneously

HANDLER = PROJECTS / "handler"


def handler_spec(name: str, **fields: Any) -> ApiSpec:
    """A v0.34-v0.35 API: `handler:` with a Handler class in handler.py."""
    spec = api_spec(name, path="handler.py", interface="handler", **fields)
    return dataclasses.replace(
        spec, generation="v0.34", cortex=CortexRelease(releases="v0.34-v0.35", assumed="v0.35")
    )


@pytest.fixture(scope="module")
def handler() -> Iterator[RunningServer]:
    spec = handler_spec("hello", processes=2, threads=2, config={"greeting": "hi"})
    with running_server(HANDLER, spec) as server:
        yield server


def request(server: RunningServer, verb: str, path: str = "/predict", **kwargs) -> httpx.Response:
    kwargs.setdefault("timeout", 10)
    return httpx.request(verb, server.url(path), **kwargs)


def test_post_and_get_go_to_their_own_methods_on_predict_and_the_endpoint(handler):
    for path in ("/predict", "/hello"):
        posted = request(handler, "POST", path, json={"x": 1})
        assert posted.status_code == 200
        assert posted.json()["verb"] == "POST" and posted.json()["payload"] == {"x": 1}
        got = request(handler, "GET", path)
        assert got.status_code == 200
        assert got.json()["verb"] == "GET" and got.json()["config"] == {"greeting": "hi"}


def test_a_verb_without_its_method_is_a_json_405_listing_the_verbs_there_are(handler):
    for verb in ("PUT", "PATCH", "HEAD", "OPTIONS"):
        response = request(handler, verb, json={"x": 1})
        assert response.status_code == 405
        assert response.headers["allow"] == "POST, GET, DELETE"
        assert response.headers["content-type"] == "application/json"
        if verb != "HEAD":  # a HEAD answer has no body
            assert response.json()["status"] == 405
            assert response.json()["error"].startswith(f"method {verb} is not allowed")


def test_query_params_and_headers_reach_the_methods_that_name_them(handler):
    response = request(handler, "GET", params={"a": "1", "b": "two"}, headers={"X-Test": "yes"})
    assert response.json()["query"] == {"a": "1", "b": "two"}
    assert response.json()["x-test"] == "yes"


def test_async_handle_post_runs_on_the_event_loop_and_sync_methods_in_the_pool(handler):
    assert request(handler, "POST", json={}).json()["thread"] == "MainThread"
    assert request(handler, "GET").json()["thread"].startswith("predict")


def test_a_body_is_parsed_only_for_a_method_that_names_payload(handler):
    # handle_get names no payload: a body that is not JSON is no 400 (Cortex did not parse it)
    broken = request(handler, "GET", content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 200 and broken.json()["verb"] == "GET"
    bad = request(handler, "POST", content=b"{", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    # a request without a body: the body's bytes, as Cortex gave them, b""
    assert request(handler, "DELETE").json() == {"verb": "DELETE", "payload": "b''"}
    deleted = request(handler, "DELETE", content=b"bye", headers={"content-type": "text/plain"})
    assert deleted.json()["payload"] == "'bye'"


def test_a_returned_callback_runs_after_the_response_is_sent(handler, tmp_path: Path):
    marker = tmp_path / "callback.txt"
    params = {"return": "callback", "callback_marker": str(marker), "callback_delay": "1"}
    started = time.monotonic()
    response = request(handler, "POST", params=params, json={})
    assert response.text == "sent before the callback"  # str: text/plain in this generation
    assert response.headers["content-type"].startswith("text/plain")
    assert time.monotonic() - started < 0.9  # not held back by the callback's second
    assert not marker.exists()
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text().startswith("predict")  # in the request thread pool, as Cortex did


def test_a_tuple_without_a_callable_is_a_json_array(handler):
    assert request(handler, "POST", params={"return": "pair"}, json={}).json() == [1, 2]


def test_an_exception_in_a_method_is_a_json_500_logged_with_its_traceback(handler):
    response = request(handler, "GET", params={"fail": "1"})
    assert response.status_code == 500
    assert response.json()["error"] == "ValueError: asked to fail"
    assert request(handler, "GET").status_code == 200  # serving goes on
    failures = [
        json.loads(line) for line in handler.log().splitlines() if '"predict failed"' in line
    ]
    assert any("asked to fail" in failure["exception"] for failure in failures)


def test_metrics_count_every_verb_by_status_but_not_405s(handler):
    name = 'cortex_requests_total{api="hello",status="200"}'
    before = metric(handler, name)
    request(handler, "GET")
    request(handler, "DELETE")
    request(handler, "POST", json={})
    request(handler, "PUT", json={})
    assert metric(handler, name) - before == 3
    with pytest.raises(KeyError):
        metric(handler, 'cortex_requests_total{api="hello",status="405"}')
    assert request(handler, "GET", "/healthz").status_code == 200


def test_get_is_shed_at_max_replica_concurrency_like_post(start_server):
    server = start_server(HANDLER, handler_spec("busy", threads=4, max_concurrency=2))
    results = simultaneously(
        3, lambda: request(server, "GET", params={"sleep": "1.5"}, timeout=30).status_code
    )
    assert sorted(results) == [200, 200, 503]
    assert metric(server, "cortex_in_flight_requests") == 0


def test_server_side_batching_batches_handle_post_only(start_server):
    batching = BatchingSpec(max_batch_size=4, batch_interval=0.1)
    spec = handler_spec("batch", config={"delay": 0.3}, server_side_batching=batching)
    server = start_server(PROJECTS / "handler_batch", spec)
    values = iter(range(8))
    results = simultaneously(8, lambda: (v := next(values), request(server, "POST", json=v)))
    for value, response in results:
        assert response.json()["doubled"] == value * 2
    assert max(response.json()["batch_size"] for _, response in results) > 1
    assert request(server, "GET", params={"n": "5"}).json() == {"n": "5"}


def test_a_bad_signature_stops_the_server_with_the_message(start_server, tmp_path: Path):
    (tmp_path / "handler.py").write_text(
        textwrap.dedent(
            """
            class Handler:
                def __init__(self, config):
                    pass

                def handle_get(self, payload, body):
                    pass
            """
        )
    )
    server = start_server(tmp_path, handler_spec("bad"), wait=False)
    assert server.wait_exit(20) != 0
    errors = [json.loads(line) for line in server.log().splitlines() if '"ERROR"' in line]
    assert any(
        error["message"]
        == 'bad: handler.py: class Handler: invalid signature for method "handle_get(self, '
        'payload, body)": "body" is not a supported argument'
        for error in errors
    ), server.log()
