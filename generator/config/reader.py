"""The state of reading one API (its filed values, where each was written) and the helpers every
concern uses: reporting against a field, and paths inside the project folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import schema
from ..yamlsource import YNode
from . import releases
from .reporting import Reporter, show
from .walk import Located, TableWalk


class ReaderBase:
    def __init__(
        self,
        item: YNode,
        index: int,
        root: Path,
        reporter: Reporter,
        deployment: str | None,
        cortex_version: str | None = None,
    ):
        self.item = item
        # --cortex-version as given, and its minor release (checked by load_project)
        self.cortex_version = cortex_version
        self.cortex_minor = (
            releases.parse_cortex_version(cortex_version) if cortex_version else None
        )
        self.root = root
        self.reporter = reporter
        self.deployment = deployment
        name_node = item.value.get("name")
        # an invalid name is never echoed as the label: it could hold anything
        valid_name = name_node is not None and schema.is_api_name(name_node.value)
        self.label = name_node.value if name_node is not None and valid_name else f"api #{index}"
        self.values: dict[str, Located] = {}
        self.rejected: set[str] = set()
        self.generation = "v0.2x"
        self.family = releases.V0_19  # set by ApiReader.read from the shape
        self.release_minor = 26  # the release read as, set with the family

    # -- helpers ---------------------------------------------------------------------------

    def walk_fields(self, table: Mapping[str, schema.Field]) -> None:
        """Pass 1 over the entry by `table`: its values filed in `values`, the keys whose value
        was refused in `rejected`."""
        TableWalk(self.values, self.reporter, self.label, self.rejected).table(
            self.item, table, "", ""
        )

    def error(self, line: int | None, field: str | None, message: str) -> None:
        self.reporter.error(line, self.label, field, message)

    def error_at(self, found: Located, message: str) -> None:
        """A problem of the value `found`, reported where it is written."""
        self.error(found.line, found.written, message)

    def note(self, line: int | None, field: str | None, message: str) -> None:
        self.reporter.note(line, self.label, field, message)

    def get(self, target: str, default: Any = None) -> Any:
        found = self.values.get(target)
        return default if found is None else found.value

    def where(self, target: str) -> tuple[int, str]:
        """Line and written path of `target`, else of its closest given parent section."""
        path = target
        while path:
            found = self.values.get(path)
            if found is not None:
                suffix = target[len(path) :]
                return found.line, found.written + suffix
            path = path.rpartition(".")[0]
        return self.item.line, target

    def fail(self, target: str, message: str) -> None:
        line, written = self.where(target)
        self.error(line, written, message)

    def missing(self, target: str, message: str = "must be provided") -> None:
        """Reports a required field that is absent (unless its value was already reported)."""
        if target in self.rejected:
            return
        parent = target.rpartition(".")[0]
        line = self.values[parent].line if parent in self.values else self.item.line
        self.error(line, target, message)

    def _endpoint(self, kind: str | None, name: str | None) -> str | None:
        """`networking.endpoint` normalized (one leading "/", no trailing one), else the default:
        "/<name>", or v0.9-v0.11's "/<deployment>/<name>"."""
        found = self.values.get("networking.endpoint")
        if found is None:
            if name is None:
                return None
            if kind == "api" and self.deployment:
                return f"/{self.deployment}/{name}"
            return f"/{name}"
        endpoint = found.value
        if not endpoint.startswith("/"):
            endpoint = "/" + endpoint
        if len(endpoint) > 1:
            endpoint = endpoint.rstrip("/")
        segments = endpoint.split("/")
        if (
            not schema.ENDPOINT.fullmatch(endpoint)
            or "//" in endpoint
            or any(seg in (".", "..") for seg in segments)
        ):
            self.error_at(
                found,
                "must be a URL path of letters, digits and '-', '.', '_', '~', '/' "
                f"(got {show(found.value)})",
            )
            return None
        if endpoint in schema.RESERVED_ENDPOINTS:
            self.error_at(
                found,
                f"{endpoint} is reserved (the server's "
                f"{schema.RESERVED_ENDPOINTS[endpoint]}); choose another endpoint",
            )
            return None
        return endpoint

    # -- paths inside the project folder ----------------------------------------------------

    def _project_path(self, target: str, want: str) -> str | None:
        """A path inside the project folder, as a normalized relative posix path."""
        found = self.values.get(target)
        if found is None:
            return None
        normalized = self._inside_project(found.value, found.line, found.written, want)
        return normalized

    def _safe_path(self, raw: str, line: int, written: str) -> bool:
        if schema.SAFE_PATH.fullmatch(raw):
            return True
        self.error(line, written, f"must be a path of {schema.SAFE_PATH_HINT} (got {show(raw)})")
        return False

    def _inside_project(self, raw: str, line: int, written: str, want: str) -> str | None:
        if not self._safe_path(raw, line, written):
            return None
        if os.path.isabs(raw):
            self.error(
                line, written, f"must be a path relative to the project folder (got {show(raw)})"
            )
            return None
        relative = Path(os.path.normpath(raw)).as_posix()
        # resolve() follows symbolic links: a link leading out of the project is refused too,
        # since the build context would hold a dangling link
        resolved = (self.root / raw).resolve()
        if relative == ".." or relative.startswith("../") or not resolved.is_relative_to(self.root):
            self.error(line, written, f"must stay inside the project folder (got {show(raw)})")
            return None
        what = {"file": "file", "dir": "folder", "any": "file or folder"}[want]
        if not resolved.exists():
            self.error(
                line,
                written,
                f"{show(raw)} does not exist (expected a {what} in the project folder)",
            )
            return None
        if want == "file" and not resolved.is_file():
            self.error(line, written, f"{show(raw)} must be a file (got a folder)")
            return None
        if want == "dir" and not resolved.is_dir():
            self.error(line, written, f"{show(raw)} must be a folder (got a file)")
            return None
        return relative
