"""Which files of a project go into its images, and what `.env` holds.

Cortex's rules (Cortex v0.2x docs, "Project files"): every file in the project folder except Python
bytecode (`*.pyc`, `*.pyo`, `*.pyd`), names starting with `.`, the config file itself and what
`.cortexignore` excludes (gitignore syntax, matched with pathspec). Folders that cortex-build
rendered (they hold RENDER_MARKER_FILE) are left out too: an earlier `render -o out` inside the
project is output, not project, and would otherwise be copied into every later image.

`.env` is read here only to check it: its values reach containers at run time (compose
`env_file`, a Kubernetes Secret) and never a build context or an image layer. A symlink in the
project stays a symlink (never its target's bytes), so a link to `.env` or to another file left
out is dangling in the image. Model folders are copied with links followed, so a local model
must not lead to a hidden file (`hidden_in_model`, checked when the config is read).

An API's requirements file and shell script (`requirements.txt` and `dependencies.sh` at the
root, or where v0.30+'s `dependencies:` names them) become their own build steps ahead of the code
(see templates/Dockerfile.jinja) when they are among the shipped files; they stay in the project
files as well, as Cortex left them.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec
from dotenv.parser import parse_stream

from .errors import Problem, UserError
from .schema import ENV_KEY

IGNORE_FILE = ".cortexignore"
DOTENV_FILE = ".env"
BYTECODE_SUFFIXES = (".pyc", ".pyo", ".pyd")
# Written at the top of every render output (out_folder.py); here so that both modules share it.
RENDER_MARKER_FILE = ".cortex-build-render"


@dataclass(frozen=True)
class ProjectEntry:
    """One file or symlink to copy, by its posix path relative to the project root."""

    path: str
    source: Path | None  # None for a symlink
    # for a symlink: its target, relative to the link's folder (or absolute inside the image)
    link_target: str | None = None


@dataclass(frozen=True)
class ProjectFiles:
    root: Path
    entries: tuple[ProjectEntry, ...]  # sorted by path
    dotenv: Path | None  # .env at the root, when present (checked, never copied)

    def shipped_file(self, path: str) -> Path | None:
        """The project file at `path` (posix, project-relative) when it is among the shipped
        files (`.cortexignore` can leave a requirements file out, as Cortex's upload did)."""
        for entry in self.entries:
            if entry.path == path and entry.source is not None:
                return entry.source
        return None


def collect_project_files(
    root: Path, config_file: Path, exclude: Iterable[Path] = ()
) -> ProjectFiles:
    """The project's files as Cortex would have shipped them; UserError naming each bad entry.

    `exclude` holds folders to leave out wherever they are (the render output, when the user
    writes it inside the project).
    """
    root = root.resolve()
    skipped = {Path(p).resolve() for p in exclude} | {config_file.resolve()}
    ignore = _ignore_spec(root)
    problems: list[Problem] = []
    entries: list[ProjectEntry] = []

    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        rel_here = here.relative_to(root).as_posix()
        prefix = "" if rel_here == "." else rel_here + "/"
        kept_dirs = []
        for name in sorted(dirnames):
            path = here / name
            rel = prefix + name
            if name.startswith(".") or path in skipped or ignore.match_file(rel + "/"):
                continue
            if (path / RENDER_MARKER_FILE).is_file() and not path.is_symlink():
                continue  # an earlier render's output (render -o inside the project)
            if path.is_symlink():
                entries.extend(_symlink(root, path, rel, problems))
            else:
                kept_dirs.append(name)
        dirnames[:] = kept_dirs  # os.walk descends only into these, in this order
        for name in sorted(filenames):
            path = here / name
            rel = prefix + name
            if (
                name.startswith(".")
                or name.endswith(BYTECODE_SUFFIXES)
                or path in skipped
                or ignore.match_file(rel)
            ):
                continue
            if path.is_symlink():
                entries.extend(_symlink(root, path, rel, problems))
            elif path.is_file():
                entries.append(ProjectEntry(rel, path))
            else:
                problems.append(
                    _problem(rel, "is not a regular file, folder or symlink (cannot be copied)")
                )
    if problems:
        raise UserError(problems)

    dotenv = root / DOTENV_FILE if (root / DOTENV_FILE).is_file() else None
    if dotenv is not None:
        read_dotenv(dotenv)  # raises UserError on a malformed line
    return ProjectFiles(
        root=root,
        entries=tuple(sorted(entries, key=lambda e: e.path)),
        dotenv=dotenv,
    )


def _ignore_spec(root: Path) -> pathspec.PathSpec:
    ignore_file = root / IGNORE_FILE
    if not ignore_file.is_file():
        return pathspec.GitIgnoreSpec.from_lines([])
    return pathspec.GitIgnoreSpec.from_lines(read_text(ignore_file, IGNORE_FILE).splitlines())


def read_text(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(_problem(shown, f"cannot be read as UTF-8 text: {err}")) from None


def _symlink(root: Path, link: Path, rel: str, problems: list[Problem]) -> list[ProjectEntry]:
    """A symlink stays a symlink, made relative so that it works wherever the project lands."""
    try:
        target = link.resolve()
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
        problems.append(_problem(rel, "is a symlink that leads back to itself"))
        return []
    if not target.is_relative_to(root):
        problems.append(
            _problem(
                rel,
                f"is a symlink to {target}, outside the project folder; copy the file into the "
                f"project or exclude the link in {IGNORE_FILE}",
            )
        )
        return []
    return [ProjectEntry(rel, link, os.path.relpath(target, link.parent.resolve()))]


def hidden_in_model(source: Path, root: Path) -> str | None:
    """Why the local model at `source` (resolved) would carry a hidden file into an image, or None
    (paths in the project `root` are shown relative to it).

    A model folder is copied without its hidden names but with symlinks followed (models are
    often links into a cache), so a link to `.env` or into `~/.aws` would put those bytes in the
    image. A link counts as hidden when its target is hidden below the folder it shares with the
    model: links into a cache that itself lies under a hidden folder (`~/.cache/...`) work.
    """
    root = root.resolve()

    def shown(path: Path) -> str:
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    if source.name.startswith("."):
        return f"leads to {shown(source)}, a hidden file or folder"
    if not source.is_dir():
        return None
    for folder, dirnames, filenames in os.walk(source):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]  # never copied
        for name in filenames:
            link = Path(folder) / name
            if name.startswith(".") or not link.is_symlink():
                continue
            target = link.resolve()
            shared = Path(os.path.commonpath([target, source]))
            if any(part.startswith(".") for part in target.relative_to(shared).parts):
                return f"{shown(link)} is a symlink to {shown(target)}, a hidden file"
    return None


def read_dotenv(path: Path) -> dict[str, str]:
    """`.env` as Cortex documented it: `VARIABLE=value` lines (comments and blank lines allowed)."""
    problems: list[Problem] = []
    values: dict[str, str] = {}
    text = read_text(path, DOTENV_FILE)
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            problems.append(
                Problem(DOTENV_FILE, line, None, None, "must be VARIABLE=value (cannot be parsed)")
            )
        elif binding.key is None:
            continue  # a comment or a blank line
        elif not ENV_KEY.fullmatch(binding.key):
            problems.append(
                Problem(
                    DOTENV_FILE,
                    line,
                    None,
                    None,
                    f'"{binding.key}" is not a valid variable name (letters, digits and '
                    "'_', not starting with a digit)",
                )
            )
        elif binding.value is None:
            problems.append(Problem(DOTENV_FILE, line, None, binding.key, "must be VARIABLE=value"))
        else:
            values[binding.key] = binding.value
    if problems:
        raise UserError(problems)
    return values


def _problem(rel: str, message: str) -> Problem:
    return Problem(file=rel, line=None, api=None, field=None, message=message)


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_lines(file: Path, display: str) -> list[tuple[int, str, str]]:
    """(line number, distribution name, line) for every plain requirement in a requirements file;
    options (-r, -e, --index-url), URLs and paths are left to pip."""
    found = []
    for number, raw in enumerate(read_text(file, display).splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-", ".", "/")) or "://" in line.split("@")[0]:
            continue
        match = _REQUIREMENT_NAME.match(line)
        if match:
            found.append((number, match.group(1), line))
    return found
