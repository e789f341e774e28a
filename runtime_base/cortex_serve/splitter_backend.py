"""One API behind a traffic splitter: where it is reached, its state for /healthz, and the
kept-alive HTTP/1.1 connections the proxy sends its requests on.

HTTP is h11 (uvicorn's own HTTP/1.1 parser, so in every image) over asyncio streams, with up to
`POOL_SIZE` idle connections kept per API.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

IDLE_REUSE_SECONDS = 2.0  # an idle connection older than this is closed (APIs keep 5 s)
POOL_SIZE = 8  # idle connections kept per API


class BackendError(Exception):
    """The API gave no whole answer; `status` is what the splitter answers instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Outgoing:
    """A request as it goes to an API: the target is the API's path and query, the headers
    carry its Host and the body's length."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection
    idle_since: float = 0.0


class _StaleConnection(Exception):
    """The connection failed before any answer arrived."""


@dataclass
class Backend:
    """An API of the splitter (splitter.json's backend, with its URL) and what it did lately."""

    api: str
    weight: int
    shadow: bool
    url: str
    endpoint: str
    host: str = ""
    port: int = 0
    # state, for /healthz
    state: str = "unknown"  # "up" after an answer, "down" after a failure
    last_error: str | None = None
    last_change: float | None = None
    requests: int = 0
    failures: int = 0
    idle: list[_Connection] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"backend {self.api}: URL must be http://HOST[:PORT] (got {self.url})")
        self.host = parts.hostname
        self.port = parts.port or 80

    def mark(self, ok: bool, error: str | None = None) -> None:
        state = "up" if ok else "down"
        if state != self.state:
            self.last_change = time.time()
        self.state = state
        if not ok:
            self.failures += 1
            self.last_error = error

    def health(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "endpoint": self.endpoint,
            "weight": self.weight,
            "shadow": self.shadow,
            "state": self.state,
            "last_error": self.last_error,
            "requests": self.requests,
            "failures": self.failures,
        }

    async def send(self, request: Outgoing, timeout: float) -> Answer:
        """One request, on a kept-alive connection when there is one; a kept-alive connection
        the API closed meanwhile is retried once on a new one (nothing was answered on it)."""
        self.requests += 1
        while self.idle:
            connection = self.idle.pop()
            stale = time.monotonic() - connection.idle_since > IDLE_REUSE_SECONDS
            if stale or connection.writer.is_closing():
                connection.writer.close()
                continue
            try:
                return await self._attempt(connection, request, timeout)
            except _StaleConnection:
                break
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=min(timeout, 5.0)
            )
        except (OSError, asyncio.TimeoutError) as error:
            raise BackendError(503, f"cannot connect to {self.url}: {_describe(error)}") from None
        connection = _Connection(reader, writer, h11.Connection(h11.CLIENT))
        try:
            return await self._attempt(connection, request, timeout)
        except _StaleConnection as error:
            raise BackendError(502, f"{self.url} closed the connection: {error}") from None

    async def _attempt(self, connection: _Connection, request: Outgoing, timeout: float) -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(connection, request), timeout)
        except asyncio.TimeoutError:
            connection.writer.close()
            raise BackendError(504, f"{self.url} did not answer within {timeout:g} s") from None

    async def _exchange(self, connection: _Connection, request: Outgoing) -> Answer:
        reader, writer, conn = connection.reader, connection.writer, connection.protocol
        answered = False
        try:
            head = h11.Request(
                method=request.method, target=request.target, headers=request.headers
            )
            writer.write(conn.send(head))
            if request.body:
                writer.write(conn.send(h11.Data(data=request.body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            status = 0
            response_headers: list[tuple[bytes, bytes]] = []
            chunks: list[bytes] = []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    answered = True
                    status = event.status_code
                    response_headers = list(event.headers)
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionResetError("connection closed before the answer was whole")
        except (OSError, h11.ProtocolError) as error:
            writer.close()
            if not answered:
                raise _StaleConnection(_describe(error)) from None
            raise BackendError(
                502, f"{self.url} broke off its answer: {_describe(error)}"
            ) from None
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            if len(self.idle) < POOL_SIZE:
                connection.idle_since = time.monotonic()
                self.idle.append(connection)
            else:
                writer.close()
        else:
            writer.close()
        return Answer(status, response_headers, b"".join(chunks))


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
