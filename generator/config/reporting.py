"""Collecting problems and notes, and writing a user's value into a message."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from .. import schema
from ..errors import Problem


class Reporter:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        # old-name notes that hold only if the API's release came after `current_until`
        self.old_name_notes: list[tuple[Problem, int]] = []

    def error(self, line: int | None, api: str | None, field: str | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, api, field, message))

    def note(self, line: int | None, api: str | None, field: str | None, message: str) -> None:
        self.notes.append(Problem(self.file, line, api, field, message))

    def old_name(
        self, line: int, api: str | None, field: str, message: str, current_until: int | None
    ) -> None:
        """A field read under an older name; `current_until` is the last release (minor) whose
        documentation still used that name, so it is noted only for APIs of later releases."""
        if current_until is None:
            self.note(line, api, field, message)
        else:
            self.old_name_notes.append(
                (Problem(self.file, line, api, field, message), current_until)
            )

    def settle_old_names(self, api: str | None, first_release: int) -> None:
        """Keeps the old-name notes of `api` whose name was out of use by `first_release`, the
        first release of the API's config shape; the others were current there."""
        kept = []
        for note, current_until in self.old_name_notes:
            if note.api != api:
                kept.append((note, current_until))
            elif first_release > current_until:
                self.notes.append(note)
        self.old_name_notes = kept


def show(value: Any, limit: int = 60) -> str:
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


def num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def choices(choices: tuple[str, ...]) -> str:
    quoted = [json.dumps(c) for c in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + ", or " + quoted[-1]


def unknown_key_message(key: str, known: Mapping[str, Any], where: str = "") -> str:
    """`key "pth" is not supported (did you mean "path"?)`, or, for a key that belongs in another
    section, `key "min_replicas" is not supported here (it belongs in autoscaling)`; sections
    inside the top-level section `where` is in come first, alone when there are any."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return f"key {show(key)} is not supported (did you mean {json.dumps(close[0])}?)"
    sections = schema.sections_with_key(key)
    if where and where in sections:
        # a field of this section in the other generation (an API of predictor code, v0.9-v0.35,
        # against one given as containers, v0.36+)
        return f"key {show(key)} is not supported here (it belongs to APIs of predictor code)"
    top = where.split(".")[0]
    nearby = [section for section in sections if top and section.split(".")[0] == top]
    sections = nearby or sections
    if sections:
        return f"key {show(key)} is not supported here (it belongs in {' or '.join(sections)})"
    return f"key {show(key)} is not supported"
