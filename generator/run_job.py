"""`cortex-build run`: one job of a BatchAPI or TaskAPI, to its end.

The job file (jobs.py) is built from the options. Natively the runtime's job runner runs in a
child process of this Python (as `serve` runs the server: the project's code, .env, the
requirements checked first) with `--workers` processes. With `--image`, the workers are
containers of the API's built image on the Docker engine: worker i of N takes batches i, i+N, ...;
after all of them ended, one more container runs on_job_complete; the summaries of the workers
are added up here.

Exit status: the runner's (cortex_serve/jobs.py): 0 all batches (or the task) succeeded, 1 a
batch, on_job_complete or the task failed, 2 the job or its options are wrong, 3 the predictor
failed to load.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from cortex_serve.job_summary import Summary

from . import jobs
from .errors import UserError, option_problem
from .project_files import DOTENV_FILE, read_dotenv
from .serve import check_native_requirements, native_environment, pick_api, run_forwarding_signals
from .spec import ApiSpec, Project

OUT_DIR = "/cortex/out"  # where --image workers write their summaries


@dataclass(frozen=True)
class JobOptions:
    """The options of `cortex-build run` (README's CLI reference says what each one does)."""

    api_name: str | None = None
    job_config: Path | None = None
    items_file: Path | None = None
    batch_size: int | None = None
    workers: int = 1
    max_receive_count: int | None = None
    timeout: int | None = None
    image: str | None = None
    volumes: tuple[str, ...] = ()
    summary_file: Path | None = None


def run_job(project: Project, options: JobOptions) -> int:
    api = pick_api(project, options.api_name)
    if not api.is_job:
        raise UserError(
            option_problem(
                "--api",
                f"API {api.name} is a RealtimeAPI, not a job: serve it (cortex-build serve) "
                "instead of running it",
            )
        )
    items = jobs.read_items(options.items_file) if options.items_file is not None else None
    config = jobs.read_config(options.job_config) if options.job_config is not None else {}
    job = jobs.build_job(
        api,
        items,
        options.batch_size,
        options.workers,
        config,
        options.max_receive_count,
        options.timeout,
    )
    if options.image is not None:
        return _run_in_containers(
            project, api, job, options.image, options.volumes, options.summary_file
        )
    if options.volumes:
        raise UserError(option_problem("-v/--volume", "mounts apply only with --image"))
    return _run_natively(project, api, job, options.summary_file)


def _run_natively(
    project: Project, api: ApiSpec, job: dict[str, Any], summary_file: Path | None
) -> int:
    root = project.root.resolve()
    check_native_requirements(project, api)
    with tempfile.TemporaryDirectory(prefix="cortex-build-run-") as workdir:
        spec_file = Path(workdir) / "api.json"
        spec_file.write_text(api.to_json(), encoding="utf-8")
        job_file = Path(workdir) / jobs.JOB_FILE
        job_file.write_text(jobs.job_text(job), encoding="utf-8")
        command = [sys.executable, "-m", "cortex_serve.jobs", "--spec", str(spec_file)]
        command += ["--project", str(root), "--job", str(job_file)]
        if summary_file is not None:
            command += ["--summary-file", str(summary_file.resolve())]
        # Ctrl-C reaches the runner too (same process group); it stops its workers itself
        return run_forwarding_signals(command, native_environment(root))


# -- containers --------------------------------------------------------------------------------


def _run_in_containers(
    project: Project,
    api: ApiSpec,
    job: dict[str, Any],
    image: str,
    volumes: tuple[str, ...],
    summary_file: Path | None,
) -> int:
    from .engine import connect_engine

    if api.predictor.type == "tensorflow":
        raise UserError(
            option_problem(
                "--image",
                "a tensorflow job needs its TF Serving sidecar beside each worker: run it with "
                f"docker-compose run --rm job-{api.name} (cortex-build render), or natively",
            )
        )
    binds = _binds(volumes)
    client = connect_engine()
    environment = {}
    dotenv = project.root / DOTENV_FILE
    if dotenv.is_file():
        environment.update(read_dotenv(dotenv))
    workdir = Path(tempfile.mkdtemp(prefix="cortex-build-run-"))
    try:
        (workdir / "spec").mkdir()
        (workdir / "spec" / jobs.JOB_FILE).write_text(jobs.job_text(job), encoding="utf-8")
        (workdir / "out").mkdir()
        for folder in (workdir, workdir / "spec", workdir / "out"):
            folder.chmod(0o777)  # the image's user (not this one) reads and writes them
        (workdir / "spec" / jobs.JOB_FILE).chmod(0o644)
        binds[str(workdir / "spec")] = {"bind": jobs.JOB_SPEC_DIR, "mode": "ro"}
        binds[str(workdir / "out")] = {"bind": OUT_DIR, "mode": "rw"}
        runner = _Containers(client, image, api, binds, environment)
        if api.kind == "TaskAPI":
            return runner.run_all([[]])[0]
        count = int(job["workers"])
        statuses = runner.run_all(
            [
                [
                    *("--worker-index", str(i), "--worker-count", str(count)),
                    *("--summary-file", f"{OUT_DIR}/worker-{i}.json"),
                ]
                for i in range(count)
            ]
        )
        if any(status in (2, 3) for status in statuses):
            return max(status for status in statuses if status in (2, 3))
        summaries = [
            Summary.from_json(json.loads((workdir / "out" / f"worker-{i}.json").read_text()))
            for i in range(count)
        ]
        complete_file = f"{OUT_DIR}/on-job-complete.json"
        [status] = runner.run_all(
            [["--on-job-complete", "--summary-file", complete_file]], label="on_job_complete"
        )
        written = workdir / "out" / "on-job-complete.json"
        outcome = json.loads(written.read_text())["on_job_complete"] if written.exists() else None
        total = Summary.merge(summaries, outcome or f"failed: exit status {status}")
        for line in total.lines():
            click.echo(line, err=True)
        click.echo(f"(on {count} worker container(s))", err=True)
        if summary_file is not None:
            document = {**total.to_json(), "workers": count}
            summary_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return total.status()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _binds(volumes: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`-v HOST:CONTAINER[:ro]` as the Docker SDK's binds."""
    binds: dict[str, dict[str, str]] = {}
    for volume in volumes:
        parts = volume.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            raise UserError(
                option_problem(
                    "-v/--volume",
                    f"must be HOST:CONTAINER or HOST:CONTAINER:ro, CONTAINER absolute (got "
                    f"{json.dumps(volume)})",
                )
            )
        mode = "ro" if len(parts) == 3 and parts[2] == "ro" else "rw"
        binds[str(Path(parts[0]).resolve())] = {"bind": parts[1], "mode": mode}
    return binds


@dataclass(frozen=True)
class _Containers:
    """Runs containers of the image at once, their output prefixed on stderr; removes them."""

    client: Any  # the Docker SDK's APIClient (engine.py)
    image: str
    api: ApiSpec
    binds: dict[str, dict[str, str]]
    environment: dict[str, str]

    def run_all(self, commands: list[list[str]], label: str = "worker") -> list[int]:
        from docker.errors import DockerException

        created: list[str] = []
        try:
            for command in commands:
                host_config = self.client.create_host_config(
                    binds=self.binds, shm_size=self.api.predictor.shm_size or None
                )
                container = self.client.create_container(
                    self.image,
                    command=command,
                    environment=self.environment,
                    host_config=host_config,
                    labels={"dev.cortex-build.job-of": self.api.name},
                    name=None,
                )
                created.append(container["Id"])
            for container_id in created:
                self.client.start(container_id)
            threads = [
                threading.Thread(
                    target=self._stream,
                    args=(container_id, label if len(created) == 1 else f"{label} {i}"),
                    daemon=True,
                )
                for i, container_id in enumerate(created)
            ]
            for thread in threads:
                thread.start()
            statuses = [int(self.client.wait(cid)["StatusCode"]) for cid in created]
            for thread in threads:
                thread.join(10)
            return statuses
        except DockerException as error:
            raise UserError(f"running {self.image}: {error}") from None
        finally:
            for container_id in created:
                with contextlib.suppress(Exception):
                    self.client.remove_container(container_id, force=True)

    def _stream(self, container_id: str, label: str) -> None:
        with contextlib.suppress(Exception):
            pending = b""
            for chunk in self.client.logs(container_id, stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    sys.stderr.write(f"[{label}] {line.decode('utf-8', 'replace')}\n")
            if pending:
                sys.stderr.write(f"[{label}] {pending.decode('utf-8', 'replace')}\n")
            sys.stderr.flush()
