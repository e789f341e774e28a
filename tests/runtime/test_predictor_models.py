"""Model sources: local paths, versions and the lazy, load-once store (cortex_serve.model_sources,
cortex_serve.models)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cortex_serve.model_sources import (
    ModelNotFoundError,
    ModelSource,
    ModelSourceError,
    model_versions,
    parse_version,
    resolve_models,
)
from cortex_serve.models import ModelStore


def make(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_versions_are_integer_sub_folders(tmp_path: Path) -> None:
    for name in ("1", "2", "10", "variables", "3b"):
        make(tmp_path / "m" / name)
    assert model_versions(tmp_path / "m") == {
        1: tmp_path / "m" / "1",
        2: tmp_path / "m" / "2",
        10: tmp_path / "m" / "10",
    }
    make(tmp_path / "saved" / "variables")  # a SavedModel folder: unversioned
    assert model_versions(tmp_path / "saved") == {1: tmp_path / "saved"}
    (tmp_path / "model.onnx").write_bytes(b"")  # a file: unversioned
    assert model_versions(tmp_path / "model.onnx") == {1: tmp_path / "model.onnx"}


def test_paths_dir_relative_and_absolute(tmp_path: Path) -> None:
    project = make(tmp_path / "project")
    make(project / "models" / "a" / "1")
    make(project / "models" / "b")
    make(project / "models" / ".hidden")
    elsewhere = make(tmp_path / "elsewhere")
    sources = resolve_models(
        {"paths": [{"name": "x", "path": str(elsewhere), "signature_key": "k"}], "dir": "models"},
        project,
    )
    assert sorted(sources) == ["a", "b", "x"]
    assert sources["x"] == ModelSource("x", {1: elsewhere}, "k")
    assert sources["a"].versions == {1: project / "models" / "a" / "1"}
    assert resolve_models(None, project) == {}


def test_default_signature_key_applies_unless_a_path_names_its_own(tmp_path: Path) -> None:
    make(tmp_path / "a")
    make(tmp_path / "b")
    sources = resolve_models(
        {
            "paths": [
                {"name": "a", "path": "a", "signature_key": None},
                {"name": "b", "path": "b", "signature_key": "own"},
            ],
            "signature_key": "default",
        },
        tmp_path,
    )
    assert sources["a"].signature_key == "default" and sources["b"].signature_key == "own"


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            {"paths": [{"name": "m", "path": "missing"}]},
            'model "m": "missing" does not exist (looked for {root}/missing)',
        ),
        (
            {"paths": [{"name": "m", "path": "gs://bucket/m.onnx"}]},
            'model "m": "gs://bucket/m.onnx": gs:// model sources are not supported; use s3://, '
            "http(s):// or a local path",
        ),
        ({"dir": "file.txt"}, 'models dir: "file.txt" is not a folder'),
        ({"dir": "empty"}, 'models dir: "empty" holds no model folders'),
    ],
)
def test_source_errors(tmp_path: Path, models: dict[str, object], message: str) -> None:
    (tmp_path / "file.txt").write_text("")
    make(tmp_path / "empty")
    with pytest.raises(ModelSourceError) as caught:
        resolve_models(models, tmp_path)
    assert str(caught.value) == message.format(root=tmp_path)


def test_parse_version() -> None:
    assert parse_version("latest") is None
    assert parse_version("3") == 3 and parse_version(4) == 4
    for bad in ("0", "-1", "v1", None):
        with pytest.raises(ModelNotFoundError, match='must be "latest" or a positive integer'):
            parse_version(bad)  # type: ignore[arg-type]


def test_store_loads_each_version_once_under_concurrency() -> None:
    loads: list[tuple[str, int]] = []

    def load(source: ModelSource, version: int) -> str:
        time.sleep(0.02)
        loads.append((source.name, version))
        return f"{source.name}@{version}"

    source = ModelSource("m", {1: Path("/m/1"), 2: Path("/m/2")})
    store: ModelStore[str] = ModelStore({"m": source}, load)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.get(None, "latest"))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["m@2"] * 6 and loads == [("m", 2)]
    assert store.get("m", "1") == "m@1" and store.get("m", 2) == "m@2"
    assert loads == [("m", 2), ("m", 1)]


def test_cache_size_keeps_the_most_recently_used_models() -> None:
    loads: list[str] = []

    def load(source: ModelSource, version: int) -> str:
        loads.append(source.name)
        return source.name

    sources = {name: ModelSource(name, {1: Path(name)}) for name in ("a", "b", "c")}
    store: ModelStore[str] = ModelStore(sources, load, cache_size=2)
    store.load_latest()  # only as many as fit
    assert loads == ["a", "b"] and store.loaded() == [("a", 1), ("b", 1)]
    assert store.get("a") == "a"  # a is now the most recent
    assert store.get("c") == "c"  # evicts b
    assert store.loaded() == [("a", 1), ("c", 1)]
    assert store.get("b") == "b"  # loaded again, evicting a
    assert loads == ["a", "b", "c", "b"] and store.loaded() == [("c", 1), ("b", 1)]
