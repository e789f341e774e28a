"""`python -m cortex_serve.dequeuer --url http://localhost:8080/`: the batch worker beside a
BatchAPI given as containers (Cortex v0.36+), in the place of Cortex's dequeuer.

It reads the job (job_file.py: Cortex's job submission), waits until the user's server accepts
connections, then has jobs.run_local's workers POST each batch to the server as Cortex did
(https://github.com/cortexlabs/cortex/blob/v0.42.1/docs/workloads/batch/containers.md): a JSON
array of the batch's items to `/`, `Content-Type: application/json`, the job id in
`X-Cortex-Job-ID` (and the batch id in `X-Cortex-Batch-Id`); any answer but 2xx fails the batch.
After every batch, one POST to `/on-job-complete`, whose 404 is ignored. Standard library only,
so it runs on any image with python3. Exit status: jobs.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .job_file import Batch, JobFileError, read_job
from .jobs import BAD_JOB, FAILED, _log, run_local


@dataclass(frozen=True)
class DequeuerCaller:
    """Factory (picklable, sent to each worker process) of the caller that POSTs batches."""

    url: str
    job_id: str
    timeout: float = 600.0

    def __call__(self) -> _Post:
        return _Post(self)


class _Post:
    def __init__(self, factory: DequeuerCaller) -> None:
        self.factory = factory

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.factory.timeout) as answer:
                answer.read()
                return int(answer.status)
        except urllib.error.HTTPError as error:
            if error.code == 404 and url.endswith("/on-job-complete"):
                return 404
            detail = error.read()[:500].decode("utf-8", "replace")
            raise RuntimeError(f"POST {url} answered {error.code}: {detail}") from None

    def call(self, batch: Batch) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Cortex-Job-ID": self.factory.job_id,
            "X-Cortex-Batch-Id": batch.id,
        }
        self._post(self.factory.url, json.dumps(batch.items).encode("utf-8"), headers)

    def on_job_complete(self) -> bool:
        url = urllib.parse.urljoin(self.factory.url, "/on-job-complete")
        status = self._post(url, b"", {"X-Cortex-Job-ID": self.factory.job_id})
        return status != 404  # a server without the route: "not defined"


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
    parser.add_argument(
        "--job",
        type=Path,
        default=Path(os.environ.get("CORTEX_JOB_SPEC", "/cortex/spec/job.json")),
        help="the job file (env CORTEX_JOB_SPEC; default %(default)s)",
    )
    parser.add_argument("--workers", type=int, help="batches posted at once (default: the job's)")
    parser.add_argument("--ready-url", help="wait until GET of this URL answers 2xx")
    parser.add_argument(
        "--ready-timeout", type=float, default=600.0, help="seconds to wait for the server"
    )
    parser.add_argument("--summary-file", type=Path, help="write the summary here as JSON")
    args = parser.parse_args(argv)
    try:
        job = read_job(args.job, "BatchAPI")
    except JobFileError as error:
        _log(f"the job file {args.job}: {error}")
        return BAD_JOB
    if not wait_until_listening(args.url, args.ready_timeout):
        _log(f"job {job.job_id}: nothing listens at {args.url} after {args.ready_timeout:g}s")
        return FAILED
    if args.ready_url and not wait_until_ready(args.ready_url, args.ready_timeout):
        _log(f"job {job.job_id}: {args.ready_url} was not ready after {args.ready_timeout:g}s")
        return FAILED
    workers = args.workers or job.workers
    _log(
        f"job {job.job_id}: {len(job.items)} items in batches of up to {job.batch_size}, posted "
        f"to {args.url} by {workers} worker(s)"
    )
    summary = run_local(DequeuerCaller(args.url, job.job_id), job, workers)
    for line in summary.lines():
        _log(line)
    if args.summary_file is not None:
        args.summary_file.write_text(json.dumps(summary.to_json(), indent=2, default=str) + "\n")
    return summary.status()


if __name__ == "__main__":
    sys.exit(main())
