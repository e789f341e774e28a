"""The table of a `kind: TrafficSplitter` entry (Cortex v0.19+; `shadow` v0.31+)."""

from __future__ import annotations

from .api import NETWORKING
from .fields import Field, section

SPLITTER_KIND = "TrafficSplitter"  # Cortex v0.19+: one endpoint over several realtime APIs


# `kind: TrafficSplitter` (Cortex v0.19+; `shadow` v0.31+), as
# https://github.com/cortexlabs/cortex/blob/v0.35.0/docs/workloads/realtime/traffic-splitter/configuration.md
# documents it; the rules between fields (weights summing to 100, one shadow) are in
# config/splitter.py.
SPLITTER_BACKEND: dict[str, Field] = {
    "name": Field("string", "a realtime API of the same file", required=True),
    "weight": Field(
        "int",
        "percentage of requests routed to it (non-shadow weights sum to 100); for the shadow, "
        "percentage of requests copied to it",
        required=True,
        min=0,
        max=100,
    ),
    "shadow": Field("bool", "send it a copy of requests, fire-and-forget (v0.31+)"),
}
SPLITTER_NETWORKING: dict[str, Field] = {
    "endpoint": NETWORKING["endpoint"],
    "api_gateway": NETWORKING["api_gateway"],
}
SPLITTER: dict[str, Field] = {
    "name": Field("string", "traffic splitter name", required=True),
    "kind": Field("string", "TrafficSplitter", required=True, choices=(SPLITTER_KIND,)),
    "networking": section("networking", SPLITTER_NETWORKING),
    "apis": Field(
        "section_list", "the realtime APIs to route to", required=True, section=SPLITTER_BACKEND
    ),
}
