"""OUT, the output folder, replaced whole and atomically: refused when it is not ours, rendered
into a staging folder beside it, which replaces it only once complete.

On any error OUT is left as it was and the staging folder goes. A marker file tells a later
render that OUT is its own to replace, and names the project rendered there, so that another
project's render is never replaced by accident.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import Problem, UserError, option_problem
from .project_files import RENDER_MARKER_FILE
from .spec import Project
from .templating import printable
from .writing import write_text

MARKER_FILE = RENDER_MARKER_FILE  # tells a later render that OUT is its own to replace
MARKER_TEXT = "This folder is rendered by cortex-build; `cortex-build render` replaces it.\n"
# The marker's line naming the project rendered here: its folder's name, as the images' label
# dev.cortex-build.project has it (a full path would make two copies of a project render apart).
MARKER_PROJECT = "project: "


def project_name(project: Project) -> str:
    """The project's name as the marker and the images' label dev.cortex-build.project have it:
    its folder's name ("." names its folder), printable."""
    return printable(project.root.resolve().name)


def check_out(project: Project, out: Path) -> None:
    """OUT is replaced whole, so it must be ours: absent, empty, or rendered before (of this
    project); UserError otherwise."""
    try:
        _check_out(project, out)
    except OSError as err:
        raise UserError(_os_problem(err, "cannot read", out)) from None


@contextmanager
def replacing(out: Path, project: Project) -> Iterator[Path]:
    """A fresh staging folder beside OUT to render into; once the block ends, the marker is
    written, every folder made 0755 and the staging folder replaces OUT. An OSError (disk full,
    permissions, a file that vanished) becomes a UserError naming the path as it would be in
    OUT, not a traceback; on any error OUT is as it was and the staging folder goes."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.rendering-", dir=out.parent))
    except OSError as err:
        raise UserError(_os_problem(err, "cannot create", out.parent)) from None
    try:
        yield staging
        write_text(staging / MARKER_FILE, f"{MARKER_TEXT}{MARKER_PROJECT}{project_name(project)}\n")
        _normalize_folder_modes(staging)
        _replace(out, staging)
    except OSError as err:
        # _replace puts an earlier OUT back
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(_os_problem(err, "cannot write", out, staging)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_out(project: Project, out: Path) -> None:
    """OUT is replaced whole, so it must be ours: absent, empty, or rendered before."""
    root = project.root.resolve()
    resolved = out.resolve()
    if root == resolved or root.is_relative_to(resolved):
        raise UserError(
            option_problem(
                "-o", f"{out} holds the project; choose an output folder inside or beside it"
            )
        )
    if resolved.exists():
        if not resolved.is_dir():
            raise UserError(option_problem("-o", f"{out} exists and is not a folder"))
        if any(resolved.iterdir()) and not (resolved / MARKER_FILE).is_file():
            raise UserError(
                option_problem(
                    "-o",
                    f"{out} is not empty and was not rendered by cortex-build; rendering replaces "
                    "the whole folder, so choose a new or empty one",
                )
            )
        other = _rendered_project(resolved / MARKER_FILE)
        if other is not None and other != project_name(project):
            raise UserError(
                option_problem(
                    "-o",
                    f"{out} holds the render of another project ({other}); choose another "
                    "output folder with -o, or remove that one first",
                )
            )


def _rendered_project(marker: Path) -> str | None:
    """The project an earlier render into this folder was of (None: no marker, or one written
    before the marker named it)."""
    try:
        lines = marker.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(MARKER_PROJECT):
            return line[len(MARKER_PROJECT) :]
    return None


def _os_problem(err: OSError, doing: str, out: Path, staging: Path | None = None) -> Problem:
    """An OSError as one line naming the path: `-o: cannot create /proc/foo: No such file or
    directory` on the output side, `<file>: cannot be read: ...` for a file the render reads."""
    reason = err.strerror or str(err)
    names = [Path(name) for name in (err.filename, err.filename2) if isinstance(name, str)]
    for path in names:
        if staging is not None and path.is_relative_to(staging):
            # the staging folder means nothing to the user: the file as it would be in OUT
            return option_problem("-o", f"{doing} {out / path.relative_to(staging)}: {reason}")
        if path.parent == out.parent and path.name.startswith(f".{out.name}."):
            return option_problem("-o", f"{doing} {out.parent}: {reason}")  # a temporary folder
        if path.is_relative_to(out) or out.is_relative_to(path):  # OUT, in it, or above it
            return option_problem("-o", f"{doing} {path}: {reason}")
    if names and staging is not None:
        # neither OUT nor beside it: a file the render reads (the project's, a model's)
        return Problem(str(names[0]), None, None, None, f"cannot be read: {reason}")
    return option_problem("-o", f"{doing} {names[0] if names else out}: {reason}")


def _normalize_folder_modes(top: Path) -> None:
    """0755 on every folder (mkdtemp makes 0700; the umask varies between machines)."""
    top.chmod(0o755)
    for folder, dirnames, _ in os.walk(top):
        for name in dirnames:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o755)


def _replace(out: Path, staging: Path) -> None:
    """Moves the finished staging folder to OUT; an earlier OUT goes only once that succeeded."""
    if not out.exists():
        staging.rename(out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
    retired.rmdir()
    out.rename(retired)
    try:
        staging.rename(out)
    except BaseException:
        retired.rename(out)
        raise
    shutil.rmtree(retired, ignore_errors=True)
