"""The ASGI app of one worker process: Cortex's HTTP contract over the user's predictor.

Routes: POST /predict and POST <endpoint> run a prediction; GET on either gives a summary;
GET /healthz (200 once every process of the replica initialised its predictor, 503 before);
GET /metrics (Prometheus text, summed over the replica's processes). With a v0.34-v0.35 Handler
(interface "handler") every verb on /predict and <endpoint> goes to its handle_<verb> method, or
is a 405 naming the verbs the Handler answers; a returned `(response, callback)` runs callback()
after the response is sent.

The prediction path is a plain ASGI endpoint mounted in a Starlette app rather than a Starlette
request handler: it must add only a few microseconds over a bare Starlette handler (see
bench/runtime_bench.py), so it reads the body and writes the response itself and builds
starlette objects (Headers, QueryParams, FormData, Request) only where users receive them. The
body's and the response's bytes are wire.py's; loading and calling the predictor, worker.py's.

Order of a prediction: body (413 past the limit, 408 when it does not arrive within the read
timeout: protocol.py; both close the connection) -> admission (replica-wide, 503 at once when
full; a request counts against capacity only once its body is read, so slow clients cannot hold
it) -> payload by Content-Type (400 on bad JSON/text) -> predict (sync in this process' thread
pool of `threads_per_process`, async on the event loop, or through the adaptive batcher) -> the
response by return type -> capacity released -> post_predict or a Handler's callback (after the
response is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cortex_internal.lib.log import logger
from starlette.applications import Starlette
from starlette.datastructures import FormData, Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from . import docs, metrics
from .contract import HANDLER_CLASS
from .predictor import Predictor
from .wire import (
    CLOSE_CONNECTION,
    JSON_HEADERS,
    BodyError,
    ClientGone,
    PayloadError,
    content_info,
    dump_json,
    parse_payload,
    read_body,
    render_response,
    send_error,
    send_response,
    split_callback,
)
from .worker import Worker

_EMPTY_QUERY = QueryParams("")  # immutable, so one instance serves every request without a query


class PredictEndpoint:
    """POST: one prediction; GET: a summary of the API. With a Handler: every verb to its
    method."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.scoreboard = worker.scoreboard
        self.limit_message = (
            f"too many requests in flight: max_replica_concurrency "
            f"({worker.scoreboard.max_concurrency}) reached"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verb = scope["method"]
        if verb != "POST" and not self.worker.handler_interface:
            await self.summary(send)
            return
        predictor = self.worker.predictor
        if self.worker.handler_interface and predictor is not None and verb not in predictor.verbs:
            # Not a request for the Handler: not counted, as Cortex did not count it either.
            await self.not_allowed(send, verb, predictor)
            return
        media_type, charset, length = content_info(scope)
        # The body before admission: a client that sends it slowly holds no capacity meanwhile
        # (and its connection for at most the server's read timeout). Never admitted, these
        # count with no duration, as a 503 does.
        try:
            body = await read_body(scope, receive, length, self.worker.max_body_bytes)
        except BodyError as error:
            self.scoreboard.record(
                await send_error(send, error.status, str(error), CLOSE_CONNECTION), 0.0
            )
            return
        except ClientGone:  # nginx's "client closed request"; nothing can be sent
            self.scoreboard.record(499, 0.0)
            return
        started = time.perf_counter()
        after: Callable[[], Awaitable[None]] | None = None
        if self.worker.predictor is None:
            status = await send_error(send, 503, "the predictor is still initialising")
        elif not self.scoreboard.try_admit():
            status = await send_error(send, 503, self.limit_message)
        else:
            try:
                status, after = await self.handle(scope, receive, send, body, media_type, charset)
            except asyncio.CancelledError:
                raise
            # Not the user's predict (handled inside): still a JSON 500. BaseException: user code
            # (a Response's __call__) may raise SystemExit or KeyboardInterrupt too.
            except BaseException:
                logger.exception("request failed", extra={"api": self.worker.spec["name"]})
                status = 500
                with contextlib.suppress(Exception):  # unless the response had begun
                    await send_error(send, 500, "internal server error (see the server log)")
            finally:
                self.scoreboard.release()
        self.scoreboard.record(status, time.perf_counter() - started)
        if after is not None:
            await after()

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        media_type: str,
        charset: str | None,
    ) -> tuple[int, Callable[[], Awaitable[None]] | None]:
        worker = self.worker
        assert worker.predictor is not None  # __call__ admits requests only once it is loaded
        verb = scope["method"]
        method = worker.predictor.verbs.get(verb)
        payload: Any = None
        # Cortex v0.34-v0.35 parsed the body only for a handle_<verb> that names `payload`, so a
        # body that does not parse is no 400 for one that does not.
        if method is None or method.wants_payload:
            try:
                payload = await parse_payload(scope, media_type, charset, body)
            except PayloadError as error:
                return await send_error(send, 400, str(error)), None
        query_string = scope["query_string"]
        query_params = QueryParams(query_string) if query_string else _EMPTY_QUERY
        headers = Headers(scope=scope)
        debug = b"debug" in query_string and query_params.get("debug", "").lower() == "true"
        if debug:
            logger.info("payload", extra={"payload": payload})
        callback: Callable[[], Any] | None = None
        try:
            prediction = await worker.predict(payload, query_params, headers, verb)
            if worker.handler_interface:
                prediction, callback = split_callback(prediction)
            if debug:
                logger.info("prediction", extra={"prediction": prediction})
            rendered = render_response(prediction, worker.strings_as_json)
        except HTTPException as error:  # Cortex ran on FastAPI: raising HTTPException worked
            status = await send_error(
                send, error.status_code, str(error.detail), error.headers, detail=error.detail
            )
            return status, None
        except asyncio.CancelledError:  # the server is cancelling this request: not predict's
            raise
        except BaseException as error:  # SystemExit, KeyboardInterrupt from user code too
            logger.exception("predict failed", extra={"api": worker.spec["name"]})
            return await send_error(send, 500, f"{type(error).__name__}: {error}"), None
        if isinstance(rendered, Response):
            await rendered(scope, receive, send)
            status = rendered.status_code
        else:
            status = rendered[0]
            await send_response(send, *rendered)
        if worker.tracker is not None:
            worker.tracker(prediction)
        if callback is not None or worker.predictor.has_post_predict:

            async def after() -> None:
                if callback is not None:
                    await worker.callback(callback)
                else:
                    await worker.post_predict(prediction, payload, query_params, headers)
                if isinstance(payload, FormData):
                    await payload.close()

            return status, after
        if isinstance(payload, FormData):
            await payload.close()
        return status, None

    async def not_allowed(self, send: Send, verb: str, predictor: Predictor) -> None:
        allowed = ", ".join(predictor.verbs)  # in HANDLER_METHODS' order
        await send_error(
            send,
            405,
            f"method {verb} is not allowed: class {HANDLER_CLASS} answers {allowed} (one "
            "handle_<verb> method each)",
            headers={"Allow": allowed},
        )

    async def summary(self, send: Send) -> None:
        worker = self.worker
        predictor_spec = worker.spec["predictor"]
        summary: dict[str, Any] = {
            "message": (
                f"make a POST request to {worker.spec['endpoint']} to get a prediction"
                if worker.predictor is not None
                else "the predictor is still initialising"
            ),
            "api": worker.spec["name"],
            "endpoint": worker.spec["endpoint"],
            "predictor": {
                "type": predictor_spec["type"],
                "interface": predictor_spec.get("interface"),
                "processes_per_replica": predictor_spec.get("processes_per_replica", 1),
                "threads_per_process": worker.threads,
            },
        }
        await send_response(send, 200, JSON_HEADERS, dump_json(summary))


_PREDICT_METHODS = ("GET", "POST")  # GET: a summary of the API


class CortexApp:
    """The ASGI entry point of a worker: lifespan handled here (independent of the Starlette
    version a user's requirements pin), predictions straight to PredictEndpoint, the rest of HTTP
    handed to the Starlette app.

    PredictEndpoint answers its own errors, so predictions skip Starlette's middleware and router:
    on a small model they cost as much per request as the prediction itself.
    """

    def __init__(
        self,
        worker: Worker,
        predict: PredictEndpoint,
        predict_paths: Sequence[str],
        http_app: Starlette,
    ) -> None:
        self.worker = worker
        self.predict = predict
        self.predict_paths = frozenset(predict_paths)
        self.http_app = http_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif (
            scope["type"] == "http"
            and scope["path"] in self.predict_paths
            and (scope["method"] in _PREDICT_METHODS or self.worker.handler_interface)
        ):
            await self.predict(scope, receive, send)
        else:  # /healthz, /metrics, 404s, 405s
            await self.http_app(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.worker.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.worker.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(worker: Worker) -> CortexApp:
    """The routes of one worker process over its (not yet loaded) predictor."""
    spec, scoreboard, max_body_bytes = worker.spec, worker.scoreboard, worker.max_body_bytes
    predict = PredictEndpoint(worker)

    async def healthz(request: Request) -> Response:
        if scoreboard.healthy():
            return Response("ok\n", media_type="text/plain")
        ready = scoreboard.processes_ready()
        return Response(
            f"initialising: {ready} of {scoreboard.processes} processes ready\n",
            status_code=503,
            media_type="text/plain",
        )

    async def metrics_endpoint(request: Request) -> Response:
        text = metrics.render(
            scoreboard, spec["name"], spec.get("tracker"), batching=worker.batching is not None
        )
        return Response(text, media_type=metrics.CONTENT_TYPE)

    paths = ["/predict"]
    if spec["endpoint"] not in paths:
        paths.append(spec["endpoint"])
    routes: list[BaseRoute] = [
        Route(path, predict, methods=list(_PREDICT_METHODS)) for path in paths
    ]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    # GET /openapi.json and /docs (Swagger UI, its files under /docs/static/): docs.py.
    routes += docs.routes(spec, lambda: worker.predictor, max_body_bytes)
    # Starlette's own answers (404, 405, 500) are plain text: JSON like every other error here.
    exception_handlers = {HTTPException: _json_http_error, Exception: _json_server_error}
    return CortexApp(
        worker, predict, paths, Starlette(routes=routes, exception_handlers=exception_handlers)
    )


async def _json_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    body = {"error": error.detail, "status": error.status_code}
    return Response(dump_json(body), error.status_code, error.headers, "application/json")


async def _json_server_error(request: Request, error: Exception) -> Response:
    body = {"error": "internal server error (see the server log)", "status": 500}
    return Response(dump_json(body), 500, media_type="application/json")
