"""The store of loaded models: each version loaded once, on first use, by (name, version).

Where models are and their versions: model_sources.py; the disk cache of remote ones:
model_cache.py.

Remote models are downloaded into the cache folder CORTEX_MODEL_CACHE_DIR (default
/mnt/model-cache when it exists and is writable, else <tmp>/cortex-model-cache), shared by the
replica's processes (file locks keep them from fetching or evicting under each other):
- s3 versions are fetched one by one, when first loaded. Without `disk_cache_size` the latest
  version of every model is fetched at start; with it, at most that many s3 versions stay on disk,
  the least recently used deleted first (never one being loaded at that moment).
- an http(s) model is fetched whole at start and kept.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import settings
from .model_sources import LATEST, ModelNotFoundError, ModelSource, parse_version

Model = TypeVar("Model")
logger = logging.getLogger("cortex")


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
        self._refreshing = threading.Lock()  # one refresh at a time: the poller's or a request's
        self._live = live_reload and cache_size is None and self._rescan is not None
        if self._live:
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
        try:
            return self._get(model_name, model_version)
        except _LoadFailed as failed:
            # With live reload, a version's files can go before the poller sees them go: a
            # request located it and could not load it. Look at the sources now; if the version
            # is gone, locate again (`latest` is then the newest left, a number names what is).
            if not self._live or not self._removed_now(failed.source.name, failed.version):
                raise failed.error from None
        return self.get(model_name, model_version)

    def _removed_now(self, name: str, version: int) -> bool:
        try:
            self.refresh()
        except Exception:  # the sources cannot be looked at now: the load's own error stands
            return False
        return version not in _versions(self.sources, name)

    def _get(self, model_name: str | None, model_version: str | int) -> Model:
        with self._guard:
            # Located under the guard, as refresh swaps sources and drops removed versions under
            # it: a version removed meanwhile is either still in memory here or not located.
            source, version = self.locate(model_name, model_version)
            key = (source.name, version)
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
            try:
                model = self._load(source, version)
            except Exception as error:
                raise _LoadFailed(source, version, error) from error
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
        with self._refreshing:
            self._refresh(self._rescan)

    def _refresh(self, rescan: Callable[[], dict[str, ModelSource]]) -> None:
        scanned = rescan()
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


class _LoadFailed(Exception):
    """A located version did not load: `error`, with where it was meant to come from."""

    def __init__(self, source: ModelSource, version: int, error: Exception) -> None:
        super().__init__(str(error))
        self.source, self.version, self.error = source, version, error


def _versions(sources: Mapping[str, ModelSource], name: str) -> Mapping[int, Path | str]:
    source = sources.get(name)
    return source.versions if source is not None else {}


def _stop_at_exit(reference: weakref.ref[ModelStore[Any]]) -> None:
    store = reference()
    if store is not None:
        store.close(timeout=1.0)
