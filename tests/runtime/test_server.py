"""Cortex's HTTP contract over real HTTP against real gunicorn + uvicorn workers.

One shared two-process server of the `echo` project answers most tests (module scope); tests
that stop, kill or overload a server start their own.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cortex_build.spec import CortexRelease, TrackerSpec
from servers import PROJECTS, RunningServer, api_spec, running_server

ECHO = PROJECTS / "echo"


@pytest.fixture(scope="module")
def echo() -> Iterator[RunningServer]:
    spec = api_spec(
        "echo",
        processes=2,
        threads=2,
        config={"greeting": "hello"},
        env={"GREETING": "from predictor.env"},
        tracker=TrackerSpec(model_type="classification", key="label"),
    )
    with running_server(ECHO, spec, env={"CORTEX_SERVE_MAX_BODY_BYTES": "4096"}) as server:
        yield server


def post(server: RunningServer, path: str = "/predict", **kwargs) -> httpx.Response:
    return httpx.post(server.url(path), timeout=10, **kwargs)


# -- payload by Content-Type --------------------------------------------------------------------


def test_json_payload_is_parsed(echo):
    response = post(echo, json={"key": "value", "n": [1, 2]})
    assert response.status_code == 200
    assert response.json()["payload"] == {"type": "dict", "value": {"key": "value", "n": [1, 2]}}


def test_the_api_endpoint_answers_like_predict(echo):
    response = post(echo, "/echo", json=[1, 2])
    assert response.json()["payload"] == {"type": "list", "value": [1, 2]}


def test_urlencoded_form_gives_formdata(echo):
    response = post(echo, data={"key": "value"})
    assert response.json()["payload"] == {"type": "FormData", "value": {"key": "value"}}


def test_multipart_file_upload_gives_formdata_with_uploadfile(echo):
    files = {"text": ("text.txt", b"file contents", "text/plain")}
    response = post(echo, files=files, data={"field": "x"})
    assert response.json()["payload"] == {
        "type": "FormData",
        "value": {"field": "x", "text": {"filename": "text.txt", "content": "file contents"}},
    }


def test_text_plain_gives_str_in_its_charset(echo):
    utf8 = post(echo, content="héllo".encode(), headers={"content-type": "text/plain"})
    assert utf8.json()["payload"] == {"type": "str", "value": "héllo"}
    latin1_type = {"content-type": "text/plain; charset=latin-1"}
    latin1 = post(echo, content="héllo".encode("latin-1"), headers=latin1_type)
    assert latin1.json()["payload"] == {"type": "str", "value": "héllo"}


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png", None])
def test_other_content_types_give_bytes(echo, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = post(echo, content=b"\x00\xffabc", headers=headers)
    assert response.json()["payload"] == {"type": "bytes", "value": [0, 255, 97, 98, 99]}


# -- responses by return type -------------------------------------------------------------------


def test_str_is_text_plain(echo):
    response = post(echo, params={"return": "str"}, json={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "héllo"


def test_str_is_a_json_string_for_releases_that_jsonified_it(start_server):
    # Cortex up to v0.15 answered any prediction as JSON; clients of those APIs parse JSON.
    release = CortexRelease(releases="v0.15-v0.17", assumed="v0.15", string_response="json")
    spec = dataclasses.replace(api_spec("echo-v015"), generation="v0.15", cortex=release)
    server = start_server(PROJECTS / "echo", spec)
    response = post(server, params={"return": "str"}, json={})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == "héllo"


def test_bytes_are_octet_stream(echo):
    response = post(echo, params={"return": "bytes"}, json={})
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == b"\x00\x01\xff"


def test_a_starlette_response_is_sent_as_it_is(echo):
    response = post(echo, params={"return": "response"}, json={})
    assert response.status_code == 418
    assert response.headers["content-type"].startswith("text/x-tea")
    assert response.text == "teapot"


def test_other_values_are_json(echo):
    response = post(echo, params={"return": "json", "a": "1"}, json=None)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["query"] == {"return": "json", "a": "1"}


def test_an_unserializable_result_is_a_500_that_says_what_to_return(echo):
    response = post(echo, params={"return": "unserializable"}, json={})
    assert response.status_code == 500
    assert "JSON serializable" in response.json()["error"]


# -- arguments, project, environment ------------------------------------------------------------


def test_headers_reach_predict_case_insensitively(echo):
    response = post(echo, params={"return": "header"}, json={}, headers={"x-test": "yes"})
    assert response.json() == {"x-test": "yes"}


def test_config_env_and_project_files_reach_the_predictor(echo):
    response = post(echo, params={"return": "env"}, json={})
    assert response.json() == {
        "at_import": "from predictor.env",
        "config": {"greeting": "hello"},
        "file": "from values.txt",
    }


def test_predict_receives_only_the_arguments_it_names(start_server):
    server = start_server(PROJECTS / "only_query", api_spec("only-query"))
    response = post(server, params={"q": "1"}, content=b"ignored")
    assert response.status_code == 200
    assert response.json() == {"query": {"q": "1"}}


def test_python_path_is_importable(start_server):
    server = start_server(PROJECTS / "python_path", api_spec("lib-user", python_path="lib"))
    assert post(server, json={}).text == "hello from lib/ on predictor.python_path"


def test_post_predict_runs_after_the_response_is_sent(echo, tmp_path):
    marker = tmp_path / "post_predict.txt"
    params = {"return": "str", "post_predict_marker": str(marker), "post_predict_delay": "1"}
    started = time.monotonic()
    response = post(echo, params=params, json={})
    assert response.text == "héllo"
    assert time.monotonic() - started < 0.9  # not held back by post_predict's second
    assert not marker.exists()
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "'héllo'"  # it received the response predict returned


# -- failures -----------------------------------------------------------------------------------


def test_an_http_exception_from_predict_keeps_its_status(echo):
    response = post(echo, params={"return": "http_error"}, json={})
    assert response.status_code == 422
    assert response.json()["detail"] == "payload is missing a field"


def test_an_http_exception_from_predict_keeps_its_headers(echo):
    response = post(echo, params={"return": "retry_later"}, json={})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"] == "busy"


@pytest.mark.parametrize(
    ("kind", "exception", "message"),
    [
        ("exit", "SystemExit", "asked to exit"),
        ("interrupt", "KeyboardInterrupt", "asked to interrupt"),
    ],
)
def test_sys_exit_or_keyboard_interrupt_in_predict_is_a_json_500_and_serving_goes_on(
    start_server, kind, exception, message
):
    # One process: the one that raised must be the one that answers afterwards.
    server = start_server(ECHO, api_spec("exiting"))
    pid = post(server, params={"return": "pid"}, json={}).json()["pid"]
    response = post(server, params={"return": kind}, json={})
    assert response.status_code == 500
    assert response.json() == {"error": f"{exception}: {message}", "status": 500}
    assert post(server, params={"return": "pid"}, json={}).json() == {"pid": pid}
    metrics = httpx.get(server.url("/metrics")).text
    assert 'cortex_requests_total{api="exiting",status="500"} 1' in metrics
    failures = [r for r in _log_records(server) if r["message"] == "predict failed"]
    assert failures and failures[-1]["api"] == "exiting"
    assert exception in failures[-1]["exception"]


def test_a_failure_outside_predict_is_still_a_json_500_and_serving_goes_on(echo):
    response = post(echo, params={"return": "broken_response"}, json={})
    assert response.status_code == 500
    assert response.json()["error"] == "internal server error (see the server log)"
    assert "this response cannot be sent" in echo.log()
    assert post(echo, json={}).status_code == 200


def test_bad_json_is_a_400_with_a_json_error(echo):
    response = post(echo, content=b'{"key": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert "not valid JSON" in body["error"]


def test_bad_text_encoding_is_a_400(echo):
    utf8_type = {"content-type": "text/plain; charset=utf-8"}
    response = post(echo, content=b"\xff\xfe", headers=utf8_type)
    assert response.status_code == 400


def test_an_exception_in_predict_is_a_500_logged_with_its_traceback_and_serving_goes_on(echo):
    response = post(echo, params={"return": "fail"}, json={})
    assert response.status_code == 500
    assert response.json() == {"error": "ValueError: asked to fail", "status": 500}
    assert post(echo, json={"still": "serving"}).status_code == 200
    failures = [line for line in echo.log().splitlines() if '"predict failed"' in line]
    assert failures
    assert "Traceback" in json.loads(failures[-1])["exception"]


def test_a_body_over_the_limit_is_a_413(echo):
    response = post(echo, content=b"x" * 5000, headers={"content-type": "application/octet-stream"})
    assert response.status_code == 413
    assert "4096" in response.json()["error"]


def test_a_streamed_body_without_length_over_the_limit_is_a_413(echo):
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    response = post(echo, content=chunks(), headers={"content-type": "application/octet-stream"})
    assert response.status_code == 413
    assert post(echo, content=b"x" * 4096).status_code == 200  # exactly the limit is fine


# -- the other routes ---------------------------------------------------------------------------


def test_get_on_the_endpoint_gives_a_summary(echo):
    for path in ("/predict", "/echo"):
        summary = httpx.get(echo.url(path)).json()
        assert summary["api"] == "echo"
        assert summary["predictor"]["processes_per_replica"] == 2
        assert summary["predictor"]["threads_per_process"] == 2


def test_metrics_count_requests_by_status_and_track_predicted_classes(echo):
    def metrics() -> dict[str, float]:
        values = {}
        for line in httpx.get(echo.url("/metrics")).text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    before = metrics()
    for label in ("cat", "cat", "dog"):
        post(echo, params={"return": "label", "label": label}, json={})
    post(echo, content=b"{", headers={"content-type": "application/json"})
    after = metrics()

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert delta('cortex_requests_total{api="echo",status="200"}') == 3
    assert delta('cortex_requests_total{api="echo",status="400"}') == 1
    assert delta('cortex_prediction_total{api="echo",class="cat"}') == 2
    assert delta('cortex_prediction_total{api="echo",class="dog"}') == 1
    assert delta('cortex_request_duration_seconds_count{api="echo"}') == 4
    assert after['cortex_in_flight_requests{api="echo"}'] == 0
    assert after['cortex_processes_ready{api="echo"}'] == 2


# -- logging ------------------------------------------------------------------------------------


def _log_records(server: RunningServer) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_every_log_line_is_json_and_extra_is_flattened(echo):
    post(echo, params={"return": "log"}, json={"k": "v"})
    records = _log_records(echo)
    assert len(records) == len(echo.log().splitlines())
    user = [r for r in records if r["message"] == "user log line"][-1]
    assert user["payload"] == {"k": "v"}
    assert user["nested"] == {"a": 1}
    assert {"asctime", "levelname", "process"} <= set(user)
    own = [r for r in records if r["message"] == "own logger line"][-1]  # logging.getLogger()
    assert own["levelname"] == "INFO"


def test_debug_logs_payload_and_prediction(echo):
    post(echo, params={"return": "str", "debug": "true"}, json={"secret": 42})
    records = _log_records(echo)
    assert {"secret": 42} in [r.get("payload") for r in records if r["message"] == "payload"]
    assert "héllo" in [r.get("prediction") for r in records if r["message"] == "prediction"]


def test_log_level_is_honoured(start_server):
    server = start_server(ECHO, api_spec("quiet", log_level="warning"))
    post(server, params={"return": "log"}, json={})
    post(server, params={"return": "fail"}, json={})
    messages = [r["message"] for r in _log_records(server)]
    assert "user log line" not in messages
    assert "own logger line" not in messages
    assert "predict failed" in messages


# -- async predictors ---------------------------------------------------------------------------


def test_async_predict_and_post_predict(start_server, tmp_path: Path):
    server = start_server(PROJECTS / "async_echo", api_spec("async-echo"))
    marker = tmp_path / "marker"
    params = {"post_predict_marker": str(marker), "post_predict_delay": "0.3"}
    response = post(server, params=params, json={"x": 1})
    assert response.json() == {"payload": {"x": 1}, "async": True}
    assert not marker.exists()
    deadline = time.monotonic() + 10  # post_predict runs after the response, for 0.3 s
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == repr({"payload": {"x": 1}, "async": True})
    failed = post(server, params={"fail": "1"}, json={})
    assert failed.status_code == 500
    assert failed.json()["error"] == "RuntimeError: async failure"


def test_a_regression_tracker_gives_a_histogram_of_predicted_values(start_server):
    tracker = TrackerSpec(model_type="regression", key="value")
    server = start_server(ECHO, api_spec("regress", tracker=tracker))
    for value in ("0.5", "2", "250"):
        post(server, params={"return": "label", "label": "x", "value": value}, json={})
    text = httpx.get(server.url("/metrics")).text
    assert 'cortex_prediction_value_bucket{api="regress",le="1.0"} 1' in text
    assert 'cortex_prediction_value_bucket{api="regress",le="1000.0"} 3' in text
    assert 'cortex_prediction_value_sum{api="regress"} 252.5' in text
    assert 'cortex_prediction_value_count{api="regress"} 3' in text


def test_a_tracker_counts_numpy_scalars(start_server):
    numpy_values = PROJECTS / "numpy_values"
    regression = TrackerSpec(model_type="regression", key="value")
    server = start_server(numpy_values, api_spec("np-regress", tracker=regression))
    for kind in ("int64", "float32", "float64", "array0d"):
        assert post(server, params={"kind": kind}, json={}).status_code == 200
    text = httpx.get(server.url("/metrics")).text
    assert 'cortex_prediction_value_sum{api="np-regress"} -8.5' in text
    assert 'cortex_prediction_value_count{api="np-regress"} 4' in text

    classification = TrackerSpec(model_type="classification", key="value")
    server = start_server(numpy_values, api_spec("np-classes", tracker=classification))
    for kind in ("int64", "int64", "bool", "str", "float32"):
        assert post(server, params={"kind": kind}, json={}).status_code == 200
    text = httpx.get(server.url("/metrics")).text
    assert 'cortex_prediction_total{api="np-classes",class="2"} 2' in text
    assert 'cortex_prediction_total{api="np-classes",class="True"} 1' in text
    assert 'cortex_prediction_total{api="np-classes",class="cat"} 1' in text
    assert 'class="2.5"' not in text  # a float is not a class, as before
