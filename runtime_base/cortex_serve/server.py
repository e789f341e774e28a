"""gunicorn as the process manager: `processes_per_replica` uvicorn workers behind one socket.

The master (this process; PID 1 in a container) creates the replica-wide scoreboard before it
forks, gives each worker its slot, and frees a slot when its worker exits, so a killed worker is
replaced without leaking capacity. With several processes, new connections go to processes with
a free thread (balancing.py). gunicorn's own behaviour does the rest, with Arbiter's changes:
- SIGTERM: stop accepting, let workers finish what is in flight for at most `graceful_timeout`
  seconds, exit 0.
- a worker that exits with WORKER_BOOT_ERROR (its predictor failed to initialise) stops the
  whole server with that status: the replica never reports healthy. Other workers failing
  likewise meanwhile do not change it (gunicorn: exit 1 and a traceback).
- a worker that dies before its predictor is ready without saying why (killed by a signal, as by
  the OOM killer, or exiting, as with os._exit(0)) is started again; after BOOT_TRIES such deaths
  in a row (no worker got ready in between) the server stops with WORKER_BOOT_ERROR too, its log
  naming how the last one died.
- a worker that dies otherwise is replaced; its in-flight requests fail, the others go on. The
  replacement loads its predictor before it accepts a connection (see worker.Worker.start), beating
  gunicorn's heartbeat meanwhile, so a model load longer than `worker_timeout` is not killed.
- `--parent-fd`: the server stops (as on SIGTERM) when the process that started it ends, however
  it ends (`cortex-build serve` killed by SIGKILL too).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cortex_internal.lib.log import logger
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter as GunicornArbiter
from gunicorn.errors import HaltServer

from .app import create_app
from .batching import runtime_batching
from .scoreboard import Scoreboard
from .worker import WORKER_BOOT_ERROR, Worker

WORKER_CLASS = "cortex_serve.protocol.CortexWorker"  # uvicorn-worker's, with protocol.py's limits
BALANCED_WORKER_CLASS = "cortex_serve.balancing.BalancedWorker"  # processes_per_replica >= 2
BOOT_TRIES = 3  # workers in a row that die before their predictor is ready: then the server stops


@dataclass(frozen=True)
class ServerOptions:
    host: str = "0.0.0.0"
    port: int = 8888
    max_body_bytes: int = 32 * 1024 * 1024
    graceful_timeout: int = 30  # seconds in-flight requests get after SIGTERM
    keepalive: int = 5  # seconds an idle keep-alive connection stays open
    read_timeout: int = 60  # seconds a request may take to arrive whole (head and body): 408
    max_header_bytes: int = 64 * 1024  # the request line and headers together: 431
    max_header_line_bytes: int = 8 * 1024  # the URL (414) or one header (431)
    max_headers: int = 100  # more headers: 431
    worker_timeout: int = 120  # seconds a worker's event loop may stay blocked before a restart
    batch_scheduling: int = 1  # 1: workers under SCHED_BATCH (use_batch_scheduling()); 0: not
    reload: bool = False  # development: new workers when a Python file of the project changes
    parent_fd: int | None = None  # a pipe's read end: stop when its write end closes


def log_config(level: str) -> dict[str, Any]:
    """gunicorn's and uvicorn's own lines in the same format as the predictor's."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stdout",
    }
    gunicorn_level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # JSON, or text on a terminal (CORTEX_LOG_FORMAT; cortex_internal/lib/log.py)
        "formatters": {"json": {"()": "cortex_internal.lib.log.log_formatter"}},
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


def watch_parent(fd: int) -> None:
    """`--parent-fd`, in the master: only the process that started the server holds the pipe's
    write end, so the read returns end-of-file once that process ended, however it ended. The
    server then stops as on SIGTERM."""

    def watch() -> None:
        while os.read(fd, 512):
            pass
        logger.warning("the process that started the server ended: stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    os.set_inheritable(fd, False)
    threading.Thread(target=watch, name="parent", daemon=True).start()


def use_batch_scheduling() -> None:
    """Linux's SCHED_BATCH for the calling thread (in a worker right after the fork: the only
    thread, whose policy every thread it starts later inherits: predict threads, the model's).

    A synchronous predict runs in a predict thread, and the event loop waits for its result. On a
    busy core, a woken thread preempts the running one at once under the default policy: the
    predict thread preempts the event loop that handed it a request, then finds the GIL held by
    that loop and sleeps again; the loop, woken by the result, preempts the predict thread just as
    that one is about to release the GIL. Each hand-off thus costs four context switches where two
    do. SCHED_BATCH threads never preempt on wake-up: each runs until it blocks (the loop in
    epoll, releasing the GIL; the predict thread waiting for its next call) or its time slice
    ends. bench/README.md measures the difference. A worker started under another policy (by
    `chrt`, say) keeps it."""
    policy = getattr(os, "SCHED_BATCH", None)  # Linux only
    if policy is None or os.sched_getscheduler(0) != os.SCHED_OTHER:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError as error:  # a seccomp profile may refuse it: run as before
        logger.warning(f"SCHED_BATCH not set ({error}): workers keep the default scheduling")


def _death(result: Any) -> str:
    """How a worker ended, from os.waitid's result (None: unknown)."""
    if result is None:
        return "ended"
    if result.si_code == os.CLD_EXITED:
        return f"exited with status {result.si_status}"
    try:
        name = signal.Signals(result.si_status).name
    except ValueError:
        name = f"signal {result.si_status}"
    if result.si_status == signal.SIGKILL:
        return f"was killed by {name} (what the kernel's OOM killer sends when memory runs out)"
    return f"was killed by {name}"


class Arbiter(GunicornArbiter):
    """gunicorn's master, keeping what CortexServer's child_exit needs and WORKER_BOOT_ERROR."""

    halting = False

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.exits: dict[int, Any] = {}  # pid: os.waitid result, for child_exit
        self.stopped: set[int] = set()  # workers this master told to stop
        self.boot_deaths = 0  # workers in a row that died before their predictor was ready
        self.ready_boots = 0  # the scoreboard's count at the last of them

    def kill_worker(self, pid: int, sig: int) -> None:
        if sig in (signal.SIGTERM, signal.SIGQUIT):
            self.stopped.add(pid)
        super().kill_worker(pid, sig)

    def halt(self, reason: Any = None, exit_status: int = 0) -> None:
        self.halting = True
        super().halt(reason, exit_status)

    def reap_workers(self) -> None:
        # How each exited worker ended, read before gunicorn reaps it (which keeps only its own
        # log line of it): WNOWAIT leaves it to be reaped. (No os.waitid on macOS.)
        for pid in list(self.WORKERS) if hasattr(os, "waitid") else ():
            try:
                result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                continue
            if result is not None:
                self.exits[pid] = result
        try:
            super().reap_workers()
        except HaltServer:
            # Another worker that failed to boot, reaped while halting for the first one:
            # gunicorn would raise this out of halt(). The server stops with the first's status.
            if not self.halting:
                raise


class CortexServer(BaseApplication):
    def __init__(self, spec: dict[str, Any], project_dir: Path, options: ServerOptions) -> None:
        self.spec = spec
        self.project_dir = project_dir
        self.options = options
        predictor = spec["predictor"]
        self.processes = int(predictor.get("processes_per_replica") or 1)
        concurrency = int(spec.get("autoscaling", {}).get("max_replica_concurrency") or 1024)
        self.scoreboard = Scoreboard(self.processes, concurrency)
        # Requests a process takes while another has room (balancing.py): one per thread, or a
        # batch's worth per thread with server-side batching.
        self.capacity = int(predictor.get("threads_per_process") or 1)
        batching = runtime_batching(predictor)
        if batching:
            self.capacity *= int(batching["max_batch_size"])
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
            if self.options.batch_scheduling:
                use_batch_scheduling()

        def child_exit(server: Any, worker: Any) -> None:
            was_ready = scoreboard.was_ready(worker.cortex_slot)
            scoreboard.retire(worker.cortex_slot)
            death = server.exits.pop(worker.pid, None)
            if was_ready or server.halting or worker.pid in server.stopped:
                server.stopped.discard(worker.pid)
                return
            self._boot_death(server, _death(death))

        settings: dict[str, Any] = {
            "bind": [f"{self.options.host}:{self.options.port}"],
            "workers": self.processes,
            "worker_class": WORKER_CLASS if self.processes == 1 else BALANCED_WORKER_CLASS,
            "graceful_timeout": self.options.graceful_timeout,
            "timeout": self.options.worker_timeout,
            "keepalive": self.options.keepalive,
            "proc_name": f"cortex-{self.spec['name']}",
            "logconfig_dict": log_config(self.spec["predictor"].get("log_level", "info")),
            "accesslog": None,
            "pre_fork": pre_fork,
            "post_fork": post_fork,
            "child_exit": child_exit,
            "when_ready": self._when_ready,
        }
        if self.options.reload:
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

    def _when_ready(self, arbiter: Any) -> None:
        if self.options.reload:
            # watchfiles comes with cortex-build (serve), not in images, which never reload
            from .reload import watch_project

            watch_project(self.project_dir)
        if self.options.parent_fd is not None:
            watch_parent(self.options.parent_fd)

    def _boot_death(self, arbiter: Arbiter, death: str) -> None:
        """A worker died before its predictor was ready, without a Python error to report: it is
        started again, BOOT_TRIES times in a row at most."""
        if self.scoreboard.ready_boots() != arbiter.ready_boots:  # one got ready since the last
            arbiter.boot_deaths = 0
            arbiter.ready_boots = self.scoreboard.ready_boots()
        arbiter.boot_deaths += 1
        name = self.spec["name"]
        message = f"{name}: a process {death} while its predictor initialised"
        if arbiter.boot_deaths < BOOT_TRIES:
            tries = f"{arbiter.boot_deaths} of {BOOT_TRIES}"
            logger.warning(f"{message}; starting it again ({tries})", extra={"api": name})
            return
        logger.error(f"{message}, {BOOT_TRIES} times in a row: giving up", extra={"api": name})
        raise HaltServer("the predictor never initialised", WORKER_BOOT_ERROR)

    def run(self) -> None:  # gunicorn's BaseApplication.run, with this module's Arbiter
        try:
            Arbiter(self).run()
        except RuntimeError as error:
            sys.exit(f"\nError: {error}\n")

    def load(self) -> Any:
        # Called in each worker after the fork: the user's code is imported there, never here.
        worker = Worker(
            self.spec,
            self.project_dir,
            self.scoreboard,
            self.options.max_body_bytes,
            self.worker_notify,
        )
        return create_app(worker)
