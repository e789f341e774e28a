"""Server-side batching on vs off for the ONNX iris example, in the same run.

Serves examples/onnx-iris three times through our runtime (`python -m cortex_serve`, gunicorn
with uvicorn workers, exactly as images run it), each from a temporary copy of the project:
- `off`: the example's cortex.yaml as it is;
- `on`:  the same cortex.yaml plus `server_side_batching: {max_batch_size, batch_interval}`;
- `ceiling`: the example as it is but for a predictor that does no work (`async def predict`
  returning the recorded answer: no model run, no thread hand-off). It is what our HTTP path
  alone serves at each level, so ceiling/off is the most any batcher could reach there.

All three use the example's `processes_per_replica` and `threads_per_process` (1 x 2); off and
on use its own predictor, which already takes a list of samples and returns a list (what
batching hands it).
Before measuring, each server must answer the example's samples.yaml exactly. Then, for each
connection count, `wrk` loads the three alternately (off, on, ceiling, off, ...) with a single
iris sample per request, after a warm-up, and the script prints requests/s, p50 and p99 of each
server's fastest round, the server's CPU time per request (from /proc) and the ratios on/off and
ceiling/off. Targets (on/off): >= 0.95x at every level, >= 1.8x at 32.

`--cpus pinned` (the default) puts the servers on one core and wrk on another, so a ratio compares
CPU cost alone; `--cpus shared` lets the scheduler place every thread, as in a container with a
CPU quota and no cpuset.

    python bench/batching_bench.py [--duration 5] [--rounds 3] [--connections 1,8,32,64] \
        [--cpus pinned|shared]

Needs `wrk` on PATH and onnxruntime installed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cortex_build.config import load_project

sys.path.insert(0, str(Path(__file__).parent))
import runtime_bench  # same folder (bench/ is not a package)
from runtime_bench import Result, best, free_port, run_wrk, serve_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "onnx-iris"
SAMPLE = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = {json.dumps(json.dumps(SAMPLE))}
wrk.headers["Content-Type"] = "application/json"
"""
TARGET_ALL = 0.95
TARGET_32 = 1.8
SAMPLES = yaml.safe_load((EXAMPLE / "samples.yaml").read_text())
(ANSWER,) = [each["response"]["json"] for each in SAMPLES if each["request"]["json"] == SAMPLE]
CEILING_PREDICTOR = f"""
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        pass

    async def predict(self, payload):
        return {ANSWER!r}
"""
SERVERS = ("off", "on", "ceiling")


def project_copy(workdir: Path, name: str, batching: dict | None) -> Path:
    """A copy of the example with server_side_batching written into its cortex.yaml (or not);
    the `ceiling` copy gets CEILING_PREDICTOR instead of the example's predictor."""
    project = workdir / name
    shutil.copytree(EXAMPLE, project)
    if name == "ceiling":
        (project / "predictor.py").write_text(CEILING_PREDICTOR)
    config_file = project / "cortex.yaml"
    apis = yaml.safe_load(config_file.read_text())
    if batching is not None:
        for api in apis:
            api["predictor"]["server_side_batching"] = batching
    config_file.write_text(yaml.safe_dump(apis, sort_keys=False))
    return project


@dataclass
class Run:
    """One wrk run, with the CPU the server's processes spent on it."""

    result: Result
    cpu_us_per_request: float


def _descendants(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                pids += _descendants(int(child))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (Linux /proc; 0 elsewhere). Other jobs
    on a shared machine slow a round down but do not change this, so it tells the batcher's cost
    per request apart from noise."""
    total = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def server(workdir: Path, name: str, batching: dict | None, port: int) -> Any:
    """Our runtime for one copy of the project (its spec loaded as `build` loads it), pinned
    like runtime_bench's servers."""
    project = project_copy(workdir, name, batching)
    (api,) = load_project(project).apis
    return serve_spec(workdir, api, project, port)


def measure(url: str, pid: int, script: Path, duration: float, connections: int) -> Run:
    cpu = cpu_seconds(pid)
    result = run_wrk(url, script, duration, connections)
    return Run(result, (cpu_seconds(pid) - cpu) / max(result.requests, 1) * 1e6)


def check_samples(url: str, name: str) -> None:
    """Requests of the example's samples.yaml get exactly their recorded responses. With batching
    on, predict gets one list entry per request, so the example's predictor (which reads a list as
    samples) answers single-sample requests only: the list-bodied sample is left out there. The
    ceiling knows one answer: that of the sample wrk sends."""
    for sample in SAMPLES:
        if name == "on" and isinstance(sample["request"]["json"], list):
            continue
        if name == "ceiling" and sample["request"]["json"] != SAMPLE:
            continue
        request = urllib.request.Request(
            url,
            data=json.dumps(sample["request"]["json"]).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if answer != sample["response"]["json"]:
            sys.exit(f"{url}: sample {sample['name']!r} got {answer}, expected the recorded one")


def best_run(runs: list[Run]) -> Run:
    chosen = best([run.result for run in runs])
    return next(run for run in runs if run.result is chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk before each level")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and level")
    parser.add_argument("--connections", default="1,8,32,64", help="comma-separated levels")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-interval", default="5ms")
    parser.add_argument(
        "--cpus",
        choices=("pinned", "shared"),
        default="pinned",
        help="servers on one core and wrk on another, or wherever the scheduler puts them",
    )
    args = parser.parse_args()
    if args.cpus == "shared":
        runtime_bench.share_cpus()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    levels = [int(level) for level in args.connections.split(",")]
    batching = {"max_batch_size": args.max_batch_size, "batch_interval": args.batch_interval}

    ports = {name: free_port() for name in SERVERS}
    configs = {"off": None, "on": batching, "ceiling": None}
    urls = {name: f"http://127.0.0.1:{port}/predict" for name, port in ports.items()}
    rows: list[tuple[int, dict[str, list[Run]]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="batching-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(WRK_SCRIPT)
        pids = {}
        for name, config in configs.items():
            pids[name] = stack.enter_context(server(workdir, name, config, ports[name])).pid
            check_samples(urls[name], name)
        for connections in levels:
            for name in SERVERS:  # warm up each at this level (queues, allocations)
                run_wrk(urls[name], script, args.warmup, connections)
            runs: dict[str, list[Run]] = {name: [] for name in SERVERS}
            for _ in range(args.rounds):  # alternate, so drifts in machine load hit all alike
                for name in SERVERS:
                    runs[name].append(
                        measure(urls[name], pids[name], script, args.duration, connections)
                    )
            rows.append((connections, runs))

    (api,) = load_project(EXAMPLE).apis  # every server has the example's shape
    processes, threads = api.predictor.processes_per_replica, api.predictor.threads_per_process
    print(
        f"ONNX iris example, {processes} process x {threads} threads in every run; batching on: "
        f"max_batch_size {args.max_batch_size}, batch_interval {args.batch_interval}"
    )
    print(
        f"wrk: 1 thread, {args.warmup}s warm-up + {args.duration}s x {args.rounds} rounds per "
        f"level; {runtime_bench.placement()}"
    )
    print(
        f"{'conns':>5} {'batching':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU us/req':>10}   rounds (req/s)"
    )
    verdicts = []
    for connections, runs in rows:
        for name in SERVERS:
            run = best_run(runs[name])
            spread = ", ".join(f"{each.result.requests_per_second:.0f}" for each in runs[name])
            print(
                f"{connections:5} {name:8} {run.result.requests_per_second:9.0f} "
                f"{run.result.p50_ms:8.3f} {run.result.p99_ms:8.3f} "
                f"{run.cpu_us_per_request:10.0f}   {spread}"
            )
        on, off = best_run(runs["on"]), best_run(runs["off"])
        ratio = on.result.requests_per_second / off.result.requests_per_second
        median = statistics.median(
            r.result.requests_per_second for r in runs["on"]
        ) / statistics.median(r.result.requests_per_second for r in runs["off"])
        ceiling = best_run(runs["ceiling"]).result.requests_per_second
        target = TARGET_32 if connections == 32 else TARGET_ALL
        verdict = "meets" if ratio >= target else "BELOW"
        verdicts.append(verdict == "meets")
        print(
            f"{connections:5} {'on/off':8} {ratio:9.3f}x (median {median:.3f}x; p50 "
            f"{on.result.p50_ms / off.result.p50_ms:.2f}x; p99 "
            f"{on.result.p99_ms / off.result.p99_ms:.2f}x; CPU/req "
            f"{on.cpu_us_per_request / off.cpu_us_per_request:.2f}x; target >= {target}x: "
            f"{verdict})"
        )
        print(
            f"{connections:5} {'ceil/off':8} {ceiling / off.result.requests_per_second:9.3f}x "
            "(the most any batching could reach at this level)"
        )
    print("all targets met" if all(verdicts) else "some targets missed")


if __name__ == "__main__":
    main()
