"""Reading cortex.yaml, any generation, into one normalized `Project` (see spec.py).

Reading happens in two passes per API. The table walk (schema.py) checks every key and value where
it is written and files it under its newest name; the build pass applies defaults and the rules
that involve several fields, the predictor file and the project folder. Every problem found goes
into one `UserError`, so the user fixes the whole file in one round.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import schema
from .errors import Problem, UserError
from .project_files import hidden_in_model
from .schema import BadValue, Field
from .spec import (
    DEFAULT_MODEL_NAME,
    ApiSpec,
    AutoscalingSpec,
    BatchingSpec,
    ComputeSpec,
    ModelRef,
    ModelsSpec,
    PredictorSpec,
    Project,
    TrackerSpec,
    UpdateStrategySpec,
)
from .yamlsource import YamlProblem, YNode, parse_yaml

DEFAULT_CONFIG_NAME = "cortex.yaml"

# The class each predictor type must define (interface "class", v0.12 and later).
PREDICTOR_CLASSES = {
    "python": "PythonPredictor",
    "tensorflow": "TensorFlowPredictor",
    "onnx": "ONNXPredictor",
}
HANDLER_FUNCTIONS = ("pre_inference", "post_inference")


def load_project(project_dir: Path, config_file: Path | None = None) -> Project:
    """Reads and validates the project's config; raises UserError listing every problem."""
    root = Path(project_dir)
    config_path, display = _locate_config(root, config_file)
    reporter = _Reporter(display)
    if not root.is_dir():
        reporter.error(
            None,
            None,
            None,
            f"the project folder {_show(str(root), limit=1000)} "
            + ("is not a folder" if root.exists() else "does not exist"),
        )
        raise UserError(reporter.problems)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "" if config_file else " in the project folder (name another file with -c FILE)"
        reporter.error(None, None, None, f"file not found{hint}")
        raise UserError(reporter.problems) from None
    except (OSError, UnicodeDecodeError) as err:
        reporter.error(None, None, None, f"cannot be read: {err}")
        raise UserError(reporter.problems) from None
    apis = _ProjectReader(root.resolve(), reporter).read(text)
    if reporter.problems:
        raise UserError(reporter.problems)
    return Project(
        root=root,
        config_file=config_path,
        apis=tuple(apis),
        notes=tuple(str(note) for note in sorted(reporter.notes, key=lambda n: n.line or 0)),
    )


def _locate_config(root: Path, config_file: Path | None) -> tuple[Path, str]:
    """The config path and the name messages show: as the user gave it, else "cortex.yaml"."""
    if config_file is None:
        return root / DEFAULT_CONFIG_NAME, DEFAULT_CONFIG_NAME
    config_file = Path(config_file)
    if not config_file.is_absolute() and not config_file.exists():
        # `-c prod.yaml` with a project folder: the file may live in the project
        in_project = root / config_file
        if in_project.exists():
            return in_project, str(config_file)
    return config_file, str(config_file)


# ---------------------------------------------------------------------------------------------
# Reporting


class _Reporter:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []

    def error(self, line: int | None, api: str | None, field: str | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, api, field, message))

    def note(self, line: int | None, api: str | None, field: str | None, message: str) -> None:
        self.notes.append(Problem(self.file, line, api, field, message))


def model_layout_problem(path: Path, ptype: str) -> str | None:
    """What is wrong with a local model's layout for its predictor type, or None.

    TensorFlow: a SavedModel folder (saved_model.pb inside), or integer version folders each
    holding one. ONNX: a .onnx file, a folder holding one, or integer version folders each
    holding one. Unversioned is version 1, as at runtime (cortex_serve/models.py).
    """
    if ptype == "tensorflow":
        layout = (
            "expected a SavedModel folder holding saved_model.pb (version 1), or integer version "
            "folders (1/, 2/, ...) each holding saved_model.pb"
        )
    else:
        layout = (
            "expected a .onnx file or a folder holding one (version 1), or integer version "
            "folders (1/, 2/, ...) each holding one .onnx file"
        )
    if path.is_file():
        if ptype == "onnx" and path.suffix == ".onnx":
            return None
        kind = "a SavedModel folder" if ptype == "tensorflow" else "a .onnx file or a folder"
        return f"invalid {ptype} model: must be {kind} (got the file {path.name}); {layout}"
    versions = sorted(
        (int(child.name), child)
        for child in path.iterdir()
        if child.is_dir() and child.name.isascii() and child.name.isdigit()  # not "²"
    )
    folders = [child for _, child in versions] or [path]
    for folder in folders:
        label = f"version folder {folder.name}" if versions else "the folder"
        if ptype == "tensorflow":
            if not (folder / "saved_model.pb").is_file():
                return f"invalid tensorflow model: {label} holds no saved_model.pb; {layout}"
        else:
            found = sorted(child.name for child in folder.glob("*.onnx") if child.is_file())
            if len(found) != 1:
                listed = ", ".join(found) or "none"
                return (
                    f"invalid onnx model: {label} must hold exactly one .onnx file (found "
                    f"{listed}); {layout}"
                )
    return None


def _show(value: Any, limit: int = 60) -> str:
    """A user's value inside a message: quoted and escaped, so it can never break the line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _choices(choices: tuple[str, ...]) -> str:
    quoted = [json.dumps(c) for c in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + ", or " + quoted[-1]


def unknown_key_message(key: str, known: Mapping[str, Any]) -> str:
    """`key "pth" is not supported (did you mean "path"?)`, or, for a key that belongs in another
    section, `key "min_replicas" is not supported here (it belongs in autoscaling)`."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return f"key {_show(key)} is not supported (did you mean {json.dumps(close[0])}?)"
    sections = schema.sections_with_key(key)
    if sections:
        return f"key {_show(key)} is not supported here (it belongs in {' or '.join(sections)})"
    return f"key {_show(key)} is not supported"


# ---------------------------------------------------------------------------------------------
# The whole file


@dataclass
class Located:
    value: Any
    line: int
    written: str  # dotted path as written in the file, for messages


_SECTION = object()  # Located.value of a section: "this section was given"


class _ProjectReader:
    def __init__(self, root: Path, reporter: _Reporter):
        self.root = root
        self.reporter = reporter

    def read(self, text: str) -> list[ApiSpec]:
        try:
            parsed = parse_yaml(text)
        except YamlProblem as problem:
            self.reporter.error(problem.line, None, None, problem.message)
            return []
        for problem in parsed.problems:
            self.reporter.error(problem.line, None, None, problem.message)
        top = parsed.root
        if top is None or (top.is_list and not top.value):
            self.reporter.error(
                1, None, None, 'contains no APIs (expected a list of APIs, each starting "- name:")'
            )
            return []
        if not top.is_list:
            got = "a map" if top.is_map else _show(top.value)
            self.reporter.error(
                top.line,
                None,
                None,
                f'must be a list of APIs, each starting "- name:" (got {got})',
            )
            return []

        deployment = self._deployment(top.value)
        readers: list[_ApiReader] = []
        for index, item in enumerate(top.value, start=1):
            if item.refused:
                continue
            if not item.is_map:
                self.reporter.error(
                    item.line,
                    f"api #{index}",
                    None,
                    f"must be a map of API fields (got {_show(item.value)})",
                )
                continue
            if _kind_of(item) == "deployment":
                continue
            reader = _ApiReader(item, index, self.root, self.reporter, deployment)
            readers.append(reader)
        built = [(reader, reader.read()) for reader in readers]
        self._check_unique(built)
        return [api for _, api in built if api is not None]

    def _deployment(self, items: list[YNode]) -> str | None:
        """The name of v0.9-v0.11's `kind: deployment`, which prefixes default endpoints."""
        found: list[tuple[YNode, str | None]] = []
        for item in items:
            if not item.is_map or _kind_of(item) != "deployment":
                continue
            values = _walk_table(item, schema.DEPLOYMENT, "", "", {}, self.reporter, "deployment")
            name = values.get("name")
            if name is not None and not _check_dns_name(
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

    def _check_unique(self, built: list[tuple[_ApiReader, ApiSpec | None]]) -> None:
        names: dict[str, int] = {}
        endpoints: dict[str, tuple[str, int]] = {}
        for reader, api in built:
            name = reader.values.get("name")
            if name is not None and name.value == reader.label:  # a valid name
                if name.value in names:
                    reader.error(
                        name.line,
                        "name",
                        f"{_show(name.value)} is already the name of the API on line "
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
                    f"{_show(api.endpoint)} is already the endpoint of API {_show(other)} "
                    f"(line {other_line}); endpoints must be unique",
                )
            else:
                endpoints[api.endpoint] = (api.name, line)


def _kind_of(item: YNode) -> Any:
    kind = item.value.get("kind")
    return kind.value if kind is not None else None


def _check_dns_name(
    value: str, line: int, api: str | None, field: str, reporter: _Reporter
) -> bool:
    if len(value) > schema.API_NAME_MAX:
        reporter.error(
            line,
            api,
            field,
            f"must be at most {schema.API_NAME_MAX} characters (got {len(value)}: {_show(value)})",
        )
        return False
    if not schema.DNS_1035.fullmatch(value):
        reporter.error(
            line,
            api,
            field,
            "must contain only lowercase letters, digits and '-', start with a letter and not "
            f"end with '-' (got {_show(value)})",
        )
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Pass 1: the table walk


def _walk_table(
    node: YNode,
    table: Mapping[str, Field],
    written_prefix: str,
    target_prefix: str,
    out: dict[str, Located],
    reporter: _Reporter,
    api: str | None,
    rejected: set[str] | None = None,
) -> dict[str, Located]:
    """Checks each key of `node` against `table` and files its value in `out` by target path.

    Targets whose value was reported as wrong go into `rejected`, so later rules neither use them
    nor report them again as missing."""
    rejected = set() if rejected is None else rejected
    for key, line, first in node.duplicates:
        reporter.error(
            line, api, _join(written_prefix, str(key)), f"given twice (first on line {first})"
        )
    for key, child in node.value.items():
        line = node.key_lines[key]
        if not isinstance(key, str):
            reporter.error(
                line,
                api,
                written_prefix or None,
                f"key {_show(key)} is not supported (keys are field names)",
            )
            continue
        field = table.get(key)
        if field is None:
            reporter.error(line, api, written_prefix or None, unknown_key_message(key, table))
            continue
        written = _join(written_prefix, key)
        target = field.target or _join(target_prefix, key)
        if field.note or field.old:
            reporter.note(line, api, written, field.note or f"old name, read as {target}")
        if target in out:
            other = out[target]
            reporter.error(
                line,
                api,
                written,
                f"cannot be given together with {other.written} (line {other.line}): "
                f"both set {target}",
            )
            continue
        value = _read_value(child, field, line, written, target, out, reporter, api, rejected)
        if value is _INVALID:
            rejected.add(target)
        else:
            out[target] = Located(value, line, written)
    for key, field in table.items():
        target = field.target or _join(target_prefix, key)
        if field.required and target not in out and target not in rejected:
            reporter.error(node.line, api, _join(written_prefix, key), "must be provided")
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_INVALID = object()

# Fields that only configs written for v0.18 and later use (a config without `kind` that uses one
# is read with v0.2x's defaults).
_V02X_ONLY = {
    "networking",
    "monitoring",
    "predictor.model_path",
    "predictor.models",
    "predictor.multi_model_reloading",
    "predictor.server_side_batching",
    "predictor.processes_per_replica",
    "predictor.threads_per_process",
    "predictor.image",
    "predictor.tensorflow_serving_image",
    "predictor.log_level",
    "predictor.shm_size",
    "autoscaling.processes_per_replica",
    "autoscaling.threads_per_process",
}


def _read_value(
    node: YNode,
    field: Field,
    line: int,
    written: str,
    target: str,
    out: dict[str, Located],
    reporter: _Reporter,
    api: str | None,
    rejected: set[str],
) -> Any:
    if node.refused:
        return _INVALID

    def bad(message: str) -> object:
        reporter.error(line, api, written, message)
        return _INVALID

    value = node.value
    if field.kind == "section" and node.is_list and field.list_form is not None:
        # the list form of the section (v0.19-v0.24's `models: [{name, model_path}]`)
        list_target = _join(target, "paths")
        reporter.note(line, api, written, field.list_form.note or f"read as {list_target}")
        items = _read_value(
            node, field.list_form, line, written, list_target, out, reporter, api, rejected
        )
        if items is _INVALID:
            rejected.add(list_target)
        else:
            out[list_target] = Located(items, line, written)
        return _SECTION
    if field.kind == "section":
        if value is None:
            return _SECTION
        if not node.is_map:
            return bad(f"must be a map (got {_show(value)})")
        _walk_table(node, field.section or {}, written, target, out, reporter, api, rejected)
        return _SECTION
    if field.kind == "section_list":
        if not node.is_list:
            return bad(f"must be a list (got {_show(value)})")
        items = []
        for index, item in enumerate(node.value):
            item_path = f"{written}[{index}]"
            if item.refused:
                continue
            if not item.is_map:
                reporter.error(
                    item.line, api, item_path, f"must be a map (got {_show(item.value)})"
                )
                continue
            values = _walk_table(item, field.section or {}, item_path, "", {}, reporter, api)
            items.append((item.line, values))
        return items
    if field.kind == "any_map":
        if value is None:
            return {}
        if not node.is_map:
            return bad(f"must be a map (got {_show(value)})")
        try:
            return node.plain()
        except ValueError as err:
            return bad(str(err))
    if field.kind == "string_map":
        return _read_env(node, line, written, reporter, api)
    if value is None and field.nullable:
        return None
    try:
        return _convert_scalar(value, field)
    except BadValue as err:
        return bad(str(err))


def _convert_scalar(value: Any, field: Field) -> Any:
    kind = field.kind
    got = f"(got {_show(value)})"
    if kind == "string":
        if not isinstance(value, str):
            raise BadValue(f"must be a string {got}")
        if value == "":
            raise BadValue("must not be empty")
        if field.choices and value not in field.choices:
            raise BadValue(f"invalid value (got {_show(value)}, must be {_choices(field.choices)})")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(f"must be an integer {got}")
        _check_range(value, value, field)
        return value
    if kind == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise BadValue(f"must be a number {got}")
        _check_range(float(value), value, field)
        return float(value)
    if kind == "duration":
        if not isinstance(value, str):
            raise BadValue(f"must be {schema.DURATION_HINT} {got}")
        try:
            seconds = schema.parse_duration(value)
        except BadValue as err:
            raise BadValue(f"{err} {got}") from None
        _check_range(seconds, value, field)
        return seconds
    parsers = {
        "cpu": schema.parse_cpu,
        "quantity": schema.parse_quantity,
        "int_or_percent": schema.parse_int_or_percent,
    }
    try:
        return parsers[kind](value)
    except BadValue as err:
        raise BadValue(f"{err} {got}") from None


def _check_range(number: float, shown: Any, field: Field) -> None:
    got = f"(got {_show(shown)})"
    if field.min is not None:
        if field.min_exclusive and number <= field.min:
            raise BadValue(f"must be greater than {_num(field.min)} {got}")
        if number < field.min:
            raise BadValue(f"must be greater than or equal to {_num(field.min)} {got}")
    if field.max is not None and number > field.max:
        raise BadValue(f"must be less than or equal to {_num(field.max)} {got}")


def _read_env(node: YNode, line: int, written: str, reporter: _Reporter, api: str | None) -> Any:
    if node.value is None:
        return {}
    if not node.is_map:
        reporter.error(
            line, api, written, f"must be a map of names to values (got {_show(node.value)})"
        )
        return _INVALID
    env: dict[str, str] = {}
    for key, child in node.value.items():
        key_line = node.key_lines[key]
        if not isinstance(key, str) or not schema.ENV_KEY.fullmatch(key):
            reporter.error(
                key_line,
                api,
                written,
                f"variable name {_show(key)} must be letters, digits and '_', not starting "
                "with a digit",
            )
            continue
        if key.upper().startswith(schema.RESERVED_ENV_PREFIX):
            reporter.error(
                key_line,
                api,
                written,
                f"variable name {_show(key)} is reserved (names starting with "
                f"{schema.RESERVED_ENV_PREFIX} are set by cortex-build)",
            )
            continue
        value = child.value
        if child.refused:
            continue
        if isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            env[key] = str(value)
        else:
            reporter.error(
                key_line, api, f"{written}.{key}", f"must be a string (got {_show(value)})"
            )
    for key, dup_line, first in node.duplicates:
        reporter.error(
            dup_line, api, written, f"variable {_show(key)} given twice (first on line {first})"
        )
    return env


# ---------------------------------------------------------------------------------------------
# Pass 2: one API


class _ApiReader:
    def __init__(
        self, item: YNode, index: int, root: Path, reporter: _Reporter, deployment: str | None
    ):
        self.item = item
        self.root = root
        self.reporter = reporter
        self.deployment = deployment
        name_node = item.value.get("name")
        valid_name = name_node is not None and schema.is_api_name(name_node.value)
        # an invalid name is never echoed as the label: it could hold anything
        self.label = name_node.value if valid_name else f"api #{index}"  # type: ignore[union-attr]
        self.values: dict[str, Located] = {}
        self.rejected: set[str] = set()
        self.generation = "v0.2x"

    # -- helpers ---------------------------------------------------------------------------

    def error(self, line: int | None, field: str | None, message: str) -> None:
        self.reporter.error(line, self.label, field, message)

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

    # -- the API -----------------------------------------------------------------------------

    def read(self) -> ApiSpec | None:
        problems_before = len(self.reporter.problems)
        kind = self._kind()
        _walk_table(
            self.item, schema.API, "", "", self.values, self.reporter, self.label, self.rejected
        )
        self.generation = self._generation(kind)
        name = self._name()
        predictor = self._predictor(kind)
        compute = self._compute()
        if predictor is not None and compute is not None:
            self._check_shm(predictor, compute)
        autoscaling = self._autoscaling(predictor)
        update_strategy = self._update_strategy()
        tracker = self._tracker()
        endpoint = self._endpoint(kind, name)
        if (
            len(self.reporter.problems) > problems_before
            or name is None
            or predictor is None
            or compute is None
            or autoscaling is None
            or endpoint is None
        ):
            if not self.reporter.problems:  # never drop an API silently
                self.error(self.item.line, None, "cannot be read")
            return None
        return ApiSpec(
            name=name,
            generation=self.generation,
            endpoint=endpoint,
            predictor=predictor,
            compute=compute,
            autoscaling=autoscaling,
            update_strategy=update_strategy,
            tracker=tracker,
            line=self.item.line,
        )

    def _kind(self) -> str | None:
        node = self.item.value.get("kind")
        if node is None or node.refused:
            return None
        line = self.item.key_lines["kind"]
        kind = node.value
        if kind in schema.UNSUPPORTED_KINDS:
            self.error(
                line,
                "kind",
                f"kind {kind} is not supported: cortex-build serves realtime "
                "APIs (kind: RealtimeAPI)",
            )
        elif kind == "SyncAPI":
            self.note(line, "kind", "old name, read as RealtimeAPI")
            return "RealtimeAPI"
        elif kind in ("RealtimeAPI", "api"):
            return kind
        elif isinstance(kind, str):
            message = f"invalid value (got {_show(kind)}, must be {_choices(schema.API_KINDS)})"
            close = difflib.get_close_matches(kind, schema.API_KINDS, n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {json.dumps(close[0])}?)"
            self.error(line, "kind", message)
        return None  # a kind that is not a string is reported by the table walk

    def _generation(self, kind: str | None) -> str:
        """Which generation the API was written against (refined for kind: api predictors once
        their file is read: init(metadata) is v0.9's, init(model_path, metadata) v0.10's)."""
        if kind == "api" or "tensorflow" in self.item.value or "onnx" in self.item.value:
            return "v0.9" if "predictor" not in self.item.value else "v0.10"
        if kind == "RealtimeAPI":
            return "v0.2x"
        written = {loc.written for loc in self.values.values()}
        if written & _V02X_ONLY:
            return "v0.2x"
        if (
            written & {"predictor.model", "predictor.signature_key"}
            or "autoscaling" in self.item.value
            or "update_strategy" in self.item.value
            or self.get("predictor.type") in ("tensorflow", "onnx")
        ):
            return "v0.15"
        return "v0.12"

    def _name(self) -> str | None:
        found = self.values.get("name")
        if found is None:
            return None  # reported by the walk
        if not _check_dns_name(found.value, found.line, self.label, "name", self.reporter):
            return None
        return found.value

    def _endpoint(self, kind: str | None, name: str | None) -> str | None:
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
            self.error(
                found.line,
                found.written,
                "must be a URL path of letters, digits and '-', '.', '_', '~', '/' "
                f"(got {_show(found.value)})",
            )
            return None
        if endpoint in schema.RESERVED_ENDPOINTS:
            self.error(
                found.line,
                found.written,
                f"{endpoint} is reserved (the server's "
                f"{schema.RESERVED_ENDPOINTS[endpoint]}); choose another endpoint",
            )
            return None
        return endpoint

    # -- predictor ---------------------------------------------------------------------------

    def _predictor(self, kind: str | None) -> PredictorSpec | None:
        given = [key for key in ("predictor", "tensorflow", "onnx") if key in self.item.value]
        if not given:
            expected = "predictor, tensorflow or onnx" if kind == "api" else "predictor"
            self.error(
                self.item.line,
                "predictor",
                f"must be provided (one of {expected})" if kind == "api" else "must be provided",
            )
            return None
        source = given[0]
        if len(given) > 1 or "predictor" not in self.values:
            return None  # reported by the walk (two sections set `predictor`) or not a map
        ptype, interface = self._type_and_interface(source, kind)
        path = self._predictor_path(interface)
        python_path = self._project_path("predictor.python_path", want="dir")
        models = self._models(ptype, interface)
        batching = self._batching()
        processes = self.get("predictor.processes_per_replica", 1)
        threads = self.get("predictor.threads_per_process", 1)
        image = self._image("predictor.image")
        tf_serving_image = self._image("predictor.tensorflow_serving_image")
        if tf_serving_image and ptype not in (None, "tensorflow"):
            self.fail(
                "predictor.tensorflow_serving_image",
                f"only applies to type: tensorflow (got type: {ptype})",
            )
        if ptype is None or interface is None or path is None:
            return None
        if interface != "handlers" and path:
            self._check_predictor_file(path, ptype, interface, models)
        return PredictorSpec(
            type=ptype,
            interface=interface,
            path=path,
            config=self.get("predictor.config", {}),
            python_path=python_path,
            env=self.get("predictor.env", {}),
            models=models,
            server_side_batching=batching,
            processes_per_replica=processes,
            threads_per_process=threads,
            image=image,
            tensorflow_serving_image=tf_serving_image,
            log_level=self.get("predictor.log_level", "info"),
            shm_size=self.get("predictor.shm_size"),
        )

    def _type_and_interface(self, source: str, kind: str | None) -> tuple[Any, Any]:
        if source in ("tensorflow", "onnx"):
            return source, "handlers"
        ptype = self.get("predictor.type")
        if kind == "api":
            if ptype not in (None, "python"):
                self.fail(
                    "predictor.type",
                    "a kind: api predictor is a Python file of module "
                    "functions; give a TensorFlow or ONNX model as tensorflow: or onnx:",
                )
                return None, None
            return "python", "functions"
        if ptype is None:
            self.missing("predictor.type", f"must be provided (one of {_choices(schema.TYPES)})")
        return ptype, "class"

    def _predictor_path(self, interface: str | None) -> str | None:
        if "predictor.path" not in self.values:
            if interface == "handlers" and "predictor.path" not in self.rejected:
                return ""  # no request_handler: requests go straight to the model
            self.missing(
                "predictor.path",
                "must be provided (the predictor's Python file, relative to the project folder)",
            )
            return None
        path = self._project_path("predictor.path", want="file")
        if path is not None and interface == "handlers":
            self._check_python_file(path, "predictor.path", self._handlers_rule)
        return path

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
        self.error(line, written, f"must be a path of {schema.SAFE_PATH_HINT} (got {_show(raw)})")
        return False

    def _inside_project(self, raw: str, line: int, written: str, want: str) -> str | None:
        if not self._safe_path(raw, line, written):
            return None
        if os.path.isabs(raw):
            self.error(
                line, written, f"must be a path relative to the project folder (got {_show(raw)})"
            )
            return None
        relative = Path(os.path.normpath(raw)).as_posix()
        # resolve() follows symbolic links: a link leading out of the project is refused too,
        # since the build context would hold a dangling link
        resolved = (self.root / raw).resolve()
        if relative == ".." or relative.startswith("../") or not resolved.is_relative_to(self.root):
            self.error(line, written, f"must stay inside the project folder (got {_show(raw)})")
            return None
        what = {"file": "file", "dir": "folder", "any": "file or folder"}[want]
        if not resolved.exists():
            self.error(
                line,
                written,
                f"{_show(raw)} does not exist (expected a {what} in the project folder)",
            )
            return None
        if want == "file" and not resolved.is_file():
            self.error(line, written, f"{_show(raw)} must be a file (got a folder)")
            return None
        if want == "dir" and not resolved.is_dir():
            self.error(line, written, f"{_show(raw)} must be a folder (got a file)")
            return None
        return relative

    # -- predictor file ------------------------------------------------------------------------

    def _check_predictor_file(
        self, path: str, ptype: str, interface: str, models: ModelsSpec | None
    ) -> None:
        if interface == "class":

            def rule(names: dict[str, ast.AST]) -> str | None:
                return self._class_rule(names, path, ptype, models)
        else:

            def rule(names: dict[str, ast.AST]) -> str | None:
                return self._functions_rule(names, path)

        self._check_python_file(path, "predictor.path", rule)

    def _check_python_file(self, path: str, target: str, rule: Any) -> None:
        line, written = self.where(target)
        try:
            source = (self.root / path).read_bytes()
            tree = ast.parse(source, filename=path)
        except SyntaxError as err:
            self.error(line, written, f"{path}:{err.lineno}: invalid Python: {err.msg}")
            return
        except (ValueError, OSError) as err:
            self.error(line, written, f"{path}: cannot be read as Python: {err}")
            return
        message = rule(_top_level_names(tree.body))
        if message:
            self.error(line, written, message)

    def _class_rule(
        self, names: dict[str, ast.AST], path: str, ptype: str, models: ModelsSpec | None
    ) -> str | None:
        class_name = PREDICTOR_CLASSES[ptype]
        node = names.get(class_name)
        if node is None:
            return f"{path} defines no class {class_name} (expected for type: {ptype})"
        if not isinstance(node, ast.ClassDef) or node.bases:
            return None  # imported or inherited: its methods cannot be seen from here
        methods = _top_level_names(node.body)
        if "predict" not in methods:
            return f"class {class_name} in {path} defines no predict method"
        if ptype == "python" and models is not None and "load_model" not in methods:
            return (
                f"class {class_name} in {path} defines no load_model method (required with "
                "multi_model_reloading)"
            )
        return None

    def _functions_rule(self, names: dict[str, ast.AST], path: str) -> str | None:
        if "predict" not in names:
            return f"{path} defines no function predict (expected for a kind: api predictor)"
        init = names.get("init")
        arity = (
            len(init.args.posonlyargs) + len(init.args.args)
            if isinstance(init, (ast.FunctionDef, ast.AsyncFunctionDef))
            else None
        )
        # init(metadata) is v0.9's; init(model_path, metadata) v0.10's
        if arity == 1 or (arity is None and "predictor.models.path" not in self.values):
            self.generation = "v0.9"
        return None

    @staticmethod
    def _handlers_rule(names: dict[str, ast.AST]) -> str | None:
        if not any(name in names for name in HANDLER_FUNCTIONS):
            return (
                "defines neither pre_inference nor post_inference (expected in a request handler)"
            )
        return None

    # -- models --------------------------------------------------------------------------------

    def _models(self, ptype: str | None, interface: str | None) -> ModelsSpec | None:
        given = {t: loc for t, loc in self.values.items() if t.startswith("predictor.models")}
        if not given:
            if ptype in ("tensorflow", "onnx") and interface == "class":
                self.missing(
                    "predictor.models",
                    f"must be provided for type: {ptype} (the model to serve: path, paths or dir)",
                )
            return None
        if ptype is None:
            return None
        section = given.get("predictor.models")
        written_section = section.written if section else None
        old_model = self.values.get("predictor.models.path")
        if ptype == "python" and interface == "class":
            if old_model is not None and old_model.written == "predictor.model":
                self.error(
                    old_model.line,
                    old_model.written,
                    "not supported for type: python (use multi_model_reloading)",
                )
                return None
            if section is not None and written_section == "predictor.models":
                # v0.23-v0.24 python predictors named their models `models`
                self.note(
                    section.line,
                    section.written,
                    "read as multi_model_reloading for type: python (its name since v0.25)",
                )
        if ptype == "python" and interface == "functions" and section is not None:
            self.error(
                section.line, section.written, "not supported in a kind: api predictor (use model)"
            )
            return None
        if ptype != "python" and written_section == "predictor.multi_model_reloading":
            self.error(
                section.line,
                section.written,
                f"only applies to type: python (use models for type: {ptype})",
            )
            return None

        one_of = [key for key in ("path", "paths", "dir") if f"predictor.models.{key}" in given]
        if not one_of:
            self.fail("predictor.models", "must give one of path, paths or dir")
            return None
        if len(one_of) > 1:
            loc = given[f"predictor.models.{one_of[1]}"]
            self.error(
                loc.line,
                loc.written,
                f"only one of path, paths or dir may be given (got {' and '.join(one_of)})",
            )
            return None

        refs: list[ModelRef] = []
        directory = None
        if "path" in one_of:
            loc = given["predictor.models.path"]
            path = self._model_path(loc.value, loc.line, loc.written, want="any")
            if path is not None:
                self._check_layout(path, ptype, loc.line, loc.written)
                refs.append(ModelRef(DEFAULT_MODEL_NAME, path))
        elif "paths" in one_of:
            refs = self._model_paths(given["predictor.models.paths"], ptype)
        else:
            loc = given["predictor.models.dir"]
            directory = self._model_path(loc.value, loc.line, loc.written, want="dir")
            if directory is not None and not schema.REMOTE_PATH.fullmatch(directory):
                self._check_model_dir(directory, loc, ptype)

        signature = given.get("predictor.models.signature_key")
        if signature is not None and ptype != "tensorflow":
            self.error(
                signature.line,
                signature.written,
                f"only applies to type: tensorflow (got type: {ptype})",
            )
        cache = given.get("predictor.models.cache_size")
        disk = given.get("predictor.models.disk_cache_size")
        if (cache is None) != (disk is None):
            present = cache or disk
            assert present is not None
            missing = "disk_cache_size" if cache else "cache_size"
            self.error(
                present.line,
                present.written,
                f"must be given together with {missing} (both or neither)",
            )
        elif cache is not None and disk is not None and cache.value > disk.value:
            self.error(
                cache.line,
                cache.written,
                f"cache_size cannot be greater than disk_cache_size ({cache.value} > {disk.value})",
            )
        return ModelsSpec(
            paths=tuple(refs),
            dir=directory,
            signature_key=signature.value if signature else None,
            cache_size=cache.value if cache else None,
            disk_cache_size=disk.value if disk else None,
        )

    def _model_paths(self, loc: Located, ptype: str) -> list[ModelRef]:
        refs: list[ModelRef] = []
        seen: dict[str, int] = {}
        if not loc.value:
            self.error(loc.line, loc.written, "must list at least one model")
        for item_line, values in loc.value:
            name, path = values.get("name"), values.get("path")
            signature = values.get("signature_key")
            if signature is not None and ptype != "tensorflow":
                self.error(
                    signature.line,
                    signature.written,
                    f"only applies to type: tensorflow (got type: {ptype})",
                )
            if name is None or path is None:
                continue  # reported by the walk
            if name.value == DEFAULT_MODEL_NAME:
                self.error(
                    name.line,
                    name.written,
                    f"{DEFAULT_MODEL_NAME} is reserved (the name of a single model)",
                )
                continue
            if not schema.MODEL_NAME.fullmatch(name.value):
                self.error(
                    name.line,
                    name.written,
                    "must be letters, digits, '-', '_' or '.', start with a letter or "
                    f"digit and be at most 63 characters (got {_show(name.value)})",
                )
                continue
            if name.value in seen:
                self.error(
                    name.line,
                    name.written,
                    f"model {_show(name.value)} is already defined on line "
                    f"{seen[name.value]} (names must be unique)",
                )
                continue
            seen[name.value] = item_line
            model_path = self._model_path(path.value, path.line, path.written, want="any")
            if model_path is not None:
                self._check_layout(model_path, ptype, path.line, path.written)
                refs.append(
                    ModelRef(name.value, model_path, signature.value if signature else None)
                )
        return refs

    def _check_model_dir(self, directory: str, loc: Located, ptype: str) -> None:
        """Each sub-folder of a local `dir` is a model named after it (problems show its path as
        written, relative to the project where it is)."""
        folder = self.root / directory
        names = sorted(child.name for child in folder.iterdir() if child.is_dir())
        if not names:
            self.error(
                loc.line,
                loc.written,
                f"{_show(loc.value)} holds no model folders (each "
                "sub-folder is a model named after it)",
            )
        for name in names:
            if name == DEFAULT_MODEL_NAME or not schema.MODEL_NAME.fullmatch(name):
                self.error(
                    loc.line,
                    loc.written,
                    f"sub-folder {_show(name)} cannot be a model "
                    "name (letters, digits, '-', '_' or '.', starting with a letter or "
                    f"digit, not {DEFAULT_MODEL_NAME})",
                )
            else:
                self._check_layout(f"{directory.rstrip('/')}/{name}", ptype, loc.line, loc.written)

    def _check_layout(self, path: str, ptype: str | None, line: int, written: str) -> None:
        """A local TensorFlow or ONNX model laid out as Cortex expected (remote ones are
        checked when fetched)."""
        if ptype in ("tensorflow", "onnx") and not schema.REMOTE_PATH.fullmatch(path):
            problem = model_layout_problem(self.root / path, ptype)
            if problem is not None:
                self.error(line, written, f"{_show(path)}: {problem}")

    def _model_path(self, raw: str, line: int, written: str, want: str) -> str | None:
        """Remote models are taken as written; local ones must exist (relative: in the project)."""
        if raw.startswith("gs://"):  # Cortex read them; nothing here fetches them
            self.error(
                line,
                written,
                f"{_show(raw)}: gs:// model sources are not supported; use s3://, http(s):// "
                "or a local path",
            )
            return None
        if schema.REMOTE_PATH.fullmatch(raw):
            return raw
        if "://" in raw:
            self.error(
                line,
                written,
                "must be a local path or an s3://, http:// or https:// address without "
                f"spaces, quotes, backslashes or '$' (got {_show(raw)})",
            )
            return None
        if os.path.isabs(raw):
            if not self._safe_path(raw, line, written):
                return None
            if not os.path.exists(raw):
                self.error(line, written, f"{_show(raw)} does not exist")
                return None
            if want == "dir" and not os.path.isdir(raw):
                self.error(line, written, f"{_show(raw)} must be a folder (got a file)")
                return None
            local: str | None = raw
        else:
            local = self._inside_project(raw, line, written, want)
        if local is None:
            return None
        # The model's bytes go into the image, links followed: none may be a hidden file.
        hidden = hidden_in_model((self.root / local).resolve(), self.root)
        if hidden is not None:
            self.error(
                line,
                written,
                f"{_show(raw)}: {hidden}; hidden files (.env among them) never go into an image",
            )
            return None
        return local

    # -- the rest of the predictor --------------------------------------------------------------

    def _batching(self) -> BatchingSpec | None:
        size = self.get("predictor.server_side_batching.max_batch_size")
        interval = self.get("predictor.server_side_batching.batch_interval")
        if size is None or interval is None:
            return None  # absent, or a missing field was reported by the walk
        return BatchingSpec(max_batch_size=size, batch_interval=interval)

    def _image(self, target: str) -> str | None:
        found = self.values.get(target)
        if found is None:
            return None
        if not schema.is_image_ref(found.value):
            self.error(
                found.line,
                found.written,
                'must be an image reference like "python:3.11-slim" or '
                f'"registry.example.com/team/image:tag" (got {_show(found.value)})',
            )
            return None
        return found.value

    # -- compute, autoscaling, update strategy, tracker ------------------------------------------

    def _compute(self) -> ComputeSpec | None:
        gpu = self.get("compute.gpu", 0)
        inf = self.get("compute.inf", 0)
        if gpu > 0 and inf > 0:
            self.fail("compute.inf", "cannot be used together with compute.gpu (use one of them)")
            return None
        return ComputeSpec(
            cpu=self.get("compute.cpu", "200m"),
            gpu=gpu,
            inf=inf,
            mem=self.get("compute.mem"),
        )

    def _check_shm(self, predictor: PredictorSpec, compute: ComputeSpec) -> None:
        if predictor.shm_size and compute.mem:
            shm, mem = (
                schema.quantity_bytes(predictor.shm_size),
                schema.quantity_bytes(compute.mem),
            )
            if shm > mem:
                self.fail(
                    "predictor.shm_size",
                    f"cannot be greater than compute.mem ({predictor.shm_size} > {compute.mem})",
                )

    def _autoscaling(self, predictor: PredictorSpec | None) -> AutoscalingSpec | None:
        def value(key: str, default: Any) -> Any:
            return self.get(f"autoscaling.{key}", default)

        ok = True
        min_replicas = value("min_replicas", 1)
        max_replicas = value("max_replicas", 100)
        init_replicas = value("init_replicas", min_replicas)
        if min_replicas > max_replicas:
            self.fail(
                "autoscaling.min_replicas",
                "min_replicas cannot be greater than "
                f"max_replicas ({min_replicas} > {max_replicas})",
            )
            ok = False
        elif init_replicas < min_replicas:
            self.fail(
                "autoscaling.init_replicas",
                "init_replicas cannot be less than min_replicas "
                f"({init_replicas} < {min_replicas})",
            )
            ok = False
        elif init_replicas > max_replicas:
            self.fail(
                "autoscaling.init_replicas",
                "init_replicas cannot be greater than max_replicas "
                f"({init_replicas} > {max_replicas})",
            )
            ok = False
        processes = predictor.processes_per_replica if predictor else 1
        threads = predictor.threads_per_process if predictor else 1
        target = value("target_replica_concurrency", float(processes * threads))
        max_concurrency = value("max_replica_concurrency", 1024)
        if target > max_concurrency:
            self.fail(
                "autoscaling.target_replica_concurrency",
                "target_replica_concurrency cannot be greater than "
                f"max_replica_concurrency ({_num(target)} > {max_concurrency})",
            )
            ok = False
        if not ok:
            return None
        defaults = schema.autoscaling_defaults(self.generation)
        return AutoscalingSpec(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            init_replicas=init_replicas,
            target_replica_concurrency=float(target),
            max_replica_concurrency=max_concurrency,
            target_cpu_utilization=value("target_cpu_utilization", None),
            **{key: value(key, default) for key, default in defaults.items()},
        )

    def _update_strategy(self) -> UpdateStrategySpec:
        surge = self.get("update_strategy.max_surge", "25%")
        unavailable = self.get("update_strategy.max_unavailable", "25%")
        if schema.is_zero_int_or_percent(surge) and schema.is_zero_int_or_percent(unavailable):
            target = (
                "update_strategy.max_unavailable"
                if "update_strategy.max_unavailable" in self.values
                else "update_strategy.max_surge"
            )
            self.fail(
                target,
                "max_surge and max_unavailable cannot both be zero (a rolling "
                "update could not make progress)",
            )
        elif "%" in unavailable and int(unavailable[:-1]) > 100:
            self.fail(
                "update_strategy.max_unavailable",
                f"must be at most 100% (got {_show(unavailable)})",
            )
        return UpdateStrategySpec(max_surge=surge, max_unavailable=unavailable)

    def _tracker(self) -> TrackerSpec | None:
        model_type = self.get("tracker.model_type")
        if model_type is None:
            return None
        return TrackerSpec(model_type=model_type, key=self.get("tracker.key"))


def _top_level_names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a module (or class body) defines at its top level, including under if/try/with."""
    names: dict[str, ast.AST] = {}
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[stmt.name] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                names[(alias.asname or alias.name).split(".")[0]] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        names[node.id] = stmt
        elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            nested: list[ast.stmt] = list(getattr(stmt, "body", []))
            nested += getattr(stmt, "orelse", []) + getattr(stmt, "finalbody", [])
            for handler in getattr(stmt, "handlers", []):
                nested += handler.body
            names.update({k: v for k, v in _top_level_names(nested).items() if k not in names})
    return names
