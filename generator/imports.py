"""What a project's Python files import, read from their syntax trees (never run).

preinstalled.py uses it to tell which of Cortex's pre-installed packages a project relied on. Only
absolute imports count (a relative import is the project's own code); an import inside a `try`
whose handlers catch ImportError (or anything broader) is optional: the code runs without it.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import PurePosixPath

from .project_files import ProjectFiles

# Exceptions whose handler makes an import inside the `try` optional.
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
_TRY_NODES: tuple[type[ast.Try], ...] = (ast.Try, getattr(ast, "TryStar", ast.Try))  # 3.11+


@dataclass(frozen=True)
class ImportSite:
    module: str  # the top-level module: "sklearn" for `from sklearn.svm import SVC`
    file: str  # project-relative posix path
    line: int
    optional: bool = False  # inside try/except ImportError


def imports_of(source: bytes, file: str) -> list[ImportSite]:
    """The absolute imports of one file; none when it does not parse (the config reader or the
    runtime reports a broken predictor file)."""
    try:
        tree = ast.parse(source, filename=file)
    except (SyntaxError, ValueError):
        return []
    sites: list[ImportSite] = []
    _collect(tree.body, file, False, sites)
    return sites


def _collect(body: list[ast.stmt], file: str, optional: bool, out: list[ImportSite]) -> None:
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(ImportSite(alias.name.split(".")[0], file, node.lineno, optional))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                out.append(ImportSite(node.module.split(".")[0], file, node.lineno, optional))
        elif isinstance(node, _TRY_NODES):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            _collect(node.body, file, guarded, out)
            for handler in node.handlers:
                _collect(handler.body, file, optional, out)
            _collect(node.orelse + node.finalbody, file, optional, out)
        else:
            for field in ("body", "orelse", "finalbody"):
                nested = getattr(node, field, None)
                if isinstance(nested, list) and nested and isinstance(nested[0], ast.stmt):
                    _collect(nested, file, optional, out)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(kind, ast.Name) and kind.id in _IMPORT_ERRORS for kind in kinds)


@functools.lru_cache(maxsize=4)
def project_imports(files: ProjectFiles) -> tuple[ImportSite, ...]:
    """Every absolute import of every Python file the images ship, in path order; parsed once
    per project, however many APIs ask (ProjectFiles is frozen, so it keys the cache)."""
    sites: list[ImportSite] = []
    for entry in files.entries:
        if entry.source is not None and entry.path.endswith(".py"):
            try:
                source = entry.source.read_bytes()
            except OSError:
                continue
            sites += imports_of(source, entry.path)
    return tuple(sites)


def local_modules(files: ProjectFiles, python_path: str | None) -> set[str]:
    """Top-level names the project itself provides: modules and folders at its root and at
    `python_path` (a folder imports as a namespace package even without __init__.py)."""
    roots = [PurePosixPath(".")]
    if python_path:
        roots.append(PurePosixPath(python_path))
    names: set[str] = set()
    for entry in files.entries:
        path = PurePosixPath(entry.path)
        for root in roots:
            try:
                relative = path.relative_to(root) if str(root) != "." else path
            except ValueError:
                continue
            first = relative.parts[0]
            if len(relative.parts) > 1:
                names.add(first)
            elif first.endswith(".py"):
                names.add(first[:-3])
    return names
