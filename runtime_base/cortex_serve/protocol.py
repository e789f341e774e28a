"""HTTP/1.1 on each connection: uvicorn's httptools protocol, with the limits a public endpoint
needs against hostile and careless clients (that protocol has none of them).

- The request head: past `max_header_line_bytes` for the URL (414) or one header (431),
  `max_headers` headers or `max_header_bytes` in all (431), the server answers and closes without
  reading further. A head that has not ended is refused once more than `max_header_bytes` came,
  counted by whole reads (so at most one read, 256 KiB, is buffered past the limit).
- `read_timeout`: a request must arrive whole, head and body, within that many seconds of its
  first byte. A late head gets 408 here; a late body wakes the app, which answers 408
  (wire.read_body, told through the scope's READ_TIMED_OUT). The timer is armed only when a read
  leaves a request incomplete, so a request that arrives in one read (nearly all) costs nothing.
- A new connection that sends nothing is closed after the keep-alive timeout, as an idle one.
- A client that half-closes after a whole request (shutdown(SHUT_WR), `nc -N`) is answered; the
  connection closes after that answer. uvicorn took the end of input for a disconnect.
- Errors the server writes itself (these, and an unparsable request's 400) are JSON, as the app's.
- A response with a Content-Length leaves in one send (one TCP segment when it fits), head and
  body together: uvicorn writes them apart, and the second send cost every request a syscall
  and the client a second segment (bench/README.md). A streamed (chunked) head leaves at once.

Without httptools (uvicorn then parses with h11) only the head's total size is limited, through
h11's own limit; every image installs httptools.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

from uvicorn_worker import UvicornWorker

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol, see CortexWorker
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

# Set in a request's scope when its body did not arrive within the read timeout.
READ_TIMED_OUT = "cortex.read_timed_out"


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int  # the request line and every header together
    max_header_line_bytes: int  # the URL, or one header's name and value
    max_headers: int
    read_timeout: float  # seconds for a whole request, from its first byte


class HeadRefused(Exception):
    """Raised in a parser callback to stop parsing; the answer is the protocol's `refusal`."""


def error_response(status: int, message: str) -> bytes:
    """A whole JSON error response that closes the connection, as wire.send_error's body."""
    body = json.dumps({"error": message, "status": status}, separators=(",", ":")).encode()
    return b"".join(
        (
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body),
            body,
        )
    )


if HttpToolsProtocol is not None:

    class CortexHttpProtocol(HttpToolsProtocol):
        """A head is being read while there is no request (`cycle`) or the last one's body is
        whole (`more_body` false); its body while `more_body` is true."""

        def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.limits = limits
            # A head of at most this many bytes is within every size limit: checked no further.
            self.small_head = min(limits.max_header_line_bytes, limits.max_header_bytes)
            # Bytes received since the current head began, counting whole reads: at least the
            # head's size. 0 between requests, when the last read ended one.
            self.head_bytes = 0
            self.refusal: tuple[int, str] | None = None
            self.read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # uvicorn times out an idle connection only after a response: one that never sends
            # a byte would stay open for good. Its first bytes cancel this (data_received).
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if cycle is None or not cycle.more_body:
                self.head_bytes += len(data)
            super().data_received(data)  # a refusal in a callback ends in send_400_response
            cycle = self.cycle
            if cycle is None or not cycle.more_body:  # no body on its way
                if not self.head_bytes:  # the usual case: this read ended a request
                    if self.read_timer is not None:
                        self.read_timer.cancel()
                        self.read_timer = None
                    return
                if self.transport.is_closing():
                    return
                if self.head_bytes > self.limits.max_header_bytes:  # a head that goes on and on
                    self.refuse(431, self._too_large("the request head"))
                    return
            if self.read_timer is None:  # a request begun and not whole: it has read_timeout
                self.read_timer = self.loop.call_later(
                    self.limits.read_timeout, self.read_timed_out
                )

        def on_headers_complete(self) -> None:
            if self.head_bytes > self.small_head or len(self.headers) > self.limits.max_headers:
                self.check_head()
            self.head_bytes = 0
            existing = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not existing and cycle is not None:  # a request (not an upgrade)
                cycle.transport = HeadWithBody(self.transport, cycle)  # type: ignore[assignment]

        def check_head(self) -> None:
            """Raises HeadRefused, before the request starts, past a limit of the head."""
            limits = self.limits
            if len(self.url) > limits.max_header_line_bytes:
                self.refusal = (414, self._too_large("the URL", line=True))
                raise HeadRefused
            if len(self.headers) > limits.max_headers:
                self.refusal = (431, f"more than {limits.max_headers} request headers")
                raise HeadRefused
            total = len(self.url)
            for name, value in self.headers:
                size = len(name) + len(value)
                if size > limits.max_header_line_bytes:
                    header = name[:64].decode("latin-1")
                    self.refusal = (431, self._too_large(f"the header {header}", line=True))
                    raise HeadRefused
                total += size
            if total > limits.max_header_bytes:
                self.refusal = (431, self._too_large("the request head"))
                raise HeadRefused

        def send_400_response(self, msg: str) -> None:  # uvicorn's, for any parser error
            self.refuse(*(self.refusal or (400, "the request is not valid HTTP")))

        def refuse(self, status: int, message: str) -> None:
            self.transport.write(error_response(status, message))
            self.transport.close()

        def read_timed_out(self) -> None:
            self.read_timer = None
            cycle = self.cycle
            message = (
                "read timeout: the request did not arrive whole within "
                f"{self.limits.read_timeout:g} s"
            )
            if cycle is None or (cycle.response_complete and not cycle.more_body):
                self.refuse(408, message)  # a late head, and no answer under way
            elif cycle.response_complete:  # the rest of a body answered without it (404, 413)
                self.transport.close()
            elif cycle.response_started or not cycle.more_body:
                # Answering already, without the body, or a pipelined request's head is late:
                # the connection closes after this response.
                cycle.keep_alive = False
            else:  # the app waits in receive() for the body: it answers 408 (wire.read_body)
                cycle.scope[READ_TIMED_OUT] = message  # type: ignore[literal-required]
                cycle.message_event.set()

        # asyncio.Protocol's contract (True keeps the transport open); uvicorn annotates None
        def eof_received(self) -> bool | None:  # type: ignore[override]
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and not cycle.more_body:
                cycle.keep_alive = False  # a whole request: answered, then the connection closes
                return True  # keeps the transport open for writing
            return None  # nothing to answer, or a request that can never be whole: closed

        def connection_lost(self, exc: Exception | None) -> None:
            if self.read_timer is not None:
                self.read_timer.cancel()
            super().connection_lost(exc)

        def _too_large(self, what: str, line: bool = False) -> str:
            limits = self.limits
            size = limits.max_header_line_bytes if line else limits.max_header_bytes
            return f"{what} is larger than the limit of {size} bytes"


class HeadWithBody:
    """A request's view of its connection's transport (the cycle's `transport`) that holds the
    response head, uvicorn's first write once the response has started, until the body's first
    write, and sends both as one. Only a head with a Content-Length (and a body: not a HEAD
    request's) is held: its body follows at once (wire.send_response), where a streamed one's
    first chunk may take its time. Writes before the response (100 Continue) pass straight
    through; closing sends a held head first, as uvicorn would have."""

    __slots__ = ("_cycle", "_head", "_head_seen", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        elif not self._head_seen and self._cycle.response_started:
            self._head_seen = True
            cycle = self._cycle
            # a Content-Length: the body comes next (a HEAD request's never comes: uvicorn
            # writes none)
            if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class CortexWorker(UvicornWorker):
    """uvicorn-worker's gunicorn worker, speaking HTTP through CortexHttpProtocol with the limits
    of the server's options (gunicorn's app here is server.CortexServer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.app.options
        if HttpToolsProtocol is None:
            self.config.h11_max_incomplete_event_size = options.max_header_bytes
            return
        limits = Limits(
            options.max_header_bytes,
            options.max_header_line_bytes,
            options.max_headers,
            options.read_timeout,
        )
        self.config.http = functools.partial(CortexHttpProtocol, limits=limits)
