"""gunicorn as the process manager: `processes_per_replica` uvicorn workers behind one socket.

The master (this process; PID 1 in a container) creates the replica-wide scoreboard before it
forks, gives each worker its slot, and frees a slot when its worker exits, so a killed worker is
replaced without leaking capacity. gunicorn's own behaviour does the rest:
- SIGTERM: stop accepting, let workers finish what is in flight for at most `graceful_timeout`
  seconds, exit 0.
- a worker that exits with WORKER_BOOT_ERROR (its predictor failed to initialise) stops the
  whole server with that status: the replica never reports healthy.
- a worker that dies otherwise is replaced; its in-flight requests fail, the others go on. The
  replacement loads its predictor before it accepts a connection (see app.Worker.start), beating
  gunicorn's heartbeat meanwhile, so a model load longer than `worker_timeout` is not killed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from .app import create_app
from .scoreboard import Scoreboard

WORKER_CLASS = "uvicorn_worker.UvicornWorker"


@dataclass(frozen=True)
class ServerOptions:
    host: str = "0.0.0.0"
    port: int = 8888
    max_body_bytes: int = 32 * 1024 * 1024
    graceful_timeout: int = 30  # seconds in-flight requests get after SIGTERM
    keepalive: int = 5  # seconds an idle keep-alive connection stays open
    worker_timeout: int = 120  # seconds a worker's event loop may stay blocked before a restart
    reload: bool = False  # development: new workers when a Python file of the project changes


def _log_config(level: str) -> dict[str, Any]:
    """gunicorn's and uvicorn's own lines in the same JSON format as the predictor's."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stdout",
    }
    gunicorn_level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cortex_internal.lib.log.JsonFormatter"}},
        "handlers": {"console": handler, "error_console": handler},
        "root": {"level": gunicorn_level, "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {
                "level": gunicorn_level,
                "handlers": ["error_console"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            # One line per request costs more than the rest of the request's bookkeeping: only
            # at log_level debug.
            "gunicorn.access": {
                "level": "DEBUG" if gunicorn_level == "DEBUG" else "WARNING",
                "handlers": ["console"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
    }


RELOAD_POLL_SECONDS = 0.5


def _python_files(project_dir: Path) -> dict[str, tuple[int, int]]:
    """{path: (mtime_ns, size)} of the project's Python files, outside hidden folders. Those are
    never entered: a project's .venv can hold thousands of .py files, and this runs twice a
    second."""
    found = {}
    for folder, subfolders, files in os.walk(project_dir):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            if not name.endswith(".py") or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed meanwhile
                continue
            found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def _watch_project(project_dir: Path) -> None:
    """`--reload`, in the master: when a Python file of the project is added, edited or removed,
    SIGHUP makes gunicorn start new workers on the new code and stop the old ones gracefully
    (they finish what is in flight; the new ones load before they accept: app.Worker.start). The
    first listing is taken here, before any worker imports the code, so no edit goes unseen."""

    def watch() -> None:
        seen = _python_files(project_dir)
        while True:
            time.sleep(RELOAD_POLL_SECONDS)
            now = _python_files(project_dir)
            if now != seen:
                seen = now
                os.kill(os.getpid(), signal.SIGHUP)

    threading.Thread(target=watch, name="reload", daemon=True).start()


class CortexServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, spec: dict[str, Any], project_dir: Path, options: ServerOptions) -> None:
        self.spec = spec
        self.project_dir = project_dir
        self.options = options
        predictor = spec["predictor"]
        self.processes = int(predictor.get("processes_per_replica") or 1)
        concurrency = int(spec.get("autoscaling", {}).get("max_replica_concurrency") or 1024)
        self.scoreboard = Scoreboard(self.processes, concurrency)
        self.worker_notify: Callable[[], None] | None = None  # set in each worker by post_fork
        super().__init__()

    def load_config(self) -> None:
        scoreboard = self.scoreboard

        def pre_fork(server: Any, worker: Any) -> None:
            worker.cortex_slot = scoreboard.reserve_slot()

        def post_fork(server: Any, worker: Any) -> None:
            scoreboard.claim(worker.cortex_slot, os.getpid())
            # In the worker, before load(): a replacement worker loads its predictor inside
            # lifespan startup, before uvicorn's own heartbeat runs, and beats with this.
            self.worker_notify = worker.notify

        def child_exit(server: Any, worker: Any) -> None:
            scoreboard.retire(worker.cortex_slot)

        settings: dict[str, Any] = {
            "bind": [f"{self.options.host}:{self.options.port}"],
            "workers": self.processes,
            "worker_class": WORKER_CLASS,
            "graceful_timeout": self.options.graceful_timeout,
            "timeout": self.options.worker_timeout,
            "keepalive": self.options.keepalive,
            "proc_name": f"cortex-{self.spec['name']}",
            "logconfig_dict": _log_config(self.spec["predictor"].get("log_level", "info")),
            "accesslog": None,
            "pre_fork": pre_fork,
            "post_fork": post_fork,
            "child_exit": child_exit,
        }
        if self.options.reload:
            settings["when_ready"] = lambda arbiter: _watch_project(self.project_dir)
            # A .pyc records its source's mtime in whole seconds, and its size: an edit of the
            # same size within the same second would load the stale bytecode. Workers inherit
            # this at fork, so the project's modules are compiled from source on every reload.
            sys.dont_write_bytecode = True
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: a socket under
            settings["control_socket_disable"] = True  # $HOME that two servers would share
        if os.path.isdir("/dev/shm"):  # heartbeat files on tmpfs: /tmp may be a slow overlay
            settings["worker_tmp_dir"] = "/dev/shm"
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Called in each worker after the fork: the user's code is imported there, never here.
        return create_app(
            self.spec,
            self.project_dir,
            self.scoreboard,
            self.options.max_body_bytes,
            self.worker_notify,
        )
