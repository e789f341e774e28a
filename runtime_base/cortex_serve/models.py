"""Where an API's models are on disk, which versions they have, and loading them once each.

`predictor.models` in api.json (`models`, `multi_model_reloading` or the older `model`) names
models by `path` (one model, named `_cortex_default`), `paths` (several, by name) or `dir` (every
sub-folder is a model named after it). A local path is relative to the project root or absolute.

Versions follow Cortex: a model folder whose sub-folders are integers ("1", "2", ...) holds one
version per sub-folder; any other folder or file is an unversioned model, which is version 1;
"latest" is the highest version.

`cache_size` bounds how many models stay in memory (least recently used ones are dropped and
loaded again when asked for); `disk_cache_size` has nothing to bound, since local models are used
where they are. Remote sources (s3://, gs://, http(s)://) are not fetched yet: they raise a
ModelSourceError that says so, rather than pretending to work.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

DEFAULT_MODEL_NAME = "_cortex_default"  # the name of a single `path` model (generator/spec.py)
LATEST = "latest"
REMOTE_PREFIXES = ("s3://", "gs://", "http://", "https://")

Model = TypeVar("Model")


class ModelSourceError(Exception):
    """The configured models cannot be found or read (raised at start; the message is for users)."""


class ModelNotFoundError(LookupError):
    """A predictor asked for a model name or version this API does not serve."""


@dataclass(frozen=True)
class ModelSource:
    """One named model and its local version folders (or files)."""

    name: str
    versions: Mapping[int, Path]  # version -> local folder or file
    signature_key: str | None = None

    @property
    def latest(self) -> int:
        return max(self.versions)

    def path(self, version: int) -> Path:
        return self.versions[version]


def resolve_local_path(path: str, project_dir: Path, what: str) -> Path:
    """A model path as written in the config, as an existing local path."""
    if path.startswith(REMOTE_PREFIXES):
        raise ModelSourceError(
            f'{what}: "{path}": remote model sources are not supported yet; download the model '
            "into the project folder and give its local path instead"
        )
    resolved = (project_dir / path).resolve()  # an absolute `path` stays as it is
    if not resolved.exists():
        raise ModelSourceError(f'{what}: "{path}" does not exist (looked for {resolved})')
    return resolved


def model_versions(path: Path) -> dict[int, Path]:
    """{version: path}: integer sub-folders if there are any, else the path itself as version 1."""
    if path.is_dir():
        versions = {
            int(child.name): child
            for child in path.iterdir()
            if child.is_dir() and child.name.isdigit()
        }
        if versions:
            return versions
    return {1: path}


def resolve_models(models: Mapping[str, Any] | None, project_dir: Path) -> dict[str, ModelSource]:
    """The models of `predictor.models` (api.json) by name; {} when the API names none."""
    if not models:
        return {}
    default_key = models.get("signature_key")
    sources: dict[str, ModelSource] = {}
    for ref in models.get("paths") or ():
        name = ref["name"]
        local = resolve_local_path(ref["path"], project_dir, f'model "{name}"')
        sources[name] = ModelSource(
            name, model_versions(local), ref.get("signature_key") or default_key
        )
    if models.get("dir"):
        folder = resolve_local_path(models["dir"], project_dir, "models dir")
        if not folder.is_dir():
            raise ModelSourceError(f'models dir: "{models["dir"]}" is not a folder')
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                sources[child.name] = ModelSource(child.name, model_versions(child), default_key)
        if not sources:
            raise ModelSourceError(f'models dir: "{models["dir"]}" holds no model folders')
    return sources


def parse_version(model_version: str | int) -> int | None:
    """None for "latest", else the version as an int (Cortex passed versions as strings)."""
    if model_version == LATEST:
        return None
    try:
        version = int(model_version)
    except (TypeError, ValueError):
        version = 0
    if version < 1:
        raise ModelNotFoundError(
            f'invalid model_version {model_version!r}: must be "latest" or a positive integer'
        )
    return version


class ModelStore(Generic[Model]):
    """Models by (name, version), each loaded by `load(source, version)` on first use, once.

    Thread-safe: predict threads asking for the same model wait for one load; loads of different
    models run in parallel. With `cache_size` (Cortex's `models.cache_size`), at most that many
    models stay loaded: the least recently used one is dropped when another is loaded (a caller
    still holding it keeps using it).
    """

    def __init__(
        self,
        sources: Mapping[str, ModelSource],
        load: Callable[[ModelSource, int], Model] | None = None,
        cache_size: int | None = None,
    ) -> None:
        self.sources = dict(sources)
        self._load = load
        self._cache_size = cache_size
        self._loaded: OrderedDict[tuple[str, int], Model] = OrderedDict()  # oldest use first
        self._load_locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()  # for _loaded and _load_locks themselves

    def set_loader(self, load: Callable[[ModelSource, int], Model]) -> None:
        self._load = load

    def source(self, model_name: str | None) -> ModelSource:
        if model_name is None:
            if len(self.sources) == 1:
                return next(iter(self.sources.values()))
            raise ModelNotFoundError(
                "model_name was not given; this API serves several models, name one of: "
                + ", ".join(sorted(self.sources))
            )
        try:
            return self.sources[model_name]
        except KeyError:
            served = ", ".join(sorted(self.sources)) or "none"
            raise ModelNotFoundError(
                f'model "{model_name}" is not served by this API (models: {served})'
            ) from None

    def locate(self, model_name: str | None, model_version: str | int) -> tuple[ModelSource, int]:
        source = self.source(model_name)
        version = parse_version(model_version)
        if version is None:
            return source, source.latest
        if version not in source.versions:
            available = ", ".join(str(v) for v in sorted(source.versions))
            raise ModelNotFoundError(
                f'model "{source.name}" has no version {version} (versions: {available})'
            )
        return source, version

    def get(self, model_name: str | None = None, model_version: str | int = LATEST) -> Model:
        source, version = self.locate(model_name, model_version)
        key = (source.name, version)
        with self._guard:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # one load per model; other models load meanwhile
            with self._guard:
                if key in self._loaded:  # loaded by the thread this one waited for
                    return self._loaded[key]
            if self._load is None:
                raise RuntimeError("ModelStore has no loader yet")
            model = self._load(source, version)
            with self._guard:
                self._loaded[key] = model
                while self._cache_size and len(self._loaded) > self._cache_size:
                    self._loaded.popitem(last=False)
            return model

    def loaded(self) -> list[tuple[str, int]]:
        """(name, version) of the models in memory, least recently used first."""
        with self._guard:
            return list(self._loaded)

    def load_latest(self) -> None:
        """Loads the latest version of every model now (as many as cache_size allows), so a
        broken model fails at start rather than on a request."""
        for name in list(self.sources)[: self._cache_size or None]:
            self.get(name, LATEST)
