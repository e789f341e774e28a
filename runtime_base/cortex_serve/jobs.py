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

Where each part lives: job_file.py reads the job, job_runner.py hands its batches to workers,
job_callers.py is the step "handle one batch" (the user's class in process, or an HTTP POST),
job_summary.py the outcome; this module is the command (and dequeuer.py's shared steps).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .job_callers import InitFailed, PredictorCaller
from .job_file import Job, JobFileError, read_job
from .job_runner import Stopped, log, run_local, run_on_job_complete, run_partition, stop_on_signals
from .job_summary import BAD_JOB, FAILED, INIT_FAILED, OK, Summary


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
        log(str(error))
        return INIT_FAILED
    config = merge_config(spec["predictor"].get("config") or {}, job.config)
    log(f"task {spec.get('name')}: running job {job.job_id}")
    started = time.monotonic()
    try:
        task(config)
    except Exception:
        traceback.print_exc()
        log(f"job {job.job_id}: the task failed after {time.monotonic() - started:.2f}s")
        return FAILED
    log(f"job {job.job_id}: the task succeeded in {time.monotonic() - started:.2f}s")
    return OK


# -- the command (the parts dequeuer.py shares) -------------------------------------------------


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """--job and --summary-file, as every job command reads them."""
    parser.add_argument(
        "--job",
        type=Path,
        default=Path(os.environ.get("CORTEX_JOB_SPEC", "/cortex/spec/job.json")),
        help="the job file (env CORTEX_JOB_SPEC; default %(default)s)",
    )
    parser.add_argument("--summary-file", type=Path, help="write the summary here as JSON")


def read_job_file(path: Path, kind: str) -> Job | None:
    """The job of `path`; None (said on stderr) when it is not one."""
    try:
        return read_job(path, kind)
    except JobFileError as error:
        log(f"the job file {path}: {error}")
        return None


def report(summary: Summary, summary_file: Path | None) -> int:
    """Says the summary on stderr, writes it to `summary_file` as JSON; the exit status."""
    for line in summary.lines():
        log(line)
    if summary_file is not None:
        summary_file.write_text(json.dumps(summary.to_json(), indent=2, default=str) + "\n")
    return summary.status()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cortex_serve.jobs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spec", required=True, type=Path, help="api.json (cortex_build ApiSpec)")
    parser.add_argument("--project", required=True, type=Path, help="the project folder")
    add_job_arguments(parser)
    parser.add_argument("--workers", type=int, help="worker processes (default: the job's)")
    parser.add_argument("--worker-index", type=int, help="be worker I of --worker-count")
    parser.add_argument("--worker-count", type=int, help="the number of separate workers")
    parser.add_argument(
        "--on-job-complete", action="store_true", help="only run the predictor's on_job_complete"
    )
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
        log(f"cannot read the API spec {args.spec}: {error}")
        return BAD_JOB
    project_dir = args.project.resolve()
    kind = spec.get("kind", "RealtimeAPI")
    if kind not in ("BatchAPI", "TaskAPI"):
        log(f"API {spec.get('name')} is a {kind}, not a job: serve it with python -m cortex_serve")
        return BAD_JOB
    job = read_job_file(args.job, kind)
    if job is None:
        return BAD_JOB
    if kind == "TaskAPI":
        return run_task(spec, project_dir, job)
    factory = PredictorCaller(spec, str(project_dir), job.job_spec(spec["name"], kind))
    stop_on_signals()
    try:
        if args.on_job_complete:
            outcome = run_on_job_complete(factory)
            log(f"job {job.job_id}: on_job_complete: {outcome}")
            if args.summary_file is not None:
                args.summary_file.write_text(json.dumps({"on_job_complete": outcome}) + "\n")
            return FAILED if outcome.startswith("failed") else OK
        if args.worker_index is not None:
            # a Kubernetes Indexed Job passes no count: its completions are the job's workers
            count = args.worker_count or job.workers
            if args.worker_index >= count:
                log(f"worker index {args.worker_index} is not below the {count} workers")
                return BAD_JOB
            summary = run_partition(factory, job, args.worker_index, count)
        else:
            workers = args.workers or job.workers
            log(
                f"job {job.job_id}: {len(job.items)} items in {job.batch_count} batches of "
                f"up to {job.batch_size}, {workers} worker(s), each batch tried up to "
                f"{job.max_receive_count} time(s)"
            )
            summary = run_local(factory, job, workers)
    except InitFailed as error:
        log(f"job {job.job_id}: the predictor did not load: {error}")
        return INIT_FAILED
    except Stopped as stop:  # a separate worker: its batches not done are not reported here
        log(f"job {job.job_id}: {stop}")
        return FAILED
    return report(summary, args.summary_file)


if __name__ == "__main__":
    sys.exit(main())
