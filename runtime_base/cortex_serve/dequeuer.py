"""`python -m cortex_serve.dequeuer --url http://localhost:8080/`: the batch worker beside a
BatchAPI given as containers (Cortex v0.36+), in the place of Cortex's dequeuer.

It reads the job (job_file.py: Cortex's job submission), waits until the user's server accepts
connections, then has job_runner.run_local's workers POST each batch to the server
(job_callers.HttpCaller) as Cortex did
(https://github.com/cortexlabs/cortex/blob/v0.42.1/docs/workloads/batch/containers.md): a JSON
array of the batch's items to `/`, `Content-Type: application/json`, the job id in
`X-Cortex-Job-ID` (and the batch id in `X-Cortex-Batch-Id`); any answer but 2xx fails the batch.
After every batch, one POST to `/on-job-complete`, whose 404 is ignored. SIGTERM (`docker stop`,
a deleted pod) or Ctrl-C stops it at once, the batches not done reported failed, as the job
command does; as PID 1 it would otherwise ignore SIGTERM until killed. Standard library only, so
it runs on any image with python3. Exit status: jobs.py's.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import urllib.parse
import urllib.request

from .job_callers import HttpCaller
from .job_file import Job
from .job_runner import Stopped, log, run_local, stop_on_signals
from .job_summary import BAD_JOB, FAILED
from .jobs import add_job_arguments, read_job_file, report


def wait_until_listening(url: str, timeout: float) -> bool:
    """Until the server of `url` accepts a connection (Cortex sent batches once the port was
    bound and the readiness probes passed; the probes are Kubernetes' or Docker's here)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((parts.hostname or "localhost", port), timeout=2):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def wait_until_ready(url: str, timeout: float) -> bool:
    """Until GET `url` answers 2xx (the API container's readiness probe, when it is http_get)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if 200 <= answer.status < 300:
                    return True
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cortex_serve.dequeuer", description=__doc__)
    parser.add_argument(
        "--url", required=True, help="where batches go, e.g. http://localhost:8080/"
    )
    add_job_arguments(parser)
    parser.add_argument("--workers", type=int, help="batches posted at once (default: the job's)")
    parser.add_argument("--ready-url", help="wait until GET of this URL answers 2xx")
    parser.add_argument(
        "--ready-timeout", type=float, default=600.0, help="seconds to wait for the server"
    )
    args = parser.parse_args(argv)
    job = read_job_file(args.job, "BatchAPI")
    if job is None:
        return BAD_JOB
    stop_on_signals()
    try:
        return _post_batches(args, job)
    except Stopped as stop:  # while waiting for the server (run_local reports its own stop)
        log(f"job {job.job_id}: {stop}")
        return FAILED


def _post_batches(args: argparse.Namespace, job: Job) -> int:
    if not wait_until_listening(args.url, args.ready_timeout):
        log(f"job {job.job_id}: nothing listens at {args.url} after {args.ready_timeout:g}s")
        return FAILED
    if args.ready_url and not wait_until_ready(args.ready_url, args.ready_timeout):
        log(f"job {job.job_id}: {args.ready_url} was not ready after {args.ready_timeout:g}s")
        return FAILED
    workers = args.workers or job.workers
    log(
        f"job {job.job_id}: {len(job.items)} items in batches of up to {job.batch_size}, posted "
        f"to {args.url} by {workers} worker(s)"
    )
    caller = HttpCaller(
        args.url,
        on_job_complete_url=urllib.parse.urljoin(args.url, "/on-job-complete"),
        job_id=job.job_id,
        completion_optional=True,  # a server without the route: "not defined"
    )
    return report(run_local(caller, job, workers), args.summary_file)


if __name__ == "__main__":
    sys.exit(main())
