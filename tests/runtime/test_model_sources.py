"""Model sources beyond local folders, and what follows them (cortex_serve.model_sources,
model_cache, models, model_fetch):
s3:// against a real S3-compatible server (moto on loopback), http(s):// against http.server,
versions and latest, the on-disk LRU cache, memory + disk bounds together, and live reload of
version folders while a real server is serving."""

from __future__ import annotations

import http.server
import io
import json
import re
import shutil
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cortex_build.spec import ModelRef, ModelsSpec
from cortex_serve.clients.python_client import PythonClient
from cortex_serve.model_cache import DiskCache
from cortex_serve.model_fetch import FetchError, fetch
from cortex_serve.model_sources import ModelSource, ModelSourceError, model_versions, resolve_models
from cortex_serve.models import ModelStore
from model_servers import S3, http_server, s3_server
from servers import api_spec

PREDICTOR = """
import json
import os

from starlette.responses import JSONResponse


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        with open(os.path.join(model_path, "model.json")) as file:
            return json.load(file)

    def predict(self, payload, query_params):
        try:
            return self.client.get_model(
                query_params.get("model"), query_params.get("version", "latest")
            )
        except LookupError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
"""


def write_version(models: Path, name: str, version: int) -> Path:
    folder = models / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"name": name, "version": version}))
    return folder


def read_model(path: str) -> dict[str, Any]:
    return json.loads((Path(path) / "model.json").read_text())


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with s3_server() as server:
        yield server


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """tmp/models with iris 1, 2 and setosa 1 (model.json each)."""
    folder = tmp_path / "models"
    write_version(folder, "iris", 1)
    write_version(folder, "iris", 2)
    write_version(folder, "setosa", 1)
    return folder


# -- s3 -------------------------------------------------------------------------------------------


def test_s3_versions_latest_and_fetch_on_use(s3: S3, models: Path, tmp_path: Path) -> None:
    s3.upload_tree(models / "iris", "a/iris")
    cache = tmp_path / "cache"
    sources = resolve_models(
        {
            "paths": [{"name": "iris", "path": s3.url("a/iris")}],
            "cache_size": 1,
            "disk_cache_size": 1,
        },
        tmp_path,
        cache,
    )
    iris = sources["iris"]
    assert iris.versions == {1: s3.url("a/iris/1"), 2: s3.url("a/iris/2")} and iris.latest == 2
    assert DiskCache(cache).entries() == []  # with a disk cache, nothing is fetched at start
    assert read_model(str(iris.path(2))) == {"name": "iris", "version": 2}
    assert read_model(str(iris.path(1))) == {"name": "iris", "version": 1}
    assert DiskCache(cache).entries() == [s3.url("a/iris/1")]  # disk_cache_size 1

    # Without a disk cache the latest versions are fetched at start.
    eager = resolve_models(
        {"paths": [{"name": "iris", "path": s3.url("a/iris")}]}, tmp_path, tmp_path / "eager"
    )
    assert DiskCache(tmp_path / "eager").entries() == [s3.url("a/iris/2")]
    assert eager["iris"].latest == 2


def test_s3_unversioned_prefix_single_object_and_dir(s3: S3, models: Path, tmp_path: Path) -> None:
    s3.upload_tree(models / "iris" / "1", "b/plain")  # no version folders: version 1
    s3.put("b/one/model.onnx", b"onnx bytes")
    s3.upload_tree(models, "b/all")
    sources = resolve_models(
        {
            "paths": [
                {"name": "plain", "path": s3.url("b/plain")},
                {"name": "file", "path": s3.url("b/one/model.onnx")},
            ]
        },
        tmp_path,
        tmp_path / "cache",
    )
    assert sources["plain"].versions == {1: s3.url("b/plain")}
    assert read_model(str(sources["plain"].path(1)))["version"] == 1
    single = sources["file"].path(1)
    assert single.name == "model.onnx" and single.read_bytes() == b"onnx bytes"

    by_dir = resolve_models({"dir": s3.url("b/all")}, tmp_path, tmp_path / "cache")
    assert sorted(by_dir) == ["iris", "setosa"]
    assert by_dir["iris"].latest == 2 and by_dir["setosa"].versions == {1: s3.url("b/all/setosa/1")}


def test_s3_missing_sources_are_clear_errors(s3: S3, tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as caught:
        resolve_models({"paths": [{"name": "m", "path": s3.url("nothing/here")}]}, tmp_path)
    assert str(caught.value) == (
        f'model "m": "{s3.url("nothing/here")}": no objects found at this address'
    )
    with pytest.raises(ModelSourceError, match="NoSuchBucket"):
        resolve_models({"paths": [{"name": "m", "path": "s3://no-such-bucket/m"}]}, tmp_path)


def test_disk_cache_is_lru_and_never_evicts_a_version_in_use(s3: S3, tmp_path: Path) -> None:
    for key in ("c/1/f", "c/2/f", "c/3/f"):
        s3.put(key, key.encode())
    cache = DiskCache(tmp_path / "cache", max_entries=2)
    one, two, three = (s3.url(f"c/{n}") for n in (1, 2, 3))
    first = cache.path(one)
    cache.path(two)
    cache.path(one)  # 1 is now more recent than 2
    cache.path(three)  # evicts 2, the least recently used
    assert cache.entries() == [one, three] and first.is_dir()
    with cache.use(one) as pinned:  # in use (a load in progress): not evicted
        cache.path(two)
        cache.path(three)
        assert pinned.is_dir() and (pinned / "f").read_bytes() == b"c/1/f"
        assert one in cache.entries()
    cache.path(two)  # 1 is free again and the least recently used
    assert cache.entries() == [three, two] and not first.exists()


def test_memory_and_disk_bounds_together(s3: S3, models: Path, tmp_path: Path) -> None:
    s3.upload_tree(models, "d/models")
    cache = tmp_path / "cache"
    sources = resolve_models(
        {"dir": s3.url("d/models"), "cache_size": 1, "disk_cache_size": 2}, tmp_path, cache
    )
    loads: list[tuple[str, int]] = []

    def load_model(path: str) -> dict[str, Any]:
        model = read_model(path)
        loads.append((model["name"], model["version"]))
        return model

    client = PythonClient(sources, cache_size=1)
    client.set_load_model(load_model)
    assert client.get_model("iris", "1")["version"] == 1
    assert client.get_model("iris")["version"] == 2
    assert client.get_model("setosa")["name"] == "setosa"
    assert client._store.loaded() == [("setosa", 1)]  # cache_size 1 in memory
    assert DiskCache(cache).entries() == [
        s3.url("d/models/iris/2"),
        s3.url("d/models/setosa/1"),
    ]
    assert client.get_model("iris", 1)["version"] == 1  # fetched and loaded again
    assert loads == [("iris", 1), ("iris", 2), ("setosa", 1), ("iris", 1)]
    assert len(DiskCache(cache).entries()) == 2


# -- http(s) --------------------------------------------------------------------------------------


def test_http_file_and_archives(models: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "model.onnx").write_bytes(b"onnx")
    with zipfile.ZipFile(site / "iris.zip", "w") as zipped:
        for version in (1, 2):
            zipped.write(models / "iris" / str(version) / "model.json", f"{version}/model.json")
    with tarfile.open(site / "setosa.tar.gz", "w:gz") as tarred:
        tarred.add(models / "setosa" / "1" / "model.json", "model.json")
    with http_server(site) as base:
        sources = resolve_models(
            {
                "paths": [
                    {"name": "file", "path": f"{base}/model.onnx"},
                    {"name": "iris", "path": f"{base}/iris.zip"},
                    {"name": "setosa", "path": f"{base}/setosa.tar.gz"},
                ]
            },
            tmp_path,
            tmp_path / "cache",
        )
    assert sources["file"].path(1).read_bytes() == b"onnx"
    assert sorted(sources["iris"].versions) == [1, 2] and sources["iris"].latest == 2
    assert read_model(str(sources["iris"].path(2)))["version"] == 2
    assert read_model(str(sources["setosa"].path(1)))["name"] == "setosa"


def test_http_errors_and_unsafe_archives(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("../escape.txt", "no")
    (site / "evil.zip").write_bytes(buffer.getvalue())
    (site / "broken.tar.gz").write_bytes(b"not a tar")
    with http_server(site) as base:
        with pytest.raises(FetchError, match=r'"http://127\.0\.0\.1:\d+/gone\.onnx": HTTP 404'):
            fetch(f"{base}/gone.onnx", tmp_path / "a")
        with pytest.raises(FetchError, match=re.escape('refusing the entry "../escape.txt"')):
            fetch(f"{base}/evil.zip", tmp_path / "b")
        with pytest.raises(FetchError, match="not a readable archive"):
            fetch(f"{base}/broken.tar.gz", tmp_path / "c")
    assert not (tmp_path / "escape.txt").exists()
    # a failed fetch leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_http_retries_a_server_that_is_briefly_unavailable(tmp_path: Path) -> None:
    answers = iter([503, 502, 200])
    seen: list[int] = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = next(answers, 503)
            seen.append(status)
            body = b"onnx" if status == 200 else b"busy"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/model.onnx"
    try:
        fetch(url, tmp_path / "ok")
        assert (tmp_path / "ok" / "model.onnx").read_bytes() == b"onnx"
        assert seen == [503, 502, 200]
        answers = iter([])  # always 503 from now on
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"HTTP 503"):
            fetch(url, tmp_path / "never")
        assert len(seen) == 3 + 5  # the first try and four retries
        assert time.monotonic() - started < 20
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert not (tmp_path / "never").exists()


# -- live reload, in process ----------------------------------------------------------------------


def test_refresh_adds_and_drops_versions_and_models(models: Path, tmp_path: Path) -> None:
    sources = resolve_models({"dir": str(models)}, tmp_path)
    store: ModelStore[dict[str, Any]] = ModelStore(
        sources, lambda source, version: read_model(str(source.path(version)))
    )
    assert store.get("iris")["version"] == 2
    write_version(models, "iris", 3)
    write_version(models, "virginica", 1)
    store.refresh()
    assert store.loaded()[-1] == ("iris", 3)  # the new latest was loaded before taking over
    assert store.get("iris")["version"] == 3 and store.get("virginica")["version"] == 1
    shutil.rmtree(models / "iris" / "3")
    shutil.rmtree(models / "setosa")
    store.refresh()
    assert store.get("iris")["version"] == 2
    assert ("iris", 3) not in store.loaded()
    with pytest.raises(LookupError, match='model "setosa" is not served'):
        store.get("setosa")


def test_a_request_located_while_its_version_is_removed_gets_the_model_in_memory(
    models: Path, tmp_path: Path
) -> None:
    # The race CI once hit: a request found version 3 as latest, a refresh then dropped it, and
    # the request went on to load it from a folder that was gone (a 500 instead of an answer).
    sources = resolve_models({"dir": str(models)}, tmp_path)
    store: ModelStore[dict[str, Any]] = ModelStore(
        sources, lambda source, version: read_model(str(source.path(version)))
    )
    write_version(models, "iris", 3)
    store.refresh()
    assert store.get("iris")["version"] == 3
    shutil.rmtree(models / "iris" / "3")
    locate = store.locate
    refresher = threading.Thread(target=store.refresh)

    def locate_then_refresh(*args: Any) -> Any:
        located = locate(*args)
        refresher.start()
        refresher.join(0.3)  # a refresh must not get between locating and the lookup
        return located

    store.locate = locate_then_refresh  # type: ignore[method-assign]
    assert store.get("iris")["version"] == 3
    refresher.join()
    store.locate = locate  # type: ignore[method-assign]
    assert store.get("iris")["version"] == 2 and ("iris", 3) not in store.loaded()


def test_a_version_removed_before_the_poller_looks_is_not_loaded_from_its_folder(
    models: Path, tmp_path: Path
) -> None:
    # CI's live-reload test once got an error here: a process that had never loaded version 2
    # located it as latest after its folder was deleted, before its poller had looked again.
    def live_store() -> ModelStore[dict[str, Any]]:
        sources = resolve_models(
            {"paths": [{"name": "iris", "path": str(models / "iris")}]}, tmp_path
        )
        return ModelStore(
            sources,
            lambda source, version: read_model(str(source.path(version))),
            live_reload=True,
            poll_interval=3600,  # the poller never looks during the test
        )

    store = live_store()
    try:
        (models / "iris" / "2" / "model.json").write_text("{")  # there, but broken
        with pytest.raises(json.JSONDecodeError):
            store.get("iris")  # its own error: a version still there is not skipped
        shutil.rmtree(models / "iris" / "2")
        assert store.get("iris")["version"] == 1  # the newest version left
        assert sorted(store.sources["iris"].versions) == [1]
    finally:
        store.close()
    write_version(models, "iris", 3)
    store = live_store()
    try:
        shutil.rmtree(models / "iris" / "3")
        with pytest.raises(LookupError, match="has no version 3"):
            store.get("iris", 3)  # asked for by number: gone, not broken
    finally:
        store.close()


def test_without_live_reload_a_failed_load_is_not_retried(models: Path, tmp_path: Path) -> None:
    sources = resolve_models({"paths": [{"name": "iris", "path": str(models / "iris")}]}, tmp_path)
    store: ModelStore[dict[str, Any]] = ModelStore(
        sources, lambda source, version: read_model(str(source.path(version)))
    )
    shutil.rmtree(models / "iris" / "2")
    with pytest.raises(FileNotFoundError):
        store.get("iris")  # the sources are what the server started with


def test_a_new_version_that_does_not_load_is_held_back(models: Path, tmp_path: Path) -> None:
    sources = resolve_models({"paths": [{"name": "iris", "path": str(models / "iris")}]}, tmp_path)
    store: ModelStore[dict[str, Any]] = ModelStore(
        sources, lambda source, version: read_model(str(source.path(version)))
    )
    assert store.get()["version"] == 2
    (models / "iris" / "3").mkdir()  # still being copied: no model.json yet
    store.refresh()
    assert store.get()["version"] == 2 and sorted(store.sources["iris"].versions) == [1, 2]
    write_version(models, "iris", 3)
    store.refresh()
    assert store.get()["version"] == 3


def test_poller_follows_sources_only_without_cache_size_and_stops(
    models: Path, tmp_path: Path
) -> None:
    def load(source: ModelSource, version: int) -> dict[str, Any]:
        return read_model(str(source.path(version)))

    spec = {"paths": [{"name": "iris", "path": str(models / "iris")}]}
    live: ModelStore[dict[str, Any]] = ModelStore(
        resolve_models(spec, tmp_path), load, live_reload=True, poll_interval=0.05
    )
    cached: ModelStore[dict[str, Any]] = ModelStore(
        resolve_models(spec, tmp_path), load, cache_size=2, live_reload=True, poll_interval=0.05
    )
    write_version(models, "iris", 3)
    wait_for(lambda: live.get()["version"] == 3, what="the poller to pick up version 3")
    assert cached.get()["version"] == 2  # cache_size set: no live reload
    poller = live._poller
    assert poller is not None and poller.is_alive()
    live.close()
    assert not poller.is_alive()
    write_version(models, "iris", 4)
    time.sleep(0.3)
    assert live.get()["version"] == 3  # stopped: no longer follows


def test_model_versions_of_a_folder_with_gaps(tmp_path: Path) -> None:
    for version in (1, 3, 10):
        write_version(tmp_path, "m", version)
    (tmp_path / "m" / "\u00b2").mkdir()  # "²".isdigit(), but no version: int() refuses it
    assert sorted(model_versions(tmp_path / "m")) == [1, 3, 10]


def test_disk_cache_is_safe_across_threads(s3: S3, tmp_path: Path) -> None:
    s3.put("t/1/f", b"x")
    cache = DiskCache(tmp_path / "cache", max_entries=1)
    paths: list[Path] = []
    threads = [
        threading.Thread(target=lambda: paths.append(cache.path(s3.url("t/1")))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 1 and cache.entries() == [s3.url("t/1")]


# -- live reload, a real server -------------------------------------------------------------------


def project_with(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "predictor.py").write_text(PREDICTOR)
    return project


def ask(server: Any, **query: str) -> httpx.Response:
    return httpx.post(server.url("/predict"), params=query, json={}, timeout=10)


def test_live_reload_local_folder_while_serving(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    project = project_with(tmp_path)
    write_version(project / "models", "iris", 1)
    spec = api_spec(
        "reload",
        processes=2,
        models=ModelsSpec(paths=(ModelRef("iris", "models/iris"),)),
    )
    server = start_server(project, spec, env={"CORTEX_MODEL_POLL_SECONDS": "0.2"})
    assert ask(server).json() == {"name": "iris", "version": 1}

    write_version(project / "models", "iris", 2)
    # both processes follow: every answer is version 2 once each has looked again
    wait_for(
        lambda: all(ask(server).json()["version"] == 2 for _ in range(8)),
        what="version 2 to be served",
    )
    assert ask(server, version="1").json()["version"] == 1

    shutil.rmtree(project / "models" / "iris" / "2")
    wait_for(
        lambda: all(ask(server).json()["version"] == 1 for _ in range(8)),
        what="version 2 to be dropped",
    )
    gone = ask(server, version="2")
    assert gone.status_code == 404
    assert gone.json() == {"error": 'model "iris" has no version 2 (versions: 1)'}
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert 'model "iris": versions now [1, 2] (added [2], removed [])' in [
        record["message"] for record in records
    ]


def test_s3_models_fetched_at_start_and_followed(
    start_server: Callable[..., Any], s3: S3, models: Path, tmp_path: Path
) -> None:
    s3.upload_tree(models / "iris" / "1", "live/iris/1")
    project = project_with(tmp_path)
    spec = api_spec("s3-live", models=ModelsSpec(paths=(ModelRef("iris", s3.url("live/iris")),)))
    cache = tmp_path / "cache"
    env = {**s3.env, "CORTEX_MODEL_CACHE_DIR": str(cache), "CORTEX_MODEL_POLL_SECONDS": "0.2"}
    server = start_server(project, spec, env=env)
    assert ask(server).json() == {"name": "iris", "version": 1}
    assert DiskCache(cache).entries() == [s3.url("live/iris/1")]

    s3.upload_tree(models / "iris" / "2", "live/iris/2")
    wait_for(lambda: ask(server).json()["version"] == 2, what="s3 version 2 to be served")
    s3.delete_prefix("live/iris/2")
    wait_for(lambda: ask(server).json()["version"] == 1, what="s3 version 2 to be dropped")
    assert ask(server, version="2").status_code == 404
    wait_for(lambda: s3.url("live/iris/2") not in DiskCache(cache).entries(), what="cleanup")


def test_onnx_client_follows_new_versions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cortex_serve.clients.onnx_client import ONNXClient

    onnx_file = Path(__file__).resolve().parents[2] / "examples/onnx-iris/model/1/model.onnx"
    (tmp_path / "model" / "1").mkdir(parents=True)
    shutil.copy(onnx_file, tmp_path / "model" / "1" / "model.onnx")
    monkeypatch.setenv("CORTEX_MODEL_POLL_SECONDS", "0.05")
    client = ONNXClient(resolve_models({"paths": [{"name": "iris", "path": "model"}]}, tmp_path))
    try:
        client.load_latest()
        first = client.session()
        (tmp_path / "model" / "2").mkdir()
        shutil.copy(onnx_file, tmp_path / "model" / "2" / "model.onnx")
        wait_for(lambda: client.session() is not first, what="ONNX version 2")
        assert client.session(model_version=1) is first
        assert len(client.predict([[5.1, 3.5, 1.4, 0.2]])) >= 1
    finally:
        client.close()
