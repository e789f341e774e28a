"""The disk cache of remote models, shared by a replica's processes.

Versions follow Cortex: a model folder (or s3 prefix) whose sub-folders are integers ("1", "2",
...) holds one version per sub-folder; any other folder or file is an unversioned model, which
is version 1; "latest" is the highest version. An http(s) model is one download (a file, or an
archive unpacked, which may hold version folders).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from . import model_fetch

CACHE_DIR_ENV = "CORTEX_MODEL_CACHE_DIR"
DEFAULT_CACHE_DIR = "/mnt/model-cache"


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
