"""The jinja2 templates of templates/ and the filters that quote values into them: every value a
template writes is validated or quoted here, never escaped by jinja2 (autoescape is off: the
templates are Dockerfiles, shell and YAML)."""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2

from . import runtime_files


def dockerfile_string(value: object) -> str:
    """A double-quoted Dockerfile string: no line breaks; `\\`, `"` and `$` escaped."""
    text = str(value)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError(f"control character in a Dockerfile value: {text!r}")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def printable(text: str) -> str:
    """Text for a one-line value (a label): control characters as \\uXXXX escapes."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def quote(value: object) -> str:
    """A value in double quotes as JSON writes it (non-ASCII kept): how templates and messages
    quote what the user wrote."""
    return json.dumps(value, ensure_ascii=False)


def _comment_string(value: object) -> str:
    """A value inside a comment line: quoted, with every line break and non-ASCII escaped (YAML
    1.1 also breaks lines at U+0085, U+2028 and U+2029)."""
    return json.dumps(str(value), ensure_ascii=True)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(runtime_files.package_folder("cortex_build.templates")),
    autoescape=False,  # Dockerfile, shell and YAML: values are validated or quoted explicitly
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["dockerfile_string"] = dockerfile_string
_environment.filters["tojson"] = quote
_environment.filters["comment_string"] = _comment_string


def render_template(name: str, values: dict[str, Any]) -> str:
    return _environment.get_template(name).render(values)
