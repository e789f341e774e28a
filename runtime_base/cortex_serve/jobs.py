"""`python -m cortex_serve.jobs --spec api.json --project DIR --job job.json`: runs one job of a
BatchAPI or TaskAPI to its end, the way Cortex's job workers did, without a queue.

BatchAPI: the job's items are cut into batches (job_file.py); each batch goes to one worker, which
calls the user's predict/handle_batch once with it. Three ways to run:
- `--workers N` (default: the job's `workers`): this process coordinates N worker processes on
  this host. A worker asks for the next batch when it is free; a batch that fails is handed out
  again (to any worker) until it was handled `max_receive_count` times, then reported failed; a
  worker that dies is not replaced, the batch it held counts as handled once. After every batch
  succeeded or failed, worker 0 (or the lowest one still alive) runs `on_job_complete` once.
- `--worker-index I --worker-count N`: this process is worker I of N separate ones (containers,
  a Kubernetes Indexed Job, whose JOB_COMPLETION_INDEX is I and the job's `workers` N): it takes
  batches I, I+N, I+2N, ..., retrying a failing batch at once, and does not run on_job_complete.
- `--on-job-complete`: only builds the predictor and runs its on_job_complete (after the N
  separate workers ended).
TaskAPI: the Task is built and called once with the API's config merged with the job's.

Progress lines and a summary (succeeded, failed, items/s) go to stderr; `--summary-file` gets
the summary as JSON, failed batches with their items, so that none is lost silently.

SIGTERM or Ctrl-C stops the workers at once; the batches not done are reported failed.

Exit status: 0 when every batch (or the task) succeeded and on_job_complete did; 1 when a batch
failed after its last try, on_job_complete or the task raised, the job's timeout passed or the job
was stopped; 2 when the job file is not a job; 3 when a worker's predictor failed to load (the
job stops there).

The step "handle one batch" is the `BatchCaller` a worker builds from a picklable factory:
`PredictorCaller` calls the user's class in process, `HttpCaller` POSTs the batch to a URL (for
APIs whose batches are handled by a server of their own).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .job_file import Batch, Job, JobFileError, read_job

OK, FAILED, BAD_JOB, INIT_FAILED = 0, 1, 2, 3
PROGRESS_EVERY = 2.0  # seconds between progress lines


class BatchCaller(Protocol):
    """One worker's way to handle batches; built in the worker's own process."""

    def call(self, batch: Batch) -> None:
        """Handles one batch; raises when it failed."""

    def on_job_complete(self) -> bool:
        """Runs the job's completion step; False when there is none. Raises when it failed."""


CallerFactory = Callable[[], BatchCaller]  # picklable: sent to each worker process


class InitFailed(Exception):
    """The worker could not be built (the predictor did not load): nothing can run."""


@dataclass(frozen=True)
class PredictorCaller:
    """Factory of the in-process caller: prepares the process as the server does and loads the
    user's BatchAPI class (once per worker, as each Cortex worker built its own)."""

    spec: dict[str, Any]
    project_dir: str
    job_spec: dict[str, Any]

    def __call__(self) -> BatchCaller:
        from cortex_internal.lib.log import configure_logging

        from .__main__ import prepare_process
        from .job_predictor import load_batch_predictor
        from .predictor import PredictorError

        project = Path(self.project_dir)
        prepare_process(self.spec, project)
        configure_logging(self.spec["predictor"].get("log_level", "info"))
        try:
            return _InProcess(load_batch_predictor(self.spec, project, self.job_spec))
        except PredictorError as error:
            raise InitFailed(str(error)) from error


class _InProcess:
    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def call(self, batch: Batch) -> None:
        self.predictor.handle_batch(batch.items, batch.id)

    def on_job_complete(self) -> bool:
        if self.predictor.on_job_complete is None:
            return False
        self.predictor.on_job_complete()
        return True


@dataclass(frozen=True)
class HttpCaller:
    """Factory of a caller that POSTs each batch (a JSON list of its items) to `url`, with the
    batch id in the header X-Cortex-Batch-Id; any answer but 2xx fails the batch. With
    `on_job_complete_url`, the completion step is a POST there."""

    url: str
    on_job_complete_url: str | None = None
    timeout: float = 600.0

    def __call__(self) -> BatchCaller:
        return _Http(self)


class _Http:
    def __init__(self, factory: HttpCaller) -> None:
        self.factory = factory

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.factory.timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode("utf-8", "replace")
            raise RuntimeError(f"POST {url} answered {error.code}: {detail}") from None

    def call(self, batch: Batch) -> None:
        body = json.dumps(batch.items).encode("utf-8")
        headers = {"Content-Type": "application/json", "X-Cortex-Batch-Id": batch.id}
        self._post(self.factory.url, body, headers)

    def on_job_complete(self) -> bool:
        if self.factory.on_job_complete_url is None:
            return False
        self._post(self.factory.on_job_complete_url, b"", {})
        return True


# -- the summary ------------------------------------------------------------------------------


@dataclass
class FailedBatch:
    batch_id: str
    index: int
    receive_count: int
    error: str
    items: list[Any]


@dataclass
class Summary:
    job_id: str
    batches: int
    items: int
    succeeded: int = 0
    failed: list[FailedBatch] = field(default_factory=list)
    items_succeeded: int = 0
    seconds: float = 0.0
    on_job_complete: str = "not run"  # "succeeded", "failed: ...", "not defined", "not run"
    timed_out: bool = False

    @property
    def items_per_second(self) -> float:
        return self.items_succeeded / self.seconds if self.seconds > 0 else 0.0

    def status(self) -> int:
        bad = self.failed or self.timed_out or self.on_job_complete.startswith("failed")
        return FAILED if bad else OK

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["items_per_second"] = round(self.items_per_second, 3)
        data["failed_batches"] = data.pop("failed")
        data["failed"] = len(self.failed)
        data["exit_status"] = self.status()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """A summary written by `to_json` (a worker's --summary-file)."""
        return cls(
            job_id=data["job_id"],
            batches=data["batches"],
            items=data["items"],
            succeeded=data["succeeded"],
            failed=[FailedBatch(**failed) for failed in data["failed_batches"]],
            items_succeeded=data["items_succeeded"],
            seconds=data["seconds"],
            on_job_complete=data["on_job_complete"],
            timed_out=data["timed_out"],
        )

    @classmethod
    def merge(cls, parts: list[Summary], on_job_complete: str) -> Summary:
        """The job's summary from its separate workers' (each ran its share of the batches at
        the same time as the others), with the outcome of on_job_complete run after them."""
        return cls(
            job_id=parts[0].job_id if parts else "",
            batches=sum(part.batches for part in parts),
            items=sum(part.items for part in parts),
            succeeded=sum(part.succeeded for part in parts),
            failed=sorted((f for part in parts for f in part.failed), key=lambda f: f.index),
            items_succeeded=sum(part.items_succeeded for part in parts),
            seconds=max((part.seconds for part in parts), default=0.0),
            on_job_complete=on_job_complete,
            timed_out=any(part.timed_out for part in parts),
        )

    def lines(self) -> list[str]:
        result = [
            f"job {self.job_id}: {self.succeeded} of {self.batches} batches succeeded, "
            f"{len(self.failed)} failed; {self.items_succeeded} of {self.items} items in "
            f"{self.seconds:.2f}s ({self.items_per_second:.1f} items/s); on_job_complete: "
            f"{self.on_job_complete}" + ("; the job's timeout passed" if self.timed_out else "")
        ]
        for failed in self.failed:
            result.append(
                f"  failed batch {failed.batch_id} ({len(failed.items)} items, handled "
                f"{failed.receive_count} time(s)): {failed.error}"
            )
        return result


def _error_text(error: BaseException) -> str:
    """The exception and the innermost line of the user's code it came from."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"[:2000]


def _log(message: str) -> None:
    print(f"cortex_serve.jobs: {message}", file=sys.stderr, flush=True)


# -- worker processes on this host ------------------------------------------------------------


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
    pass


class Stopped(_Stop):
    """SIGTERM (`docker stop`, a deleted pod) or Ctrl-C reached the runner: the batches not done
    are reported failed, the workers stopped at once."""


def _stop_on_signals() -> None:
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run_local(
    factory: CallerFactory,
    job: Job,
    workers: int,
    emit: Callable[[str], None] = _log,
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


# -- one worker of N separate ones ------------------------------------------------------------


def run_partition(
    factory: CallerFactory, job: Job, index: int, count: int, emit: Callable[[str], None] = _log
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


# -- TaskAPI -----------------------------------------------------------------------------------


def run_task(spec: Mapping[str, Any], project_dir: Path, job: Job) -> int:
    from cortex_internal.lib.log import configure_logging

    from .__main__ import prepare_process
    from .job_predictor import load_task, merge_config
    from .predictor import PredictorError

    prepare_process(dict(spec), project_dir)
    configure_logging(spec["predictor"].get("log_level", "info"))
    try:
        task = load_task(spec, project_dir)
    except PredictorError as error:
        _log(str(error))
        return INIT_FAILED
    config = merge_config(spec["predictor"].get("config") or {}, job.config)
    _log(f"task {spec.get('name')}: running job {job.job_id}")
    started = time.monotonic()
    try:
        task(config)
    except Exception:
        traceback.print_exc()
        _log(f"job {job.job_id}: the task failed after {time.monotonic() - started:.2f}s")
        return FAILED
    _log(f"job {job.job_id}: the task succeeded in {time.monotonic() - started:.2f}s")
    return OK


# -- the command -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cortex_serve.jobs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spec", required=True, type=Path, help="api.json (cortex_build ApiSpec)")
    parser.add_argument("--project", required=True, type=Path, help="the project folder")
    parser.add_argument(
        "--job",
        type=Path,
        default=Path(os.environ.get("CORTEX_JOB_SPEC", "/cortex/spec/job.json")),
        help="the job file (env CORTEX_JOB_SPEC; default %(default)s)",
    )
    parser.add_argument("--workers", type=int, help="worker processes (default: the job's)")
    parser.add_argument("--worker-index", type=int, help="be worker I of --worker-count")
    parser.add_argument("--worker-count", type=int, help="the number of separate workers")
    parser.add_argument(
        "--on-job-complete", action="store_true", help="only run the predictor's on_job_complete"
    )
    parser.add_argument("--summary-file", type=Path, help="write the summary here as JSON")
    args = parser.parse_args(argv)
    if os.environ.get("JOB_COMPLETION_INDEX") and args.worker_index is None:
        args.worker_index = int(os.environ["JOB_COMPLETION_INDEX"])  # a Kubernetes Indexed Job
    if args.worker_count is not None and args.worker_index is None:
        parser.error("--worker-count needs --worker-index")
    if args.worker_index is not None and args.worker_index < 0:
        parser.error("--worker-index must be at least 0")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        _log(f"cannot read the API spec {args.spec}: {error}")
        return BAD_JOB
    project_dir = args.project.resolve()
    kind = spec.get("kind", "RealtimeAPI")
    if kind not in ("BatchAPI", "TaskAPI"):
        _log(f"API {spec.get('name')} is a {kind}, not a job: serve it with python -m cortex_serve")
        return BAD_JOB
    try:
        job = read_job(args.job, kind)
    except JobFileError as error:
        _log(f"the job file {args.job}: {error}")
        return BAD_JOB
    if kind == "TaskAPI":
        return run_task(spec, project_dir, job)
    factory = PredictorCaller(spec, str(project_dir), job.job_spec(spec["name"], kind))
    _stop_on_signals()
    try:
        if args.on_job_complete:
            outcome = run_on_job_complete(factory)
            _log(f"job {job.job_id}: on_job_complete: {outcome}")
            if args.summary_file is not None:
                args.summary_file.write_text(json.dumps({"on_job_complete": outcome}) + "\n")
            return FAILED if outcome.startswith("failed") else OK
        if args.worker_index is not None:
            # a Kubernetes Indexed Job passes no count: its completions are the job's workers
            count = args.worker_count or job.workers
            if args.worker_index >= count:
                _log(f"worker index {args.worker_index} is not below the {count} workers")
                return BAD_JOB
            summary = run_partition(factory, job, args.worker_index, count)
        else:
            workers = args.workers or job.workers
            _log(
                f"job {job.job_id}: {len(job.items)} items in {summary_batches(job)} batches of "
                f"up to {job.batch_size}, {workers} worker(s), each batch tried up to "
                f"{job.max_receive_count} time(s)"
            )
            summary = run_local(factory, job, workers)
    except InitFailed as error:
        _log(f"job {job.job_id}: the predictor did not load: {error}")
        return INIT_FAILED
    except Stopped as stop:  # a separate worker: its batches not done are not reported here
        _log(f"job {job.job_id}: {stop}")
        return FAILED
    for line in summary.lines():
        _log(line)
    if args.summary_file is not None:
        args.summary_file.write_text(json.dumps(summary.to_json(), indent=2, default=str) + "\n")
    return summary.status()


def summary_batches(job: Job) -> int:
    return -(-len(job.items) // job.batch_size)


if __name__ == "__main__":
    sys.exit(main())
