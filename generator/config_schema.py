"""A JSON Schema of cortex.yaml, every release's shape at once, made from the tables of schema/.

Published as docs/cortex.schema.json for editors (YAML language servers complete and check
fields with it); `cortex-build validate` stays the authority: the schema knows each field's
grammar, not the rules between fields (docs/config-reference.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import schema
from .schema import Field

SCHEMA_ID = "https://cortex-build.invalid/cortex.schema.json"  # an identifier, never fetched

_DURATION = {"type": "string", "pattern": r"^([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$|^0$"}
_SCALAR_MAP = {"type": ["string", "number", "boolean"]}


def config_schema() -> dict[str, Any]:
    """The schema: a list whose items are APIs (of predictor code, or v0.36+'s given as
    containers), v0.9-v0.12's `kind: deployment`, traffic splitters, or entries of kinds
    cortex-build skips (any shape)."""
    api = _table(schema.API)
    api["required"] = ["name"]
    api["properties"]["kind"] = {
        "enum": [*schema.REALTIME_KINDS, *schema.JOB_KINDS, "api"],
        "description": "RealtimeAPI (v0.19+), BatchAPI (v0.19+), TaskAPI (v0.27+), api "
        "(v0.9-v0.12); none in v0.13-v0.18",
    }
    deployment = {
        "type": "object",
        "properties": {"kind": {"const": "deployment"}, "name": {"type": "string"}},
        "required": ["kind", "name"],
        "additionalProperties": False,
    }
    splitter = _table(schema.SPLITTER)
    splitter["properties"]["kind"] = {"const": schema.SPLITTER_KIND}
    skipped = {
        "type": "object",
        "properties": {"kind": {"enum": list(schema.UNSUPPORTED_KINDS)}},
        "required": ["kind"],
    }
    # Cortex v0.36+: any kind given as a pod of containers
    pod = _table(schema.CONTAINER_API)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "Cortex cortex.yaml (v0.9-v0.42), as cortex-build reads it",
        "type": "array",
        "items": {
            "if": {"properties": {"kind": {"const": "deployment"}}, "required": ["kind"]},
            "then": deployment,
            "else": {
                "if": {
                    "properties": {"kind": {"const": schema.SPLITTER_KIND}},
                    "required": ["kind"],
                },
                "then": splitter,
                "else": {
                    "if": {"type": "object", "required": ["pod"]},
                    "then": pod,
                    # kinds skipped with a note, while there are any
                    "else": (
                        {"if": skipped, "then": skipped, "else": api}
                        if schema.UNSUPPORTED_KINDS
                        else api
                    ),
                },
            },
        },
    }


def _table(table: Mapping[str, Field]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: _field(field) for key, field in table.items()},
        # a required field that an older name may give instead (model_path for path) is not
        "required": sorted(
            key
            for key, field in table.items()
            if field.required and not any(other.target == key for other in table.values())
        ),
        "additionalProperties": False,
    }


def _field(field: Field) -> dict[str, Any]:
    described: dict[str, Any] = _value(field)
    doc = field.doc + (f" (read as {field.target})" if field.old and field.target else "")
    if doc:
        described["description"] = doc
    return described


def _value(field: Field) -> dict[str, Any]:
    kind = field.kind
    if kind == "section":
        section = _table(field.section or {})
        if field.list_form is not None:
            return {"oneOf": [section, _value(field.list_form)]}
        return {"oneOf": [section, {"type": "null"}]}
    if kind == "section_list":
        return {"type": "array", "items": _table(field.section or {})}
    if kind == "any_map":
        return {"type": ["object", "null"]}
    if kind == "string_map":
        return {"type": ["object", "null"], "additionalProperties": _SCALAR_MAP}
    if kind == "string_list":
        return {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}}
    value: dict[str, Any]
    if kind == "string":
        value = {"type": "string", "minLength": 1}
        if field.choices:
            value = {"enum": list(field.choices)}
    elif kind in ("int", "number"):
        value = {"type": "integer" if kind == "int" else "number"}
        if field.min is not None:
            value["exclusiveMinimum" if field.min_exclusive else "minimum"] = field.min
        if field.max is not None:
            value["maximum"] = field.max
    elif kind == "bool":
        value = {"type": "boolean"}
    elif kind == "duration":
        value = dict(_DURATION)
    elif kind == "cpu":
        value = {"type": ["number", "string"]}
    elif kind == "quantity":
        value = {"type": ["integer", "string"]}
    elif kind == "port":
        value = {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": "^[0-9]+$"},
            ]
        }
    elif kind == "int_or_percent":
        value = {"type": ["integer", "string"], "pattern": "^[0-9]+%?$"}
    else:  # pragma: no cover - every kind of schema.Field is handled above
        raise ValueError(f"no JSON Schema for field kind {kind!r}")
    if field.nullable:
        value = {"oneOf": [value, {"type": "null"}]}
    return value


def schema_text() -> str:
    """docs/cortex.schema.json, byte for byte."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
