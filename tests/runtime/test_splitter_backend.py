"""The traffic splitter's connections to an API (splitter_backend.Backend) against real sockets on
loopback: kept-alive connections reused, one the API closed meanwhile retried on a new one, and
the 503 / 504 / 502 a dead, silent or broken API is answered with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from cortex_serve.splitter_backend import Backend, BackendError, Outgoing

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def request() -> Outgoing:
    return Outgoing("POST", "/predict", [("host", "api"), ("content-length", "2")], b"{}")


async def serve(handler: Handler) -> tuple[asyncio.Server, Backend, list[int]]:
    """A server on a free port calling `handler` per connection; the backend pointing at it and
    the list of connections it took."""
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = Backend("iris", 100, False, f"http://127.0.0.1:{port}", "/predict")
    return server, backend, connections


async def read_request(reader: asyncio.StreamReader) -> bool:
    """Reads one request of `request()` (its head and 2-byte body); False at end of stream."""
    try:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
    except asyncio.IncompleteReadError:
        return False
    return True


def test_kept_alive_connections_are_reused_and_one_the_api_closed_is_retried_on_a_new_one() -> None:
    async def keeps_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(ANSWER)
            await writer.drain()

    async def closes_after_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await read_request(reader):  # answers as if kept alive, then closes (its idle timeout)
            writer.write(ANSWER)
            await writer.drain()

    async def scenario() -> None:
        server, backend, connections = await serve(keeps_alive)
        async with server:
            answers = [await backend.send(request(), 5.0) for _ in range(3)]
        assert [(a.status, a.body) for a in answers] == [(200, b"ok")] * 3
        assert len(connections) == 1, "the kept-alive connection was not reused"

        server, backend, connections = await serve(closes_after_one)
        async with server:
            first = await backend.send(request(), 5.0)
            await asyncio.sleep(0.1)  # the API has closed the idle connection by now
            second = await backend.send(request(), 5.0)
        assert (first.status, second.status, second.body) == (200, 200, b"ok")
        assert len(connections) == 2, "the closed connection was not replaced by a new one"
        assert backend.requests == 2

    asyncio.run(scenario())


def test_a_silent_api_is_504_a_broken_answer_502_and_nothing_listening_503() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()

    async def status_of(handler: Handler) -> tuple[int, str]:
        server, backend, _ = await serve(handler)
        async with server:
            with pytest.raises(BackendError) as raised:
                await backend.send(request(), 0.5)
        return raised.value.status, str(raised.value)

    async def scenario() -> None:
        status, message = await status_of(silent)
        assert status == 504 and "did not answer within 0.5 s" in message
        status, message = await status_of(broken)
        assert status == 502 and "broke off its answer" in message
        server, backend, _ = await serve(silent)
        server.close()
        await server.wait_closed()
        with pytest.raises(BackendError) as raised:
            await backend.send(request(), 0.5)
        assert raised.value.status == 503 and "cannot connect" in str(raised.value)

    asyncio.run(scenario())
