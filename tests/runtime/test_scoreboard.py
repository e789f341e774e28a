"""The replica-wide scoreboard and the tracker that feeds it, without a server."""

from __future__ import annotations

import time

import numpy as np
from cortex_serve.metrics import render
from cortex_serve.scoreboard import Scoreboard
from cortex_serve.worker import Tracker


def test_a_retired_worker_returns_its_capacity_and_keeps_its_counts():
    board = Scoreboard(processes=2, max_concurrency=3)
    first, second = board.reserve_slot(), board.reserve_slot()
    board.claim(first, pid=101)
    assert [board.try_admit() for _ in range(4)] == [True, True, True, False]
    board.record(200, 0.004)
    board.record(503, 0.0001)
    assert board.snapshot().in_flight == 3

    board.retire(first)  # the master, after worker 101 died with 3 requests in flight
    snapshot = board.snapshot()
    assert snapshot.in_flight == 0
    assert snapshot.statuses == {200: 1, 503: 1}  # counters never go down
    assert snapshot.latency_count == 2

    board.claim(second, pid=102)
    assert [board.try_admit() for _ in range(4)] == [True, True, True, False]
    assert board.reserve_slot() == first  # the freed slot is reused


def test_health_waits_for_every_process_once():
    board = Scoreboard(processes=2, max_concurrency=10)
    board.claim(board.reserve_slot(), pid=1)
    board.set_ready()
    assert not board.healthy()
    other = Scoreboard.__new__(Scoreboard)  # the second worker sees the same shared memory
    other.__dict__.update(board.__dict__)
    other.claim(board.reserve_slot(), pid=2)
    other.set_ready()
    assert board.healthy()


def test_a_long_label_is_one_class_across_processes_and_never_cut_mid_character():
    board = Scoreboard(processes=2, max_concurrency=10)
    board.claim(board.reserve_slot(), pid=1)
    other = Scoreboard.__new__(Scoreboard)  # a second worker: same shared memory, own cache
    other.__dict__.update(board.__dict__)
    other._label_index = {}
    other.claim(board.reserve_slot(), pid=2)
    long_label = "é" * 40  # 80 bytes in UTF-8: cut at 64 bytes = 32 characters, none split
    board.record_class(long_label)
    other.record_class(long_label)
    other.record_class(long_label)
    board.record_class("x" + long_label)  # 81 bytes: a cut at byte 64 splits an "é"
    assert board.snapshot().classes == {"é" * 32: 3, "x" + "é" * 31: 1}
    assert other.snapshot().classes == board.snapshot().classes
    assert board._label_count.value == 2  # one shared entry per label, not one per process


def test_a_label_lock_held_forever_costs_new_classes_not_serving():
    board = Scoreboard(processes=1, max_concurrency=10)
    board.claim(board.reserve_slot(), pid=1)
    board.record_class("known")
    board._label_lock.acquire()  # as a worker SIGKILLed mid-registration leaves it
    started = time.monotonic()
    for label in ("new", "newer", "known", "newest"):
        board.record_class(label)
    assert time.monotonic() - started < 1  # waited once, briefly; never blocked for good
    assert board.snapshot().classes == {"known": 2, "_other": 3}


def test_metrics_render_tracker_classes_and_values():
    board = Scoreboard(processes=1, max_concurrency=10)
    board.claim(board.reserve_slot(), pid=1)
    board.record_class('a "quoted"\nlabel')
    board.record_value(3.5)
    board.record_value(-20.0)
    classes = render(board, "api", {"model_type": "classification"})
    assert 'cortex_prediction_total{api="api",class="a \\"quoted\\"\\nlabel"} 1' in classes
    values = render(board, "api", {"model_type": "regression"})
    assert 'cortex_prediction_value_bucket{api="api",le="-10.0"} 1' in values
    assert 'cortex_prediction_value_bucket{api="api",le="10.0"} 2' in values
    assert 'cortex_prediction_value_sum{api="api"} -16.5' in values


def test_metrics_render_batch_sizes_only_for_a_batching_api():
    board = Scoreboard(processes=1, max_concurrency=10)
    board.claim(board.reserve_slot(), pid=1)
    for size in (1, 3, 32, 1024):
        board.record_batch(size)
    text = render(board, "api", None, batching=True)
    assert 'cortex_batch_size_bucket{api="api",le="1.0"} 1' in text
    assert 'cortex_batch_size_bucket{api="api",le="2.0"} 1' in text
    assert 'cortex_batch_size_bucket{api="api",le="4.0"} 2' in text
    assert 'cortex_batch_size_bucket{api="api",le="32.0"} 3' in text
    assert 'cortex_batch_size_bucket{api="api",le="1024.0"} 4' in text
    assert 'cortex_batch_size_sum{api="api"} 1060.0' in text
    assert 'cortex_batch_size_count{api="api"} 4' in text
    assert "cortex_batch_size" not in render(board, "api", None)


def test_the_tracker_skips_non_finite_values_and_takes_numpy_scalars():
    # NaN cannot reach the tracker through JSON (allow_nan=False); a starlette Response built
    # by the predictor can still carry one under `key`, and one NaN would poison the sum forever.
    board = Scoreboard(processes=1, max_concurrency=10)
    board.claim(board.reserve_slot(), pid=1)
    track = Tracker({"model_type": "regression"}, board)
    for value in (float("nan"), float("inf"), -np.inf, np.float32("nan"), np.float32(1.5)):
        track(value)
    track(np.array([1.0, 2.0]))  # not a scalar: not a value
    snapshot = board.snapshot()
    assert (snapshot.value_count, snapshot.value_sum) == (1, 1.5)
