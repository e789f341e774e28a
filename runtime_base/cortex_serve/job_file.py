"""The job a BatchAPI or TaskAPI runs: Cortex's job submission, read from a JSON file.

The file has the shape of the body Cortex's job endpoint took
(https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/batch/jobs.md,
https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/task/jobs.md):

    {"workers": 2, "config": {...}, "timeout": 600,
     "item_list": {"items": [...], "batch_size": 10},
     "sqs_dead_letter_queue": {"max_receive_count": 3},
     "job_id": "optional, else derived from the file's content"}

Instead of `item_list`, `delimited_files: {"s3_paths": [...], "batch_size": N, "includes": [...],
"excludes": [...]}` names newline-delimited JSON files, s3:// objects or prefixes or local files,
each line one item (for item sets too large to hand over in the file). Cortex's
`file_path_lister` (s3 file paths as items) is read the same way, each listed path one item.

Batches are `batch_size` items in order; batch i of job J has the id "J-i", unique in the job.
A batch is handled at most `max_receive_count` times before it counts as failed: 1 when no
`sqs_dead_letter_queue` is given, as Cortex deleted a failed batch then.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class JobFileError(Exception):
    """The job file is not a job; the message names the field and what is expected."""


@dataclass(frozen=True)
class Batch:
    id: str
    index: int
    items: list[Any]


@dataclass(frozen=True)
class Job:
    job_id: str
    workers: int
    config: dict[str, Any]
    batch_size: int
    items: list[Any]
    max_receive_count: int
    timeout: float | None
    raw: dict[str, Any]  # the file as given (the job spec passed to the predictor builds on it)

    @property
    def batch_count(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def batches(self) -> list[Batch]:
        size = self.batch_size
        return [
            Batch(f"{self.job_id}-{number}", number, self.items[start : start + size])
            for number, start in enumerate(range(0, len(self.items), size))
        ]

    def job_spec(self, api_name: str, kind: str) -> dict[str, Any]:
        """What Cortex's job.json held, as the predictor's `job_spec` argument sees it: the
        submission (`config` is the job's own, not merged) plus the ids and counts Cortex added.
        There is no queue, so `sqs_url` is null."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        spec: dict[str, Any] = {
            "job_id": self.job_id,
            "api_name": api_name,
            "kind": kind,
            "workers": self.workers,
            "config": self.config,
            "timeout": self.timeout,
            "sqs_url": None,
            "created_time": now,
            "start_time": now,
        }
        if kind == "BatchAPI":
            spec["total_batch_count"] = self.batch_count
            spec["sqs_dead_letter_queue"] = self.raw.get("sqs_dead_letter_queue")
        return spec


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise JobFileError(f"{field}: must be an integer >= 1 (got {json.dumps(value)[:60]})")
    return value


def _map(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JobFileError(f"{field}: must be a map (got {json.dumps(value)[:60]})")
    return value


def read_job(path: Path, kind: str) -> Job:
    """The job in `path` for an API of `kind`; JobFileError when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise JobFileError(f"cannot be read: {error}") from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise JobFileError(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise JobFileError("must be a JSON object (a job submission)")
    return parse_job(raw, kind)


def parse_job(raw: Mapping[str, Any], kind: str) -> Job:
    """A job submission, read; without `job_id`, its id is derived from its content (the same
    job gets the same id however its file is laid out)."""
    raw = dict(raw)
    job_id = raw.get("job_id") or _digest(raw)[:16]
    if not isinstance(job_id, str) or not job_id.replace("-", "").isalnum() or not job_id.isascii():
        raise JobFileError("job_id: must be letters, digits and '-'")
    workers = _positive_int(raw.get("workers", 1), "workers")
    config = _map(raw.get("config"), "config")
    timeout = raw.get("timeout")
    if timeout is not None:
        timeout = float(_positive_int(timeout, "timeout"))
    queue = _map(raw.get("sqs_dead_letter_queue"), "sqs_dead_letter_queue")
    max_receive_count = 1
    if queue:
        max_receive_count = _positive_int(
            queue.get("max_receive_count"), "sqs_dead_letter_queue.max_receive_count"
        )
    items: list[Any] = []
    batch_size = 1
    if kind == "BatchAPI":
        items, batch_size = _items(raw)
    return Job(job_id, workers, config, batch_size, items, max_receive_count, timeout, raw)


def _digest(raw: Mapping[str, Any]) -> str:
    """A job id from the job's content: every worker of one job file derives the same one."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


_SOURCES = ("item_list", "delimited_files", "file_path_lister")


def _items(raw: Mapping[str, Any]) -> tuple[list[Any], int]:
    given = [key for key in _SOURCES if key in raw]
    if len(given) != 1:
        raise JobFileError(
            "a BatchAPI job needs exactly one of item_list, delimited_files or file_path_lister"
            + (f" (got {', '.join(given)})" if given else "")
        )
    source = given[0]
    section = _map(raw[source], source)
    batch_size = _positive_int(section.get("batch_size"), f"{source}.batch_size")
    if source == "item_list":
        items = section.get("items")
        if not isinstance(items, list):
            raise JobFileError("item_list.items: must be a list of items")
        return items, batch_size
    paths = section.get("s3_paths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise JobFileError(f"{source}.s3_paths: must be a list of s3:// addresses or files")
    includes = section.get("includes") or []
    excludes = section.get("excludes") or []
    files = _files(paths, includes, excludes, source)
    if source == "file_path_lister":
        return [name for name, _ in files], batch_size
    items = []
    for name, local in files:
        items.extend(read_ndjson(local, name))
    return items, batch_size


def _files(
    paths: list[str], includes: list[str], excludes: list[str], source: str
) -> list[tuple[str, Path]]:
    """(address, local file) of every file the paths name, filtered by the glob patterns."""
    found: list[tuple[str, Path]] = []
    for address in paths:
        if address.startswith("s3://"):
            from .model_fetch import FetchError, fetch

            folder = Path(tempfile.mkdtemp(prefix="cortex-job-items-"))
            try:
                local = fetch(address, folder)
            except FetchError as error:
                raise JobFileError(f"{source}.s3_paths: {error}") from None
            if local.is_dir():
                below = sorted(p for p in local.rglob("*") if p.is_file())
                base = address.rstrip("/")
                found += [(f"{base}/{p.relative_to(local).as_posix()}", p) for p in below]
            else:
                found.append((address, local))
        else:
            local = Path(address)
            if local.is_dir():
                found += [(str(p), p) for p in sorted(local.rglob("*")) if p.is_file()]
            elif local.is_file():
                found.append((address, local))
            else:
                raise JobFileError(f"{source}.s3_paths: {address} does not exist")
    return [
        (name, local)
        for name, local in found
        if (not includes or any(fnmatch.fnmatch(name, p) for p in includes))
        and not any(fnmatch.fnmatch(name, p) for p in excludes)
    ]


def read_ndjson(path: Path, name: str | None = None) -> list[Any]:
    """The items of a newline-delimited JSON file; JobFileError naming the line that fails."""
    items = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise JobFileError(f"{name or path}:{number}: not JSON: {error.msg}") from None
    return items
