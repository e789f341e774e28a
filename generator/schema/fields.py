"""What a field of cortex.yaml is (`Field`): its grammar, bounds, nested table and older names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    # "string", "int", "number", "bool", "duration", "cpu", "quantity", "int_or_percent",
    # "string_map" (env), "any_map" (config), "section" (a nested table), "section_list"
    kind: str
    doc: str = ""
    target: str | None = None  # absolute dotted path it is read as, when not where it is written
    old: bool = False  # an older name: reading it adds a note "old name, read as <target>"
    required: bool = False  # checked by the table walk (rules that depend on others: config.py)
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    section: Mapping[str, Field] | None = None  # for "section" and "section_list"
    list_form: Field | None = None  # a "section" that may also be written as this list
    nullable: bool = False  # `null` means "not set" (e.g. compute.cpu: null = no request)
    note: str | None = None  # the note added when the key is read (default for old names)
    # an old name's last release (minor: 14 for v0.14): APIs of that release or earlier are not
    # told it is old
    current_until: int | None = None


def section(doc: str, table: Mapping[str, Field], **kw: Any) -> Field:
    """A nested table (`predictor:`, `compute:`, ...) of the fields in `table`."""
    return Field("section", doc, section=table, **kw)


def old_name(new: Field, doc: str, target: str, current_until: int, **changes: Any) -> Field:
    """An older name of the field `new`, read as `target` (its dotted path in the newest schema)
    and accepting what `new` accepts (the same kind and bounds); `changes` are what else differs.
    APIs of release v0.`current_until` or earlier are not told it is old."""
    fields: dict[str, Any] = {"doc": doc, "target": target, "old": True, "required": False}
    return dataclasses.replace(new, **{**fields, "current_until": current_until, **changes})
