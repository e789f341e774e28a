"""One worker process' predictor: loaded at startup in its own thread (a failure stops the
server), its thread pool and batcher, how a request calls it, and shutdown.

A first boot answers /healthz (503) while the predictor loads; a replacement worker accepts
connections only once its predictor is ready, beating gunicorn's heartbeat meanwhile (see
Worker.start). post_predict and a Handler's callback run in the same thread pool as predict.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cortex_internal.lib.log import logger

from .batching import AdaptiveBatcher, Done, await_then, runtime_batching
from .handoff import PredictThreads
from .predictor import Predictor, PredictorError, VerbMethod
from .predictor_loading import load_predictor
from .scoreboard import Scoreboard

# gunicorn's "worker failed to boot" exit status: the master stops the whole server with it, so a
# predictor whose init fails never reports healthy and the container exits non-zero.
WORKER_BOOT_ERROR = 3
# How often a replacement worker tells gunicorn's arbiter it is alive while its predictor loads:
# well under any usable worker timeout (uvicorn itself beats once a second).
HEARTBEAT_SECONDS = 0.25


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
        # the gunicorn worker's notify(), beaten while a replacement worker loads its predictor
        self.heartbeat = heartbeat
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
                on_batch=self.scoreboard.record_batch,
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

    def _predict_batch(self, items: list[tuple[Any, Any, Any]], done: Done) -> None:
        """server_side_batching: predict receives lists (one entry per request) and must return a
        list of the same length; the batcher hands each request its own entry. A synchronous
        predict runs in a predict thread, which calls `done` back (handoff.py's run_then); an
        async one runs in a task on the loop."""
        assert self.predictor is not None
        payloads = [item[0] for item in items]
        query_params = [item[1] for item in items]
        headers = [item[2] for item in items]
        if self.predictor.is_async:
            await_then(self.predictor.predict(payloads, query_params, headers), done)
            return
        self.pool.run_then(done, self.predictor.predict, payloads, query_params, headers)

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
