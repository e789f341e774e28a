"""The adaptive batcher on a real event loop with a real thread pool (no HTTP here)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cortex_serve.batching import (
    AdaptiveBatcher,
    BatchResultError,
    await_then,
    runtime_batching,
)


def awaited(run_batch):
    """The batcher's start_batch from a function that returns an awaitable (as the worker starts
    an async predict's batch)."""
    return lambda batch, done: await_then(run_batch(batch), done)


class SlowDoubler:
    """A batch predictor that records the batches it saw and takes `delay` seconds per batch."""

    def __init__(self, delay: float = 0.0, threads: int = 1) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.pool = ThreadPoolExecutor(max_workers=threads)

    def predict(self, batch: list[int]) -> list[int]:
        self.batches.append(list(batch))
        time.sleep(self.delay)
        return [x * 2 for x in batch]

    async def run_batch(self, batch: list[int]) -> list[int]:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.predict, batch)


def test_a_lone_request_is_not_held():
    predictor = SlowDoubler()

    async def main() -> float:
        batcher = AdaptiveBatcher(awaited(predictor.run_batch), max_batch_size=8)
        start = time.perf_counter()
        assert await batcher.submit(21) == 42
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    assert predictor.batches == [[21]]
    assert elapsed < 0.05  # no batching window was waited out


@pytest.mark.parametrize("callback_due", [False, True])
def test_a_lone_request_on_an_idle_loop_starts_without_a_pass_of_the_loop(callback_due):
    # Nothing else is due on the loop before it next polls, so no other request can join: the
    # batch starts within submit, not one pass later. With a callback due first (one that could
    # bring another request), it waits for that callback's pass.
    started: list[list[int]] = []

    async def main() -> list[list[int]]:
        batcher = AdaptiveBatcher(lambda batch, done: started.append(batch), max_batch_size=8)
        if callback_due:
            asyncio.get_running_loop().call_soon(lambda: None)
        lone = batcher.submit(1)
        lone.send(None)  # submit's first step, up to its await
        within_submit = list(started)
        lone.close()
        return within_submit

    assert asyncio.run(main()) == ([] if callback_due else [[1]])


def test_requests_arriving_while_busy_go_together_and_each_gets_its_own_answer():
    predictor = SlowDoubler(delay=0.05)

    async def main() -> list[int]:
        batcher = AdaptiveBatcher(awaited(predictor.run_batch), max_batch_size=4)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        rest = await asyncio.gather(*(batcher.submit(i) for i in range(1, 10)))
        return [await first, *rest]

    assert asyncio.run(main()) == [i * 2 for i in range(10)]
    # the first went alone at once; the rest queued behind it and left in batches of <= 4
    assert predictor.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_requests_reaching_an_idle_batcher_in_one_pass_of_the_event_loop_go_together():
    # Clients answered together (one batch's responses) come back together: the first of them
    # does not leave alone with the others queued behind it, nor wait for a batching window.
    predictor = SlowDoubler(delay=0.05)

    async def main() -> float:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=4, batch_interval=10.0
        )
        start = time.perf_counter()
        assert await asyncio.gather(*(batcher.submit(i) for i in range(6))) == [0, 2, 4, 6, 8, 10]
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    assert predictor.batches == [[0, 1, 2, 3], [4, 5]]
    assert elapsed < 1.0


def test_many_concurrent_callers_on_several_slots_get_their_own_answers():
    predictor = SlowDoubler(delay=0.002, threads=4)

    async def main() -> list[int]:
        batcher = AdaptiveBatcher(awaited(predictor.run_batch), max_batch_size=16, slots=4)

        async def caller(i: int) -> int:
            await asyncio.sleep((i % 7) / 1000)
            return await batcher.submit(i)

        return await asyncio.gather(*(caller(i) for i in range(500)))

    assert asyncio.run(main()) == [i * 2 for i in range(500)]
    assert sorted(x for batch in predictor.batches for x in batch) == list(range(500))
    assert max(len(batch) for batch in predictor.batches) <= 16
    assert any(len(batch) > 1 for batch in predictor.batches)


@pytest.mark.parametrize(
    ("make_result", "message"),
    [
        (lambda batch: {"not": "a list"}, "got dict for a batch of {n}"),
        (lambda batch: [*batch, 99], "got {m} predictions for a batch of {n}"),
    ],
)
def test_a_wrong_return_fails_every_request_of_the_batch_clearly(make_result, message):
    seen: list[int] = []

    async def run_batch(batch: list[int]):
        seen.append(len(batch))
        return make_result(batch)

    async def main() -> list:
        batcher = AdaptiveBatcher(awaited(run_batch), max_batch_size=3)
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, BatchResultError) for r in results)
    # the three reached the idle batcher together: one batch, one error for each of them
    assert seen == [3]
    assert message.format(n=3, m=4) in str(results[0])
    assert str(results[0]) == str(results[1]) == str(results[2])


def test_an_exception_in_one_slot_fails_only_that_request():
    async def run_batch(batch: list[int]):
        return [ValueError(f"bad input {x}") if x == 2 else x for x in batch]

    async def main() -> list:
        batcher = AdaptiveBatcher(awaited(run_batch), max_batch_size=8)
        return await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)

    results = asyncio.run(main())
    assert results[0] == 0 and results[1] == 1 and results[3] == 3
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad input 2"


def test_a_raising_predict_fails_its_batch_and_the_batcher_goes_on():
    calls: list[list[int]] = []

    async def run_batch(batch: list[int]):
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return batch

    async def main() -> tuple:
        batcher = AdaptiveBatcher(awaited(run_batch), max_batch_size=8)
        first = await asyncio.gather(batcher.submit(1), return_exceptions=True)
        second = await batcher.submit(2)
        return first[0], second

    first, second = asyncio.run(main())
    assert isinstance(first, RuntimeError)
    assert second == 2


def test_a_request_cancelled_while_queued_is_left_out_of_the_batch():
    predictor = SlowDoubler(delay=0.05)

    async def main() -> list:
        batcher = AdaptiveBatcher(awaited(predictor.run_batch), max_batch_size=8)
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)  # 0 is now running; 1 and 2 will queue
        cancelled = asyncio.ensure_future(batcher.submit(1))
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        cancelled.cancel()
        return [await running, await kept]

    assert asyncio.run(main()) == [0, 4]
    assert predictor.batches == [[0], [2]]


def test_while_a_batch_runs_another_slot_takes_a_partial_batch_only_after_batch_interval():
    predictor = SlowDoubler(delay=0.3, threads=2)

    async def main() -> tuple[list[int], float]:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=4, slots=2, batch_interval=0.05
        )
        start = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit(0))  # nothing runs: leaves at once
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(batcher.submit(1))  # 0 runs: waits for more or 50 ms
        third = asyncio.ensure_future(batcher.submit(2))
        answers = [await second, await third]
        waited = time.perf_counter() - start
        return [await first, *answers], waited

    answers, waited = asyncio.run(main())
    assert answers == [0, 2, 4]
    # 1 and 2 went together on the second slot after batch_interval, long before 0 was done
    assert predictor.batches == [[0], [1, 2]]
    assert 0.05 <= waited < 0.3 + 0.2


def test_while_a_batch_runs_a_full_batch_takes_another_slot_at_once():
    predictor = SlowDoubler(delay=0.3, threads=2)

    async def main() -> float:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=3, slots=2, batch_interval=10.0
        )
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        assert await asyncio.gather(*(batcher.submit(i) for i in (1, 2, 3))) == [2, 4, 6]
        elapsed = time.perf_counter() - start
        assert await first == 0
        return elapsed

    elapsed = asyncio.run(main())
    assert predictor.batches == [[0], [1, 2, 3]]
    assert elapsed < 0.3 + 0.2  # neither the 10 s interval nor the first batch was waited out


def test_a_finishing_batch_takes_what_queued_without_waiting_batch_interval():
    predictor = SlowDoubler(delay=0.05)

    async def main() -> float:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=8, batch_interval=10.0
        )
        start = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        assert await asyncio.gather(*(batcher.submit(i) for i in (1, 2))) == [2, 4]
        assert await first == 0
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    assert predictor.batches == [[0], [1, 2]]
    assert elapsed < 1.0


def test_a_batch_may_run_in_an_executor_and_one_that_fails_to_start_fails_alone():
    pool = ThreadPoolExecutor(1)
    calls: list[list[int]] = []

    def run_batch(batch: list[int]):
        calls.append(list(batch))
        if 13 in batch:
            raise ValueError("unlucky batch")  # raised by the call itself, not its future
        return asyncio.get_running_loop().run_in_executor(pool, lambda: [x + 1 for x in batch])

    async def main() -> list:
        batcher = AdaptiveBatcher(awaited(run_batch), max_batch_size=8)
        lone = await batcher.submit(1)
        unlucky = await asyncio.gather(batcher.submit(13), return_exceptions=True)
        after = await asyncio.gather(*(batcher.submit(i) for i in range(3)))
        return [lone, unlucky[0], after]

    lone, unlucky, after = asyncio.run(main())
    assert lone == 2 and after == [1, 2, 3]
    assert isinstance(unlucky, ValueError) and str(unlucky) == "unlucky batch"
    assert calls == [[1], [13], [0, 1, 2]]


def test_a_cancelled_lone_request_does_not_stall_the_batcher():
    predictor = SlowDoubler(delay=0.05)

    async def main() -> list[int]:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=8, batch_interval=0.01
        )
        lone = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        lone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lone
        return [await future for future in queued] + [await batcher.submit(3)]

    assert asyncio.run(main()) == [2, 4, 6]
    assert sorted(x for batch in predictor.batches for x in batch) == [0, 1, 2, 3]


class TimedPredictor:
    """A batch predictor on `threads` threads that records when each batch started (seconds since
    `start`) and sleeps `delays[first item]` seconds for it (0.0 if absent)."""

    def __init__(self, delays: dict[int, float], threads: int) -> None:
        self.delays = delays
        self.started: list[tuple[list[int], float]] = []
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.start = time.perf_counter()

    def predict(self, batch: list[int]) -> list[int]:
        self.started.append((list(batch), time.perf_counter() - self.start))
        time.sleep(self.delays.get(batch[0], 0.0))
        return [x * 2 for x in batch]

    async def run_batch(self, batch: list[int]) -> list[int]:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.predict, batch)

    def started_at(self, batch: list[int]) -> float:
        return next(at for seen, at in self.started if seen == batch)


@pytest.mark.parametrize("finishing", ["lone", "batch"])
def test_a_finishing_slot_takes_what_queued_at_once_while_another_slot_is_still_busy(finishing):
    # slots=2: one slot runs a short batch, the other a long one; request 5 queues while neither
    # is free. When the short one ends (a lone request or a queued batch), its slot takes 5 at
    # once instead of waiting batch_interval (0.4 s) or for the long batch (1 s).
    short, long_ = (0.1, 1.0) if finishing == "lone" else (1.0, 0.1)
    predictor = TimedPredictor({0: short, 1: long_}, threads=2)

    async def main() -> list[int]:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=4, slots=2, batch_interval=0.4
        )
        predictor.start = time.perf_counter()
        lone = asyncio.ensure_future(batcher.submit(0))  # idle: leaves at once on one slot
        await asyncio.sleep(0.01)
        full = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3, 4)]  # full: 2nd slot
        await asyncio.sleep(0.01)
        queued = asyncio.ensure_future(batcher.submit(5))  # no slot free: queues
        return [await lone, *[await f for f in full], await queued]

    assert asyncio.run(main()) == [0, 2, 4, 6, 8, 10]
    assert [batch for batch, _ in predictor.started] == [[0], [1, 2, 3, 4], [5]]
    freed_at = predictor.started_at([0] if finishing == "lone" else [1, 2, 3, 4]) + 0.1
    # 5 started as the short batch ended (~0.1 s), not batch_interval after it (~0.5 s)
    assert predictor.started_at([5]) < freed_at + 0.15


def test_an_extra_slot_counts_batch_interval_from_the_oldest_request_not_the_newest():
    # One slot runs a long batch, the other is free: 1 (at 0.01 s) and 2 (at 0.2 s) make a partial
    # batch, which the free slot takes once 1 has waited batch_interval (0.3 s), at ~0.31 s.
    predictor = TimedPredictor({0: 1.5}, threads=2)

    async def main() -> list[int]:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=8, slots=2, batch_interval=0.3
        )
        predictor.start = time.perf_counter()
        lone = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(batcher.submit(2))
        return [await first, await second, await lone]

    assert asyncio.run(main()) == [2, 4, 0]
    assert [batch for batch, _ in predictor.started] == [[0], [1, 2]]
    assert 0.3 <= predictor.started_at([1, 2]) < 0.3 + 0.15


def test_an_extra_slot_waits_batch_interval_from_the_arrival_of_the_oldest_request_left():
    # 1 queues at 0.01 s (timer for 0.31 s) but its caller goes away; 2, queued at 0.2 s, is now
    # the oldest and must wait its own batch_interval: the free slot takes it at ~0.5 s, neither
    # at 0.31 s (1's deadline) nor at 0.61 s (batch_interval from when 1's timer fired).
    predictor = TimedPredictor({0: 1.5}, threads=2)

    async def main() -> int:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=8, slots=2, batch_interval=0.3
        )
        predictor.start = time.perf_counter()
        lone = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.19)
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0.05)
        gone.cancel()
        answer = await kept
        await lone
        return answer

    assert asyncio.run(main()) == 4
    assert [batch for batch, _ in predictor.started] == [[0], [2]]
    assert 0.5 <= predictor.started_at([2]) < 0.58


def test_an_extra_slot_never_takes_a_partial_batch_before_batch_interval():
    # One slot busy for 1.5 s; requests trickle in every 0.05 s. The free slot takes them only as
    # batch_interval (0.3 s) passes for the oldest, never one by one as they come.
    predictor = TimedPredictor({0: 1.5}, threads=2)

    async def main() -> list[int]:
        batcher = AdaptiveBatcher(
            awaited(predictor.run_batch), max_batch_size=16, slots=2, batch_interval=0.3
        )
        predictor.start = time.perf_counter()
        lone = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)
        futures = []
        for i in range(1, 9):
            futures.append(asyncio.ensure_future(batcher.submit(i)))
            await asyncio.sleep(0.05)
        return [await f for f in futures] + [await lone]

    assert asyncio.run(main()) == [i * 2 for i in range(1, 9)] + [0]
    batches = [batch for batch, _ in predictor.started]
    assert batches[0] == [0]
    assert batches[1][0] == 1 and len(batches[1]) >= 5  # 1..6 had come by 1's 0.31 s deadline
    assert sorted(x for batch in batches[1:] for x in batch) == list(range(1, 9))
    assert predictor.started_at(batches[1]) >= 0.3


def test_the_runtime_batches_python_and_onnx_predictors_and_leaves_tensorflow_to_tf_serving():
    batching = {"max_batch_size": 8, "batch_interval": 0.01}
    for kind in ("python", "onnx"):
        assert runtime_batching({"type": kind, "server_side_batching": batching}) == batching
        assert runtime_batching({"type": kind, "server_side_batching": None}) is None
    # Cortex: "No modifications to your TensorFlowPredictor implementation are required"; the
    # sidecar batches (generator/images.py), predict gets one payload per request
    assert runtime_batching({"type": "tensorflow", "server_side_batching": batching}) is None
