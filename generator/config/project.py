"""The whole file: the list of APIs, v0.9-v0.12's `kind: deployment`, traffic splitters (read
after the APIs they name), names and endpoints unique across all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import schema
from ..spec import ApiSpec, ContainerApiSpec, SplitterSpec
from ..yamlsource import YamlProblem, YNode, parse_yaml
from .api import ApiReader
from .containers import ContainerApiReader
from .reporting import Reporter, show
from .splitter import FileApis, SplitterReader
from .walk import TableWalk, check_dns_name


class ProjectReader:
    def __init__(self, root: Path, reporter: Reporter, cortex_version: str | None = None):
        self.root = root
        self.reporter = reporter
        self.cortex_version = cortex_version
        self.skipped: dict[str, str] = {}
        self.container_apis: list[ContainerApiSpec] = []
        self.splitters: list[SplitterSpec] = []

    def read(self, text: str) -> list[ApiSpec]:
        try:
            parsed = parse_yaml(text)
        except YamlProblem as problem:
            self.reporter.error(problem.line, None, None, problem.message)
            return []
        for found in parsed.problems:
            self.reporter.error(found.line, None, None, found.message)
        top = parsed.root
        if top is None or (top.is_list and not top.value):
            self.reporter.error(
                1, None, None, 'contains no APIs (expected a list of APIs, each starting "- name:")'
            )
            return []
        if not top.is_list:
            got = "a map" if top.is_map else show(top.value)
            self.reporter.error(
                top.line,
                None,
                None,
                f'must be a list of APIs, each starting "- name:" (got {got})',
            )
            return []

        deployment = self._deployment(top.value)
        readers: list[ApiReader] = []
        splitters: list[SplitterReader] = []
        for index, item in enumerate(top.value, start=1):
            if item.refused:
                continue
            if not item.is_map:
                self.reporter.error(
                    item.line,
                    f"api #{index}",
                    None,
                    f"must be a map of API fields (got {show(item.value)})",
                )
                continue
            if kind_of(item) == "deployment":
                continue
            kind = kind_of(item)
            if kind == "AsyncAPI" and "pod" not in item.value:
                name = item.value.get("name")
                label = name.value if name is not None and schema.is_api_name(name.value) else None
                self.reporter.error(
                    item.key_lines["kind"],
                    label or f"api #{index}",
                    "kind",
                    schema.ASYNC_API_MESSAGE,
                )
                continue
            if kind == schema.SPLITTER_KIND:
                splitter = SplitterReader(item, index, self.root, self.reporter, None)
                splitter.read_fields()
                splitters.append(splitter)
                continue
            if "pod" in item.value:  # Cortex v0.36+: every kind is a pod of containers
                reader: ApiReader = ContainerApiReader(
                    item, index, self.root, self.reporter, deployment, self.cortex_version
                )
            elif isinstance(kind, str) and kind in schema.UNSUPPORTED_KINDS:
                self._skip(item, index)
                continue
            else:
                reader = ApiReader(
                    item, index, self.root, self.reporter, deployment, self.cortex_version
                )
            readers.append(reader)
        self._check_one_generation(readers)
        built: list[tuple[ApiReader, ApiSpec | ContainerApiSpec | None]] = [
            (reader, reader.read()) for reader in readers
        ]
        self._check_unique(built)
        self.container_apis = [api for _, api in built if isinstance(api, ContainerApiSpec)]
        apis = [api for _, api in built if isinstance(api, ApiSpec)]
        served = [api for _, api in built if api is not None]
        self.splitters = self._splitters(splitters, readers, served)
        return apis

    def _check_one_generation(self, readers: list[ApiReader]) -> None:
        """Cortex v0.36 replaced predictor code by containers: no release took both shapes, so
        a file with both was written for two releases at once."""
        pods = [r for r in readers if isinstance(r, ContainerApiReader)]
        code = [r for r in readers if not isinstance(r, ContainerApiReader)]
        if pods and code:
            first_pod = pods[0].item.line
            for reader in code:
                reader.error(
                    reader.item.line,
                    None,
                    "an API of predictor code (Cortex v0.9-v0.35) in a file of APIs given as "
                    f"containers (pod:, Cortex v0.36+, first on line {first_pod}): no Cortex "
                    "release took both; give this API as containers too, or keep the two "
                    "generations in separate files (-c FILE)",
                )

    def _splitters(
        self,
        splitters: list[SplitterReader],
        readers: list[ApiReader],
        apis: list[ApiSpec | ContainerApiSpec],
    ) -> list[SplitterSpec]:
        """Each splitter against the file's APIs: its name and endpoint unique among them all."""
        realtime: dict[str, int] = {}
        other_kinds = dict(self.skipped)
        for reader in readers:
            given = reader.values.get("name")
            if given is not None and given.value == reader.label:
                kind = kind_of(reader.item)
                if kind in schema.JOB_KINDS:  # a job takes no requests
                    other_kinds[given.value] = kind
                else:
                    realtime.setdefault(given.value, given.line)
        named = [(splitter, splitter.name) for splitter in splitters]
        file_apis = FileApis(
            realtime=realtime,
            skipped=other_kinds,
            splitters={name: s.item.line for s, name in named if name is not None},
        )
        endpoints = {api.endpoint: (f"API {show(api.name)}", api.line) for api in apis}
        names: dict[str, int] = {}
        found: list[SplitterSpec] = []
        for splitter, name in named:
            if name is not None:
                line = splitter.values["name"].line
                if name in realtime:
                    splitter.error(
                        line,
                        "name",
                        f"{show(name)} is already the name of the API on line {realtime[name]} "
                        "(APIs and traffic splitters need unique names: each names a service)",
                    )
                    name = None
                elif name in names:
                    splitter.error(
                        line,
                        "name",
                        f"{show(name)} is already the name of the traffic splitter on line "
                        f"{names[name]} (names must be unique)",
                    )
                    name = None
                else:
                    names[name] = line
            spec = splitter.build(name, file_apis)
            if spec is None:
                continue
            if spec.endpoint in endpoints:
                what, other_line = endpoints[spec.endpoint]
                line, written = splitter.where("networking.endpoint")
                splitter.error(
                    line,
                    written,
                    f"{show(spec.endpoint)} is already the endpoint of {what} (line {other_line}); "
                    "endpoints must be unique",
                )
                continue
            endpoints[spec.endpoint] = (f"traffic splitter {show(spec.name)}", spec.line)
            found.append(spec)
        return found

    def _skip(self, item: YNode, index: int) -> None:
        """A BatchAPI or TaskAPI of predictor code: noted and left out, so that the
        file's realtime APIs are still read."""
        kind = kind_of(item)
        name_node = item.value.get("name")
        name = (
            name_node.value
            if name_node is not None and schema.is_api_name(name_node.value)
            else None
        )
        self.skipped[name or f"api #{index}"] = kind
        self.reporter.note(
            item.key_lines["kind"],
            name or f"api #{index}",
            "kind",
            f"{kind} ({schema.UNSUPPORTED_KINDS[kind]}) is skipped: cortex-build does not serve "
            "it yet; the file's realtime APIs are read",
        )

    def _deployment(self, items: list[YNode]) -> str | None:
        """The name of v0.9-v0.11's `kind: deployment`, which prefixes default endpoints."""
        found: list[tuple[YNode, str | None]] = []
        for item in items:
            if not item.is_map or kind_of(item) != "deployment":
                continue
            walk = TableWalk({}, self.reporter, "deployment")
            values = walk.table(item, schema.DEPLOYMENT, "", "")
            name = values.get("name")
            if name is not None and not check_dns_name(
                name.value, name.line, "deployment", "name", self.reporter
            ):
                name = None
            found.append((item, name.value if name else None))
        if len(found) > 1:
            for item, _ in found[1:]:
                self.reporter.error(
                    item.line,
                    "deployment",
                    "kind",
                    f"only one kind: deployment may be given (first on line {found[0][0].line})",
                )
        return found[0][1] if found else None

    def _check_unique(
        self, built: list[tuple[ApiReader, ApiSpec | ContainerApiSpec | None]]
    ) -> None:
        names: dict[str, int] = {}
        endpoints: dict[str, tuple[str, int]] = {}
        for reader, api in built:
            name = reader.values.get("name")
            if name is not None and name.value == reader.label:  # a valid name
                if name.value in names:
                    reader.error(
                        name.line,
                        "name",
                        f"{show(name.value)} is already the name of the API on line "
                        f"{names[name.value]} (names must be unique)",
                    )
                    continue
                names[name.value] = name.line
            if api is None:
                continue
            line, written = reader.where("networking.endpoint")
            if api.endpoint in endpoints:
                other, other_line = endpoints[api.endpoint]
                reader.error(
                    line,
                    written,
                    f"{show(api.endpoint)} is already the endpoint of API {show(other)} "
                    f"(line {other_line}); endpoints must be unique",
                )
            else:
                endpoints[api.endpoint] = (api.name, line)


def kind_of(item: YNode) -> Any:
    kind = item.value.get("kind")
    return kind.value if kind is not None else None
