"""`kind: TrafficSplitter`: its fields, then the rules that involve the file's APIs.

Cortex (v0.19+) routed a splitter's requests to its APIs by weight, the non-shadow weights summing
to 100; from v0.31 one API may be the `shadow`, which gets a copy of `weight` percent of requests,
fire-and-forget, its answers dropped
(https://github.com/cortexlabs/cortex/blob/v0.35.0/docs/workloads/realtime/traffic-splitter/configuration.md).
Cortex accepted APIs already running in the cluster; cortex-build reads one file, so a splitter's
APIs must be in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import schema
from ..spec import BackendSpec, SplitterSpec
from .reader import ReaderBase
from .reporting import show
from .walk import Located, check_dns_name


@dataclass(frozen=True)
class FileApis:
    """What a splitter's `apis` may name, and what it may not: the file's other entries."""

    realtime: dict[str, int]  # realtime API name -> line, built or not (its problems are its own)
    skipped: dict[str, str]  # name -> kind, for the kinds a splitter cannot route to
    splitters: dict[str, int]  # splitter name -> line


class SplitterReader(ReaderBase):
    def read_fields(self) -> None:
        """Pass 1: the table walk, before the file's names are known."""
        self.walk_fields(schema.SPLITTER)

    @property
    def name(self) -> str | None:
        found = self.values.get("name")
        if found is None or not check_dns_name(
            found.value, found.line, self.label, "name", self.reporter
        ):
            return None
        return found.value

    def build(self, name: str | None, apis: FileApis) -> SplitterSpec | None:
        """Pass 2: the backends against the file's APIs; None when anything is wrong."""
        problems_before = len(self.reporter.problems)
        endpoint = self._endpoint(schema.SPLITTER_KIND, name)
        backends = self._backends(apis)
        if name is None or endpoint is None or backends is None:
            return None
        if len(self.reporter.problems) > problems_before:
            return None
        return SplitterSpec(name, endpoint, tuple(backends), self.item.line)

    def _backends(self, apis: FileApis) -> list[BackendSpec] | None:
        found = self.values.get("apis")
        if found is None:
            return None  # missing or invalid: reported by the walk
        if not found.value:
            self.error(found.line, "apis", "must list at least one API (got an empty list)")
            return None
        backends: list[BackendSpec] = []
        seen: dict[str, int] = {}
        shadow: tuple[str, int] | None = None
        ok = True
        for line, values in found.value:
            name: Located | None = values.get("name")
            weight: Located | None = values.get("weight")
            flag: Located | None = values.get("shadow")
            if name is None or weight is None:
                ok = False  # reported by the walk
                continue
            if not self._known(name, apis):
                ok = False
                continue
            if name.value in seen:
                self.error_at(
                    name,
                    f"{show(name.value)} is listed twice (first on line {seen[name.value]})",
                )
                ok = False
                continue
            seen[name.value] = name.line
            is_shadow = bool(flag.value) if flag is not None else False
            if is_shadow and shadow is not None:
                self.error(
                    flag.line if flag else line,
                    flag.written if flag else name.written,
                    f"only one API may be the shadow ({show(shadow[0])} is, on line {shadow[1]})",
                )
                ok = False
                continue
            if is_shadow:
                shadow = (name.value, name.line)
                if weight.value == 0:
                    self.note(
                        weight.line,
                        weight.written,
                        "a shadow's weight is the percentage of requests copied to it: 0 "
                        "copies none",
                    )
            backends.append(BackendSpec(name.value, weight.value, is_shadow))
        if not ok:
            return None
        routed = [backend for backend in backends if not backend.shadow]
        total = sum(backend.weight for backend in routed)
        if total != 100:
            parts = " + ".join(f"{show(b.api)} {b.weight}" for b in routed) or "no API"
            self.error(
                found.line,
                "apis",
                f"the weights of the non-shadow APIs must sum to 100 (got {total}: {parts})",
            )
            return None
        return backends

    def _known(self, name: Located, apis: FileApis) -> bool:
        """Whether `name` is a realtime API of the file; if not, says what it is instead."""
        value = name.value
        if value in apis.realtime:
            return True
        if value in apis.skipped:
            why = f"is a {apis.skipped[value]}"
        elif value in apis.splitters:
            why = f"is a traffic splitter (line {apis.splitters[value]})"
        else:
            why = None
        if why is not None:
            self.error_at(
                name,
                f"{show(value)} {why}; a traffic splitter routes to realtime APIs only",
            )
            return False
        if apis.realtime:
            listed = ", ".join(show(n) for n in sorted(apis.realtime))
            self.error_at(
                name,
                f"{show(value)} is not an API of this file (its APIs: {listed}); a traffic "
                "splitter's APIs must be in the same file",
            )
        else:
            self.error_at(
                name,
                f"{show(value)} is not an API of this file, which has none: cortex-build reads "
                "one file, so a traffic splitter's APIs must be in the same file as it (Cortex "
                "also accepted APIs already deployed)",
            )
        return False
