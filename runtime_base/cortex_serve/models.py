"""Where an API's models are, which versions they have, and loading them once each.

`predictor.models` in api.json (`models`, `multi_model_reloading` or the older `model`) names
models by `path` (one model, named `_cortex_default`), `paths` (several, by name) or `dir` (every
sub-folder, or s3 "sub-folder", is a model named after it). A path is local (relative to the
project root, or absolute), `s3://bucket/prefix` or `http(s)://...` (see model_fetch.py).
`cortex-build render` normally fetches remote models into the image, so api.json names local
paths; with `--models-at-start` the addresses stay and are fetched here, at start.

Versions follow Cortex: a model folder (or s3 prefix) whose sub-folders are integers ("1", "2",
...) holds one version per sub-folder; any other folder or file is an unversioned model, which
is version 1; "latest" is the highest version. An http(s) model is one download (a file, or an
archive unpacked, which may hold version folders).

Remote models are downloaded into the cache folder CORTEX_MODEL_CACHE_DIR (default
/mnt/model-cache when it exists and is writable, else <tmp>/cortex-model-cache), shared by the
replica's processes (file locks keep them from fetching or evicting under each other):
- s3 versions are fetched one by one, when first loaded. Without `disk_cache_size` the latest
  version of every model is fetched at start; with it, at most that many s3 versions stay on disk,
  the least recently used deleted first (never one being loaded at that moment).
- an http(s) model is fetched whole at start and kept.

`cache_size` bounds how many model versions stay in memory (least recently used dropped, loaded
again when asked for). Without `cache_size`, the python and ONNX clients watch their sources
(ModelStore live_reload): every CORTEX_MODEL_POLL_SECONDS (default 10) each local folder and s3
prefix is listed again; new version folders (and new models of a `dir`) are served without a
restart, the new latest loaded before it takes over when the previous latest was in memory;
removed ones are dropped. http(s) sources are not watched.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from . import model_fetch, settings
from .contract import DEFAULT_MODEL_NAME, is_version_folder
from .model_fetch import FetchError, is_remote

LATEST = "latest"
CACHE_DIR_ENV = "CORTEX_MODEL_CACHE_DIR"
DEFAULT_CACHE_DIR = "/mnt/model-cache"

Model = TypeVar("Model")
logger = logging.getLogger("cortex")


class ModelSourceError(Exception):
    """The configured models cannot be found or read (raised at start; the message is for users)."""


class ModelNotFoundError(LookupError):
    """A predictor asked for a model name or version this API does not serve."""


# -- the disk cache of remote models --------------------------------------------------------------


class DiskCache:
    """Remote models downloaded under `root`, one entry per address (an s3 version prefix, an
    http(s) file), shared by every process that uses the same root.

    root/<key>/model/... is the download, root/<key>/entry.json its address, local path and last
    use (a counter in root/.clock, as timestamps can tie), root/.locks/<key> a lock file held
    shared while the entry is in use; root/.locks/.global serializes fetching and evicting.
    With `max_entries`, at most that many evictable entries stay: the least recently used
    unpinned ones are deleted.
    """

    META = "entry.json"

    def __init__(self, root: Path, max_entries: int | None = None) -> None:
        self.root = Path(root)
        self.max_entries = max_entries

    @staticmethod
    def key(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()[:24]

    @contextlib.contextmanager
    def _locked(self, name: str, mode: int) -> Iterator[IO[str]]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / name, "a+") as handle:
            fcntl.flock(handle, mode)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def use(self, url: str, evictable: bool = True) -> Iterator[Path]:
        """The local path of `url`, fetched if not cached, kept on disk while in the block."""
        key = self.key(url)
        entry = self.root / key
        with self._locked(".global", fcntl.LOCK_EX):
            meta = self._read_meta(entry)
            if meta is None:
                if entry.exists():  # a fetch cut short before its entry.json: start again
                    shutil.rmtree(entry)
                local = model_fetch.fetch(url, entry / "model")
                meta = {"url": url, "path": local.relative_to(entry).as_posix()}
                meta["evictable"] = evictable
            meta["used"] = self._tick()  # the LRU order
            (entry / self.META).write_text(json.dumps(meta))
            pin = (self.root / ".locks" / key).open("a+")
            fcntl.flock(pin, fcntl.LOCK_SH)  # taken before the global lock is released
            try:
                self._evict(keep=key)
            except BaseException:
                pin.close()
                raise
        try:
            yield entry / meta["path"]
        finally:
            fcntl.flock(pin, fcntl.LOCK_UN)
            pin.close()

    def path(self, url: str, evictable: bool = True) -> Path:
        """The local path of `url`, fetched if not cached (not pinned: see `use`)."""
        with self.use(url, evictable) as local:
            return local

    def entries(self) -> list[str]:
        """The cached addresses, least recently used first."""
        return [meta["url"] for meta in self._metas()]

    def _metas(self) -> list[dict[str, Any]]:
        """entry.json of every complete entry, least recently used first."""
        found = []
        for entry in self.root.iterdir() if self.root.is_dir() else ():
            meta = self._read_meta(entry) if not entry.name.startswith(".") else None
            if meta is not None:
                meta["key"] = entry.name
                found.append(meta)
        return sorted(found, key=lambda meta: meta.get("used", 0))

    def _tick(self) -> int:
        clock = self.root / ".clock"
        try:
            now = int(clock.read_text()) + 1
        except (OSError, ValueError):
            now = 1
        clock.write_text(str(now))
        return now

    def discard(self, url: str) -> bool:
        """Deletes the entry of `url` unless it is in use; True when it is gone."""
        key = self.key(url)
        with self._locked(".global", fcntl.LOCK_EX):
            return self._delete_if_unused(key)

    def _read_meta(self, entry: Path) -> dict[str, Any] | None:
        try:
            return json.loads((entry / self.META).read_text())
        except (OSError, ValueError):
            return None

    def _delete_if_unused(self, key: str) -> bool:
        entry = self.root / key
        if not entry.exists():
            return True
        with open(self.root / ".locks" / key, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # pinned by a load in some process
            try:
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return True

    def _evict(self, keep: str) -> None:
        if self.max_entries is None:
            return
        evictable = [meta["key"] for meta in self._metas() if meta.get("evictable", True)]
        excess = len(evictable) - self.max_entries
        for key in evictable:
            if excess <= 0:
                break
            if key != keep and self._delete_if_unused(key):
                excess -= 1


def cache_dir() -> Path:
    """CORTEX_MODEL_CACHE_DIR, else /mnt/model-cache if usable, else <tmp>/cortex-model-cache."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    default = Path(DEFAULT_CACHE_DIR)
    if default.is_dir() and os.access(default, os.W_OK | os.X_OK):
        return default
    return Path(tempfile.gettempdir()) / f"cortex-model-cache-{os.getuid()}"


# -- sources --------------------------------------------------------------------------------------


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


# -- the store of loaded models -------------------------------------------------------------------


class ModelStore(Generic[Model]):
    """Models by (name, version), each loaded by `load(source, version)` on first use, once.

    Thread-safe: predict threads asking for the same model wait for one load; loads of different
    models run in parallel. With `cache_size` (Cortex's `models.cache_size`), at most that many
    models stay loaded: the least recently used one is dropped when another is loaded (a caller
    still holding it keeps using it).

    With `live_reload`, no `cache_size` and sources that can be rescanned (resolve_models'),
    a thread of this process looks at the sources every `poll_seconds` (CORTEX_MODEL_POLL_SECONDS)
    and applies what changed (see `refresh`); `close()` stops it (also at interpreter exit).
    """

    def __init__(
        self,
        sources: Mapping[str, ModelSource],
        load: Callable[[ModelSource, int], Model] | None = None,
        cache_size: int | None = None,
        *,
        live_reload: bool = False,
        poll_interval: float | None = None,
    ) -> None:
        self.sources = dict(sources)
        self._load = load
        self._cache_size = cache_size
        self._loaded: OrderedDict[tuple[str, int], Model] = OrderedDict()  # oldest use first
        self._load_locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()  # for _loaded and _load_locks themselves
        self._rescan: Callable[[], dict[str, ModelSource]] | None = getattr(sources, "rescan", None)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        if live_reload and cache_size is None and self._rescan is not None:
            self._start_polling(poll_interval or settings.MODEL_POLL_SECONDS.read())

    def set_loader(self, load: Callable[[ModelSource, int], Model]) -> None:
        self._load = load

    def source(self, model_name: str | None) -> ModelSource:
        sources = self.sources  # one snapshot: refresh replaces the dict whole
        if model_name is None:
            if len(sources) == 1:
                return next(iter(sources.values()))
            raise ModelNotFoundError(
                "model_name was not given; this API serves several models, name one of: "
                + ", ".join(sorted(sources))
            )
        try:
            return sources[model_name]
        except KeyError:
            served = ", ".join(sorted(sources)) or "none"
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
                current = self.sources.get(source.name)
                if current is not None and version in current.versions:  # not removed meanwhile
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

    # -- live reload -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Looks at the sources again and serves what they hold now: versions and `dir` models
        that appeared are added, those that disappeared dropped (from memory too). When a model's
        latest version was in memory and a newer one appeared, the newer one is loaded first, so
        `latest` switches only once it loads; if it fails, it is left out until the next look."""
        if self._rescan is None:
            return
        scanned = self._rescan()
        previous = self.sources
        preloaded: dict[tuple[str, int], Model] = {}
        for name, source in list(scanned.items()):
            before = previous.get(name)
            if before is None or source.latest in before.versions or self._load is None:
                continue
            with self._guard:
                was_loaded = (name, before.latest) in self._loaded
            if not was_loaded:
                continue
            try:
                preloaded[(name, source.latest)] = self._load(source, source.latest)
            except Exception as error:
                logger.warning(
                    f'model "{name}" version {source.latest} appeared but does not load yet '
                    f"(trying again at the next poll): {error}"
                )
                versions = {v: p for v, p in source.versions.items() if v != source.latest}
                if versions:
                    scanned[name] = dataclasses.replace(source, versions=versions)
                else:
                    scanned[name] = before
        with self._guard:
            self.sources = scanned
            self._loaded.update(preloaded)
            for key in [k for k in self._loaded if k[1] not in _versions(scanned, k[0])]:
                del self._loaded[key]
        self._report(previous, scanned)

    def _report(self, before: Mapping[str, ModelSource], after: Mapping[str, ModelSource]) -> None:
        for name in sorted(set(before) | set(after)):
            old, new = set(_versions(before, name)), set(_versions(after, name))
            if old != new:
                logger.info(
                    f'model "{name}": versions now {sorted(new) or "none (model dropped)"}'
                    f" (added {sorted(new - old)}, removed {sorted(old - new)})"
                )
            source = before.get(name)
            if source is not None and source.cache is not None:
                for version in old - new:  # fetched copies of removed versions go too
                    where = source.versions[version]
                    if isinstance(where, str):
                        source.cache.discard(where)

    def _start_polling(self, interval: float) -> None:
        reference = weakref.ref(self)
        stop = self._stop

        def poll() -> None:
            # Holds the store only during a refresh, so an unused store can be collected.
            while not stop.wait(interval):
                store = reference()
                if store is None:
                    return
                try:
                    store.refresh()
                except Exception as error:  # a source briefly unreachable: keep serving
                    logger.warning(f"looking for new model versions failed: {error}")
                del store

        self._poller = threading.Thread(target=poll, name="model-poll", daemon=True)
        self._poller.start()
        atexit.register(_stop_at_exit, weakref.ref(self))

    def close(self, timeout: float = 5.0) -> None:
        """Stops live reload (waits up to `timeout` for a refresh in progress)."""
        self._stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout)


def _versions(sources: Mapping[str, ModelSource], name: str) -> Mapping[int, Path | str]:
    source = sources.get(name)
    return source.versions if source is not None else {}


def _stop_at_exit(reference: weakref.ref[ModelStore[Any]]) -> None:
    store = reference()
    if store is not None:
        store.close(timeout=1.0)


__all__ = [
    "DEFAULT_MODEL_NAME",
    "LATEST",
    "DiskCache",
    "ModelNotFoundError",
    "ModelSource",
    "ModelSourceError",
    "ModelSources",
    "ModelStore",
    "cache_dir",
    "model_versions",
    "parse_version",
    "resolve_local_path",
    "resolve_models",
]
