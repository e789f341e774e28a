"""The `cortex-build` command line: validate, render, serve, build, push."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import UserError

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
api_option = click.option(
    "--api", "api_names", multiple=True, metavar="NAME", help="Only this API (repeatable)."
)


class _Group(click.Group):
    """Turns UserError into its one-line-per-problem report and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except UserError as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="cortex-build")
def main() -> None:
    """Turn a Cortex project (cortex.yaml + predictors) into standalone images."""


@main.command()
@project_argument
@config_option
def validate(project: Path, config_file: Path | None) -> None:
    """Check the config and print a table of its APIs (or every problem in it)."""
    from .config import load_project
    from .report import print_api_table

    loaded = load_project(project, config_file)
    print_api_table(loaded)


if __name__ == "__main__":  # pragma: no cover
    main()
