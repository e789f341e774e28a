"""`cortex-build predict`: one prediction without a server, or a project's samples replayed
against a served API.

One prediction runs the runtime's `cortex_serve.once` in a child process of this Python, with
the project's .env and the checks `serve` makes, so it behaves as the server would without
binding a port. Replaying reads a samples file (examples/README.md gives its format: a request
and the exact response per sample) and sends every sample of the API to `--url`, a server
started with `cortex-build serve` or `docker-compose up`; each sample is reported as it matched
or how it differed.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, UserError, option_problem
from .project_files import read_text
from .serve import check_native_requirements, native_environment
from .spec import ApiSpec, Project

Emit = Callable[[str], None]


def predict_once(
    project: Project,
    api: ApiSpec,
    body: bytes,
    content_type: str,
    emit_body: Callable[[bytes], object],
) -> int:
    """Runs one prediction of `api` on `body`; the response body goes to `emit_body`, its status
    and content type to stderr. The exit status of cortex_serve.once."""
    root = project.root.resolve()
    check_native_requirements(project, api)
    with tempfile.TemporaryDirectory(prefix="cortex-build-predict-") as workdir:
        spec_file = Path(workdir) / "api.json"
        spec_file.write_text(api.to_json(), encoding="utf-8")
        command = [sys.executable, "-m", "cortex_serve.once", "--spec", str(spec_file)]
        command += ["--project", str(root), "--content-type", content_type]
        done = subprocess.run(
            command, input=body, capture_output=True, env=native_environment(root), check=False
        )
    emit_body(done.stdout)
    sys.stderr.write(done.stderr.decode("utf-8", "replace"))
    return done.returncode


def request_body(data: str | None, sample_file: Path | None) -> tuple[bytes, str]:
    """The body and its content type: `-d` text (JSON unless it does not parse as JSON, then
    text/plain), or a file (JSON for .json, else raw bytes)."""
    if (data is None) == (sample_file is None):
        raise UserError(
            option_problem("-d/--sample", "give exactly one of -d JSON or --sample FILE")
        )
    if data is not None:
        try:
            json.loads(data)
        except ValueError:
            return data.encode("utf-8"), "text/plain; charset=utf-8"
        return data.encode("utf-8"), "application/json"
    assert sample_file is not None
    try:
        raw = sample_file.read_bytes()
    except OSError as error:
        raise UserError(option_problem("--sample", f"{sample_file}: {error.strerror}")) from None
    if sample_file.suffix == ".json":
        try:
            json.loads(raw)
        except ValueError as error:
            raise UserError(
                Problem(str(sample_file), None, None, None, f"not JSON: {error}")
            ) from None
        return raw, "application/json"
    return raw, "application/octet-stream"


# -- samples replayed against a served API ----------------------------------------------------


@dataclass(frozen=True)
class Sample:
    api: str
    name: str
    request: dict[str, Any]
    response: dict[str, Any]


def load_samples(file: Path) -> list[Sample]:
    """The samples of a samples file; UserError naming the file and entry when one is malformed."""
    try:
        entries = yaml.safe_load(read_text(file, str(file))) or []
    except yaml.YAMLError as error:
        raise UserError(Problem(str(file), None, None, None, f"invalid YAML: {error}")) from None
    if not isinstance(entries, list):
        raise UserError(Problem(str(file), None, None, None, "must be a list of samples"))
    samples = []
    for index, entry in enumerate(entries, start=1):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("request"), dict)
            and isinstance(entry.get("response"), dict)
        ):
            raise UserError(
                Problem(
                    str(file), None, None, f"sample #{index}", "must have a request and a response"
                )
            )
        name = str(entry.get("name", f"#{index}"))
        samples.append(Sample(str(entry.get("api", "")), name, entry["request"], entry["response"]))
    return samples


def replay_samples(samples: list[Sample], api: ApiSpec, url: str, emit: Emit) -> int:
    """Sends every sample of `api` to the server at `url`: a line per sample; 0 when all match."""
    mine = [sample for sample in samples if sample.api in ("", api.name)]
    if not mine:
        raise UserError(option_problem("--samples", f"has no sample for API {api.name}"))
    failed = 0
    for sample in mine:
        problem = check_sample(sample, url.rstrip("/"))
        if problem is None:
            emit(f"ok      {api.name}/{sample.name}")
        else:
            failed += 1
            emit(f"FAILED  {api.name}/{sample.name}: {problem}")
    emit(f"{len(mine) - failed} of {len(mine)} samples answered as expected")
    return 0 if failed == 0 else 1


def check_sample(sample: Sample, base_url: str) -> str | None:
    """Sends the sample's request to the API at `base_url`; how the answer differs from the
    sample's response, or None when it is exactly that."""
    request, expected = sample.request, sample.response
    headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
    body: bytes | None = None
    if "json" in request:
        body = json.dumps(request["json"]).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif "text" in request:
        body = str(request["text"]).encode("utf-8")
        headers.setdefault("Content-Type", "text/plain")
    elif "body_base64" in request:
        body = base64.b64decode(request["body_base64"])
        headers.setdefault("Content-Type", "application/octet-stream")
    query = urllib.parse.urlencode(request.get("query") or {})
    target = base_url + request.get("path", "/predict") + (f"?{query}" if query else "")
    method = str(request.get("method", "POST"))
    call = urllib.request.Request(target, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(call, timeout=60) as answer:
            status, content_type, got = (
                answer.status,
                answer.headers.get("Content-Type", ""),
                answer.read(),
            )
    except urllib.error.HTTPError as error:
        status, got = error.code, error.read()
        content_type = error.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError) as error:
        return f"{method} {target}: {getattr(error, 'reason', error)}"
    if status != expected.get("status", 200):
        return f"status {status}, expected {expected.get('status', 200)}: {got[:200]!r}"
    media_type = content_type.split(";")[0].strip()
    if "content_type" in expected and media_type != expected["content_type"]:
        return f"Content-Type {media_type}, expected {expected['content_type']}"
    if "json" in expected:
        try:
            value = json.loads(got)
        except ValueError:
            return f"not JSON: {got[:200]!r}"
        difference = json_difference(value, expected["json"])
        if difference:
            return f"body differs at {difference}"
    elif "text" in expected and got.decode("utf-8", "replace") != expected["text"]:
        return f"body {got[:200]!r}, expected {expected['text'][:200]!r}"
    elif "body_base64" in expected and got != base64.b64decode(expected["body_base64"]):
        return "the body differs from body_base64"
    return None


def json_difference(actual: Any, expected: Any, path: str = "$") -> str | None:
    """Where two JSON values first differ ("$.label: 'a' != 'b'"), or None when they are equal,
    floats within 1e-6 relative: a framework's last bits may differ by build."""
    if isinstance(expected, float) and isinstance(actual, int | float):
        if math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9):
            return None
    elif isinstance(expected, dict) and isinstance(actual, dict):
        if sorted(actual) != sorted(expected):
            return f"{path}: keys {sorted(actual)}, expected {sorted(expected)}"
        for key in expected:
            found = json_difference(actual[key], expected[key], f"{path}.{key}")
            if found:
                return found
        return None
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items, expected {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            found = json_difference(a, e, f"{path}[{index}]")
            if found:
                return found
        return None
    elif actual == expected and type(actual) is type(expected):
        return None
    return f"{path}: {json.dumps(actual)[:200]} != {json.dumps(expected)[:200]}"
