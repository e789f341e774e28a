"""The benchmark scripts still run, one short round each. They reach into the runtime and each
other, so a refactor could break them unnoticed. No figure is checked here (speed goals are
never timed tests): bench/README.md has the figures of full runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def run_bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_wrk
def test_runtime_bench_prints_both_ratios():
    args = ["--duration", "1", "--rounds", "1", "--iris-rounds", "1", "--iris-connections", "8"]
    output = run_bench("runtime_bench.py", *args)
    assert "sync     ratio" in output
    assert "async    ratio" in output
    # the unbatched iris comparison against both bare servers
    assert "    8 bare-thread/async" in output
    assert "    8 cortex/async" in output


@needs_wrk
def test_batching_bench_prints_on_off_and_the_limit_for_both_models():
    args = ["--connections", "8", "--rounds", "1", "--duration", "1", "--warmup", "1"]
    output = run_bench("batching_bench.py", *args)
    tables = output.split("ONNX ")[1:]
    assert [table.split(" ", 1)[0] for table in tables] == ["iris", "MLP"]
    for table in tables:
        assert "in a batch of 32" in table  # the model's batched cost, measured in process
        assert "    8 on/off" in table
        assert "    8 limit" in table
        assert "    8 at batch" in table  # the limit at the batch the level's clients make
        assert "mean batch" in table  # on's /metrics: cortex_batch_size


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_handoff_bench_compares_both_policies_on_both_paths():
    output = run_bench("handoff_bench.py", "--callers", "1,4", "--calls", "200", "--rounds", "1")
    rows = [line.split()[:2] for line in output.splitlines()[2:]]
    assert rows == [["threads", "1"], ["threads", "4"], ["batcher", "1"], ["batcher", "4"]]
