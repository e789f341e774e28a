"""How a response leaves the server (cortex_serve.protocol.HeadWithBody): one write for a response
with a Content-Length, head and body together; a streamed head at once; 100 Continue before the
body; a held head still sent when the app fails after starting.

In process: the real CortexHttpProtocol on a real loopback socket, with uvicorn's request cycle,
and the connection's transport recording what it is asked to send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from cortex_serve.protocol import CortexHttpProtocol, Limits
from uvicorn.server import ServerState

LIMITS = Limits(max_header_bytes=8192, max_header_line_bytes=4096, max_headers=100, read_timeout=5)
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def serve(
    app: App, exchange: Callable[[asyncio.StreamReader, Any], Awaitable[None]]
) -> list[bytes]:
    """Serves `app` on loopback while `exchange(reader, writer)` talks to it; returns what the
    server's transport was asked to write, one entry a write."""
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False)
    config.load()
    state = ServerState()
    writes: list[bytes] = []

    class Recording(CortexHttpProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            write = transport.write

            def recorded(data: Any) -> None:
                writes.append(bytes(data))
                write(data)

            transport.write = recorded  # type: ignore[method-assign]
            super().connection_made(transport)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Recording(config=config, server_state=state, app_state={}, limits=LIMITS),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await asyncio.wait_for(exchange(reader, writer), timeout=5)
    finally:
        writer.close()
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await server.wait_closed()
    return writes


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


REQUEST = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


def test_a_response_with_a_content_length_leaves_in_one_write() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        body = b'{"label":"setosa"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"18")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def exchange(reader: asyncio.StreamReader, writer: Any) -> None:
        for _ in range(2):  # and again on the same connection: each request gets its own view
            writer.write(REQUEST)
            head = await read_head(reader)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await reader.readexactly(18) == b'{"label":"setosa"}'

    writes = asyncio.run(serve(app, exchange))
    assert len(writes) == 2
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b'\r\n\r\n{"label":"setosa"}')


def test_a_streamed_head_leaves_before_its_first_chunk() -> None:
    head_seen = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await head_seen.wait()  # a held head would never be seen: the test would time out
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def exchange(reader: asyncio.StreamReader, writer: Any) -> None:
        writer.write(REQUEST)
        assert b"transfer-encoding: chunked" in await read_head(reader)
        head_seen.set()
        assert await reader.readuntil(b"0\r\n\r\n") == b"4\r\ntick\r\n0\r\n\r\n"

    writes = asyncio.run(serve(app, exchange))
    assert len(writes) == 3 and writes[0].endswith(b"\r\n\r\n")


def test_100_continue_is_sent_before_the_body_is_read() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        body = message["body"]
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def exchange(reader: asyncio.StreamReader, writer: Any) -> None:
        writer.write(
            b"POST /predict HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
            b"content-length: 4\r\n\r\n"
        )
        assert await read_head(reader) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ping")
        assert (await read_head(reader)).startswith(b"HTTP/1.1 200 OK\r\n")
        assert await reader.readexactly(4) == b"ping"

    writes = asyncio.run(serve(app, exchange))
    assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(writes) == 2 and writes[1].endswith(b"\r\n\r\nping")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_head_leaves_when_the_app_fails_after_it_and_for_a_head_request(method: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        raise RuntimeError("the predictor failed after the response started")

    async def exchange(reader: asyncio.StreamReader, writer: Any) -> None:
        writer.write(f"{method} /predict HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        assert (await read_head(reader)).startswith(b"HTTP/1.1 200 OK\r\n")
        if method == "GET":  # uvicorn closes a connection whose response cannot end
            assert await reader.read() == b""

    writes = asyncio.run(serve(app, exchange))
    assert len(writes) == 1 and writes[0].endswith(b"content-length: 5\r\n\r\n")
