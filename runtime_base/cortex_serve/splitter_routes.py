"""Which API of a traffic splitter gets a request: its APIs as splitter.json names them, the
smooth weighted round-robin over them, and which requests the shadow API gets a copy of."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .splitter_backend import Backend


def read_backends(spec: Mapping[str, Any], urls: Mapping[str, str]) -> list[Backend]:
    """The backends of splitter.json (`SplitterSpec.runtime_json`), an API's URL replaced by
    `urls` (`--backend API=URL`); a name in `urls` that is no API of the splitter is refused."""
    backends = [
        Backend(
            api=item["api"],
            weight=int(item["weight"]),
            shadow=bool(item.get("shadow", False)),
            url=urls.get(item["api"], item["url"]).rstrip("/"),
            endpoint=item["endpoint"],
        )
        for item in spec["backends"]
    ]
    unknown = sorted(set(urls) - {backend.api for backend in backends})
    if unknown:
        raise ValueError(f"--backend names no API of splitter {spec['name']}: {', '.join(unknown)}")
    return backends


class SmoothWeighted:
    """nginx's smooth weighted round-robin: each pick, every backend gains its weight and the
    richest is chosen and pays the total back."""

    def __init__(self, backends: list[Backend]) -> None:
        self.backends = [backend for backend in backends if backend.weight > 0]
        self.current = [0] * len(self.backends)
        self.total = sum(backend.weight for backend in self.backends)

    def pick(self) -> Backend:
        best = 0
        for index, backend in enumerate(self.backends):
            self.current[index] += backend.weight
            if self.current[index] > self.current[best]:
                best = index
        self.current[best] -= self.total
        return self.backends[best]


class EveryNth:
    """`percent` of calls say yes, spread evenly (1 in 4 for 25)."""

    def __init__(self, percent: int) -> None:
        self.percent = percent
        self.count = 0

    def take(self) -> bool:
        before = self.count * self.percent // 100
        self.count += 1
        return self.count * self.percent // 100 > before
