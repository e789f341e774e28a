"""The grammars of values that end up in Dockerfiles, shell, YAML and URLs (names, paths, image
references, durations, CPU and memory quantities, replica counts or percentages): each is strict
enough that a value cannot break out of where it is rendered."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

RESERVED_ENDPOINTS = {
    "/healthz": "health check",
    "/metrics": "metrics",
    "/openapi.json": "OpenAPI document",
    "/docs": "API docs page",
}
API_NAME_MAX = 42
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def is_api_name(value: object) -> bool:
    """An API name is a DNS-1035 label (it names a Service, a compose service and an image)."""
    if not isinstance(value, str) or len(value) > API_NAME_MAX:
        return False
    return DNS_1035.fullmatch(value) is not None


ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV_PREFIX = "CORTEX_"
# Model names appear in URLs and folder names.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ENDPOINT = re.compile(r"/[A-Za-z0-9._~/-]*")
# Remote model addresses: no whitespace, quotes, backslashes, backticks or `$`.
REMOTE_PATH = re.compile(r"(s3|https?)://[^\s\"'`$\\]+")
# Local paths (predictor files, python_path, models): what file names in projects use, and
# nothing a shell, a Dockerfile or YAML would read as syntax.
SAFE_PATH = re.compile(r"[\w.+@%,=/-]+")
SAFE_PATH_HINT = "letters, digits, '.', '_', '-', '+', '@', '%', ',', '=' and '/'"

# Docker's reference grammar (distribution/reference): [domain/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
# ASCII only: Python's \w would let Unicode letters through, which docker refuses
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_TAG = TAG.pattern
IMAGE_REF = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?")
IMAGE_REF_MAX = 255


def is_image_ref(value: str) -> bool:
    if len(value) > IMAGE_REF_MAX or IMAGE_REF.fullmatch(value) is None:
        return False
    # As Docker splits a reference: the first component is a registry only when it holds "." or
    # ":" or is "localhost"; otherwise it is part of the repository, which must be lower case
    # ("UPPER/x" is refused by `docker build -t` as an invalid reference format).
    name = value.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]  # the tag may hold capitals
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name == name.lower()


class BadValue(ValueError):
    """A value does not follow its grammar; the message says what is expected."""


_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
DURATION_HINT = 'a duration like "250ms", "60s", "5m" or "1h30m"'


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration ("1h30m", "250ms", "0") as float seconds."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match or match.group(1) in ("", "."):
            raise BadValue(f"must be {DURATION_HINT}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise BadValue(f"must be {DURATION_HINT}")
    return sign * total


PORT_HINT = "a port number from 1 to 65535"


def parse_port(value: Any) -> int:
    """A probe's port: 8080 or "8080" (named ports are not declared by cortex-build)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValue(f"must be {PORT_HINT}")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise BadValue(f"must be {PORT_HINT}")
    return int(text)


_CPU = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m?)")
CPU_HINT = 'a number of CPUs like 1, 0.5 or "500m"'


def parse_cpu(value: Any) -> str:
    """A CPU quantity (1, 0.5, "500m", "2") as Kubernetes' canonical string ("1", "500m")."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadValue(f"must be {CPU_HINT}")
    if isinstance(value, str):
        match = _CPU.fullmatch(value.strip())
        if not match:
            raise BadValue(f"must be {CPU_HINT}")
        millis = float(match.group(1)) * (1 if match.group(2) else 1000)
    else:
        if not math.isfinite(value) or value < 0:
            raise BadValue(f"must be {CPU_HINT}")
        millis = float(value) * 1000
    if abs(millis - round(millis)) > 1e-6:
        raise BadValue("must be a whole number of millicores (at most 3 decimals)")
    whole = round(millis)
    if whole <= 0:
        # A zero request is no request: Cortex's way to say so is `cpu: null`.
        raise BadValue("must be greater than 0; write null for no CPU request")
    return str(whole // 1000) if whole % 1000 == 0 else f"{whole}m"


def cpu_millicores(cpu: str) -> int:
    """Millicores in a CPU quantity accepted by parse_cpu ("500m" -> 500, "1.5" -> 1500)."""
    canonical = parse_cpu(cpu)
    return int(canonical[:-1]) if canonical.endswith("m") else int(canonical) * 1000


_QUANTITY = re.compile(
    r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|[eE][-+]?[0-9]+)?"
)
QUANTITY_HINT = 'a size like "512Mi", "2Gi" or "1G"'
_QUANTITY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


# The largest size accepted: far above any machine's memory, far below int64 (Kubernetes and
# Docker count bytes in int64), so that a typo like "100000Ti" is reported, not rendered.
MAX_QUANTITY_BYTES = 2**50
MAX_QUANTITY_SHOWN = "1Pi"


def parse_quantity(value: Any) -> str:
    """A memory size (bytes as an integer, or "512Mi", "1G") as a Kubernetes quantity string.

    The size must be at least 1 byte and at most MAX_QUANTITY_BYTES; it is checked here, once,
    so that everything downstream (quantity_bytes, the renderers) gets a sane byte count.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValue(f"must be {QUANTITY_HINT}")
    text = str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise BadValue(f"must be {QUANTITY_HINT}")
    size = _quantity_size(match)
    if size is None or size > MAX_QUANTITY_BYTES:
        raise BadValue(f"must be at most {MAX_QUANTITY_SHOWN}")
    if size == 0:
        raise BadValue("must be greater than 0")
    if size < 1:
        raise BadValue("must be at least 1 byte")
    return text


def _quantity_size(match: re.Match[str]) -> Fraction | None:
    """The exact size in bytes of a matched quantity; None when it is far beyond any maximum
    (an exponent like "1e400" is never raised to its power, so no value can overflow or hang)."""
    mantissa = Decimal(match.group(1))
    if mantissa == 0:
        return Fraction(0)
    suffix = match.group(2)
    if suffix not in _QUANTITY_FACTORS:  # an exponent, "e9" ("E" alone is exa)
        digits = suffix[1:].lstrip("+-").lstrip("0") or "0"
        exponent = int(digits) if len(digits) <= 6 else 10**7  # clamped: beyond any size
        if suffix[1:2] == "-":
            exponent = -exponent
        factor = None
    else:
        factor = _QUANTITY_FACTORS[suffix]
        exponent = len(str(factor)) - 1
    # The decimal order of magnitude, known before any power is computed.
    magnitude = mantissa.adjusted() + exponent
    if magnitude > 20:  # >= 10**20 bytes: beyond MAX_QUANTITY_BYTES
        return None
    if magnitude < -1:  # < 1 byte (and 10**exponent could be slow to compute exactly)
        return Fraction(1, 100)
    return Fraction(mantissa) * (Fraction(10) ** exponent if factor is None else factor)


def quantity_bytes(quantity: str) -> int:
    """Bytes in a quantity accepted by parse_quantity ("512Mi" -> 536870912), rounded up to a
    whole byte as Kubernetes does; exact arithmetic, so "1.1Gi" is not off by float rounding."""
    match = _QUANTITY.fullmatch(quantity.strip())
    size = _quantity_size(match) if match else None
    if size is None or not 0 < size <= MAX_QUANTITY_BYTES:
        raise BadValue(f"must be {QUANTITY_HINT}, at most {MAX_QUANTITY_SHOWN}")
    return math.ceil(size)


_INT_OR_PERCENT = re.compile(r"([0-9]+)(%?)")
INT_OR_PERCENT_HINT = 'a number of replicas like 1 or a percentage like "25%"'


def parse_int_or_percent(value: Any) -> str:
    """max_surge / max_unavailable: 3 or "25%" (Kubernetes IntOrString, kept as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadValue(f"must be {INT_OR_PERCENT_HINT}")
    match = _INT_OR_PERCENT.fullmatch(str(value).strip())
    if not match:
        raise BadValue(f"must be {INT_OR_PERCENT_HINT}")
    return f"{int(match.group(1))}{match.group(2)}"


def is_zero_int_or_percent(value: str) -> bool:
    return int(value.rstrip("%")) == 0


ROLLOUT_STALLS = (
    "max_surge and max_unavailable cannot both be zero (a rolling update could not make progress)"
)


def rollout_stalls(max_surge: str, max_unavailable: str) -> bool:
    """The update_strategy rule Kubernetes enforces: one of the two must let a pod change."""
    return is_zero_int_or_percent(max_surge) and is_zero_int_or_percent(max_unavailable)
