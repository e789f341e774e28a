"""The `cortex-build` commands (validate, render, build, push, serve, predict, run, schema)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .cli_options import (
    FILE,
    api_option,
    image_options,
    json_option,
    no_preinstalled_option,
    one_api_option,
    out_option,
    project_command,
    registry_option,
    tag_option,
)
from .errors import UserError, option_problem
from .spec import AUTOSCALERS

if TYPE_CHECKING:
    from .render_options import RenderOptions
    from .spec import Project


class _Group(click.Group):
    """Turns UserError into its one-line-per-problem report and exit code 2, never a traceback;
    with --json, into {"problems": [...]} on stdout."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as err:
            if ctx.meta.get("json"):
                problems = [dataclasses.asdict(problem) for problem in err.problems]
                click.echo(json.dumps({"ok": False, "problems": problems}, indent=2))
            else:
                for problem in err.problems:
                    click.echo(str(problem), err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cortex-build")
def main() -> None:
    """Turn a Cortex project (cortex.yaml + predictors) into standalone images."""


@main.command()
@project_command
@no_preinstalled_option
@json_option
def validate(loaded: Project, no_preinstalled: bool, as_json: bool) -> None:
    """Check the config and print a table of its APIs (or every problem in it)."""
    from .project_files import collect_project_files
    from .report import print_api_table, print_import_notes, validation_document

    # the project's files as render reads them (.env and .cortexignore included): a problem
    # there fails validate as it would fail render
    files = collect_project_files(loaded.root, loaded.config_file)
    if as_json:
        click.echo(json.dumps(validation_document(loaded, files, not no_preinstalled), indent=2))
        return
    print_api_table(loaded)
    print_import_notes(loaded, files, added=not no_preinstalled)


@main.command()
@project_command
@one_api_option("The API to serve (if there are several).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8888,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--reload",
    is_flag=True,
    help="Restart the server's processes when a Python file they imported changes "
    "(development; cortex.yaml changes need a new serve).",
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="API=URL",
    help="With --api naming a traffic splitter: where each of its APIs is served "
    "(http://127.0.0.1:PORT; repeatable, one per API).",
)
def serve(
    loaded: Project,
    api_name: str | None,
    host: str,
    port: int,
    reload: bool,
    backends: tuple[str, ...],
) -> None:
    """Serve one API (or a traffic splitter) on this host without Docker, in the current Python
    environment."""
    from .serve import serve_natively

    sys.exit(serve_natively(loaded, api_name, host, port, reload, backends))


@main.command()
@project_command
@out_option(
    "Output folder; replaced whole (only a new, empty or earlier-rendered one).", Path("build")
)
@image_options
@click.option(
    "--autoscaler",
    type=click.Choice(AUTOSCALERS),
    default="hpa",
    show_default=True,
    help="What scales the Kubernetes Deployments.",
)
def render(loaded: Project, out: Path, options: RenderOptions, autoscaler: str) -> None:
    """Write per API a Docker build context, plus docker-compose.yaml and k8s/, into OUT."""
    from .render import given_images_line, render_project

    result = render_project(loaded, out, dataclasses.replace(options, autoscaler=autoscaler))
    for api in result.apis:
        for note in api.notes:
            click.echo(f"{loaded.config_file.name}: {api.name}: {note}", err=True)
    for pod in result.container_apis:
        for note in pod.notes:
            click.echo(f"{loaded.config_file.name}: {pod.name}: {note}", err=True)
    for note in result.notes:
        click.echo(note, err=True)
    for api in result.apis:
        click.echo(f"{api.name}: docker build -t {api.image} {api.context}")
    for pod in result.container_apis:
        click.echo(f"{pod.name}: {given_images_line(pod.images, pod.kind)}")
    click.echo(f"compose: {result.compose_file}")
    click.echo(f"kubernetes: {result.k8s_dir}")


@main.command()
@project_command
@out_option("Keep the rendered build contexts in OUT (default: a temporary folder).")
@image_options
@click.option("--push", is_flag=True, help="Push the images once all of them are built.")
@click.option("--no-cache", is_flag=True, help="Build every layer again.")
@click.option(
    "-j", "--jobs", default=2, show_default=True, type=click.IntRange(1), help="APIs built at once."
)
@json_option
def build(
    loaded: Project,
    out: Path | None,
    options: RenderOptions,
    push: bool,
    no_cache: bool,
    jobs: int,
    as_json: bool,
) -> None:
    """Render and build each API's image on the Docker engine (DOCKER_HOST or the local one)."""
    from .build import BuildResult, build_project, results_document

    # with --json the build's log goes to stderr and stdout holds only the document
    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    stream = sys.stderr if as_json else sys.stdout

    def report(results: list[BuildResult]) -> None:
        click.echo(json.dumps(results_document(results), indent=2))

    code = build_project(
        loaded,
        out,
        options,
        push=push,
        no_cache=no_cache,
        jobs=jobs,
        emit=log,
        terminal=stream if stream.isatty() else None,
        on_results=report if as_json else None,
    )
    sys.exit(code)


@main.command()
@project_command
@api_option
@registry_option
@tag_option
def push(loaded: Project, api_names: tuple[str, ...], registry: str | None, tag: str) -> None:
    """Push the built images <registry>/<api>:<tag> with the Docker config's credentials."""
    from .push import push_project

    sys.exit(push_project(loaded, api_names, registry=registry, tag=tag, emit=click.echo))


@main.command()
@project_command
@one_api_option("The API (if there are several).")
@click.option("-d", "--data", metavar="JSON", help="The request body (JSON, or else text).")
@click.option(
    "--sample",
    "sample_file",
    type=FILE,
    help="A file holding the request body (JSON for .json, raw bytes otherwise).",
)
@click.option(
    "--samples",
    "samples_file",
    type=FILE,
    help="Replay this samples file (examples/README.md) against --url and compare each answer.",
)
@click.option("--url", metavar="URL", help="A served API to send --samples to.")
def predict(
    loaded: Project,
    api_name: str | None,
    data: str | None,
    sample_file: Path | None,
    samples_file: Path | None,
    url: str | None,
) -> None:
    """One prediction without a server (-d or --sample), or --samples replayed against --url."""
    from .predict import load_samples, predict_once, replay_samples, request_body
    from .serve import pick_api

    api = pick_api(loaded, api_name, realtime=True)
    if samples_file is not None or url is not None:
        if samples_file is None or url is None or data is not None or sample_file is not None:
            raise UserError(
                option_problem("--samples", "give --samples FILE with --url URL (and no -d)")
            )
        sys.exit(replay_samples(load_samples(samples_file), api, url, click.echo))
    body, content_type = request_body(data, sample_file)
    sys.exit(predict_once(loaded, api, body, content_type, sys.stdout.buffer.write))


@main.command()
@project_command
@one_api_option("The job API (if there are several).")
@click.option(
    "--job-config",
    "job_config",
    type=FILE,
    metavar="FILE",
    help="The job's config (JSON or YAML map), merged over the API's.",
)
@click.option(
    "--items",
    "items_file",
    type=FILE,
    metavar="FILE",
    help="BatchAPI: the items, a JSON list or one JSON value a line (NDJSON).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Items per batch.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Workers."
)
@click.option(
    "--max-receive-count",
    type=click.IntRange(min=1),
    help="Tries per batch before it counts as failed (default 1, as Cortex without a "
    "dead-letter queue).",
)
@click.option(
    "--timeout", type=click.IntRange(min=1), metavar="SECONDS", help="Stop the job after this."
)
@click.option("--image", metavar="IMAGE", help="Run the workers as containers of this image.")
@click.option(
    "-v",
    "--volume",
    "volumes",
    multiple=True,
    metavar="HOST:CONTAINER[:ro]",
    help="With --image: a folder mounted into every container (repeatable).",
)
@click.option(
    "--summary",
    "summary_file",
    type=FILE,
    metavar="FILE",
    help="Write the summary as JSON (failed batches with their items).",
)
def run(loaded: Project, **options: Any) -> None:
    """Run one job of a BatchAPI or TaskAPI to its end, natively or in containers (--image).

    Exit 0 when every batch (or the task) succeeded, 1 when one failed after its last try (or
    on_job_complete or the task failed), 2 for bad input, 3 when the predictor failed to load."""
    from .run_job import JobOptions, run_job

    sys.exit(run_job(loaded, JobOptions(**options)))


@main.command()
def schema() -> None:
    """Print a JSON Schema of cortex.yaml (every release's shape) for editors."""
    from .config_schema import schema_text

    click.echo(schema_text(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
