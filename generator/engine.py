"""The Docker engine: connecting to it, and reading what it streams while it builds or pushes.

Talks to the engine through the Docker SDK (the classic builder's streaming API), so it works
with any engine `docker` itself would use: DOCKER_HOST, TLS variables, and the credentials of the
usual Docker config (~/.docker/config.json, credential helpers) for pushes.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError

Emit = Callable[[str], None]

TAIL_LINES = 20  # lines of a failed step's output shown in the failure report
STEP_CHARS = 160  # a step's instruction is shown up to this long
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the classic builder colours a step's stderr red
_STEP = re.compile(r"Step (\d+)/(\d+) : (.*)")
# Builder chatter about its own containers and layers, and pip's progress bars: not what the user
# is following.
_CHATTER = re.compile(
    r" ---> (Running in [0-9a-f]+|[0-9a-f]{12})$|^Removing intermediate container |^\s*[━╸╺]"
)
# Pull and push progress states, per layer as they change: only the milestones are worth a line.
_PROGRESS_NOISE = frozenset(
    {"Waiting", "Downloading", "Extracting", "Pulling fs layer", "Verifying Checksum",
     "Download complete", "Preparing", "Pushing", "Layer already exists", "Pushed"}
)  # fmt: skip


def connect_engine() -> Any:
    """A low-level Docker SDK client, or UserError (exit 2) saying how to get an engine."""
    import docker
    from docker.errors import DockerException
    from docker.utils import kwargs_from_env

    base_url = "the default socket (unix:///var/run/docker.sock)"
    try:
        kwargs = kwargs_from_env()
        base_url = kwargs.get("base_url") or base_url
        client = docker.APIClient(version="auto", **kwargs)
        client.ping()
    except (DockerException, OSError) as err:
        if "Permission denied" in str(err) or "PermissionError" in str(err):
            raise UserError(
                f"no permission to use the Docker engine at {base_url}: run as a user in the "
                "`docker` group (or root), or point DOCKER_HOST at an engine you may use"
            ) from None
        raise UserError(
            f"no Docker engine reachable at {base_url}: start one (`sudo systemctl start docker`, "
            "or `dockerd`) or point DOCKER_HOST at one (e.g. DOCKER_HOST=ssh://user@host)"
        ) from None
    return client


@dataclass
class StreamLog:
    """Turns the engine's stream of JSON chunks into lines, and keeps track of where it is."""

    emit: Emit
    on_step: Callable[[str], None] | None = None  # gets "N/M" as each step starts
    step: str | None = None
    image_id: str | None = None
    error: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    _partial: str = ""
    _last_status: str = ""

    def feed(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            self.error = str(detail.get("message") or chunk["error"]).strip()
        elif "stream" in chunk:
            self._text(str(chunk["stream"]))
        elif "status" in chunk:
            self._status(chunk)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])

    def close(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _text(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, raw: str) -> None:
        # Progress bars redraw with \r: keep what they show last.
        line = _ANSI.sub("", raw.rsplit("\r", 1)[-1]).rstrip()
        if not line or _CHATTER.search(line):
            return
        match = _STEP.fullmatch(line)
        if match:
            instruction = " ".join(match[3].split())  # continuation lines arrive as runs of spaces
            if len(instruction) > STEP_CHARS:
                instruction = instruction[: STEP_CHARS - 3] + "..."
            self.step = f"{match[1]}/{match[2]} {instruction}"
            self.tail.clear()
            self.emit(f"step {self.step}")
            if self.on_step is not None:
                self.on_step(f"{match[1]}/{match[2]}")
            return
        self.tail.append(line)
        self.emit(line)

    def _status(self, chunk: dict[str, Any]) -> None:
        status = str(chunk["status"])
        if status in _PROGRESS_NOISE or status.startswith("Mounted from"):
            return
        line = f"{chunk['id']}: {status}" if chunk.get("id") else status
        if line != self._last_status:
            self._last_status = line
            self.emit(line)
