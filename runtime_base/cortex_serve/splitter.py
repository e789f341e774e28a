"""A traffic splitter (`kind: TrafficSplitter`): one endpoint whose requests go to realtime APIs
by weight, and whose shadow API gets copies, fire-and-forget.

`python -m cortex_serve.splitter --spec splitter.json [--backend NAME=URL ...]` serves it on one
uvicorn event loop (a proxy waits, it does not compute). splitter.json is what
`SplitterSpec.runtime_json` renders: the splitter's endpoint, and per backend its API's name,
weight, shadow flag, URL and endpoint; `--backend` replaces a backend's URL (`cortex-build serve`
uses it for APIs it started on other ports).

- Routing is a smooth weighted round-robin (nginx's): deterministic, every window of 100 requests
  holds each API's weight exactly, and no API gets long runs. A request to the splitter's endpoint
  (or to /predict, as with an API) goes to the API's endpoint, with its method, query, body and
  headers, less the hop-by-hop ones; the answer comes back as the API gave it, with
  `X-Cortex-Backend: <API>` added.
- The shadow gets a copy of `weight` percent of requests (spread evenly), sent as a background
  task the answer never waits for. At most `--max-shadow` copies are in flight; beyond that a
  copy is dropped and counted, so a slow shadow cannot pile up memory. Its answers and errors
  are logged, never returned.
- An API that cannot be reached answers 503 (502 for a broken answer, 504 for a timeout), JSON
  naming the API and the error; GET /healthz reports each API's last state and counts. A body
  larger than `--max-body-bytes` (32 MiB, as the API servers) is answered 413.

HTTP to the APIs is h11 (uvicorn's own HTTP/1.1 parser, so in every image) over asyncio streams,
with a few kept-alive connections per API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

logger = logging.getLogger("cortex.splitter")

BACKEND_HEADER = "X-Cortex-Backend"
# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
IDLE_REUSE_SECONDS = 2.0  # an idle connection older than this is closed (APIs keep 5 s)
POOL_SIZE = 8  # idle connections kept per API


class BackendError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Backend:
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
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection, float]] = field(
        default_factory=list
    )

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

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, timeout: float
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request, on a kept-alive connection when there is one; a kept-alive connection
        the API closed meanwhile is retried once on a new one (nothing was answered on it)."""
        self.requests += 1
        while self.idle:
            reader, writer, conn, since = self.idle.pop()
            if time.monotonic() - since > IDLE_REUSE_SECONDS or writer.is_closing():
                writer.close()
                continue
            try:
                return await self._attempt(
                    reader, writer, conn, method, target, headers, body, timeout
                )
            except _StaleConnection:
                break
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=min(timeout, 5.0)
            )
        except (OSError, asyncio.TimeoutError) as error:
            raise BackendError(503, f"cannot connect to {self.url}: {_describe(error)}") from None
        conn = h11.Connection(h11.CLIENT)
        try:
            return await self._attempt(reader, writer, conn, method, target, headers, body, timeout)
        except _StaleConnection as error:
            raise BackendError(502, f"{self.url} closed the connection: {error}") from None

    async def _attempt(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: float,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        try:
            return await asyncio.wait_for(
                self._exchange(reader, writer, conn, method, target, headers, body), timeout
            )
        except asyncio.TimeoutError:
            writer.close()
            raise BackendError(504, f"{self.url} did not answer within {timeout:g} s") from None

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        answered = False
        try:
            writer.write(conn.send(h11.Request(method=method, target=target, headers=headers)))
            if body:
                writer.write(conn.send(h11.Data(data=body)))
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
                self.idle.append((reader, writer, conn, time.monotonic()))
            else:
                writer.close()
        else:
            writer.close()
        return status, response_headers, b"".join(chunks)


class _StaleConnection(Exception):
    """The connection failed before any answer arrived."""


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


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


class Splitter:
    def __init__(
        self,
        spec: dict[str, Any],
        urls: dict[str, str] | None = None,
        timeout: float = 300.0,
        max_shadow: int = 64,
        max_body_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.name: str = spec["name"]
        self.endpoint: str = spec["endpoint"]
        self.timeout = timeout
        self.max_shadow = max_shadow
        self.max_body_bytes = max_body_bytes
        urls = urls or {}
        self.backends = [
            Backend(
                api=item["api"],
                weight=int(item["weight"]),
                shadow=bool(item.get("shadow", False)),
                url=urls.get(item["api"], item["url"]).rstrip("/"),
                endpoint=item["endpoint"],
            )
            for item in spec["backends"]
        ]
        unknown = sorted(set(urls) - {backend.api for backend in self.backends})
        if unknown:
            raise ValueError(
                f"--backend names no API of splitter {self.name}: {', '.join(unknown)}"
            )
        self.router = SmoothWeighted([b for b in self.backends if not b.shadow])
        self.shadow = next((b for b in self.backends if b.shadow), None)
        self.copies = EveryNth(self.shadow.weight if self.shadow else 0)
        self.shadow_tasks: set[asyncio.Task[None]] = set()
        self.shadow_dropped = 0

    def target(self, path: str, query: bytes, backend: Backend) -> str | None:
        """The backend's URL target for a request path: the splitter's endpoint and /predict
        (the two paths an API serves predictions on) go to the API's endpoint; None otherwise."""
        if path not in (self.endpoint, "/predict"):
            return None
        return backend.endpoint + ("?" + query.decode("latin-1") if query else "")

    async def proxy(self, request: Request) -> Response:
        if request.url.path not in (self.endpoint, "/predict"):
            return JSONResponse(
                {"error": f"not found: traffic splitter {self.name} serves {self.endpoint}"},
                404,
            )
        body = await self._body(request)
        if body is None:
            return JSONResponse(
                {"error": f"the request body is larger than {self.max_body_bytes} bytes"}, 413
            )
        backend = self.router.pick()
        target = self.target(request.url.path, request.scope.get("query_string", b""), backend)
        assert target is not None
        forwarded = _forward_headers(request)
        if self.shadow is not None and self.copies.take():
            self._copy(request.method, request.url.path, request.scope, forwarded, body)
        try:
            status, headers, content = await backend.send(
                request.method, target, _with_host(forwarded, backend, body), body, self.timeout
            )
        except BackendError as error:
            backend.mark(False, str(error))
            logger.error("traffic splitter %s: API %s: %s", self.name, backend.api, error)
            return JSONResponse(
                {"error": f"API {backend.api}: {error}", "backend": backend.api},
                error.status,
                headers={BACKEND_HEADER: backend.api},
            )
        backend.mark(True)
        response = Response(content, status)
        for key, value in headers:
            name = key.decode("latin-1").lower()
            if name in HOP_BY_HOP or name in ("date", "server"):
                continue
            if name == "content-length":
                # the length of `content`, set above; a HEAD answer keeps the API's
                if request.method == "HEAD":
                    response.headers[name] = value.decode("latin-1")
                continue
            response.headers.append(name, value.decode("latin-1"))
        response.headers[BACKEND_HEADER] = backend.api
        return response

    async def _body(self, request: Request) -> bytes | None:
        """The whole body, or None past `max_body_bytes` (as the API servers' 413)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _copy(
        self,
        method: str,
        path: str,
        scope: Mapping[str, Any],
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        shadow = self.shadow
        assert shadow is not None
        if len(self.shadow_tasks) >= self.max_shadow:
            self.shadow_dropped += 1
            if self.shadow_dropped in (1, 10, 100) or self.shadow_dropped % 1000 == 0:
                logger.warning(
                    "traffic splitter %s: shadow API %s has %d copies in flight: %d copies "
                    "dropped so far",
                    self.name,
                    shadow.api,
                    len(self.shadow_tasks),
                    self.shadow_dropped,
                )
            return
        target = self.target(path, scope.get("query_string", b""), shadow)
        assert target is not None
        task = asyncio.create_task(
            self._shadow(method, target, _with_host(headers, shadow, body), body)
        )
        self.shadow_tasks.add(task)
        task.add_done_callback(self.shadow_tasks.discard)

    async def _shadow(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        shadow = self.shadow
        assert shadow is not None
        try:
            status, _, _ = await shadow.send(method, target, headers, body, self.timeout)
        except BackendError as error:
            shadow.mark(False, str(error))
            logger.warning("traffic splitter %s: shadow API %s: %s", self.name, shadow.api, error)
            return
        except Exception as error:  # a copy must never take the splitter down
            shadow.mark(False, repr(error))
            logger.exception("traffic splitter %s: shadow API %s", self.name, shadow.api)
            return
        shadow.mark(True)
        if status >= 500:
            logger.warning(
                "traffic splitter %s: shadow API %s answered %d", self.name, shadow.api, status
            )

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "traffic_splitter": self.name,
                "endpoint": self.endpoint,
                "backends": {backend.api: backend.health() for backend in self.backends},
                "shadow_in_flight": len(self.shadow_tasks),
                "shadow_dropped": self.shadow_dropped,
            }
        )

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(
            routes=[
                Route("/healthz", self.health, methods=["GET"]),
                Route("/{path:path}", self.proxy, methods=methods),
            ]
        )


def _forward_headers(request: Request) -> list[tuple[str, str]]:
    raw = request.headers.raw
    named = {
        token.strip().lower()
        for key, value in raw
        if key.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    dropped = HOP_BY_HOP | named | {"host", "content-length"}  # once per request, not per header
    headers = [
        (name, value.decode("latin-1"))
        for key, value in raw
        if (name := key.decode("latin-1")).lower() not in dropped
    ]
    if request.client is not None:
        headers.append(("x-forwarded-for", request.client.host))
    return headers


def _with_host(
    headers: list[tuple[str, str]], backend: Backend, body: bytes
) -> list[tuple[str, str]]:
    """The forwarded headers with the API's Host and the body's length (h11 frames by it)."""
    return [
        ("host", f"{backend.host}:{backend.port}"),
        *headers,
        ("content-length", str(len(body))),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cortex_serve.splitter", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spec", required=True, type=Path, help="splitter.json")
    parser.add_argument("--host", default="0.0.0.0", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=8888, help="default: %(default)s")
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="API=URL",
        help="where an API is reached, replacing the spec's URL (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds an API may take to answer"
    )
    parser.add_argument(
        "--max-shadow",
        type=int,
        default=64,
        help="copies in flight to the shadow API; more are dropped (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=int(os.environ.get("CORTEX_SERVE_MAX_BODY_BYTES") or 32 * 1024 * 1024),
        help="larger request bodies get 413 (env CORTEX_SERVE_MAX_BODY_BYTES; default %(default)s)",
    )
    parser.add_argument("--parent-fd", type=int, metavar="FD", help="stop when this pipe closes")
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from cortex_internal.lib.log import configure_logging

    from .server import _log_config, _watch_parent

    args = parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text())
    except (OSError, ValueError) as error:
        sys.exit(f"cortex_serve.splitter: cannot read the splitter spec {args.spec}: {error}")
    urls: dict[str, str] = {}
    for item in args.backend:
        api, sep, url = item.partition("=")
        if not sep or not api or not url:
            sys.exit(f"cortex_serve.splitter: --backend must be API=URL (got {item!r})")
        urls[api] = url
    try:
        splitter = Splitter(
            spec,
            urls,
            timeout=args.timeout,
            max_shadow=args.max_shadow,
            max_body_bytes=args.max_body_bytes,
        )
    except (KeyError, ValueError) as error:
        sys.exit(f"cortex_serve.splitter: {args.spec}: {error}")
    configure_logging(args.log_level)
    if args.parent_fd is not None:
        _watch_parent(args.parent_fd)
    routes = ", ".join(
        f"{b.api} {'shadow ' if b.shadow else ''}{b.weight}% at {b.url}" for b in splitter.backends
    )
    logger.info("traffic splitter %s on %s: %s", splitter.name, splitter.endpoint, routes)
    config = uvicorn.Config(
        splitter.app(),
        host=args.host,
        port=args.port,
        log_config=_log_config(args.log_level),
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again to the handler it found:
    # this one, so that a graceful stop exits 0 (as the API servers do)
    signal.signal(signal.SIGTERM, lambda *_: None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve())


if __name__ == "__main__":
    main()
