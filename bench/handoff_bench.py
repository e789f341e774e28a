"""The hand-off of a synchronous predict, without HTTP: the default policy against SCHED_BATCH.

A synchronous predict runs in one of the worker's predict threads (cortex_serve/handoff.py); the
event loop hands it each call and collects its result. This script measures what that costs on
one core, where the event loop and its predict threads take turns as in a replica of one CPU:
`--callers` tasks of one event loop each call a no-work function in a loop, through
`PredictThreads` directly and through the adaptive batcher. Each configuration runs in a child
process pinned to one CPU, alternately under the default scheduling policy and under SCHED_BATCH
(the runtime's workers use it: server.use_batch_scheduling), and the CPU time per call of the
median round of each is printed with their ratio. Linux only.

    python bench/handoff_bench.py [--callers 1,8,32] [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import cortex_build.runtime_base

RUNTIME_DIR = Path(cortex_build.runtime_base.__file__).parent

# In the child: CPU per call (us) of `calls` calls from `callers` tasks, after a warm-up.
CHILD = """
import asyncio, json, os, sys, time
from cortex_serve.batching import AdaptiveBatcher
from cortex_serve.handoff import PredictThreads

policy, callers, calls, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
if policy == "batch":  # before any thread starts: they inherit it
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def predict(payload):
    return payload


async def run() -> float:
    threads = PredictThreads(2)
    batcher = AdaptiveBatcher(
        lambda items, done: threads.run_then(done, predict, items), 32, 2, 0.005
    )
    call = batcher.submit if batch else (lambda payload: threads.run(predict, payload))
    left = calls

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call(1)

    await asyncio.gather(*(caller() for _ in range(callers)))  # warm-up
    left = calls
    started = time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    spent = time.process_time() - started
    threads.shutdown()
    return spent / calls * 1e6


print(json.dumps(asyncio.run(run())))
"""


def measure(policy: str, callers: int, calls: int, batch: bool, cpu: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(RUNTIME_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, policy, str(callers), str(calls), "1" if batch else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", default="1,8,32", help="comma-separated concurrent callers")
    parser.add_argument("--calls", type=int, default=20000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per policy and level")
    args = parser.parse_args()
    if not hasattr(os, "SCHED_BATCH"):
        sys.exit("SCHED_BATCH is Linux's: nothing to compare here")
    cpu = min(os.sched_getaffinity(0))
    print(f"one core (CPU {cpu}); CPU time per call, median of {args.rounds} rounds")
    print("path     callers  default us  SCHED_BATCH us  batch/default")
    for batch in (False, True):
        for callers in (int(each) for each in args.callers.split(",")):
            rounds: dict[str, list[float]] = {"default": [], "batch": []}
            for _ in range(args.rounds):  # alternate, so drifts hit both alike
                for policy in rounds:
                    rounds[policy].append(measure(policy, callers, args.calls, batch, cpu))
            default, batched = (sorted(each)[len(each) // 2] for each in rounds.values())
            path = "batcher" if batch else "threads"
            print(
                f"{path:8} {callers:7} {default:11.2f} {batched:15.2f} {batched / default:13.2f}x"
            )


if __name__ == "__main__":
    main()
