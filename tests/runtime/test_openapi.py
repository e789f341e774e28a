"""GET /openapi.json and GET /docs over real HTTP: the document validates as OpenAPI (3.0, and
3.1 with only its version changed) and says what the predictor names; the docs page renders in
headless Chromium from the server's own files and runs a prediction, with no request leaving
loopback. build_openapi's other branches are checked on api.json dicts and loaded predictors
without a server.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cortex_build.spec import ApiSpec, BatchingSpec, CortexRelease
from cortex_serve.docs import docs_page, swagger_ui_dir
from cortex_serve.openapi import build_openapi
from cortex_serve.predictor import LoadedPredictor, VerbMethod
from openapi_schema_validator import validate as validate_schema
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from servers import PROJECTS, RunningServer, api_spec, running_server

ECHO = PROJECTS / "echo"


def validate_openapi(document: dict[str, Any]) -> None:
    """Valid as the OpenAPI version it says (3.0.3), and as 3.1.0 with only `openapi` changed:
    the switch openapi.py's docstring describes must stay a one-line change."""
    assert document["openapi"] == "3.0.3"
    OpenAPIV30SpecValidator(document).validate()
    OpenAPIV31SpecValidator({**document, "openapi": "3.1.0"}).validate()


def handler_spec(name: str, **fields: Any) -> ApiSpec:
    spec = api_spec(name, path="handler.py", interface="handler", **fields)
    return dataclasses.replace(
        spec, generation="v0.34", cortex=CortexRelease(releases="v0.34-v0.35", assumed="v0.35")
    )


def get_document(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(server.url("/openapi.json"), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]


@pytest.fixture(scope="module")
def echo() -> Iterator[RunningServer]:
    spec = api_spec("echo", config={"secret": "s3cr3t-config"}, env={"TOKEN": "s3cr3t-env"})
    with running_server(ECHO, spec, env={"CORTEX_SERVE_MAX_BODY_BYTES": "4096"}) as server:
        yield server


# -- the document, from real servers --------------------------------------------------------------


def test_openapi_json_of_a_class_predictor_validates_and_names_its_arguments(echo) -> None:
    document = get_document(echo)
    validate_openapi(document)
    assert document["info"]["title"] == "echo"
    assert list(document["paths"]) == ["/predict", "/echo", "/healthz", "/metrics"]
    for path in ("/predict", "/echo"):
        item = document["paths"][path]
        assert set(item) == {"get", "post"}
        post = item["post"]
        assert post["summary"] == (
            "A prediction: PythonPredictor.predict(payload, query_params, headers)"
        )
        assert [p["name"] for p in post["parameters"]] == ["query_params", "debug"]
        assert "headers" in post["description"]
        assert "post_predict" in post["description"]
        assert set(post["requestBody"]["content"]) == {
            "application/json",
            "text/plain",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
            "application/octet-stream",
        }
        ok = post["responses"]["200"]["content"]
        assert set(ok) == {"application/json", "text/plain", "application/octet-stream"}
        for status in ("400", "408", "413", "500", "503", "default"):
            content = post["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}
        assert "4096 bytes" in post["responses"]["413"]["description"]
    operation_ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert operation_ids == [
        "get_predict",
        "post_predict",
        "get_echo",
        "post_echo",
        "get_healthz",
        "get_metrics",
    ]
    assert document["x-cortex"]["predictor"]["predict_args"] == [
        "payload",
        "query_params",
        "headers",
    ]
    assert document["x-cortex"]["string_response"] == "text"
    # predictor.config and env may hold secrets: the document never shows them
    assert "s3cr3t" not in json.dumps(document)


def test_the_documented_bodies_are_the_ones_the_server_sends(echo) -> None:
    document = get_document(echo)
    summary = httpx.get(echo.url("/echo"), timeout=10)
    validate_schema(summary.json(), schema(document, "Summary"))
    documented = document["paths"]["/predict"]["post"]["responses"]
    json_body = {"Content-Type": "application/json"}
    for response, status in (
        (httpx.post(echo.url("/predict"), content=b"{no", headers=json_body), "400"),
        (httpx.post(echo.url("/predict?return=fail"), json={}), "500"),
        (httpx.post(echo.url("/predict"), content=b"x" * 5000), "413"),
        # a status of the predictor's choosing (an HTTPException it raised): `default`
        (httpx.post(echo.url("/predict?return=http_error"), json={}), "default"),
    ):
        assert status in documented
        assert status == "default" or response.status_code == int(status)
        assert response.headers["content-type"] == "application/json"
        validate_schema(response.json(), schema(document, "Error"))


def test_openapi_json_of_a_batching_predictor(start_server) -> None:
    spec = api_spec(
        "doubler", server_side_batching=BatchingSpec(max_batch_size=8, batch_interval=0.05)
    )
    document = get_document(start_server(PROJECTS / "batch_doubler", spec))
    validate_openapi(document)
    post = document["paths"]["/predict"]["post"]
    assert post["summary"] == "A prediction: PythonPredictor.predict(payload)"
    assert [p["name"] for p in post["parameters"]] == ["debug"]  # predict names no query_params
    assert "a list of up to 8 payloads" in post["description"]
    assert "One payload per request" in post["requestBody"]["description"]
    assert "the entry of the list predict returned" in post["responses"]["200"]["description"]
    assert document["x-cortex"]["predictor"]["server_side_batching"] == {
        "max_batch_size": 8,
        "batch_interval": 0.05,
    }
    assert document["x-cortex"]["predictor"]["predict_args"] == ["payload"]


def test_openapi_json_of_a_handler_with_two_verbs(start_server) -> None:
    spec = handler_spec(
        "doubler", server_side_batching=BatchingSpec(max_batch_size=4, batch_interval=0.05)
    )
    document = get_document(start_server(PROJECTS / "handler_batch", spec))
    validate_openapi(document)
    assert document["info"]["version"] == "Cortex v0.35"
    for path, slug in (("/predict", "predict"), ("/doubler", "doubler")):
        item = document["paths"][path]
        assert list(item) == ["post", "get"]  # no summary GET: handle_get answers it
        post, get = item["post"], item["get"]
        assert post["operationId"] == f"post_{slug}" and get["operationId"] == f"get_{slug}"
        assert post["summary"] == "Handler.handle_post(payload)"
        assert "requestBody" in post and "a list of up to 4 payloads" in post["description"]
        assert [p["name"] for p in post["parameters"]] == ["debug"]
        assert get["summary"] == "Handler.handle_get(query_params)"
        # handle_get names no payload: Cortex did not read its body, so no body and no 400
        assert "requestBody" not in get and "400" not in get["responses"]
        assert [p["name"] for p in get["parameters"]] == ["query_params", "debug"]
        assert "batch" not in get["description"]
    assert "answers POST, GET" in document["info"]["description"]
    assert document["x-cortex"]["predictor"]["verbs"] == {
        "POST": ["payload"],
        "GET": ["query_params"],
    }


def test_openapi_json_is_a_json_503_until_the_predictor_has_loaded(start_server) -> None:
    spec = api_spec("slow", config={"init_seconds": 3})
    server = start_server(PROJECTS / "slow_init", spec, wait=False)
    deadline = time.monotonic() + 20
    while True:
        try:
            response = httpx.get(server.url("/openapi.json"), timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    assert response.status_code == 503
    assert response.json() == {"error": "the predictor is still initialising", "status": 503}
    server.wait_healthy()
    validate_openapi(get_document(server))


def test_docs_page_loads_its_files_from_the_server_only(echo) -> None:
    page = httpx.get(echo.url("/docs"), timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>echo - API docs</title>" in page.text
    assert '"validatorUrl": null' in page.text
    assert "http" not in page.text  # no absolute URL: everything comes from this server
    # Python's mimetypes says text/javascript from 3.12, application/javascript before
    for name, media_types in (
        ("swagger-ui-bundle.js", ("text/javascript", "application/javascript")),
        ("swagger-ui.css", ("text/css",)),
        ("favicon-32x32.png", ("image/png",)),
    ):
        assert f'"/docs/static/{name}"' in page.text
        response = httpx.get(echo.url(f"/docs/static/{name}"), timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] in media_types
    missing = httpx.get(echo.url("/docs/static/nothing.js"), timeout=10)
    assert missing.status_code == 404


# -- the docs page in a browser -------------------------------------------------------------------


@pytest.fixture
def chrome_driver(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium through its chromedriver, logging every network request."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install '.[test]')"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requests_made(driver: Any) -> list[tuple[str, str]]:
    """(method, URL) of every request the browser sent since the last call (the log drains)."""
    made = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            made.append((request["method"], request["url"]))
    return made


def test_docs_page_renders_the_api_and_runs_a_prediction_offline(chrome_driver, echo) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = chrome_driver, WebDriverWait(chrome_driver, 30)
    driver.get("about:blank")
    requests_made(driver)  # what Chromium fetched on its own before the page (its new-tab page)
    driver.get(echo.url("/docs"))

    post = wait.until(lambda d: d.find_elements(By.ID, "operations-prediction-post_predict"))[0]
    assert driver.find_elements(By.ID, "operations-prediction-post_echo")
    assert driver.find_elements(By.ID, "operations-server-get_healthz")
    assert "echo" in driver.find_element(By.CSS_SELECTOR, ".info .title").text
    assert "/predict" in post.text and "PythonPredictor.predict" in post.text

    post.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda d: post.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    body = wait.until(lambda d: post.find_elements(By.CSS_SELECTOR, "textarea.body-param__text"))
    assert json.loads(body[0].get_attribute("value")) == {}  # the example body
    body[0].clear()
    body[0].send_keys('{"sepal_length": 5.1, "label": "setosa"}')
    post.find_element(By.CSS_SELECTOR, "button.execute").click()
    selector = ".live-responses-table .response-col_description pre"
    answer = wait.until(
        lambda d: [e for e in post.find_elements(By.CSS_SELECTOR, selector) if e.text]
    )
    assert json.loads(answer[0].text) == {
        "payload": {"type": "dict", "value": {"sepal_length": 5.1, "label": "setosa"}},
        "query": {},
    }
    status = post.find_element(
        By.CSS_SELECTOR, ".live-responses-table tr.response td.response-col_status"
    )
    assert status.text.strip() == "200"

    origin = echo.url("/")
    # data: URLs (swagger-ui's inline icons) and chrome: ones (the browser's own pages) reach no
    # host; every other request must have gone to this server
    sent = [
        (method, url)
        for method, url in requests_made(driver)
        if not url.startswith(("data:", "blob:", "chrome:"))
    ]
    elsewhere = [url for _, url in sent if not url.startswith(origin)]
    assert not elsewhere, f"the docs page sent requests off this server: {elsewhere}"
    assert ("GET", origin + "openapi.json") in sent
    assert ("GET", origin + "docs/static/swagger-ui-bundle.js") in sent
    assert ("POST", origin + "predict") in sent
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


# -- build_openapi without a server ---------------------------------------------------------------


def class_predictor(*args: str, **fields: Any) -> LoadedPredictor:
    def nothing(*_: Any) -> None:
        return None

    fields.setdefault("interface", "class")
    return LoadedPredictor(
        predict=nothing,
        post_predict=nothing,
        is_async=False,
        has_post_predict=False,
        user_object=None,
        predict_args=args,
        **fields,
    )


def test_a_str_is_documented_as_a_json_string_before_cortex_v0_16() -> None:
    spec = dataclasses.replace(
        api_spec("old", endpoint="/predict"),
        cortex=CortexRelease(releases="v0.12-v0.15", assumed="v0.15", string_response="json"),
    ).to_dict()
    document = build_openapi(spec, class_predictor("payload"))
    validate_openapi(document)
    assert list(document["paths"]) == ["/predict", "/healthz", "/metrics"]  # one route, not two
    ok = document["paths"]["/predict"]["post"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "application/octet-stream"}
    assert "a JSON string" in ok["description"]
    assert document["x-cortex"]["string_response"] == "json"


def test_a_predict_without_payload_still_has_its_body_read() -> None:
    document = build_openapi(api_spec("q").to_dict(), class_predictor("query_params"))
    validate_openapi(document)
    post = document["paths"]["/predict"]["post"]
    assert "does not name `payload`" in post["requestBody"]["description"]
    assert "400" in post["responses"]  # a body that does not parse is still one


def test_a_tensorflow_handler_is_not_batched_and_endpoints_get_unique_operation_ids() -> None:
    spec = dataclasses.replace(
        handler_spec("tf", type="tensorflow"),
        endpoint="/predict/",  # differs from /predict only in punctuation
    ).to_dict()
    spec["predictor"]["server_side_batching"] = {"max_batch_size": 4, "batch_interval": 0.1}

    def method(*args: str) -> VerbMethod:
        return VerbMethod(call=print, is_async=False, wants_payload="payload" in args, args=args)

    verbs = {"POST": method("payload", "headers"), "DELETE": method("payload")}
    predictor = class_predictor("payload", "headers", interface="handler", verbs=verbs)
    document = build_openapi(spec, predictor)
    validate_openapi(document)
    assert list(document["paths"]["/predict/"]) == ["post", "delete"]
    ids = [
        operation["operationId"]
        for path in ("/predict", "/predict/")
        for operation in document["paths"][path].values()
    ]
    assert len(set(ids)) == len(ids) == 4
    assert "batch" not in json.dumps(document["paths"])  # TF Serving batched, not the runtime
    assert "server_side_batching" not in document["x-cortex"]["predictor"]


@pytest.mark.parametrize(
    ("interface", "predictor_type", "summary"),
    [
        ("functions", "python", "A prediction: predict(sample, metadata)"),
        ("handlers", "onnx", "A prediction: pre_inference, the model, post_inference"),
    ],
)
def test_module_level_predictors_are_documented_by_their_interface(
    interface: str, predictor_type: str, summary: str
) -> None:
    spec = api_spec("old", interface=interface, type=predictor_type).to_dict()
    document = build_openapi(spec, class_predictor("payload", interface=interface))
    validate_openapi(document)
    assert document["paths"]["/predict"]["post"]["summary"] == summary


def test_docs_page_and_the_swagger_ui_files_it_names() -> None:
    folder = swagger_ui_dir()
    assert folder is not None, "swagger-ui-bundle is a runtime requirement"
    page = docs_page("a<b")
    assert "<title>a&lt;b - API docs</title>" in page
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/docs/static/{name}" in page
        assert (folder / name).is_file()
