"""The generator's side of job kinds (BatchAPI, TaskAPI): the job file the runtime reads
(cortex_serve/job_file.py documents it), built from `cortex-build run`'s options or rendered as
a starting point beside the compose file and the Kubernetes manifests.

A job file is Cortex's job submission as JSON: `workers`, `config`, `item_list` (items and
batch_size), `sqs_dead_letter_queue.max_receive_count`, `timeout`
(https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/batch/jobs.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, UserError, option_problem
from .spec import ApiSpec

JOB_SPEC_DIR = "/cortex/spec"  # where images read job.json, as Cortex's /cortex/spec/job.json
JOB_FILE = "job.json"
# Kubernetes keeps a ConfigMap under 1 MiB: larger item sets go by delimited_files (s3:// or
# files), which the workers fetch themselves.
CONFIGMAP_LIMIT_BYTES = 1024 * 1024


def sample_job(api: ApiSpec) -> dict[str, Any]:
    """The job file rendered for an API: no items, one worker; edit it or write another."""
    if api.kind == "TaskAPI":
        return {"config": {}}
    return {"workers": 1, "item_list": {"items": [], "batch_size": 1}, "config": {}}


def job_text(job: dict[str, Any]) -> str:
    return json.dumps(job, indent=2, sort_keys=True) + "\n"


def read_items(path: Path) -> list[Any]:
    """Items from a JSON list, or newline-delimited JSON (one item a line); UserError naming the
    file (and the line, for NDJSON) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(option_problem("--items", f"{path}: cannot be read: {error}")) from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(
                Problem(str(path), error.lineno, None, None, f"not a JSON list: {error.msg}")
            ) from None
        if isinstance(items, list):
            return items
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise UserError(
                Problem(
                    str(path),
                    number,
                    None,
                    None,
                    f"not JSON ({error.msg}); items are a JSON list, or one JSON value a line",
                )
            ) from None
    return items


def read_config(path: Path) -> dict[str, Any]:
    """The job's config: a JSON or YAML map."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(
            option_problem("--job-config", f"{path}: cannot be read: {error}")
        ) from None
    try:
        value = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or "not JSON or YAML"
        raise UserError(Problem(str(path), line, None, None, f"invalid: {problem}")) from None
    if not isinstance(value, dict):
        raise UserError(Problem(str(path), None, None, None, "must be a map of config values"))
    return value


def build_job(
    api: ApiSpec,
    items: list[Any] | None,
    batch_size: int | None,
    workers: int,
    config: dict[str, Any],
    max_receive_count: int | None = None,
    timeout: int | None = None,
) -> dict[str, Any]:
    """The job file of `cortex-build run`'s options."""
    job: dict[str, Any] = {"config": config}
    if timeout is not None:
        job["timeout"] = timeout
    if api.kind == "TaskAPI":
        if items is not None:
            raise UserError(
                option_problem("--items", "a TaskAPI takes no items (only --job-config)")
            )
        return job
    if items is None:
        raise UserError(option_problem("--items", f"the BatchAPI {api.name} needs --items FILE"))
    job["workers"] = workers
    job["item_list"] = {"items": items, "batch_size": batch_size or 1}
    if max_receive_count is not None:
        job["sqs_dead_letter_queue"] = {"max_receive_count": max_receive_count}
    return job
