"""Pass 1, the table walk: every key and value checked where it is written and filed under its
newest name (the schema package's tables)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field as dataclass_field
from typing import Any

from .. import schema
from ..schema import BadValue, Field
from ..yamlsource import YNode
from .reporting import Reporter, choices, num, show, unknown_key_message


@dataclass
class Located:
    value: Any
    line: int
    written: str  # dotted path as written in the file, for messages


SECTION = object()  # Located.value of a section: "this section was given"


def check_dns_name(value: str, line: int, api: str | None, field: str, reporter: Reporter) -> bool:
    if len(value) > schema.API_NAME_MAX:
        reporter.error(
            line,
            api,
            field,
            f"must be at most {schema.API_NAME_MAX} characters (got {len(value)}: {show(value)})",
        )
        return False
    if not schema.DNS_1035.fullmatch(value):
        reporter.error(
            line,
            api,
            field,
            "must contain only lowercase letters, digits and '-', start with a letter and not "
            f"end with '-' (got {show(value)})",
        )
        return False
    return True


@dataclass(frozen=True)
class TableWalk:
    """One walk of an entry: where its values are filed by target path (`out`), who reports its
    problems (against the label `api`), and the targets whose value was reported as wrong
    (`rejected`), so that later rules neither use them nor report them again as missing."""

    out: dict[str, Located]
    reporter: Reporter
    api: str | None
    rejected: set[str] = dataclass_field(default_factory=set)

    def table(
        self, node: YNode, table: Mapping[str, Field], written_prefix: str, target_prefix: str
    ) -> dict[str, Located]:
        """Checks each key of `node` against `table` and files its value in `out`."""
        reporter, api, out = self.reporter, self.api, self.out
        for key, line, first in node.duplicates:
            reporter.error(
                line, api, join(written_prefix, str(key)), f"given twice (first on line {first})"
            )
        for key, child in node.value.items():
            line = node.key_lines[key]
            if not isinstance(key, str):
                reporter.error(
                    line,
                    api,
                    written_prefix or None,
                    f"key {show(key)} is not supported (keys are field names)",
                )
                continue
            field = table.get(key)
            if field is None:
                message = unknown_key_message(key, table, written_prefix)
                reporter.error(line, api, written_prefix or None, message)
                continue
            written = join(written_prefix, key)
            target = field.target or join(target_prefix, key)
            if field.note or field.old:
                message = field.note or f"old name, read as {target}"
                reporter.old_name(line, api, written, message, field.current_until)
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
            self._file(target, self.value(child, field, line, written, target), line, written)
        for key, field in table.items():
            target = field.target or join(target_prefix, key)
            if field.required and target not in out and target not in self.rejected:
                reporter.error(node.line, api, join(written_prefix, key), "must be provided")
        return out

    def _file(self, target: str, value: Any, line: int, written: str) -> None:
        if value is INVALID:
            self.rejected.add(target)
        else:
            self.out[target] = Located(value, line, written)

    def value(self, node: YNode, field: Field, line: int, written: str, target: str) -> Any:
        """The value of one key, checked by its field; INVALID once a problem is reported."""
        if node.refused:
            return INVALID
        reporter, api = self.reporter, self.api

        def bad(message: str) -> object:
            reporter.error(line, api, written, message)
            return INVALID

        value = node.value
        if field.kind == "section" and node.is_list and field.list_form is not None:
            # the list form of the section (v0.19-v0.24's `models: [{name, model_path}]`)
            list_target = join(target, "paths")
            message = field.list_form.note or f"read as {list_target}"
            reporter.old_name(line, api, written, message, field.list_form.current_until)
            items = self.value(node, field.list_form, line, written, list_target)
            self._file(list_target, items, line, written)
            return SECTION
        if field.kind == "section":
            if value is None:
                return SECTION
            if not node.is_map:
                return bad(f"must be a map (got {show(value)})")
            self.table(node, field.section or {}, written, target)
            return SECTION
        if field.kind == "section_list":
            if not node.is_list:
                return bad(f"must be a list (got {show(value)})")
            items = []
            for index, item in enumerate(node.value):
                item_path = f"{written}[{index}]"
                if item.refused:
                    continue
                if not item.is_map:
                    message = f"must be a map (got {show(item.value)})"
                    reporter.error(item.line, api, item_path, message)
                    continue
                # each item is filed apart: its own values, its own rejected targets
                each = TableWalk({}, reporter, api)
                items.append((item.line, each.table(item, field.section or {}, item_path, "")))
            return items
        if field.kind == "any_map":
            if value is None:
                return {}
            if not node.is_map:
                return bad(f"must be a map (got {show(value)})")
            try:
                return node.plain()
            except ValueError as err:
                return bad(str(err))
        if field.kind == "string_map":
            return read_env(node, line, written, reporter, api)
        if field.kind == "string_list":
            return read_string_list(node, line, written, reporter, api)
        if value is None and field.nullable:
            return None
        try:
            return convert_scalar(value, field)
        except BadValue as err:
            return bad(str(err))


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


INVALID = object()


def convert_scalar(value: Any, field: Field) -> Any:
    kind = field.kind
    got = f"(got {show(value)})"
    if kind == "string":
        if not isinstance(value, str):
            raise BadValue(f"must be a string {got}")
        if value == "":
            raise BadValue("must not be empty")
        if field.choices and value not in field.choices:
            raise BadValue(f"invalid value (got {show(value)}, must be {choices(field.choices)})")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadValue(f"must be true or false {got}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(f"must be an integer {got}")
        check_range(value, value, field)
        return value
    if kind == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise BadValue(f"must be a number {got}")
        check_range(float(value), value, field)
        return float(value)
    if kind == "duration":
        if not isinstance(value, str):
            raise BadValue(f"must be {schema.DURATION_HINT} {got}")
        try:
            seconds = schema.parse_duration(value)
        except BadValue as err:
            raise BadValue(f"{err} {got}") from None
        check_range(seconds, value, field)
        return seconds
    parsers = {
        "port": schema.parse_port,
        "cpu": schema.parse_cpu,
        "quantity": schema.parse_quantity,
        "int_or_percent": schema.parse_int_or_percent,
    }
    try:
        return parsers[kind](value)
    except BadValue as err:
        raise BadValue(f"{err} {got}") from None


def check_range(number: float, shown: Any, field: Field) -> None:
    got = f"(got {show(shown)})"
    if field.min is not None:
        if field.min_exclusive and number <= field.min:
            raise BadValue(f"must be greater than {num(field.min)} {got}")
        if number < field.min:
            raise BadValue(f"must be greater than or equal to {num(field.min)} {got}")
    if field.max is not None and number > field.max:
        raise BadValue(f"must be less than or equal to {num(field.max)} {got}")


def read_env(node: YNode, line: int, written: str, reporter: Reporter, api: str | None) -> Any:
    if node.value is None:
        return {}
    if not node.is_map:
        reporter.error(
            line, api, written, f"must be a map of names to values (got {show(node.value)})"
        )
        return INVALID
    env: dict[str, str] = {}
    for key, child in node.value.items():
        key_line = node.key_lines[key]
        if not isinstance(key, str) or not schema.ENV_KEY.fullmatch(key):
            reporter.error(
                key_line,
                api,
                written,
                f"variable name {show(key)} must be letters, digits and '_', not starting "
                "with a digit",
            )
            continue
        if key.upper().startswith(schema.RESERVED_ENV_PREFIX):
            reporter.error(
                key_line,
                api,
                written,
                f"variable name {show(key)} is reserved (names starting with "
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
                key_line, api, f"{written}.{key}", f"must be a string (got {show(value)})"
            )
    for key, dup_line, first in node.duplicates:
        reporter.error(
            dup_line, api, written, f"variable {show(key)} given twice (first on line {first})"
        )
    return env


def read_string_list(
    node: YNode, line: int, written: str, reporter: Reporter, api: str | None
) -> Any:
    """A command or its arguments: a non-empty list of strings (numbers are written as their
    text, as Kubernetes would refuse them); an item may be empty ("")."""
    if not node.is_list:
        reporter.error(line, api, written, f"must be a list of strings (got {show(node.value)})")
        return INVALID
    if not node.value:
        reporter.error(line, api, written, "must not be empty (leave the field out instead)")
        return INVALID
    items: list[str] = []
    ok = True
    for index, item in enumerate(node.value):
        value = item.value
        if item.refused:
            ok = False
        elif isinstance(value, str):
            items.append(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            items.append(str(value))
        else:
            reporter.error(
                item.line, api, f"{written}[{index}]", f"must be a string (got {show(value)})"
            )
            ok = False
    return tuple(items) if ok else INVALID
