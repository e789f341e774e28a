"""The `cortex-build` command line: validate, render, serve, build, push."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import UserError, option_problem

project_argument = click.argument(
    "project", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
config_option = click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Cortex config file (default: PROJECT/cortex.yaml).",
)
cortex_version_option = click.option(
    "--cortex-version",
    metavar="X.Y",
    help="The Cortex release the project was written for (e.g. 0.15), where releases that "
    "share its config shape behave differently (see docs/cortex-releases.md).",
)
api_option = click.option(
    "--api", "api_names", multiple=True, metavar="NAME", help="Only this API (repeatable)."
)


tf_serving_image_option = click.option(
    "--tf-serving-image",
    metavar="IMAGE",
    help="TF Serving sidecar image for every tensorflow API (e.g. a mirror of tensorflow/serving).",
)


base_image_option = click.option(
    "--base-image", metavar="IMAGE", help="Base image for every API (see docs)."
)
registry_option = click.option(
    "--registry", metavar="R", help="Name images <R>/<api>:<tag> (push needs it)."
)
tag_option = click.option("--tag", default="latest", show_default=True, help="Image tag.")


no_preinstalled_option = click.option(
    "--no-preinstalled",
    is_flag=True,
    help="Do not add the packages Cortex pre-installed that the project imports without "
    "listing them (see docs/cortex-releases.md).",
)
models_at_start_option = click.option(
    "--models-at-start",
    is_flag=True,
    help="Fetch remote models (s3://, http(s)://) when the API starts instead of baking them "
    "into the image.",
)


def _json_mode(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["json"] = value  # meta is shared with the group, which reports problems
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_json_mode,
    expose_value=True,
    help="Write the result, or the problems, as one JSON document on stdout (for machines).",
)


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
@project_argument
@config_option
@cortex_version_option
@no_preinstalled_option
@json_option
def validate(
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    no_preinstalled: bool,
    as_json: bool,
) -> None:
    """Check the config and print a table of its APIs (or every problem in it)."""
    from .config import load_project
    from .project_files import collect_project_files
    from .report import print_api_table, print_import_notes, validation_document

    loaded = load_project(project, config_file, cortex_version)
    # the project's files as render reads them (.env and .cortexignore included): a problem
    # there fails validate as it would fail render
    files = collect_project_files(loaded.root, loaded.config_file)
    if as_json:
        click.echo(json.dumps(validation_document(loaded, files, not no_preinstalled), indent=2))
        return
    print_api_table(loaded)
    print_import_notes(loaded, files, added=not no_preinstalled)


@main.command()
@project_argument
@config_option
@cortex_version_option
@click.option("--api", "api_name", metavar="NAME", help="The API to serve (if there are several).")
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
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    api_name: str | None,
    host: str,
    port: int,
    reload: bool,
    backends: tuple[str, ...],
) -> None:
    """Serve one API (or a traffic splitter) on this host without Docker, in the current Python
    environment."""
    from .serve import serve_natively

    sys.exit(
        serve_natively(project, config_file, api_name, host, port, reload, cortex_version, backends)
    )


@main.command()
@project_argument
@config_option
@cortex_version_option
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("build"),
    show_default=True,
    help="Output folder; replaced whole (only a new, empty or earlier-rendered one).",
)
@api_option
@base_image_option
@tf_serving_image_option
@models_at_start_option
@no_preinstalled_option
@registry_option
@tag_option
@click.option(
    "--autoscaler",
    type=click.Choice(["hpa", "keda"]),
    default="hpa",
    show_default=True,
    help="What scales the Kubernetes Deployments.",
)
def render(
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    out: Path,
    api_names: tuple[str, ...],
    base_image: str | None,
    tf_serving_image: str | None,
    models_at_start: bool,
    no_preinstalled: bool,
    registry: str | None,
    tag: str,
    autoscaler: str,
) -> None:
    """Write per API a Docker build context, plus docker-compose.yaml and k8s/, into OUT."""
    from .config import load_project
    from .render import given_images_line, render_project

    loaded = load_project(project, config_file, cortex_version)
    result = render_project(
        loaded,
        out,
        list(api_names) or None,
        base_image,
        registry,
        tag,
        autoscaler,
        tf_serving_image=tf_serving_image,
        models_at_start=models_at_start,
        preinstalled=not no_preinstalled,
    )
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
@project_argument
@config_option
@cortex_version_option
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    help="Keep the rendered build contexts in OUT (default: a temporary folder).",
)
@api_option
@base_image_option
@tf_serving_image_option
@models_at_start_option
@no_preinstalled_option
@registry_option
@tag_option
@click.option("--push", is_flag=True, help="Push the images once all of them are built.")
@click.option("--no-cache", is_flag=True, help="Build every layer again.")
@click.option(
    "-j", "--jobs", default=2, show_default=True, type=click.IntRange(1), help="APIs built at once."
)
@json_option
def build(
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    out: Path | None,
    api_names: tuple[str, ...],
    base_image: str | None,
    tf_serving_image: str | None,
    models_at_start: bool,
    no_preinstalled: bool,
    registry: str | None,
    tag: str,
    push: bool,
    no_cache: bool,
    jobs: int,
    as_json: bool,
) -> None:
    """Render and build each API's image on the Docker engine (DOCKER_HOST or the local one)."""
    from .build import BuildResult, build_project, results_document
    from .config import load_project

    loaded = load_project(project, config_file, cortex_version)
    # with --json the build's log goes to stderr and stdout holds only the document
    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    stream = sys.stderr if as_json else sys.stdout

    def report(results: list[BuildResult]) -> None:
        click.echo(json.dumps(results_document(results), indent=2))

    code = build_project(
        loaded,
        out,
        api_names,
        base_image=base_image,
        tf_serving_image=tf_serving_image,
        models_at_start=models_at_start,
        preinstalled=not no_preinstalled,
        registry=registry,
        tag=tag,
        push=push,
        no_cache=no_cache,
        jobs=jobs,
        emit=log,
        terminal=stream if stream.isatty() else None,
        on_results=report if as_json else None,
    )
    sys.exit(code)


@main.command()
@project_argument
@config_option
@cortex_version_option
@api_option
@registry_option
@tag_option
def push(
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    api_names: tuple[str, ...],
    registry: str | None,
    tag: str,
) -> None:
    """Push the built images <registry>/<api>:<tag> with the Docker config's credentials."""
    from .config import load_project
    from .push import push_project

    loaded = load_project(project, config_file, cortex_version)
    sys.exit(push_project(loaded, api_names, registry=registry, tag=tag, emit=click.echo))


@main.command()
@project_argument
@config_option
@cortex_version_option
@click.option("--api", "api_name", metavar="NAME", help="The API (if there are several).")
@click.option("-d", "--data", metavar="JSON", help="The request body (JSON, or else text).")
@click.option(
    "--sample",
    "sample_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file holding the request body (JSON for .json, raw bytes otherwise).",
)
@click.option(
    "--samples",
    "samples_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Replay this samples file (examples/README.md) against --url and compare each answer.",
)
@click.option("--url", metavar="URL", help="A served API to send --samples to.")
def predict(
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    api_name: str | None,
    data: str | None,
    sample_file: Path | None,
    samples_file: Path | None,
    url: str | None,
) -> None:
    """One prediction without a server (-d or --sample), or --samples replayed against --url."""
    from .config import load_project
    from .predict import load_samples, predict_once, replay_samples, request_body
    from .serve import pick_api

    loaded = load_project(project, config_file, cortex_version)
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
@project_argument
@config_option
@cortex_version_option
@click.option("--api", "api_name", metavar="NAME", help="The job API (if there are several).")
@click.option(
    "--job-config",
    "job_config",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="The job's config (JSON or YAML map), merged over the API's.",
)
@click.option(
    "--items",
    "items_file",
    type=click.Path(path_type=Path, dir_okay=False),
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
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the summary as JSON (failed batches with their items).",
)
def run(
    project: Path,
    config_file: Path | None,
    cortex_version: str | None,
    api_name: str | None,
    job_config: Path | None,
    items_file: Path | None,
    batch_size: int,
    workers: int,
    max_receive_count: int | None,
    timeout: int | None,
    image: str | None,
    volumes: tuple[str, ...],
    summary_file: Path | None,
) -> None:
    """Run one job of a BatchAPI or TaskAPI to its end, natively or in containers (--image).

    Exit 0 when every batch (or the task) succeeded, 1 when one failed after its last try (or
    on_job_complete or the task failed), 2 for bad input, 3 when the predictor failed to load."""
    from .run_job import run_job

    sys.exit(
        run_job(
            project,
            config_file,
            cortex_version,
            api_name,
            job_config,
            items_file,
            batch_size,
            workers,
            max_receive_count,
            timeout,
            image,
            volumes,
            summary_file,
        )
    )


@main.command()
def schema() -> None:
    """Print a JSON Schema of cortex.yaml (every release's shape) for editors."""
    from .config_schema import schema_text

    click.echo(schema_text(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
