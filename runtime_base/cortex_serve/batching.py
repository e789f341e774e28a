"""Adaptive server-side batching (`predictor.server_side_batching`).

A fixed batching window costs every request the window even when the server is idle (bench/README.md
measured the ONNX iris model at 8 connections: 8.4k req/s unbatched, 1.4k with a fixed 5 ms wait;
a closed loop of 8 clients can do no better than 8 requests per window, 1.6k/s). So this
batcher never holds a request while nothing runs: with no batch running, a batch starts as soon as
the event loop has run the callbacks already queued on it (never a wait on a timer), taking every
request that reached the batcher meanwhile. While a batch runs,
requests queue; the slot of a finishing batch takes what queued (up to `max_batch_size`) at once,
so under load batches grow by themselves to match the predictor's speed (whether or not other
slots are still busy). Further slots (`threads_per_process` > 1) take only a full batch, or a
partial one once its oldest request has waited `batch_interval` since it arrived (a timer is set
for that moment): on a busy core another predict thread in parallel buys only thread switches, and
a batch that waits a little is bigger and costs less per request. `batch_interval` is thus the
longest a request waits beyond a running batch.

It runs on the worker's event loop, so its bookkeeping needs no locks; the predictor itself runs
wherever `start_batch` puts it: for a synchronous predict, the worker's predict threads, which call
back with the results in the pass of the loop that collects them (handoff.py's `run_then`; no
future, no task per batch). bench/batching_bench.py measures it.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
# done(True, results) or done(False, error): how a batch's outcome comes back, on the event loop
Done = Callable[[bool, Any], None]


def runtime_batching(predictor_spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `server_side_batching` that this runtime's batcher applies. None for a tensorflow
    predictor (a v0.34-v0.35 Handler too): Cortex batched its requests inside TensorFlow Serving,
    as the sidecar does here (`--enable_batching`, set from the same fields), and its predict
    receives one payload per request."""
    if predictor_spec.get("type") == "tensorflow":
        return None
    return predictor_spec.get("server_side_batching") or None


class BatchResultError(Exception):
    """predict returned something that cannot be split into one answer per request."""


def await_then(awaitable: Awaitable[Any], done: Done) -> None:
    """Calls `done` with the outcome of `awaitable` (a coroutine runs as a task): how an async
    predict's batch reports back."""
    running = asyncio.ensure_future(awaitable)
    running.add_done_callback(functools.partial(_report, done))


def _report(done: Done, running: asyncio.Future[Any]) -> None:
    if running.cancelled():
        done(False, asyncio.CancelledError("the batch's predict was cancelled"))
    elif (error := running.exception()) is not None:
        done(False, error)
    else:
        done(True, running.result())


class AdaptiveBatcher(Generic[Item]):
    def __init__(
        self,
        start_batch: Callable[[list[Item], Done], None],
        max_batch_size: int,
        slots: int = 1,
        batch_interval: float | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`start_batch(items, done)` starts predicting a list of items and, on the event loop,
        calls `done(True, results)` with one result per item, in order (a result that is an
        exception instance fails only its own request), or `done(False, error)` to fail them all
        (`await_then` reports an awaitable's outcome so). `slots` is how many batches may run at
        once (the worker's predict threads).

        While no batch runs, a request leaves once the callbacks already queued on the event loop
        have run, with any others that reached the batcher meanwhile. While one runs, requests
        queue and a free extra slot takes them only as a full batch or once the oldest has waited
        `batch_interval` seconds (None: at once); a finishing batch's slot takes what queued as
        soon as the callbacks already queued have run. `on_batch(size)` is told each batch's size
        as it starts (the /metrics histogram)."""
        if max_batch_size < 1 or slots < 1:
            raise ValueError("max_batch_size and slots must be >= 1")
        if batch_interval is not None and batch_interval < 0:
            raise ValueError("batch_interval must be >= 0")
        self._start_batch = start_batch
        self._on_batch = on_batch
        self._max_batch_size = max_batch_size
        self._slots = slots
        self._free_slots = slots
        self._batch_interval = batch_interval
        self._timer: asyncio.TimerHandle | None = None
        # when the armed timer fires: entries due by then count as due even if the loop fires it
        # a hair early (asyncio runs timers up to its clock resolution ahead)
        self._timer_when = 0.0
        # (item, its caller's future, loop.time() when it queued)
        self._queue: deque[tuple[Item, asyncio.Future[Any], float]] = deque()
        # a batch's start, queued on the event loop behind the callbacks already there (submit)
        self._gathering: asyncio.Handle | None = None
        self._freed = 0  # slots that take what queued at once when it starts
        # the event loop of the first submit, kept: on Python 3.11 each get_running_loop() costs
        # a getpid syscall, and a request called it twice here
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: Item) -> Any:
        """Queues one request and returns its own result (or raises its own error)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        queue = self._queue
        queue.append((item, future, loop.time()))
        if self._gathering is not None:  # a batch starts once the queued callbacks have run
            if len(queue) >= self._max_batch_size:
                self._gathered()
        elif self._free_slots == self._slots and len(queue) == 1:
            self._start_soon(1)  # nothing running or waiting
        else:
            self._dispatch()
        return await future

    def _start_soon(self, freed: int) -> None:
        """`freed` more slots take what queued at once, as soon as the event loop has run the
        callbacks already queued on it (the loop is busy until then, so nothing waits idle), and
        requests that reach the batcher meanwhile go too. Clients answered together come back
        together: starting at once, the first of them would run alone and the rest queue behind
        it, batches alternating 1 and N-1 (bench/README.md)."""
        self._freed += freed
        if self._gathering is None:
            loop = self._running_loop()
            if _nothing_else_ready(loop):  # no other request can reach the batcher first
                self._gathered()
            else:
                self._gathering = loop.call_soon(self._gathered)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        assert loop is not None, "set by the first submit, which every other call follows"
        return loop

    def _gathered(self) -> None:
        if self._gathering is not None:
            self._gathering.cancel()
            self._gathering = None
        freed, self._freed = self._freed, 0
        self._dispatch(freed)

    def _interval_over(self) -> None:
        self._timer = None
        self._dispatch(0, due_by=self._timer_when)

    def _dispatch(self, freed: int = 0, due_by: float = 0.0) -> None:
        """Starts what may start. `freed` slots (of batches that finished, or the first of an
        idle batcher) take what queued at once; any other free slot takes a full batch, or a
        partial one whose oldest request queued `batch_interval` ago (by now, or by `due_by`,
        when the timer fired)."""
        queue = self._queue
        while self._free_slots and queue:
            while queue and queue[0][1].cancelled():  # the client went away while queued
                queue.popleft()
            if not queue:
                break
            if (
                freed <= 0
                and self._free_slots < self._slots
                and len(queue) < self._max_batch_size
                and self._batch_interval  # 0 or None: no wait
            ):
                # A batch is running: a partial one waits for it (or for batch_interval since its
                # oldest request arrived) rather than take another slot. On a busy core a second
                # predict thread only adds thread switches; a batch that waits is bigger and
                # costs less per request.
                due = queue[0][2] + self._batch_interval
                loop = self._running_loop()
                if due > due_by and due > loop.time():
                    if self._timer is None:
                        # An earlier timer, set for a request taken since, fires early and
                        # re-arms for the oldest left: due times only grow, so it is never late.
                        self._timer_when = due
                        self._timer = loop.call_at(due, self._interval_over)
                    return
            # queue[0] is live (checked above), so the batch is never empty
            batch: list[tuple[Item, asyncio.Future[Any], float]] = []
            while queue and len(batch) < self._max_batch_size:
                entry = queue.popleft()
                if not entry[1].cancelled():
                    batch.append(entry)
            freed -= 1  # a freed slot is taken; the others follow the rule above
            self._free_slots -= 1
            if self._on_batch is not None:
                self._on_batch(len(batch))
            done = functools.partial(self._finish, batch)
            try:
                self._start_batch([entry[0] for entry in batch], done)
            except Exception as error:  # fails only its batch
                # on the next pass, as a result would come: _finish here would recurse into this
                self._running_loop().call_soon(done, False, error)
        if not queue and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(
        self, batch: list[tuple[Item, asyncio.Future[Any], float]], ok: bool, results: Any
    ) -> None:
        self._free_slots += 1
        try:
            if not ok:
                raise results
            _check_results(results, len(batch))
        except BaseException as error:  # every request of this batch fails alike
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for (_, future, _), result in zip(batch, results, strict=True):
                if future.done():  # cancelled by its caller meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        if len(self._queue) >= self._max_batch_size:
            self._dispatch(1)  # a full batch: nothing to wait for
        else:
            self._start_soon(1)


def _nothing_else_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether no callback is due on the loop before it next polls its sockets (so no request
    can reach the batcher before then). asyncio's own loop keeps them in `_ready`; another loop
    (uvloop) is assumed busy, which costs one pass of the loop."""
    ready = getattr(loop, "_ready", None)
    return ready is not None and not ready


def _check_results(results: Any, expected: int) -> None:
    if not isinstance(results, (list, tuple)):
        raise BatchResultError(
            "with server_side_batching, predict must return a list with one prediction per "
            f"request (got {type(results).__name__} for a batch of {expected})"
        )
    if len(results) != expected:
        raise BatchResultError(
            "with server_side_batching, predict must return a list with one prediction per "
            f"request (got {len(results)} predictions for a batch of {expected})"
        )
