"""Which Cortex release an API was written against: its shape names a range of releases, and
`--cortex-version X.Y` picks one inside it where releases of one shape behave differently.

Cortex changed its config shape and its serving behaviour at different releases, so a shape alone
does not settle everything: a `str` from `predict` was JSON up to v0.15 and text/plain from v0.16,
while the shape of v0.15 was accepted from v0.15 to v0.17. Each family below is the releases that
accepted one shape; `default` is the release whose behaviour is assumed when no version is given.
The table in docs/cortex-releases.md lists every minor release and how it is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..spec import CortexRelease

FIRST_MINOR, LAST_MINOR = 9, 35  # the releases whose APIs are Python code
CONTAINER_MINOR = LAST_MINOR + 1  # from v0.36, APIs are containers (`pod:`)
LAST_CONTAINER_MINOR = 42  # Cortex's last release, v0.42


@dataclass(frozen=True)
class Family:
    """The releases that accepted one config shape."""

    first: int  # minor release numbers: v0.<first> .. v0.<last>
    last: int
    default: int  # the release whose behaviour is assumed without --cortex-version
    shape: str  # how the shape is recognised, for messages and docs

    @property
    def name(self) -> str:
        return f"v0.{self.first}" if self.first == self.last else f"v0.{self.first}-v0.{self.last}"


# One family per shape, oldest first (see docs/cortex-releases.md).
V0_9 = Family(9, 9, 9, "kind: api with model, model_format, request_handler at the top level")
V0_10 = Family(10, 11, 10, "kind: api with predictor:, tensorflow: or onnx:")
V0_12 = Family(12, 12, 12, "kind: deployment + kind: api with predictor.type")
V0_13 = Family(13, 18, 13, "no kind; predictor, tracker, compute")
V0_15 = Family(14, 18, 16, "no kind; with autoscaling or update_strategy")
V0_17 = Family(17, 18, 17, "no kind; with monitoring")
V0_18 = Family(18, 18, 18, "no kind; with fields of v0.18 (model_path, processes_per_replica, ...)")
V0_19 = Family(19, 33, 26, "kind: RealtimeAPI (SyncAPI accepted too) with predictor:")
V0_34 = Family(34, 35, 35, "kind: RealtimeAPI with handler:")
BATCH_V0_19 = Family(19, 33, 26, "kind: BatchAPI with predictor:")
BATCH_V0_34 = Family(34, 35, 35, "kind: BatchAPI with handler:")
TASK_V0_27 = Family(27, 35, 30, "kind: TaskAPI with definition:")
V0_36 = Family(36, 42, 42, "pod: with containers (images the user built)")


def string_response(minor: int) -> str:
    """How a `str` from predict was answered: JSON-encoded up to v0.15, text/plain from v0.16
    (Cortex's serve.py: `jsonify`/`json.dumps` of any prediction before, a str check after)."""
    return "json" if minor <= 15 else "text"


def handler_metadata(minor: int) -> str:
    """What the second argument of a 2-argument pre_inference/post_inference held: the model's
    input/output metadata in v0.9 (ONNX NodeArgs, TensorFlow signature), the API's metadata
    (predictor.config) from v0.10."""
    return "model" if minor <= 9 else "config"


def release_for(family: Family, minor: int | None, given: str | None) -> CortexRelease:
    """The release the API is read as: `minor` from --cortex-version, else the family's default."""
    chosen = family.default if minor is None else minor
    return CortexRelease(
        releases=family.name,
        version=given,
        assumed=f"v0.{chosen}",
        string_response=string_response(chosen),  # type: ignore[arg-type]
        handler_metadata=handler_metadata(chosen),  # type: ignore[arg-type]
    )


_VERSION = re.compile(r"v?0\.([0-9]{1,2})(?:\.[0-9]{1,2})?")


def parse_cortex_version(text: str) -> int:
    """The minor release of `--cortex-version` ("0.15", "v0.15.1"); ValueError with the message
    to show when it is not one cortex-build reads."""
    match = _VERSION.fullmatch(text.strip())
    if not match:
        raise ValueError(f'must be a Cortex release like "0.15" or "v0.35.0" (got "{text}")')
    minor = int(match.group(1))
    if minor < FIRST_MINOR:
        raise ValueError(
            f"Cortex v0.{minor} is older than the releases cortex-build reads (v0.9 to v0.42)"
        )
    if minor > LAST_CONTAINER_MINOR:
        raise ValueError(
            f"Cortex v0.{minor} was never released (the last release was v0.{LAST_CONTAINER_MINOR})"
        )
    return minor


def fits(family: Family, minor: int) -> bool:
    return family.first <= minor <= family.last
