"""User-facing errors: every one says where (file, line, API, field) and what is expected.

The CLI prints `UserError.problems` one per line and exits with code 2; nothing else reaches the
user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import ApiSpec, ContainerApiSpec, Project


@dataclass(frozen=True, order=True)
class Problem:
    file: str  # as the user named it, e.g. "cortex.yaml"
    line: int | None  # 1-based; None when the problem has no single line
    api: str | None  # the API's name, when the problem is inside one
    field: str | None  # dotted path, e.g. "predictor.processes_per_replica"
    message: str  # what is wrong and what is expected

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.api:
            parts.append(self.api)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class UserError(Exception):
    """One or more problems in the user's input; exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [
                Problem(file="cortex-build", line=None, api=None, field=None, message=problems)
            ]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, str(p)))
        super().__init__("\n".join(str(p) for p in self.problems))


def option_problem(option: str, message: str) -> Problem:
    """A problem with a command-line option's value."""
    return Problem(file="cortex-build", line=None, api=None, field=option, message=message)


def project_problem(project: Project, message: str) -> Problem:
    """A problem with the project as a whole, located at its config file."""
    return Problem(file=project.config_file.name, line=None, api=None, field=None, message=message)


def api_problem(
    project: Project, api: ApiSpec | ContainerApiSpec, field: str | None, message: str
) -> Problem:
    """A problem with one API, located at its entry in the project's config file."""
    return Problem(
        file=project.config_file.name,
        line=api.line or None,
        api=api.name,
        field=field,
        message=message,
    )


def unknown_api_message(project: Project, name: str) -> str:
    """Why `name` is not an API that can be chosen: skipped for its kind, or not in the file."""
    if name in project.skipped:
        return f'API "{name}" is a {project.skipped[name]}, which cortex-build does not serve yet'
    for container_api in project.container_apis:
        if container_api.name == name:
            return (
                f'API "{name}" is given as containers (Cortex v0.36+, images '
                f"{', '.join(container_api.images())}): there is nothing to build or serve here; "
                "`cortex-build render` writes it into docker-compose.yaml and k8s/"
            )
    names = sorted(
        [(a.line, a.name) for a in project.apis]
        + [(a.line, a.name) for a in project.container_apis]
    )
    known = ", ".join(name for _, name in names) or "none"
    splitters = ", ".join(s.name for s in project.splitters)
    also = f"; the traffic splitters: {splitters}" if splitters else ""
    return f'no API is named "{name}" (the APIs are: {known}{also})'
