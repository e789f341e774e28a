"""What `cortex-build validate` prints: an aligned table of the APIs, and the notes on stderr."""

from __future__ import annotations

import click

from .images import base_image_for
from .spec import Project

_COLUMNS = ("API", "GENERATION", "PREDICTOR", "BASE IMAGE", "PROCESSES x THREADS", "ENDPOINT")


def api_rows(project: Project) -> list[tuple[str, ...]]:
    """One row per API, in the order of the config file."""
    return [
        (
            api.name,
            api.generation,
            f"{api.predictor.type}/{api.predictor.interface}",
            base_image_for(api),
            f"{api.predictor.processes_per_replica} x {api.predictor.threads_per_process}",
            api.endpoint,
        )
        for api in project.apis
    ]


def format_table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = _COLUMNS) -> str:
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [columns, *rows]
    ]
    return "\n".join(lines)


def print_api_table(project: Project) -> None:
    """The table on stdout; each note (old names read as new ones, ignored fields) on stderr."""
    for note in project.notes:
        click.echo(note, err=True)
    click.echo(format_table(api_rows(project)))
