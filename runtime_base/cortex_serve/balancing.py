"""New connections to processes with a free thread, with `processes_per_replica` >= 2.

Every worker listens on the one socket gunicorn opened, and whichever event loop wakes first
accepts: an idle loop in a process whose threads are all busy accepts as readily as any other
(asyncio accepts every pending connection in one go), so simultaneous requests piled up on one
process while the others idled. Here each worker accepts itself, and only while it has room:
its requests in progress (from their head to the end of the app's work on them, post_predict
included), plus the connections it accepted that have not sent their first bytes, are fewer than
its capacity (`threads_per_process`, times `max_batch_size` with server-side batching). A
process at capacity stops accepting, and starts again as soon as a request of its own ends. When
no other process has room either (none ready and accepting with fewer requests in flight than
that), it accepts anyway once it has waited ACCEPT_POLL_SECONDS, while it has no more requests
than the least busy of the others: requests never wait long in the socket's backlog while the
whole replica is busy, unless a thread frees somewhere first. They are accepted, counted in
flight and admitted or refused (503) as before, and queue evenly in the processes' thread pools.

Keep-alive connections stay with the process that accepted them: the next request on one runs
there even when that process is busy and another is idle (it waits for a thread there, as
before). Clients that reuse connections, and proxies in front, spread their own load. With one
process none of this runs: uvicorn accepts as it always did.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from typing import Any

from cortex_internal.lib.log import logger
from gunicorn.arbiter import Arbiter
from uvicorn.server import Server

from .protocol import CortexWorker
from .scoreboard import Scoreboard

# How long a process at capacity waits for a thread to free anywhere before it accepts beyond
# its capacity because no other process has room. Not at once: another process' count, read just
# before that process updates it (it sent a response and has yet to count the request done),
# would otherwise send two requests to one thread.
ACCEPT_POLL_SECONDS = 0.05
FIRST_BYTES_SECONDS = 1.0  # a new connection silent this long stops counting as a request


class AcceptGate:
    """Accepts connections on `listeners` while this process has room (see the module)."""

    def __init__(
        self, listeners: list[Any], protocol: Any, scoreboard: Scoreboard, capacity: int
    ) -> None:
        self.listeners = listeners
        self.protocol = protocol  # uvicorn's protocol factory
        self.scoreboard = scoreboard
        self.capacity = capacity
        self.loop = asyncio.get_running_loop()
        self.pending = 0  # accepted connections that have not sent their first bytes
        self.active = 0  # requests in progress in this process
        self.paused = True
        self.stopped = False
        self.overflow = False  # no other process had room: accepting beyond capacity too
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        for listener in self.listeners:
            listener.setblocking(False)
        self.scoreboard.set_accepting(True)
        self._resume()

    def stop(self) -> None:
        self.stopped = True
        self.scoreboard.set_accepting(False)
        self._pause()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def count(self, app: Any) -> Any:
        """The ASGI `app`, counting the requests in progress in this process."""

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            self.active += 1
            try:
                await app(scope, receive, send)
            finally:
                self.active -= 1
                self.check()

        return counted

    def room(self) -> bool:
        return self.pending + self.active < self.capacity

    def may_accept(self) -> bool:
        if self.room():
            return True
        if not self.overflow:
            return False
        fewest = self.scoreboard.fewest_elsewhere()  # room elsewhere: more than that
        return fewest is None or self.pending + self.active <= fewest

    def check(self) -> None:
        """While paused: accepts again if there is room now, else looks again in a while."""
        if not self.paused or self.stopped:
            return
        if self.room():
            self.overflow = False
            self._resume()
        elif self.timer is None:
            self.timer = self.loop.call_later(ACCEPT_POLL_SECONDS, self._look_again)

    def _look_again(self) -> None:
        self.timer = None
        fewest = self.scoreboard.fewest_elsewhere()
        self.overflow = fewest is None or fewest >= self.capacity
        if self.overflow or self.room():
            self._resume()
        else:
            self.check()

    def settled(self) -> None:
        """A connection sent its first bytes (its request is counted now), or went away."""
        self.pending -= 1
        self.check()

    def _accept(self, listener: socket.socket) -> None:
        while self.may_accept():
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:  # out of file descriptors, say: as asyncio, wait a second
                logger.warning(f"cannot accept a connection: {error}")
                self._pause()
                self.timer = self.loop.call_later(1.0, self._look_again)
                return
            self.pending += 1
            self.loop.create_task(self._serve(connection))
        self._pause()
        self.check()

    async def _serve(self, connection: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: FirstBytes(self.protocol(), self), connection
            )
        except OSError:  # gone already
            connection.close()
            self.settled()

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            for listener in self.listeners:
                self.loop.remove_reader(listener.fileno())

    def _resume(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.paused:
            self.paused = False
            for listener in self.listeners:
                self.loop.add_reader(listener.fileno(), self._accept, listener)


class FirstBytes(asyncio.Protocol):
    """uvicorn's protocol for a new connection, which counts against the process' room until its
    first bytes arrive; then the transport talks to uvicorn's protocol directly."""

    def __init__(self, protocol: asyncio.Protocol, gate: AcceptGate) -> None:
        self.protocol = protocol
        self.gate = gate
        self.timer: asyncio.TimerHandle | None = None
        self.settled = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.timer = self.gate.loop.call_later(FIRST_BYTES_SECONDS, self.settle)
        self.protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.set_protocol(self.protocol)
        self.protocol.data_received(data)
        # After the first step of the request's task, if this started one: counted by then.
        self.gate.loop.call_soon(self.settle)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)
        self.settle()

    def settle(self) -> None:
        if not self.settled:
            self.settled = True
            if self.timer is not None:
                self.timer.cancel()
            self.gate.settled()


class GatedServer(Server):
    """uvicorn's server, accepting through an AcceptGate instead of listeners of its own."""

    def __init__(self, config: Any, scoreboard: Scoreboard, capacity: int) -> None:
        super().__init__(config)
        self.scoreboard = scoreboard
        self.capacity = capacity
        self.gate: AcceptGate | None = None

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets=[])  # lifespan startup, and no listener
        protocol_class: Any = self.config.http_protocol_class  # uvicorn's, keyword arguments
        protocol = functools.partial(
            protocol_class,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        self.gate = AcceptGate(list(sockets or ()), protocol, self.scoreboard, self.capacity)
        self.config.loaded_app = self.gate.count(self.config.loaded_app)  # for new protocols
        self.gate.start()

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        if self.gate is not None:
            self.gate.stop()
        await super().shutdown(sockets=sockets)


class BalancedWorker(CortexWorker):
    """CortexWorker serving through GatedServer (gunicorn's app here is server.CortexServer)."""

    async def _serve(self) -> None:  # uvicorn-worker's, with GatedServer for Server
        self.config.app = self.wsgi
        server = GatedServer(self.config, self.app.scoreboard, self.app.capacity)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
