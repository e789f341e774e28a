"""YAML text of the generated files (docker-compose.yaml and k8s/): one dumper for both.

Keys stay in the order they were built, no anchors or aliases (a reader of the file sees every
value where it applies), and multi-line strings (the models' copy script) as literal blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    # What a `$` becomes: Compose interpolates `$VAR` in every value, Kubernetes in none.
    dollar = "$"

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _ComposeDumper(_Dumper):
    dollar = "$$"


def _represent_str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str",
        value.replace("$", dumper.dollar),
        style="|" if "\n" in value else None,
    )


_Dumper.add_representer(str, _represent_str)


def dump_yaml(doc: Mapping[str, Any], *, compose: bool = False) -> str:
    """`doc` as YAML; `compose`: for docker-compose.yaml, every `$` doubled so that Compose
    reads it literally."""
    return yaml.dump(
        doc,
        Dumper=_ComposeDumper if compose else _Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )
