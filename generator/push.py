"""`cortex-build push` (and `build --push`): built images -> a registry, with the Docker config's
credentials, each push's progress read as a build's is (engine.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .engine import Emit, StreamLog, connect_engine
from .errors import UserError, option_problem
from .render_options import image_refs
from .report import format_table
from .spec import Project


@dataclass(frozen=True)
class PushResult:
    reference: str
    ok: bool
    digest: str | None = None
    error: str | None = None


def push_image(client: Any, reference: str, emit: Emit = print) -> PushResult:
    """Pushes one local image with the Docker config's credentials for its registry."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    repository, tag = reference.rsplit(":", 1)
    log = StreamLog(emit)
    digest = None
    try:
        client.inspect_image(reference)
    except DockerException:
        return PushResult(
            reference,
            ok=False,
            error="no such image on this engine: build it first (`cortex-build build` with the "
            "same --registry and --tag)",
        )
    try:
        for chunk in client.push(repository, tag=tag, stream=True, decode=True):
            log.feed(chunk)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if log.error:
                break
    except (DockerException, RequestException, OSError) as err:
        log.error = log.error or f"{type(err).__name__}: {err}"
    if log.error is None and digest is None:
        log.error = "the registry did not return a digest"
    if log.error is not None:
        return PushResult(reference, ok=False, error=log.error)
    return PushResult(reference, ok=True, digest=digest)


def push_images(client: Any, references: Sequence[str], emit: Emit = print) -> list[PushResult]:
    several = len(references) > 1
    results = []
    for reference in references:
        prefix = f"{reference} | " if several else ""
        emit(f"{prefix}pushing {reference}")
        results.append(push_image(client, reference, _prefixed(emit, prefix)))
    return results


def _prefixed(emit: Emit, prefix: str) -> Emit:
    return lambda line: emit(prefix + line)


def push_summary_lines(results: Iterable[PushResult]) -> list[str]:
    results = list(results)
    rows = [(r.reference, "pushed" if r.ok else "FAILED", r.digest or "-") for r in results]
    lines = ["", format_table(rows, ("REFERENCE", "RESULT", "DIGEST"))]
    lines += [f"{r.reference}: push failed: {r.error}" for r in results if not r.ok]
    return lines


def push_project(
    project: Project,
    api_names: Sequence[str],
    *,
    registry: str | None,
    tag: str = "latest",
    emit: Emit = print,
) -> int:
    """`cortex-build push`: pushes <registry>/<api>:<tag> of the selected APIs, built before."""
    require_registry(registry)
    images = image_refs(project, api_names, registry, tag)
    return push_and_report(connect_engine(), images, emit)


def require_registry(registry: str | None) -> None:
    if not registry:
        raise UserError(
            option_problem(
                "--registry",
                "is needed to push: images are pushed as <registry>/<api>:<tag> "
                "(e.g. --registry registry.example.com/team, or docker.io/<user>)",
            )
        )


def push_and_report(client: Any, references: Sequence[str], emit: Emit) -> int:
    results = push_images(client, references, emit)
    for line in push_summary_lines(results):
        emit(line)
    return 0 if all(r.ok for r in results) else 1
