"""The step "handle one batch" of a BatchAPI's job: the `BatchCaller` a worker builds from a
picklable factory, in process (the user's class) or as an HTTP POST to a server.

`PredictorCaller` loads the user's BatchAPI class in the worker's process and calls it;
`HttpCaller` POSTs each batch to a URL, for APIs whose batches a server of their own handles
(dequeuer.py: a BatchAPI given as containers). Standard library only at import, so that the
batch worker runs on any image with python3.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .job_file import Batch


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
    batch id in the header X-Cortex-Batch-Id and, given `job_id`, the job's in X-Cortex-Job-ID;
    any answer but 2xx fails the batch. With `on_job_complete_url`, the completion step is a
    POST there; with `completion_optional`, its 404 means the server has none ("not defined"),
    as Cortex's dequeuer took it."""

    url: str
    on_job_complete_url: str | None = None
    timeout: float = 600.0
    job_id: str | None = None
    completion_optional: bool = False

    def __call__(self) -> BatchCaller:
        return _Http(self)


class _Http:
    def __init__(self, factory: HttpCaller) -> None:
        self.factory = factory
        self.job_headers = {"X-Cortex-Job-ID": factory.job_id} if factory.job_id else {}

    def _post(self, url: str, body: bytes, headers: dict[str, str], missing_ok: bool) -> bool:
        """True when `url` answered 2xx; False when it answered 404 and `missing_ok`."""
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.factory.timeout) as answer:
                answer.read()
                return True
        except urllib.error.HTTPError as error:
            if error.code == 404 and missing_ok:
                return False
            detail = error.read()[:500].decode("utf-8", "replace")
            raise RuntimeError(f"POST {url} answered {error.code}: {detail}") from None

    def call(self, batch: Batch) -> None:
        body = json.dumps(batch.items).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            **self.job_headers,
            "X-Cortex-Batch-Id": batch.id,
        }
        self._post(self.factory.url, body, headers, missing_ok=False)

    def on_job_complete(self) -> bool:
        url = self.factory.on_job_complete_url
        if url is None:
            return False
        return self._post(url, b"", self.job_headers, self.factory.completion_optional)
