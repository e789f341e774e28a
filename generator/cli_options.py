"""The command-line options several `cortex-build` commands share, as click decorators."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

FILE = click.Path(dir_okay=False, path_type=Path)  # an option naming a file (not a folder)

project_argument = click.argument(
    "project", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
config_option = click.option(
    "-c",
    "--config",
    "config_file",
    type=FILE,
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


def one_api_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--api NAME` of the commands that act on one API (`help` says which kind)."""
    return click.option("--api", "api_name", metavar="NAME", help=help)


def out_option(
    help: str, default: Path | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`-o/--out`, the folder render and build write the build contexts into."""
    return click.option(
        "-o",
        "--out",
        type=click.Path(path_type=Path),
        default=default,
        show_default=default is not None,
        help=help,
    )


def image_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of render and build that choose which APIs and how their images are made,
    given to the command as one RenderOptions, its `options` argument."""

    @functools.wraps(command)
    def fold(
        *args: Any,
        api_names: tuple[str, ...],
        base_image: str | None,
        tf_serving_image: str | None,
        models_at_start: bool,
        no_preinstalled: bool,
        registry: str | None,
        tag: str,
        **others: Any,
    ) -> Any:
        from .render_options import RenderOptions

        options = RenderOptions(
            api_names=api_names,
            base_image=base_image,
            registry=registry,
            tag=tag,
            tf_serving_image=tf_serving_image,
            models_at_start=models_at_start,
            preinstalled=not no_preinstalled,
        )
        return command(*args, options=options, **others)

    for option in reversed(
        (
            api_option,
            base_image_option,
            tf_serving_image_option,
            models_at_start_option,
            no_preinstalled_option,
            registry_option,
            tag_option,
        )
    ):
        fold = option(fold)
    return fold


def project_command(command: Callable[..., None]) -> Callable[..., None]:
    """PROJECT, -c/--config and --cortex-version, read and validated into the command's first
    argument, a Project (every command acts on one; the config package is imported only then, so
    that --help stays quick)."""

    @functools.wraps(command)
    def load(
        project: Path, config_file: Path | None, cortex_version: str | None, **options: Any
    ) -> None:
        from .config import load_project

        command(load_project(project, config_file, cortex_version), **options)

    return project_argument(config_option(cortex_version_option(load)))
