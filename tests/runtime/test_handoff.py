"""The predict threads (handoff.py) on a real event loop with real threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from cortex_serve.handoff import PredictThreads


def test_calls_run_in_named_threads_off_the_loop_and_return_their_results():
    pool = PredictThreads(1)

    async def main() -> list[tuple[int, str]]:
        loop_thread = threading.current_thread().name

        def work(x: int) -> tuple[int, str]:
            assert threading.current_thread().name != loop_thread
            return x * 2, threading.current_thread().name

        return await asyncio.gather(*(pool.run(work, i) for i in range(5)))

    assert asyncio.run(main()) == [(i * 2, "predict_0") for i in range(5)]
    pool.shutdown()


def test_an_exception_fails_only_its_own_call_and_base_exceptions_come_back_too():
    pool = PredictThreads(1)

    def fail(error: BaseException) -> None:
        raise error

    async def main() -> list[object]:
        calls = [
            pool.run(fail, ValueError("bad")),
            pool.run(lambda: "fine"),
            pool.run(fail, SystemExit(3)),
            pool.run(fail, StopIteration()),  # an asyncio Future refuses StopIteration itself
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    bad, fine, exited, stopped = asyncio.run(main())
    assert isinstance(bad, ValueError) and str(bad) == "bad"
    assert fine == "fine"
    assert isinstance(exited, SystemExit) and exited.code == 3
    assert isinstance(stopped, RuntimeError) and "StopIteration" in str(stopped)
    pool.shutdown()


def test_threads_run_calls_in_parallel_and_the_loop_keeps_running_meanwhile():
    pool = PredictThreads(2)

    async def main() -> tuple[float, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        start = time.perf_counter()
        await asyncio.gather(pool.run(time.sleep, 0.3), pool.run(time.sleep, 0.3))
        elapsed = time.perf_counter() - start
        ticker.cancel()
        return elapsed, ticks

    elapsed, ticks = asyncio.run(main())
    assert elapsed < 0.5  # two 0.3 s calls at once, not one after the other
    assert ticks >= 10  # the event loop was free while they ran
    pool.shutdown()


def test_results_finishing_together_are_collected_on_fewer_wake_ups_than_results():
    pool = PredictThreads(1)
    collects = 0
    collect = pool._collect

    def counting_collect() -> None:
        nonlocal collects
        collects += 1
        collect()

    pool._collect = counting_collect  # type: ignore[method-assign]

    async def main() -> list[int]:
        return await asyncio.gather(*(pool.run(pow, i, 2) for i in range(200)))

    assert asyncio.run(main()) == [i * i for i in range(200)]
    assert 1 <= collects < 100
    pool.shutdown()


def test_run_then_calls_back_on_the_loop_in_the_pass_that_collects_the_result():
    pool = PredictThreads(1)
    outcomes: list[tuple[bool, object, bool]] = []

    def fail(error: BaseException) -> None:
        raise error

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.current_thread()
        all_done = loop.create_future()

        def done(ok: bool, value: object) -> None:
            outcomes.append((ok, value, threading.current_thread() is loop_thread))
            if len(outcomes) == 3:
                all_done.set_result(None)

        pool.run_then(done, pow, 3, 2)
        pool.run_then(done, fail, ValueError("bad"))
        pool.run_then(done, fail, StopIteration())
        await all_done

    asyncio.run(main())
    (ok, nine, on_loop), (failed, bad, _), (stopped, stop, _) = outcomes
    assert ok and nine == 9 and on_loop
    assert not failed and isinstance(bad, ValueError) and str(bad) == "bad"
    assert not stopped and isinstance(stop, RuntimeError) and "StopIteration" in str(stop)
    pool.shutdown()


def test_a_failing_run_then_callback_is_reported_and_the_other_results_still_come_back():
    pool = PredictThreads(1)
    reported: list[object] = []
    release = threading.Event()

    def broken(ok: bool, value: object) -> None:
        raise KeyError("a bug in the callback")

    async def main() -> int:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
        blocker = pool.run(release.wait, 5)
        pool.run_then(broken, pow, 2, 2)
        after = pool.run(pow, 2, 3)
        release.set()  # the three finish together and are collected in one pass
        await blocker
        return await after

    assert asyncio.run(main()) == 8
    assert len(reported) == 1 and isinstance(reported[0], KeyError)
    pool.shutdown()


def test_a_call_cancelled_before_it_started_does_not_run():
    pool = PredictThreads(1)
    ran: list[str] = []
    release = threading.Event()

    async def main() -> None:
        blocker = pool.run(release.wait, 5)
        waiting = pool.run(ran.append, "cancelled")
        later = pool.run(ran.append, "later")
        waiting.cancel()
        release.set()
        await blocker
        await later

    asyncio.run(main())
    assert ran == ["later"]
    pool.shutdown()


def test_shutdown_lets_the_calls_already_made_finish():
    pool = PredictThreads(2)
    finished: list[int] = []

    def slow(i: int) -> None:
        time.sleep(0.05)
        finished.append(i)

    async def main() -> None:
        for i in range(6):
            pool.run(slow, i)
        await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)

    asyncio.run(main())
    assert sorted(finished) == list(range(6))
    assert not any(thread.is_alive() for thread in pool._threads)


def test_at_least_one_thread_is_required():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        PredictThreads(0)
