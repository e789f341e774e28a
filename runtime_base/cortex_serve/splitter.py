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

This module is the endpoint and the command; splitter_routes.py picks the API of a request,
splitter_backend.py sends it there (h11 over asyncio streams, a few kept-alive connections per
API).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .splitter_backend import Backend, BackendError, Outgoing
from .splitter_routes import EveryNth, SmoothWeighted, read_backends

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


@dataclass(frozen=True)
class SplitterOptions:
    """The command's limits: seconds an API may take to answer, copies in flight to the shadow,
    the largest request body."""

    timeout: float = 300.0
    max_shadow: int = 64
    max_body_bytes: int = 32 * 1024 * 1024


class Splitter:
    """The splitter's endpoint: each request to the API picked by weight, a copy to the shadow."""

    def __init__(
        self,
        spec: dict[str, Any],
        urls: dict[str, str] | None = None,
        options: SplitterOptions = SplitterOptions(),
    ) -> None:
        self.name: str = spec["name"]
        self.endpoint: str = spec["endpoint"]
        self.options = options
        self.backends = read_backends(spec, urls or {})
        self.router = SmoothWeighted([b for b in self.backends if not b.shadow])
        self.shadow = next((b for b in self.backends if b.shadow), None)
        self.copies = EveryNth(self.shadow.weight if self.shadow else 0)
        self.shadow_tasks: set[asyncio.Task[None]] = set()
        self.shadow_dropped = 0

    async def proxy(self, request: Request) -> Response:
        # the splitter's endpoint and /predict: the two paths an API serves predictions on
        if request.url.path not in (self.endpoint, "/predict"):
            return JSONResponse(
                {"error": f"not found: traffic splitter {self.name} serves {self.endpoint}"},
                404,
            )
        body = await self._body(request)
        if body is None:
            return JSONResponse(
                {"error": f"the request body is larger than {self.options.max_body_bytes} bytes"},
                413,
            )
        backend = self.router.pick()
        query: bytes = request.scope.get("query_string", b"")
        forwarded = _forward_headers(request)
        if self.shadow is not None and self.copies.take():
            self._copy(request.method, query, forwarded, body)
        try:
            answer = await backend.send(
                _outgoing(backend, request.method, query, forwarded, body), self.options.timeout
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
        response = Response(answer.body, answer.status)
        for key, value in answer.headers:
            name = key.decode("latin-1").lower()
            if name in HOP_BY_HOP or name in ("date", "server"):
                continue
            if name == "content-length":
                # the length of the body, set above; a HEAD answer keeps the API's
                if request.method == "HEAD":
                    response.headers[name] = value.decode("latin-1")
                continue
            response.headers.append(name, value.decode("latin-1"))
        response.headers[BACKEND_HEADER] = backend.api
        return response

    async def _body(self, request: Request) -> bytes | None:
        """The whole body, or None past `max_body_bytes` (as the API servers' 413)."""
        limit = self.options.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _copy(self, method: str, query: bytes, headers: list[tuple[str, str]], body: bytes) -> None:
        shadow = self.shadow
        assert shadow is not None
        if len(self.shadow_tasks) >= self.options.max_shadow:
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
        task = asyncio.create_task(self._shadow(_outgoing(shadow, method, query, headers, body)))
        self.shadow_tasks.add(task)
        task.add_done_callback(self.shadow_tasks.discard)

    async def _shadow(self, request: Outgoing) -> None:
        shadow = self.shadow
        assert shadow is not None
        try:
            answer = await shadow.send(request, self.options.timeout)
        except BackendError as error:
            shadow.mark(False, str(error))
            logger.warning("traffic splitter %s: shadow API %s: %s", self.name, shadow.api, error)
            return
        except Exception as error:  # a copy must never take the splitter down
            shadow.mark(False, repr(error))
            logger.exception("traffic splitter %s: shadow API %s", self.name, shadow.api)
            return
        shadow.mark(True)
        if answer.status >= 500:
            logger.warning(
                "traffic splitter %s: shadow API %s answered %d",
                self.name,
                shadow.api,
                answer.status,
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


def _outgoing(
    backend: Backend, method: str, query: bytes, headers: list[tuple[str, str]], body: bytes
) -> Outgoing:
    """The request as it goes to `backend`: to its API's endpoint, with the query, the forwarded
    headers, the API's Host and the body's length (h11 frames by it)."""
    target = backend.endpoint + ("?" + query.decode("latin-1") if query else "")
    headers = [
        ("host", f"{backend.host}:{backend.port}"),
        *headers,
        ("content-length", str(len(body))),
    ]
    return Outgoing(method, target, headers, body)


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
        "--timeout",
        type=float,
        default=SplitterOptions.timeout,
        help="seconds an API may take to answer",
    )
    parser.add_argument(
        "--max-shadow",
        type=int,
        default=SplitterOptions.max_shadow,
        help="copies in flight to the shadow API; more are dropped (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=int(
            os.environ.get("CORTEX_SERVE_MAX_BODY_BYTES") or SplitterOptions.max_body_bytes
        ),
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

    from .server import log_config, watch_parent

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
        options = SplitterOptions(args.timeout, args.max_shadow, args.max_body_bytes)
        splitter = Splitter(spec, urls, options)
    except (KeyError, ValueError) as error:
        sys.exit(f"cortex_serve.splitter: {args.spec}: {error}")
    configure_logging(args.log_level)
    if args.parent_fd is not None:
        watch_parent(args.parent_fd)
    routes = ", ".join(
        f"{b.api} {'shadow ' if b.shadow else ''}{b.weight}% at {b.url}" for b in splitter.backends
    )
    logger.info("traffic splitter %s on %s: %s", splitter.name, splitter.endpoint, routes)
    config = uvicorn.Config(
        splitter.app(),
        host=args.host,
        port=args.port,
        log_config=log_config(args.log_level),
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
