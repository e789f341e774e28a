"""`cortex-build build`: rendered build contexts -> images on an engine (engine.py), pushed with
`--push` (push.py).

Output is plain lines, one per build step and per line of a step's output, prefixed with the API's
name when several APIs build at once; the overall progress as a status line kept at the bottom of
a terminal (in a log: a line now and then); a summary table at the end. A failed build names its
API, the step that failed and the last lines of that step's output, and the other APIs still
build.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .engine import Emit, StreamLog, connect_engine
from .push import push_and_report, require_registry
from .report import format_table
from .spec import Project

if TYPE_CHECKING:  # render.py, imported when a build starts, is the heavier half
    from .render_options import RenderOptions

PROGRESS_EVERY = 10.0  # seconds between overall progress lines when several APIs build


@dataclass(frozen=True)
class BuildTarget:
    api: str
    context: Path  # a folder holding a Dockerfile
    image: str  # the reference to tag the image with


@dataclass(frozen=True)
class BuildResult:
    api: str
    image: str
    ok: bool
    seconds: float
    image_id: str | None = None
    size: int | None = None  # bytes, as the engine counts it (base layers included)
    failed_step: str | None = None  # "5/12 RUN pip install ..."
    error: str | None = None  # the engine's message
    tail: tuple[str, ...] = ()  # the last lines of the failed step's output


def build_image(
    client: Any,
    target: BuildTarget,
    *,
    no_cache: bool,
    emit: Emit,
    on_step: Callable[[str], None] | None = None,
) -> BuildResult:
    """Builds one image, streaming its output to `emit` and telling `on_step` "N/M" as each step
    starts; never raises for a failed build."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    log = StreamLog(emit, on_step)
    started = time.monotonic()
    try:
        stream = client.build(
            path=str(target.context),
            tag=target.image,
            nocache=no_cache,
            rm=True,
            forcerm=True,  # no stopped containers left behind by a failed RUN
            decode=True,
        )
        for chunk in stream:
            log.feed(chunk)
            if log.error:
                break
        log.close()
    except (DockerException, RequestException, OSError) as err:
        log.error = log.error or f"{type(err).__name__}: {err}"
    if log.error is None and log.image_id is None:
        log.error = "the engine ended the build without an image ID"
    result = BuildResult(
        api=target.api, image=target.image, ok=log.error is None, seconds=time.monotonic() - started
    )
    if log.error is not None:
        return replace(
            result, failed_step=log.step, error=_explain(log.error, log.step), tail=tuple(log.tail)
        )
    return replace(result, image_id=log.image_id, size=_image_size(client, target.image))


def _image_size(client: Any, image: str) -> int | None:
    """The built image's size in bytes, for the summary only: None when the engine does not say."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    with contextlib.suppress(DockerException, RequestException, KeyError, TypeError, ValueError):
        return int(client.inspect_image(image)["Size"])
    return None


def _explain(error: str, step: str | None) -> str:
    if step is not None and step.split(" ", 2)[1:2] == ["FROM"]:
        return (
            f"{error} (the base image is neither on this engine nor pullable; pull it, or pass "
            "--base-image with a local Debian or Ubuntu image that has python3 >= 3.10, as "
            "README's Quick start shows)"
        )
    return error


class BuildProgress:
    """The overall display when several APIs build: where each one is.

    In a log (not a terminal) that is a line now and then (PROGRESS_EVERY). On a terminal it is a
    status line kept at the bottom, redrawn under each log line and at every step: the log still
    scrolls above it, whole, as in a log.
    """

    def __init__(
        self, targets: Sequence[BuildTarget], emit: Emit, terminal: TextIO | None = None
    ) -> None:
        self._emit = emit
        self._terminal = terminal
        self._lock = threading.Lock()
        self._states: dict[str, str] = {t.api: "waiting" for t in targets}
        self._last = time.monotonic()

    def log(self, line: str) -> None:
        """Prints a log line (above the status line, on a terminal)."""
        with self._lock:
            if self._terminal is None:
                self._emit(line)
            else:
                self._terminal.write(f"\r\x1b[K{line}\n{self._status()}")
                self._terminal.flush()

    def step(self, api: str, step: str) -> None:
        """`step` is "N/M"."""
        with self._lock:
            self._states[api] = f"step {step}"
            if self._terminal is not None:
                self._terminal.write(f"\r\x1b[K{self._status()}")
                self._terminal.flush()
                return
            now = time.monotonic()
            if now - self._last >= PROGRESS_EVERY:
                self._last = now
                self._emit("== " + ", ".join(f"{a}: {s}" for a, s in self._states.items()))

    def done(self, result: BuildResult) -> None:
        with self._lock:
            self._states[result.api] = state = "built" if result.ok else "FAILED"
            finished = sum(state in ("built", "FAILED") for state in self._states.values())
        self.log(
            f"== {result.api}: {state} in {result.seconds:.1f}s "
            f"({finished} of {len(self._states)} APIs done)"
        )

    def close(self) -> None:
        """Clears the status line (the summary table follows)."""
        if self._terminal is not None:
            with self._lock:
                self._terminal.write("\r\x1b[K")
                self._terminal.flush()

    def _status(self) -> str:
        finished = sum(state in ("built", "FAILED") for state in self._states.values())
        states = ", ".join(f"{api} {state}" for api, state in self._states.items())
        line = f"[{finished}/{len(self._states)} built] {states}"
        width = shutil.get_terminal_size().columns - 1  # the cursor must not wrap the line
        return line if len(line) <= width else line[: max(width - 3, 0)] + "..."


def build_images(
    client: Any,
    targets: Sequence[BuildTarget],
    *,
    no_cache: bool = False,
    jobs: int = 2,
    emit: Emit = print,
    terminal: TextIO | None = None,
) -> list[BuildResult]:
    """Builds every target (up to `jobs` at once); results in the order of `targets`.

    `emit` gets whole lines and is never called from two threads at once. With `terminal` (a
    stream that is a terminal) and several targets, log lines go there instead, under a status
    line of every API's progress.
    """
    several = len(targets) > 1
    width = max((len(t.api) for t in targets), default=0)
    progress = BuildProgress(targets, emit, terminal if several else None)

    def build_one(target: BuildTarget) -> BuildResult:
        prefix = f"{target.api.ljust(width)} | " if several else ""

        def api_emit(line: str) -> None:
            progress.log(prefix + line)

        def api_step(step: str) -> None:
            progress.step(target.api, step)

        progress.log(f"{prefix}building {target.image} from {target.context}")
        result = build_image(
            client, target, no_cache=no_cache, emit=api_emit, on_step=api_step if several else None
        )
        if several:
            progress.done(result)
        return result

    try:
        if not several or jobs <= 1:
            return [build_one(target) for target in targets]
        return _run_threaded(build_one, targets, jobs)
    finally:
        progress.close()


def _run_threaded(
    work: Callable[[BuildTarget], BuildResult], targets: Sequence[BuildTarget], jobs: int
) -> list[BuildResult]:
    """work(target) for every target, `jobs` at a time, in daemon threads: on Ctrl-C the process
    exits at once, its connections close, and the engine cancels the builds (a thread pool would
    hold the exit until every build had finished)."""
    results: dict[int, BuildResult] = {}
    pending = list(enumerate(targets))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                index, target = pending.pop(0)
            try:
                results[index] = work(target)
            except Exception as err:  # a bug here must not hide the other APIs' results
                error = f"{type(err).__name__}: {err}"
                results[index] = BuildResult(target.api, target.image, False, 0.0, error=error)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(targets)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a bare join() would not see Ctrl-C until it returns
    return [results[index] for index in range(len(targets))]


def results_document(results: Iterable[BuildResult]) -> dict[str, Any]:
    """What build --json writes: every API's result, field by field."""
    entries = [asdict(result) for result in results]
    return {"ok": all(entry["ok"] for entry in entries), "apis": entries}


def summary_lines(results: Iterable[BuildResult]) -> list[str]:
    """The summary table, then for each failure its step, the engine's message and its tail."""
    results = list(results)
    rows = [
        (
            r.api,
            r.image,
            "built" if r.ok else "FAILED",
            f"{r.seconds:.1f}",
            _megabytes(r.size) if r.size is not None else "-",
        )
        for r in results
    ]
    lines = ["", format_table(rows, ("API", "IMAGE", "RESULT", "SECONDS", "SIZE"))]
    for r in results:
        if r.ok:
            continue
        where = f"at step {r.failed_step}" if r.failed_step else "before its first step"
        lines += ["", f"{r.api}: build failed {where}: {r.error}"]
        if r.tail:
            lines.append(f"{r.api}: last lines of output:")
            lines += [f"    {line}" for line in r.tail]
    return lines


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def build_project(
    project: Project,
    out: Path | None,
    options: RenderOptions,
    *,
    push: bool = False,
    no_cache: bool = False,
    jobs: int = 2,
    emit: Emit = print,
    terminal: TextIO | None = None,
    on_results: Callable[[list[BuildResult]], None] | None = None,
) -> int:
    """`cortex-build build`: render (into OUT, or a temporary folder) as `options` say, build,
    maybe push. `on_results` gets every API's result once the builds are done (build --json).

    Returns the exit code: 0 when every image built (and pushed), 1 otherwise. UserError (exit 2)
    for bad options or no engine, before anything is built.
    """
    from .render import given_images_line, render_project

    api_names = options.api_names
    pods = [a for a in project.container_apis if not api_names or a.name in api_names]
    for pod in pods:
        emit(f"{project.config_file.name}: {pod.name}: {given_images_line(pod.images(), pod.kind)}")
    pod_names = {p.name for p in pods}
    # every API selected is given as containers (a file holds one generation): nothing to build
    # unless a traffic splitter or a BatchAPI (its batch worker) is selected
    only_pods = pods and (not project.apis or all(name in pod_names for name in api_names))
    if (
        only_pods
        and not any(not api_names or s.name in api_names for s in project.splitters)
        and not any(pod.kind == "BatchAPI" for pod in pods)
    ):
        return 0
    if push:
        require_registry(options.registry)
    client = connect_engine()
    with tempfile.TemporaryDirectory(prefix="cortex-build-") as scratch:
        rendered = render_project(
            project,
            out if out is not None else Path(scratch) / "contexts",
            options,
        )
        for api in rendered.apis:
            for note in api.notes:
                emit(f"{project.config_file.name}: {api.name}: {note}")
        targets = [BuildTarget(api.name, api.context, api.image) for api in rendered.apis]
        for line in replaced_images(client, targets, project.root.resolve().name):
            emit(line)
        results = build_images(
            client, targets, no_cache=no_cache, jobs=jobs, emit=emit, terminal=terminal
        )
    for line in summary_lines(results):
        emit(line)
    if on_results is not None:
        on_results(results)
    failed = [r.api for r in results if not r.ok]
    if failed:
        if push:
            emit(f"nothing pushed: {', '.join(failed)} did not build")
        return 1
    if push:
        return push_and_report(client, [r.image for r in results], emit)
    return 0


def replaced_images(client: Any, targets: Sequence[BuildTarget], project_name: str) -> list[str]:
    """A note per image name that an image of another project holds now: images are named after
    their API, so two projects with an API of one name share its image unless --registry or
    --tag tell them apart."""
    import docker.errors

    notes = []
    for target in targets:
        try:
            labels = (client.inspect_image(target.image).get("Config") or {}).get("Labels") or {}
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError:
            continue  # the build itself reports an engine that fails
        other = labels.get("dev.cortex-build.project")
        if other is not None and other != project_name:
            notes.append(
                f"note: {target.image} is the image of API {target.api} of project {other} "
                "until this build replaces it; give --tag or --registry to keep both"
            )
    return notes
