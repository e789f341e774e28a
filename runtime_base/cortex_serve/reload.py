"""`cortex-build serve --reload`: new workers on the project's code after every good save.

The master watches the project with the OS's file notifications (watchfiles; polling where the
OS gives none, or its watch limit is reached). What is watched is what a project's code lives
in: the project folder's own files, and each of its top-level folders in depth, except hidden
ones (`.venv`, `.git`), virtualenvs of any name (a `pyvenv.cfg` inside) and package caches; a
virtualenv holds thousands of files that change on every `pip install`, none of them the
project's. A saved Python file is compiled first: an edit that does not compile is not reloaded
(new workers could not boot), the log names the file and line, and the workers running the last
good code go on serving until the next good save.

Reloading is SIGHUP to the master: gunicorn starts new workers on the new code and stops the old
ones gracefully (they finish what is in flight; the new ones load before they accept, see
worker.Worker.start), so clients see no error while it happens.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles
from cortex_internal.lib.log import logger

# Folders that hold installed or generated files, never a project's code.
NOT_CODE_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages"})
# How long watchfiles waits for events before it yields nothing: the first such yield says the
# watches are in place, so start() returns only once no edit can go unseen.
READY_TIMEOUT_MS = 250


def is_code_folder(path: Path) -> bool:
    return (
        path.is_dir()
        and not path.name.startswith(".")
        and path.name not in NOT_CODE_FOLDERS
        and not (path / "pyvenv.cfg").exists()
    )


def code_folders(root: Path) -> list[Path]:
    """The top-level folders of the project that are watched in depth."""
    try:
        return sorted(path for path in root.iterdir() if is_code_folder(path))
    except OSError:
        return []


def is_python_source(root: Path, path: str) -> bool:
    """A .py file of the project's own, not one in a hidden folder or a package cache."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    return path.endswith(".py") and not any(
        part.startswith(".") or part in NOT_CODE_FOLDERS for part in parts
    )


def syntax_error(paths: Iterable[str]) -> str | None:
    """The first syntax error among the saved files ("predictor.py:3: invalid syntax"), or None;
    an edit in progress is reloaded only once it compiles."""
    for path in sorted(paths):
        try:
            source = Path(path).read_bytes()
            compile(source, path, "exec", dont_inherit=True)
        except SyntaxError as error:
            return f"{Path(path).name}:{error.lineno}: {error.msg}"
        except (OSError, ValueError):
            continue  # removed meanwhile, or not source text: the import will say
    return None


def reload_workers(changed: set[str]) -> None:
    broken = syntax_error(changed)  # a file removed meanwhile is skipped there
    if broken is None:
        os.kill(os.getpid(), signal.SIGHUP)
    else:  # new workers could not boot: keep the ones running the last good code
        logger.error(f"not reloading: {broken}; still serving the code before it")


class _Watch:
    """One watchfiles watch in a thread of its own, stoppable, that says when it is in place."""

    def __init__(
        self,
        paths: list[Path],
        recursive: bool,
        on_changes: Callable[[set[tuple[watchfiles.Change, str]]], None],
        polling: bool,
    ) -> None:
        self.paths = paths
        self.recursive = recursive
        self.on_changes = on_changes
        self.polling = polling
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="reload", daemon=True)

    def start(self) -> _Watch:
        self.thread.start()
        self.ready.wait()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        try:
            for changes in watchfiles.watch(
                *self.paths,
                recursive=self.recursive,
                watch_filter=None,
                stop_event=self.stopped,
                yield_on_timeout=True,
                rust_timeout=READY_TIMEOUT_MS,
                force_polling=self.polling,
                ignore_permission_denied=True,
            ):
                self.ready.set()
                if changes:
                    self.on_changes(changes)
        except (OSError, RuntimeError) as error:  # e.g. the OS's watch limit reached
            self.failed = error
        finally:
            self.ready.set()


class ProjectWatcher:
    """The project folder's own files (not in depth), and its code folders in depth; the second
    watch is set up again when a top-level folder comes or goes."""

    def __init__(self, root: Path, on_python_changes: Callable[[set[str]], None] = reload_workers):
        self.root = root
        self.on_python_changes = on_python_changes
        self.polling = False
        self.folders: list[Path] = []
        self.watches: list[_Watch] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        try:
            self._start_watches()
        except (OSError, RuntimeError) as error:
            logger.warning(f"file notifications unavailable ({error}); polling the project instead")
            self.stop()
            self.polling = True
            self._start_watches()
        how = "polling" if self.polling else "OS notifications"
        logger.info(
            f"reloading on changes to the project's Python files ({how}; "
            f"{len(self.folders)} top-level folders, hidden folders and virtualenvs left out)"
        )

    def stop(self) -> None:
        for watch in self.watches:
            watch.stop()
        self.watches = []

    def _start_watches(self) -> None:
        self.watches = [self._watch([self.root], recursive=False, handler=self._on_top_level)]
        self._watch_folders()

    def _watch(
        self,
        paths: list[Path],
        recursive: bool,
        handler: Callable[[set[tuple[watchfiles.Change, str]]], None],
    ) -> _Watch:
        watch = _Watch(paths, recursive, handler, self.polling).start()
        if watch.failed is not None:
            raise watch.failed
        return watch

    def _watch_folders(self) -> None:
        self.folders = code_folders(self.root)
        if self.folders:
            self.watches.append(self._watch(self.folders, recursive=True, handler=self._on_code))

    def _on_top_level(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        with self.lock:
            if code_folders(self.root) != self.folders:  # a folder came or went: watch it too
                for watch in self.watches[1:]:
                    watch.stop()
                del self.watches[1:]
                self._watch_folders()
        self._on_code(changes)

    def _on_code(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        python = {path for _, path in changes if is_python_source(self.root, path)}
        if python:
            self.on_python_changes(python)


def watch_project(project_dir: Path) -> ProjectWatcher:
    """Called in the master before any worker imports the code, so that no edit goes unseen."""
    watcher = ProjectWatcher(Path(project_dir))
    watcher.start()
    return watcher
