"""Runs a BatchAPI job's batches to their end: on worker processes of this host that the runner
coordinates (`run_local`), or as one worker of N separate ones (`run_partition`).

How batches are handed out, retried and settled, and when on_job_complete runs: jobs.py's
docstring. Each worker handles a batch with the `BatchCaller` its factory builds (job_callers.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .job_callers import CallerFactory, InitFailed
from .job_file import Batch, Job
from .job_summary import FailedBatch, Summary

PROGRESS_EVERY = 2.0  # seconds between progress lines


def _error_text(error: BaseException) -> str:
    """The exception and the innermost line of the user's code it came from."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"[:2000]


def log(message: str) -> None:
    """A line on stderr, as every job command says what it does (progress, failures, summary)."""
    print(f"cortex_serve.jobs: {message}", file=sys.stderr, flush=True)


def _worker_main(index: int, factory: CallerFactory, conn: Any) -> None:
    """A worker process: builds its caller, then handles what the coordinator sends over its
    own pipe (a pipe per worker: one that dies breaks only its own)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides how to stop
    try:
        caller = factory()
    except InitFailed as error:
        conn.send(("init_failed", index, str(error)))
        return
    except BaseException as error:
        conn.send(("init_failed", index, _error_text(error)))
        return
    conn.send(("ready", index))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the coordinator is gone
            return
        if message[0] == "batch":
            batch: Batch = message[1]
            try:
                caller.call(batch)
            except BaseException as error:
                traceback.print_exc()
                conn.send(("done", index, batch.id, _error_text(error)))
            else:
                conn.send(("done", index, batch.id, None))
        elif message[0] == "complete":
            try:
                had = caller.on_job_complete()
            except BaseException as error:
                traceback.print_exc()
                conn.send(("completed", index, f"failed: {_error_text(error)}"))
            else:
                conn.send(("completed", index, "succeeded" if had else "not defined"))
        else:
            return


class _Stop(Exception):
    """The job ends before every batch settled: its timeout passed, no worker is left, or it was
    stopped; the batches not done are reported failed."""


class Stopped(_Stop):
    """SIGTERM (`docker stop`, a deleted pod) or Ctrl-C reached the runner: the batches not done
    are reported failed, the workers stopped at once."""


def stop_on_signals() -> None:
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run_local(
    factory: CallerFactory,
    job: Job,
    workers: int,
    emit: Callable[[str], None] = log,
) -> Summary:
    """Runs the job's batches on `workers` processes of this host (see the module's docstring).
    Raises InitFailed when a worker's predictor did not load."""
    batches = job.batches()
    summary = Summary(job.job_id, len(batches), len(job.items))
    if not batches:
        emit("the job has no items")
    workers = max(1, min(workers, len(batches))) if batches else 1
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe(duplex=True) for _ in range(workers)]
    conns = [parent for parent, _ in pipes]
    processes = [
        context.Process(target=_worker_main, args=(i, factory, pipes[i][1]), name=f"job-{i}")
        for i in range(workers)
    ]
    by_id = {batch.id: batch for batch in batches}
    pending: deque[Batch] = deque(batches)
    receives: dict[str, int] = dict.fromkeys(by_id, 0)
    holding: dict[int, str] = {}  # worker -> the batch it handles
    idle: set[int] = set()  # workers that are ready and hold nothing
    alive = set(range(workers))
    settled = 0
    started = time.monotonic()
    first_dispatch: float | None = None
    last_progress = started

    def settle_failure(batch_id: str, error: str) -> None:
        nonlocal settled
        batch = by_id[batch_id]
        if receives[batch_id] < job.max_receive_count:
            emit(
                f"batch {batch_id} failed (try {receives[batch_id]} of "
                f"{job.max_receive_count}), handing it out again: {error}"
            )
            pending.append(batch)
            return
        emit(f"batch {batch_id} failed after {receives[batch_id]} try(s): {error}")
        summary.failed.append(
            FailedBatch(batch_id, batch.index, receives[batch_id], error, batch.items)
        )
        settled += 1

    def feed() -> None:
        nonlocal first_dispatch
        while pending and idle:
            worker = min(idle)
            idle.discard(worker)
            batch = pending.popleft()
            receives[batch.id] += 1
            holding[worker] = batch.id
            first_dispatch = first_dispatch or time.monotonic()
            conns[worker].send(("batch", batch))

    def receive(timeout: float) -> tuple[Any, ...] | None:
        """The next message of any worker; None when none came within `timeout` (then the
        workers that ended are settled)."""
        watched: dict[Any, int] = {conns[w]: w for w in alive}
        ready: list[Any] = multiprocessing.connection.wait(list(watched), timeout)
        for conn in ready:
            try:
                message: tuple[Any, ...] = conn.recv()
                return message
            except (EOFError, OSError):
                processes[watched[conn]].join(5)  # it ended: its pipe closed
        check_dead()
        return None

    def check_dead() -> None:
        for worker in sorted(alive):
            if not processes[worker].is_alive():
                alive.discard(worker)
                idle.discard(worker)
                code = processes[worker].exitcode
                emit(f"worker {worker} exited (status {code})")
                held = holding.pop(worker, None)
                if held is not None:
                    settle_failure(held, f"worker {worker} exited (status {code}) handling it")
        if not alive:
            raise _Stop("no worker is left")
        feed()

    for process in processes:
        process.start()
    for _, child in pipes:
        child.close()  # the workers hold them: a worker's end closes when it exits
    try:
        while settled < len(batches):
            if job.timeout is not None and time.monotonic() - started > job.timeout:
                summary.timed_out = True
                raise _Stop(f"the job's timeout of {job.timeout:g}s passed")
            message = receive(0.5)
            if message is None:
                continue
            kind, worker = message[0], message[1]
            if kind == "init_failed":
                raise InitFailed(message[2])
            if kind == "done":
                _, _, batch_id, error = message
                holding.pop(worker, None)
                if error is None:
                    summary.succeeded += 1
                    summary.items_succeeded += len(by_id[batch_id].items)
                    settled += 1
                else:
                    settle_failure(batch_id, error)
            idle.add(worker)
            feed()
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                emit(
                    f"progress: {settled} of {len(batches)} batches done "
                    f"({summary.succeeded} succeeded, {len(summary.failed)} failed)"
                )
        summary.seconds = time.monotonic() - (first_dispatch or started)
        if alive:
            runner = min(alive)
            conns[runner].send(("complete",))
            summary.on_job_complete = _await_completion(conns[runner], processes[runner], runner)
        else:
            summary.on_job_complete = "not run: no worker is left"
    except _Stop as stop:
        summary.seconds = time.monotonic() - (first_dispatch or started)
        emit(f"stopping: {stop}")
        if isinstance(stop, Stopped):
            for process in processes:  # mid-batch: what they hold is reported failed below
                process.terminate()
        for batch_id in [*holding.values(), *(b.id for b in pending)]:
            batch = by_id[batch_id]
            summary.failed.append(
                FailedBatch(batch_id, batch.index, receives[batch_id], str(stop), batch.items)
            )
        summary.on_job_complete = f"not run: {stop}"
    finally:
        for worker in alive:
            with contextlib.suppress(Exception):
                conns[worker].send(("stop",))
        deadline = time.monotonic() + 10
        for process in processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(5)
    summary.failed.sort(key=lambda failed: failed.index)
    return summary


def _await_completion(conn: Any, process: Any, runner: int) -> str:
    """The outcome of on_job_complete in `runner` (its "ready" may still be on the way)."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            process.join(5)
            return f"failed: worker {runner} exited (status {process.exitcode})"
        if message[0] == "init_failed":
            return f"failed: worker {runner} did not load: {message[2]}"
        if message[0] == "completed":
            return str(message[2])


def run_partition(
    factory: CallerFactory, job: Job, index: int, count: int, emit: Callable[[str], None] = log
) -> Summary:
    """Worker `index` of `count`: batches index, index+count, ... in this process, each tried up
    to max_receive_count times. Raises InitFailed when the predictor did not load."""
    mine = job.batches()[index::count]
    summary = Summary(job.job_id, len(mine), sum(len(b.items) for b in mine))
    caller = factory()
    started = time.monotonic()
    last_progress = started
    for done, batch in enumerate(mine, start=1):
        if job.timeout is not None and time.monotonic() - started > job.timeout:
            summary.timed_out = True
            for left in mine[done - 1 :]:
                summary.failed.append(
                    FailedBatch(left.id, left.index, 0, "the job's timeout passed", left.items)
                )
            break
        for attempt in range(1, job.max_receive_count + 1):
            try:
                caller.call(batch)
            except Exception as error:
                traceback.print_exc()
                text = _error_text(error)
                emit(f"batch {batch.id} failed (try {attempt} of {job.max_receive_count}): {text}")
                if attempt == job.max_receive_count:
                    summary.failed.append(
                        FailedBatch(batch.id, batch.index, attempt, text, batch.items)
                    )
            else:
                summary.succeeded += 1
                summary.items_succeeded += len(batch.items)
                break
        if time.monotonic() - last_progress >= PROGRESS_EVERY:
            last_progress = time.monotonic()
            emit(f"progress: worker {index}: {done} of {len(mine)} batches done")
    summary.seconds = time.monotonic() - started
    summary.on_job_complete = "not run (run it with --on-job-complete once every worker ended)"
    return summary


def run_on_job_complete(factory: CallerFactory) -> str:
    caller = factory()
    try:
        return "succeeded" if caller.on_job_complete() else "not defined"
    except Exception as error:
        traceback.print_exc()
        return f"failed: {_error_text(error)}"
