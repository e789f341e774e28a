"""What `cortex-build validate` prints: an aligned table of the APIs (and one of the traffic
splitters, when there are any), and the notes on stderr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from .images import base_image_for
from .preinstalled import check_imports, import_notes
from .project_files import ProjectFiles
from .spec import ApiSpec, ContainerApiSpec, Project, SplitterSpec

_COLUMNS = (
    "API",
    "CORTEX",
    "GENERATION",
    "PREDICTOR",
    "BASE IMAGE",
    "PROCESSES x THREADS",
    "ENDPOINT",
)


def release_column(api: ApiSpec | ContainerApiSpec) -> str:
    """The releases the config's shape was accepted by, and which one is served when they
    differ: "v0.13-v0.18 as v0.13", "v0.16 (--cortex-version)"."""
    release = api.cortex
    if release.version is not None:
        return f"{release.assumed} (--cortex-version)"
    if release.releases == release.assumed:
        return release.releases
    return f"{release.releases} as {release.assumed}"


def api_rows(project: Project) -> list[tuple[str, ...]]:
    """One row per API, in the order of the config file. An API given as containers (v0.36+)
    shows its kind under PREDICTOR, its images under BASE IMAGE (run as they are, never built
    on) and its pod's max_concurrency under PROCESSES x THREADS."""
    rows = [(api.line, predictor_row(api)) for api in project.apis]
    rows += [(api.line, container_row(api)) for api in project.container_apis]
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def predictor_row(api: ApiSpec) -> tuple[str, ...]:
    """A job kind's PREDICTOR starts with its kind; its workers, one process each, come with
    each job (`cortex-build run --workers`), hence no PROCESSES x THREADS."""
    predictor = f"{api.predictor.type}/{api.predictor.interface}"
    processes = f"{api.predictor.processes_per_replica} x {api.predictor.threads_per_process}"
    if api.is_job:
        predictor, processes = f"{api.kind} {predictor}", "-"
    return (
        api.name,
        release_column(api),
        api.generation,
        predictor,
        base_image_for(api),
        processes,
        api.endpoint,
    )


def container_row(api: ContainerApiSpec) -> tuple[str, ...]:
    concurrency = f"max_concurrency {api.max_concurrency}" if api.kind == "RealtimeAPI" else "-"
    return (
        api.name,
        release_column(api),
        api.generation,
        api.kind,
        ", ".join(api.images()),
        concurrency,
        api.endpoint,
    )


_SPLITTER_COLUMNS = ("TRAFFIC SPLITTER", "ENDPOINT", "APIS (WEIGHT)", "SHADOW (COPIED)")


def splitter_routes(splitter: SplitterSpec) -> tuple[str, str]:
    """ "iris-a 80%, iris-b 20%" and "iris-c 100%" (or "-")."""
    routed = ", ".join(f"{b.api} {b.weight}%" for b in splitter.routed)
    shadow = splitter.shadow
    return routed, f"{shadow.api} {shadow.weight}%" if shadow else "-"


def splitter_rows(project: Project) -> list[tuple[str, ...]]:
    return [(s.name, s.endpoint, *splitter_routes(s)) for s in project.splitters]


def format_table(rows: Sequence[tuple[str, ...]], columns: tuple[str, ...] = _COLUMNS) -> str:
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [columns, *rows]
    ]
    return "\n".join(lines)


def validation_document(project: Project, files: ProjectFiles, added: bool) -> dict[str, Any]:
    """What validate --json writes: each API's normalized spec (api.json) with its table row and
    notes, the file's notes and the APIs skipped for their kind."""
    apis = []
    for api in project.apis:
        row = predictor_row(api)
        apis.append(
            {
                **api.to_dict(),
                "line": api.line,
                "table": dict(zip(_COLUMNS, row, strict=True)),
                "notes": list(import_notes(check_imports(api, files), added)),
            }
        )
    containers = [
        {
            **api.to_dict(),
            "line": api.line,
            "table": dict(zip(_COLUMNS, container_row(api), strict=True)),
        }
        for api in project.container_apis
    ]
    return {
        "ok": True,
        "config": project.config_file.name,
        "apis": apis,
        "container_apis": containers,
        "notes": list(project.notes),
        "skipped": project.skipped,
        "splitters": [
            {
                "name": s.name,
                "endpoint": s.endpoint,
                "line": s.line,
                "apis": [
                    {"name": b.api, "weight": b.weight, "shadow": b.shadow} for b in s.backends
                ],
            }
            for s in project.splitters
        ],
    }


def print_import_notes(project: Project, files: ProjectFiles, added: bool = True) -> None:
    """On stderr, per API: the pre-installed packages its image adds for the project's imports,
    and the imports that nothing installs (preinstalled.py)."""
    for api in project.apis:
        for note in import_notes(check_imports(api, files), added):
            click.echo(f"{project.config_file.name}: {api.name}: {note}", err=True)


def print_api_table(project: Project) -> None:
    """The table on stdout; each note (old names read as new ones, ignored fields) on stderr."""
    for note in project.notes:
        click.echo(note, err=True)
    click.echo(format_table(api_rows(project)))
    if project.splitters:
        click.echo()
        click.echo(format_table(splitter_rows(project), _SPLITTER_COLUMNS))
