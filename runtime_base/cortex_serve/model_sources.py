"""Where an API's models are and which versions they have (a model's sources).
`predictor.models` in api.json (`models`, `multi_model_reloading` or the older `model`) names
models by `path` (one model, named `_cortex_default`), `paths` (several, by name) or `dir` (every
sub-folder, or s3 "sub-folder", is a model named after it). A path is local (relative to the
project root, or absolute), `s3://bucket/prefix` or `http(s)://...` (see model_fetch.py).
`cortex-build render` normally fetches remote models into the image, so api.json names local
paths; with `--models-at-start` the addresses stay and are fetched here, at start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model_fetch
from .contract import is_version_folder
from .model_cache import DiskCache, cache_dir
from .model_fetch import FetchError, is_remote

LATEST = "latest"


class ModelSourceError(Exception):
    """The configured models cannot be found or read (raised at start; the message is for users)."""


class ModelNotFoundError(LookupError):
    """A predictor asked for a model name or version this API does not serve."""


@dataclass(frozen=True)
class ModelSource:
    """One named model and its versions: local paths, or s3 addresses fetched through `cache`."""

    name: str
    versions: Mapping[int, Path | str]  # version -> local folder or file, or an s3 address
    signature_key: str | None = None
    cache: DiskCache | None = field(default=None, compare=False, repr=False)

    @property
    def latest(self) -> int:
        return max(self.versions)

    def path(self, version: int) -> Path:
        """The version's local path (a remote one is fetched into the cache first)."""
        with self.local(version) as path:
            return path

    @contextlib.contextmanager
    def local(self, version: int) -> Iterator[Path]:
        """The version's local path, kept on disk (not evicted) while in the block."""
        where = self.versions[version]
        if isinstance(where, Path):
            yield where
            return
        if self.cache is None:
            raise ModelSourceError(f'model "{self.name}": no cache folder for {where}')
        try:
            with self.cache.use(where) as path:
                yield path
        except FetchError as error:
            raise ModelSourceError(f'model "{self.name}" version {version}: {error}') from error


class ModelSources(dict[str, ModelSource]):
    """What resolve_models returns: the models by name, and `rescan()`, which looks at the
    sources again (for live reload) and returns what they hold now."""

    def __init__(
        self,
        sources: Mapping[str, ModelSource],
        rescan: Callable[[], dict[str, ModelSource]] | None = None,
    ) -> None:
        super().__init__(sources)
        self.rescan = rescan


def resolve_local_path(
    path: str, project_dir: Path, what: str, cache: DiskCache | None = None
) -> Path:
    """A model path as written in the config, as an existing local path; a remote one is fetched
    whole into the cache folder first (and kept there)."""
    if is_remote(path):
        cache = cache or DiskCache(cache_dir())
        try:
            return cache.path(path, evictable=False)
        except FetchError as error:
            raise ModelSourceError(f"{what}: {error}") from error
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
            if child.is_dir() and is_version_folder(child.name)
        }
        if versions:
            return versions
    return {1: path}


def s3_versions(url: str, what: str) -> dict[int, Path | str]:
    """{version: s3 address} of an s3 model: integer "sub-folders", else the address as 1."""
    try:
        versions: dict[int, Path | str] = {
            int(name): model_fetch.join(url, name)
            for name in model_fetch.s3_children(url)
            if is_version_folder(name)
        }
        if versions:
            return versions
        if model_fetch.s3_exists(url):
            return {1: url}
    except FetchError as error:
        raise ModelSourceError(f"{what}: {error}") from error
    raise ModelSourceError(f'{what}: "{url}": no objects found at this address')


def resolve_models(
    models: Mapping[str, Any] | None, project_dir: Path, cache_root: Path | None = None
) -> ModelSources:
    """The models of `predictor.models` (api.json) by name; empty when the API names none.

    Local folders are listed; s3 prefixes are listed (their latest versions fetched now unless
    `disk_cache_size` is set); http(s) models are fetched. `cache_root` defaults to cache_dir().
    """
    if not models:
        return ModelSources({})
    default_key = models.get("signature_key")
    remote = any(is_remote(ref["path"]) for ref in models.get("paths") or ()) or is_remote(
        models.get("dir") or ""
    )
    cache = DiskCache(cache_root or cache_dir(), models.get("disk_cache_size")) if remote else None

    def one(name: str, path: str, signature_key: str | None, what: str) -> ModelSource:
        if path.startswith("s3://"):
            return ModelSource(name, s3_versions(path, what), signature_key, cache)
        local = resolve_local_path(path, project_dir, what, cache)  # http(s): fetched whole
        return ModelSource(name, model_versions(local), signature_key, cache)

    def scan() -> dict[str, ModelSource]:
        sources: dict[str, ModelSource] = {}
        for ref in models.get("paths") or ():
            name = ref["name"]
            sources[name] = one(
                name, ref["path"], ref.get("signature_key") or default_key, f'model "{name}"'
            )
        if models.get("dir"):
            written = models["dir"]
            if written.startswith("s3://"):
                try:
                    names = model_fetch.s3_children(written)
                except FetchError as error:
                    raise ModelSourceError(f"models dir: {error}") from error
                children = [(n, model_fetch.join(written, n)) for n in names]
            else:
                folder = resolve_local_path(written, project_dir, "models dir", cache)
                if not folder.is_dir():
                    raise ModelSourceError(f'models dir: "{written}" is not a folder')
                children = [(c.name, str(c)) for c in sorted(folder.iterdir()) if c.is_dir()]
            for name, path in children:
                if not name.startswith("."):
                    sources[name] = one(name, path, default_key, f'model "{name}"')
            if not sources:
                raise ModelSourceError(f'models dir: "{written}" holds no model folders')
        return sources

    sources = ModelSources(scan(), scan)
    if cache is not None and cache.max_entries is None:
        # No disk bound: fetch the latest versions now, so an unreachable model fails at start.
        for source in sources.values():
            source.path(source.latest)
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
