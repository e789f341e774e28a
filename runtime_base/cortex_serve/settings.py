"""Numbers the runtime reads from environment variables: one reader, one rule for a bad value.

Every such variable is a `NumberSetting` with its default and the smallest value it accepts.
`python -m cortex_serve` checks them all before anything starts: a value that is not a number in
range stops the server at once, exit status 1, naming the variable, its value and what is
expected (no variable falls back to its default behind the user's back). Modules read them with
`.read()`, which applies the same rule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass


class SettingError(ValueError):
    """An environment variable that holds no acceptable value."""


@dataclass(frozen=True)
class NumberSetting:
    name: str
    default: float
    minimum: float = 0.0
    above_minimum: bool = False  # the minimum itself is refused (> rather than >=)
    whole: bool = False  # a whole number (a count of bytes, headers, seconds of a gunicorn option)

    def read(self) -> float:
        raw = os.environ.get(self.name, "").strip()
        if not raw:
            return self.default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        in_range = value > self.minimum if self.above_minimum else value >= self.minimum
        if not in_range or (self.whole and not value.is_integer()):
            kind = "a whole number" if self.whole else "a number"
            bound = ">" if self.above_minimum else ">="
            raise SettingError(f"{self.name}={raw!r}: expected {kind} {bound} {self.minimum:g}")
        return value


def problems(settings: Iterable[NumberSetting]) -> list[str]:
    found = []
    for setting in settings:
        try:
            setting.read()
        except SettingError as error:
            found.append(str(error))
    return found


# Live reload of model sources (models.py).
MODEL_POLL_SECONDS = NumberSetting("CORTEX_MODEL_POLL_SECONDS", 10.0, above_minimum=True)
# The TF Serving sidecar (clients/tfserving/grpc_backend.py).
TF_SERVING_START_TIMEOUT = NumberSetting("CORTEX_TF_SERVING_START_TIMEOUT", 120.0)
TF_SERVING_LOAD_TIMEOUT = NumberSetting("CORTEX_TF_SERVING_LOAD_TIMEOUT", 600.0)
# A wedged sidecar must not hold predict threads (and the replica's admission) forever, nor make
# shutdown wait for SIGKILL: every Predict call gets a deadline (0: none).
TF_SERVING_PREDICT_TIMEOUT = NumberSetting("CORTEX_TF_SERVING_PREDICT_TIMEOUT", 60.0)
# gRPC's default 4 MB cap broke big payloads in Cortex (cortexlabs/cortex#1740); TF Serving
# itself accepts messages up to INT32_MAX, so the client does too unless told otherwise.
TF_SERVING_MAX_MESSAGE_BYTES = NumberSetting(
    "CORTEX_TF_SERVING_MAX_MESSAGE_BYTES", 2**31 - 1, minimum=1, whole=True
)

# Besides these, __main__.py's server options (CORTEX_SERVE_*), whose defaults are ServerOptions'.
RUNTIME_SETTINGS = (
    MODEL_POLL_SECONDS,
    TF_SERVING_START_TIMEOUT,
    TF_SERVING_LOAD_TIMEOUT,
    TF_SERVING_PREDICT_TIMEOUT,
    TF_SERVING_MAX_MESSAGE_BYTES,
)
