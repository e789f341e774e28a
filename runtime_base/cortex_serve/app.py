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
starlette objects (Headers, QueryParams, FormData, Request) only where users receive them.

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
import inspect
import json
import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cortex_internal.lib.log import logger
from starlette.applications import Starlette
from starlette.datastructures import FormData, Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from . import docs, metrics
from .batching import AdaptiveBatcher, runtime_batching
from .contract import HANDLER_CLASS
from .handoff import PredictThreads
from .predictor import Predictor, PredictorError, VerbMethod, load_predictor
from .protocol import READ_TIMED_OUT
from .scoreboard import Scoreboard

# gunicorn's "worker failed to boot" exit status: the master stops the whole server with it, so a
# predictor whose init fails never reports healthy and the container exits non-zero.
WORKER_BOOT_ERROR = 3
# How often a replacement worker tells gunicorn's arbiter it is alive while its predictor loads:
# well under any usable worker timeout (uvicorn itself beats once a second).
HEARTBEAT_SECONDS = 0.25

_JSON_HEADERS = [(b"content-type", b"application/json")]
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
_BYTES_HEADERS = [(b"content-type", b"application/octet-stream")]
_FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
# After an answer that left the request body unread: the rest of it must not be taken for the
# next request, and reading it only to drop it would keep a hostile client's connection open.
_CLOSE = {"Connection": "close"}


class PayloadError(Exception):
    """The request body does not parse as its Content-Type says (400)."""


class BodyError(Exception):
    """The request body cannot be read whole: answered `status`, and the connection closed."""

    status: int


class BodyTooLarge(BodyError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit} bytes")


class BodyTimedOut(BodyError):
    status = 408


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


def _json_default(value: Any) -> Any:
    # numpy arrays and scalars (and anything else with .tolist()) are what predictors return most
    # often that json cannot write; converting them spares every user a conversion.
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Starlette's JSONResponse writes the same bytes (compact, UTF-8); one encoder, built once.
_encode_json = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
).encode
_EMPTY_QUERY = QueryParams("")  # immutable, so one instance serves every request without a query


def _dump_json(value: Any) -> bytes:
    return _encode_json(value).encode("utf-8")


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> int:
    """A JSON error; `headers` go out with it (e.g. an HTTPException's Retry-After)."""
    response_headers = _JSON_HEADERS
    if headers:
        response_headers = [
            *_JSON_HEADERS,
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
                if name.lower() not in ("content-type", "content-length")
            ),
        ]
    await _send(
        send, status, response_headers, _dump_json({"error": message, "status": status, **fields})
    )
    return status


def _content_info(scope: Scope) -> tuple[str, str | None, int | None]:
    """(media type lowercased, charset, Content-Length) from the request headers, in one pass."""
    media_type, charset, length = "", None, None
    for name, value in scope["headers"]:
        if name == b"content-type":
            parts = value.decode("latin-1").split(";")
            media_type = parts[0].strip().lower()
            for param in parts[1:]:
                key, _, val = param.partition("=")
                if key.strip().lower() == "charset":
                    charset = val.strip().strip('"') or None
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return media_type, charset, length


async def read_body(
    scope: Scope, receive: Receive, declared_length: int | None, limit: int
) -> bytes:
    """The whole request body; BodyTooLarge as soon as it is known to exceed `limit` bytes,
    BodyTimedOut when the server's read timeout woke this up (protocol.READ_TIMED_OUT)."""
    if declared_length is not None and declared_length > limit:
        raise BodyTooLarge(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise BodyTooLarge(limit)
        return body
    chunks, size = [body], len(body)
    while True:
        if READ_TIMED_OUT in scope:
            raise BodyTimedOut(scope[READ_TIMED_OUT])
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def parse_payload(scope: Scope, media_type: str, charset: str | None, body: bytes) -> Any:
    """The payload as Cortex gave it to predict, by Content-Type (see the spec README)."""
    if media_type == "application/json":
        try:
            return json.loads(body)  # NaN, Infinity and -Infinity are read as floats
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise PayloadError(f"the request body is not valid JSON: {error}") from error
        except RecursionError as error:  # arrays or objects some 1,000 deep
            raise PayloadError("the request body is not valid JSON: nested too deeply") from error
    if media_type == "text/plain":
        try:
            return body.decode(charset or "utf-8")
        except (LookupError, UnicodeDecodeError) as error:
            raise PayloadError(
                f"the request body is not valid text in charset {charset or 'utf-8'}: {error}"
            ) from error
    if media_type in _FORM_TYPES:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            return await Request(scope, replay).form()
        except HTTPException as error:  # starlette's multipart errors (limits, bad boundary)
            raise PayloadError(f"the form data does not parse: {error.detail}") from error
        except AssertionError as error:  # python-multipart missing: a broken image, not the user
            raise RuntimeError(str(error)) from error
        except Exception as error:
            raise PayloadError(f"the form data does not parse: {error}") from error
    return body


def render_response(
    prediction: Any, strings_as_json: bool = False
) -> tuple[int, list[tuple[bytes, bytes]], bytes] | Response:
    """What predict returned, as Cortex answered it: bytes, str, a starlette Response, or JSON."""
    if isinstance(prediction, Response):
        return prediction
    if isinstance(prediction, bytes):
        return 200, _BYTES_HEADERS, prediction
    if isinstance(prediction, str) and not strings_as_json:
        return 200, _TEXT_HEADERS, prediction.encode("utf-8")
    try:
        return 200, _JSON_HEADERS, _dump_json(prediction)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{error}; please return an object that is JSON serializable (including its nested "
            "fields), a bytes object, a string, or a starlette.responses.Response object"
        ) from error


class Tracker:
    """The `tracker` of the spec: counts of predicted classes, or a histogram of values."""

    def __init__(self, spec: dict[str, Any], scoreboard: Scoreboard) -> None:
        self.key = spec.get("key")
        self.classification = spec.get("model_type") == "classification"
        self.scoreboard = scoreboard

    def __call__(self, prediction: Any) -> None:
        value = prediction
        if self.key is not None:
            if not isinstance(prediction, dict) or self.key not in prediction:
                return
            value = prediction[self.key]
        if (
            not isinstance(value, (str, int, float))
            and getattr(value, "shape", None) == ()
            and callable(getattr(value, "item", None))
        ):
            value = value.item()  # numpy scalars and 0-d arrays: np.bool_ is no numbers.Integral
        if self.classification:
            if isinstance(value, (str, numbers.Integral)):  # bools are classes too
                self.scoreboard.record_class(str(value))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):  # one NaN or inf would poison the histogram's sum for good
                self.scoreboard.record_value(number)


class Worker:
    """One process' predictor, thread pool and readiness; built before the event loop starts."""

    def __init__(
        self,
        spec: dict[str, Any],
        project_dir: Path,
        scoreboard: Scoreboard,
        max_body_bytes: int,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        self.heartbeat = heartbeat  # tells gunicorn's arbiter this worker is alive
        self.project_dir = project_dir
        self.scoreboard = scoreboard
        self.max_body_bytes = max_body_bytes
        predictor_spec = spec["predictor"]
        self.threads = int(predictor_spec.get("threads_per_process") or 1)
        self.batching = runtime_batching(predictor_spec)
        self.handler_interface = predictor_spec.get("interface") == "handler"
        self.pool = PredictThreads(self.threads)
        self.predictor: Predictor | None = None
        self.batcher: AdaptiveBatcher[tuple[Any, Any, Any]] | None = None
        self.post_predict_is_async = False
        tracker = spec.get("tracker")
        self.tracker = Tracker(tracker, scoreboard) if tracker else None
        # Up to Cortex v0.15 a returned str went out as a JSON string, from v0.16 as text/plain;
        # the generator settles which from the release (api.json's cortex.string_response).
        self.strings_as_json = (spec.get("cortex") or {}).get("string_response") == "json"

    # -- start and stop --------------------------------------------------------------------------

    async def start(self) -> None:
        """First boot: initialises the predictor in its own thread and returns at once, so the
        worker answers /healthz (503 until every process is ready) meanwhile.

        A worker started after the replica first served (a replacement for a dead worker, or a
        reload in `cortex-build serve --reload`): returns only once the predictor is ready.
        uvicorn accepts connections on the shared socket after lifespan startup, so until then
        requests go to a ready process, or wait in the socket's backlog when none is (every
        process restarting at once), instead of getting 503 here. uvicorn's heartbeat to gunicorn
        only starts after startup too, so this one beats meanwhile: a load longer than the worker
        timeout must not be taken for a hung worker (gunicorn 22-27 never time out a worker
        before its first beat; this does not rely on that)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] | None = None
        if self.scoreboard.served_once():
            ready = loop.create_future()
        thread = threading.Thread(
            target=self._initialise, args=(loop, ready), name="init", daemon=True
        )
        thread.start()
        if ready is None:
            return
        while not ready.done():
            await asyncio.wait({ready}, timeout=HEARTBEAT_SECONDS)
            if self.heartbeat is not None:
                self.heartbeat()

    def _initialise(
        self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None] | None
    ) -> None:
        started = time.perf_counter()
        try:
            predictor = load_predictor(self.spec, self.project_dir)
        except PredictorError as error:
            # The message says what and where; the user's own traceback, if any, goes with it.
            cause = error.__cause__
            self._fail(str(error), (type(cause), cause, cause.__traceback__) if cause else None)
        except BaseException as error:
            self._fail(f"{self.spec['name']}: failed to initialise the predictor: {error}", True)
        else:
            loop.call_soon_threadsafe(self._ready, predictor, time.perf_counter() - started, ready)

    def _fail(self, message: str, exc_info: Any) -> None:
        logger.error(message, exc_info=exc_info)
        for handler in (*logger.handlers, *logging.getLogger().handlers):
            handler.flush()
        os._exit(WORKER_BOOT_ERROR)

    def _ready(
        self, predictor: Predictor, seconds: float, ready: asyncio.Future[None] | None
    ) -> None:
        self.predictor = predictor
        post_predict = getattr(predictor, "post_predict", None)
        self.post_predict_is_async = asyncio.iscoroutinefunction(post_predict)
        if self.batching:
            self.batcher = AdaptiveBatcher(
                self._predict_batch,
                int(self.batching["max_batch_size"]),
                slots=self.threads,
                batch_interval=float(self.batching["batch_interval"]),
            )
        self.scoreboard.set_ready()
        logger.info(
            "predictor initialised",
            extra={"api": self.spec["name"], "seconds": round(seconds, 3)},
        )
        if ready is not None:
            ready.set_result(None)

    def stop(self) -> None:
        # In-flight requests are done by now (uvicorn waits for them before lifespan shutdown).
        self.pool.shutdown()

    # -- prediction ------------------------------------------------------------------------------

    def _predict_batch(self, items: list[tuple[Any, Any, Any]]) -> Awaitable[Any]:
        """server_side_batching: predict receives lists (one entry per request) and must return a
        list of the same length; the batcher hands each request its own entry. A plain function,
        not a coroutine function, returning one of two awaitables: for a synchronous predictor the
        predict threads' future (handoff.py), which the batcher waits on directly (no task per
        batch); for an async predictor the coroutine of its predict, which the batcher's `_start`
        wraps in a task."""
        assert self.predictor is not None
        payloads = [item[0] for item in items]
        query_params = [item[1] for item in items]
        headers = [item[2] for item in items]
        if self.predictor.is_async:
            return self.predictor.predict(payloads, query_params, headers)
        return self.pool.run(self.predictor.predict, payloads, query_params, headers)

    async def predict(
        self, payload: Any, query_params: Any, headers: Any, verb: str = "POST"
    ) -> Any:
        predictor = self.predictor
        assert predictor is not None
        if verb != "POST":  # a Handler's other methods, never batched (as in Cortex)
            method: VerbMethod = predictor.verbs[verb]
            if method.is_async:
                return await method.call(payload, query_params, headers)
            return await self.pool.run(method.call, payload, query_params, headers)
        if self.batcher is not None:
            return await self.batcher.submit((payload, query_params, headers))
        if predictor.is_async:
            return await predictor.predict(payload, query_params, headers)
        return await self.pool.run(predictor.predict, payload, query_params, headers)

    async def post_predict(
        self, prediction: Any, payload: Any, query_params: Any, headers: Any
    ) -> None:
        predictor = self.predictor
        assert predictor is not None
        # "post_predict() and predict() run in the same thread pool" (Cortex docs)
        await self._after_response(
            "post_predict",
            predictor.post_predict,
            self.post_predict_is_async,
            prediction,
            payload,
            query_params,
            headers,
        )

    async def callback(self, callback: Callable[[], Any]) -> None:
        """A Handler's callback (v0.34-v0.35): Cortex ran it in the request thread pool."""
        await self._after_response("callback", callback, asyncio.iscoroutinefunction(callback))

    async def _after_response(
        self, what: str, func: Callable[..., Any], is_async: bool, *args: Any
    ) -> None:
        try:
            if is_async:
                await func(*args)
            else:
                result = await self.pool.run(func, *args)
                if inspect.isawaitable(result):  # a wrapper around the user's async def
                    await result
        except asyncio.CancelledError:
            raise
        except BaseException:  # user code: sys.exit() must not escape into uvicorn either
            logger.exception(f"{what} failed", extra={"api": self.spec["name"]})


def split_callback(result: Any) -> tuple[Any, Callable[[], Any] | None]:
    """A Handler's `(response, callback)`, recognised as Cortex v0.34-v0.35 did: a 2-tuple whose
    second item is callable (any other tuple is a JSON array)."""
    if isinstance(result, tuple) and len(result) == 2 and callable(result[1]):
        return result[0], result[1]
    return result, None


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
        media_type, charset, length = _content_info(scope)
        # The body before admission: a client that sends it slowly holds no capacity meanwhile
        # (and its connection for at most the server's read timeout). Never admitted, these
        # count with no duration, as a 503 does.
        try:
            body = await read_body(scope, receive, length, self.worker.max_body_bytes)
        except BodyError as error:
            self.scoreboard.record(await send_error(send, error.status, str(error), _CLOSE), 0.0)
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
            await _send(send, *rendered)
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
        await _send(send, 200, _JSON_HEADERS, _dump_json(summary))


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


def create_app(
    spec: dict[str, Any],
    project_dir: Path,
    scoreboard: Scoreboard,
    max_body_bytes: int,
    heartbeat: Callable[[], None] | None = None,
) -> CortexApp:
    """`heartbeat`: the gunicorn worker's notify(), beaten while a replacement worker loads."""
    worker = Worker(spec, project_dir, scoreboard, max_body_bytes, heartbeat)
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
        text = metrics.render(scoreboard, spec["name"], spec.get("tracker"))
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
    return Response(_dump_json(body), error.status_code, error.headers, "application/json")


async def _json_server_error(request: Request, error: Exception) -> Response:
    body = {"error": "internal server error (see the server log)", "status": 500}
    return Response(_dump_json(body), 500, media_type="application/json")
