"""The predict threads of a worker: synchronous user code, handed off from the event loop.

A synchronous `predict` (and `post_predict`, a Handler's other methods and callbacks:
"post_predict() and predict() run in the same thread pool", Cortex's docs) runs in one of
`threads_per_process` threads, never on the event loop, so that /healthz, /metrics and 503s keep
answering while a long prediction runs. `loop.run_in_executor` does that at a price paid on every
request: a concurrent.futures Future (with its own Condition and lock), a work item, an asyncio
Future chained to the first through callbacks on both sides, and one wake-up of the event loop (a
write to its self-pipe, then a pass through epoll) per result.

Here a call is one tuple in a deque and one asyncio Future; an idle thread is woken through a lock
of its own; and results that finish while the loop has not yet collected earlier ones ride on the
same wake-up, so under load the loop is woken once for many results. bench/runtime_bench.py (the
iris comparison) measures it against bare Starlette.

Calls start in the order they were made, each in whichever thread is free. `run_then` hands the
result to a callback instead of a future: the adaptive batcher's way, which saves the pass of the
event loop that a future's done callback waits for.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = object()  # a job telling one thread to exit


class PredictThreads:
    """`run(func, *args)` from the event loop thread; the threads start with the first call (so
    after gunicorn forked this worker)."""

    def __init__(self, threads: int, name: str = "predict") -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self._count = threads
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        # (future or done callback, func, args)
        self._jobs: deque[tuple[Any, Any, tuple[Any, ...]]] = deque()
        self._idle: list[threading.Lock] = []  # each idle thread's wake-up lock, held
        self._mutex = threading.Lock()  # a thread going idle vs a job arriving
        self._done: deque[tuple[Any, bool, Any]] = deque()  # (future or callback, ok, value)
        self._collect_pending = False  # a _collect is scheduled on the loop and has not begun

    def run(self, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """func(*args) in a predict thread; its result (or exception) as an asyncio Future."""
        loop = self._loop
        if loop is None:
            loop = self._start()
        future = loop.create_future()
        self._queue(future, func, args)
        return future

    def run_then(
        self, done: Callable[[bool, Any], None], func: Callable[..., Any], *args: Any
    ) -> None:
        """func(*args) in a predict thread, then `done(True, result)` or `done(False, error)` on
        the event loop, in the pass that collects the result (a future's done callbacks would
        wait for the next one)."""
        if self._loop is None:
            self._start()
        self._queue(done, func, args)

    def _queue(self, target: Any, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self._mutex:
            self._jobs.append((target, func, args))
            wake = self._idle.pop() if self._idle else None
        if wake is not None:
            wake.release()

    def shutdown(self) -> None:
        """Lets every call made so far finish, then stops the threads (any thread may call it)."""
        with self._mutex:
            self._jobs.extend((_STOP, None, ()) for _ in self._threads)
            idle, self._idle = self._idle, []
        for wake in idle:
            wake.release()
        for thread in self._threads:
            thread.join()

    def _start(self) -> asyncio.AbstractEventLoop:
        self._loop = loop = asyncio.get_running_loop()
        for index in range(self._count):
            thread = threading.Thread(target=self._work, name=f"{self._name}_{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return loop

    def _work(self) -> None:
        wake = threading.Lock()
        wake.acquire()  # held while this thread runs; released by whoever hands it a job
        jobs, done, mutex = self._jobs, self._done, self._mutex
        loop = self._loop
        assert loop is not None
        while True:
            with mutex:
                job = jobs.popleft() if jobs else None
                if job is None:
                    self._idle.append(wake)
            if job is None:
                wake.acquire()  # until run() or shutdown() releases it
                continue
            target, func, args = job
            if target is _STOP:
                return
            if isinstance(target, asyncio.Future) and target.cancelled():
                continue  # its request was cancelled while it waited here
            try:
                value, ok = func(*args), True
            except StopIteration as error:  # a Future refuses it (it ends coroutines)
                value, ok = RuntimeError(f"predict raised StopIteration: {error}"), False
            except BaseException as error:  # user code: SystemExit too, answered as a 500
                value, ok = error, False
            done.append((target, ok, value))
            # Appended first, checked second (and _collect clears the flag before it drains):
            # a result is never left uncollected.
            if not self._collect_pending:
                self._collect_pending = True
                try:
                    loop.call_soon_threadsafe(self._collect)
                except RuntimeError:  # the loop is closed: nobody waits for results any more
                    return

    def _collect(self) -> None:
        self._collect_pending = False
        done = self._done
        while done:
            target, ok, value = done.popleft()
            if not isinstance(target, asyncio.Future):  # run_then's callback
                try:
                    target(ok, value)
                except Exception as error:  # a bug there must not strand the other results
                    asyncio.get_running_loop().call_exception_handler(
                        {"message": "a predict thread's done callback failed", "exception": error}
                    )
            elif target.cancelled():
                continue
            elif ok:
                target.set_result(value)
            else:
                target.set_exception(value)
