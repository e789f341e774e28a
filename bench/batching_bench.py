"""Server-side batching on vs off for two ONNX models, in the same run.

Two models, each served three times through our runtime (`python -m cortex_serve`, gunicorn with
uvicorn workers, exactly as images run it), each from a temporary copy of its project:
- `iris`: examples/onnx-iris (a logistic regression, 4 inputs: the model's run is cheap, so the
  HTTP path dominates);
- `mlp`: an MLP regressor with 256 inputs and hidden layers (1024, 1024), built here with fixed
  weights by scikit-learn and exported with skl2onnx (never downloaded), served by the same
  predictor shape as the iris example (one sample or a list of them).

The three servers of a model:
- `off`: its cortex.yaml as it is;
- `on`:  the same cortex.yaml plus `server_side_batching: {max_batch_size, batch_interval}`;
- `ceiling`: a predictor that does no work (`async def predict` returning the recorded answer: no
  model run, no thread hand-off). It is what our HTTP path alone serves at each level, so
  ceiling/off is the most any batcher could reach there.

All use `processes_per_replica: 1`, `threads_per_process: 2` (the iris example's shape). Before
measuring, each server must answer the model's samples. Then, for each connection count, `wrk`
loads the three alternately (off, on, ceiling, off, ...) with one sample per request, after a
warm-up, and the script prints requests/s, p50 and p99 of each server's fastest round, the
server's CPU time per request (from /proc), the ratios on/off, on/ceiling and ceiling/off, and
on's mean batch over the level's rounds (from its /metrics: `cortex_batch_size`).

It also measures, in this process (one thread, pinned where the servers run), the predictor's
CPU per sample when it is handed a batch of `--max-batch-size` samples. The `limit` of a level is
then off's CPU per request / (ceiling's CPU per request + that per-sample cost): the on/off ratio
that a batcher adding nothing to the HTTP path and the batched model run would reach on one core.
Fewer clients than `--max-batch-size` cannot fill such batches, so each level also prints the
limit `at batch`: the same with the per-sample cost at that level's mean batch (measured after
the rounds, rounded to a whole batch).

Targets (benchmark output, never timed tests):
- mlp: on/off >= 0.85x of the limit at 32 and 64 connections; >= 1.6x at 8; median >= 0.97x at 1;
- iris: on/off median >= 0.95x at 1 and 8; on >= 0.85x of the ceiling at 32 and 64.

`--cpus pinned` (the default) puts the servers on one core and wrk on another, so a ratio compares
CPU cost alone; `--cpus shared` lets the scheduler place every thread, as in a container with a
CPU quota and no cpuset.

    python bench/batching_bench.py [--models iris,mlp] [--duration 5] [--rounds 3] \
        [--connections 1,8,32,64] [--cpus pinned|shared]

Needs `wrk` on PATH, onnxruntime, scikit-learn and skl2onnx installed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cortex_build.config import load_project

sys.path.insert(0, str(Path(__file__).parent))
import wrk_servers  # same folder (bench/ is not a package)
from batching_models import Model, models
from wrk_servers import (
    RUNTIME_DIR,
    Run,
    best_run,
    free_port,
    measure,
    run_wrk,
    serve_spec,
    wrk_script,
)

SERVERS = ("off", "on", "ceiling")

# Runs in a child process pinned where the servers run: the predictor's CPU per sample on a
# batch of N (what batching hands it), measured with the calling thread's CPU clock.
MEASURE_SCRIPT = """
import json, sys, time
from pathlib import Path
from cortex_serve.predictor_loading import load_predictor

spec, project = json.loads(sys.argv[1]), Path(sys.argv[2])
sample, size = json.loads(sys.argv[3]), int(sys.argv[4])
predictor = load_predictor(spec, project)
batch, none = [sample] * size, [None] * size
for _ in range(20):
    predictor.predict(batch, none, none)
calls, times = 30, []
for _ in range(7):
    started = time.thread_time()
    for _ in range(calls):
        predictor.predict(batch, none, none)
    times.append((time.thread_time() - started) / calls / size)
print(json.dumps(sorted(times)[len(times) // 2] * 1e6))
"""


def ceiling_predictor(answer: Any) -> str:
    return f"""
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        pass

    async def predict(self, payload):
        return {answer!r}
"""


def project_copy(base: Path, workdir: Path, name: str, batching: dict | None, answer: Any) -> Path:
    """A copy of the base project with server_side_batching written into its cortex.yaml (or
    not); the `ceiling` copy gets a predictor returning `answer` instead of the model's."""
    project = workdir / name
    shutil.copytree(base, project)
    if name == "ceiling":
        (project / "predictor.py").write_text(ceiling_predictor(answer))
    config_file = project / "cortex.yaml"
    apis = yaml.safe_load(config_file.read_text())
    if batching is not None:
        for api in apis:
            api["predictor"]["server_side_batching"] = batching
    config_file.write_text(yaml.safe_dump(apis, sort_keys=False))
    return project


def server(project: Path, workdir: Path, port: int) -> Any:
    """Our runtime for one copy of a project (its spec loaded as `build` loads it), pinned like
    every bench server."""
    (api,) = load_project(project).apis
    return serve_spec(workdir, api, project, port)


def model_cpu_per_sample(project: Path, sample: Any, batch_size: int) -> float:
    """The predictor's CPU per sample (us) on a batch of `batch_size`, in one pinned thread."""
    (api,) = load_project(project).apis
    env = {**os.environ, "PYTHONPATH": str(RUNTIME_DIR)}
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE_SCRIPT,
            api.to_json(),
            str(project),
            json.dumps(sample),
            str(batch_size),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: wrk_servers.pin(wrk_servers.SERVER_CPUS),
    ).stdout
    return float(output.split()[-1])


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def same_answer(got: Any, expected: Any) -> bool:
    """Equal, floats within 1e-3 (a batched model run may round its last bits differently)."""
    if isinstance(expected, float) and isinstance(got, (int, float)):
        return abs(got - expected) <= 1e-3
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(
            same_answer(got[k], expected[k]) for k in expected
        )
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(map(same_answer, got, expected))
    return bool(got == expected)


def check_answers(url: str, name: str, checks: list[tuple[Any, Any]], wrk_sample: Any) -> None:
    """Each check's request gets its expected answer; the ceiling knows one answer only, that of
    the sample wrk sends."""
    for body, expected in checks:
        if name == "ceiling" and body != wrk_sample:
            continue
        answer = post(url, body)
        if not same_answer(answer, expected):
            sys.exit(f"{url}: {str(body)[:60]}... got {answer}, expected {expected}")


@dataclass
class ModelResult:
    model: Model
    per_sample_us: float  # the predictor's CPU per sample in a batch of max_batch_size
    single_us: float  # the same, on a batch of one
    rows: list[tuple[int, dict[str, list[Run]]]]
    mean_batches: dict[int, float]  # connections -> on's requests per batch over its rounds
    # connections -> the predictor's CPU per sample in a batch of that level's mean batch (rounded)
    at_mean_batch_us: dict[int, float]


def batch_totals(url: str) -> tuple[float, float]:
    """(requests, batches) that a batching server's /metrics counted so far."""
    metrics_url = url.rsplit("/", 1)[0] + "/metrics"
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        lines = response.read().decode().splitlines()
    found = {}
    for line in lines:
        for field in ("sum", "count"):
            if line.startswith(f"cortex_batch_size_{field}{{"):
                found[field] = float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def bench_model(model: Model, args: argparse.Namespace, levels: list[int]) -> ModelResult:
    batching = {"max_batch_size": args.max_batch_size, "batch_interval": args.batch_interval}
    configs = {"off": None, "on": batching, "ceiling": None}
    ports = {name: free_port() for name in SERVERS}
    urls = {name: f"http://127.0.0.1:{port}/predict" for name, port in ports.items()}
    rows: list[tuple[int, dict[str, list[Run]]]] = []
    mean_batches: dict[int, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix=f"batching-bench-{model.name}-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(wrk_script(json.dumps(model.sample)))
        base = model.make_project(workdir)
        per_sample = model_cpu_per_sample(base, model.sample, args.max_batch_size)
        single = model_cpu_per_sample(base, model.sample, 1)
        pids: dict[str, int] = {}
        checks = list(model.checks)
        answer = None
        for name in SERVERS:
            project = project_copy(base, workdir, name, configs[name], answer)
            pids[name] = stack.enter_context(server(project, workdir, ports[name])).pid
            if name == "off":  # the model's own answers, where the checks leave them open
                checks = [
                    (body, post(urls[name], body) if exp is None else exp) for body, exp in checks
                ]
                answer = post(urls[name], model.sample)
            check_answers(urls[name], name, checks, model.sample)
        for connections in levels:
            for name in SERVERS:  # warm up each at this level (queues, allocations)
                run_wrk(urls[name], script, args.warmup, connections)
            runs: dict[str, list[Run]] = {name: [] for name in SERVERS}
            requests_before, batches_before = batch_totals(urls["on"])
            for _ in range(args.rounds):  # alternate, so drifts in machine load hit all alike
                for name in SERVERS:
                    runs[name].append(
                        measure(urls[name], pids[name], script, args.duration, connections)
                    )
            requests, batches = batch_totals(urls["on"])
            mean_batches[connections] = (requests - requests_before) / (batches - batches_before)
            rows.append((connections, runs))
        # What the batches that this level's clients allow cost: the limit above assumes full
        # batches, which fewer connections than max_batch_size cannot fill.
        at_mean_batch = {
            level: model_cpu_per_sample(base, model.sample, max(1, round(mean)))
            for level, mean in mean_batches.items()
        }
    return ModelResult(model, per_sample, single, rows, mean_batches, at_mean_batch)


def _median_rate(runs: list[Run]) -> float:
    return statistics.median(run.result.requests_per_second for run in runs)


def report(result: ModelResult, args: argparse.Namespace) -> list[bool]:
    """Prints one model's table; returns whether each target was met."""
    model = result.model
    print(
        f"{model.title}; 1 process x 2 threads in every run; batching on: max_batch_size "
        f"{args.max_batch_size}, batch_interval {args.batch_interval}"
    )
    print(
        f"predictor CPU per sample, in process: {result.per_sample_us:.1f} us in a batch of "
        f"{args.max_batch_size}, {result.single_us:.1f} us alone"
    )
    print(
        f"{'conns':>5} {'server':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU us/req':>10}   rounds (req/s)"
    )
    verdicts = []
    for connections, runs in result.rows:
        for name in SERVERS:
            run = best_run(runs[name])
            spread = ", ".join(f"{each.result.requests_per_second:.0f}" for each in runs[name])
            print(
                f"{connections:5} {name:8} {run.result.requests_per_second:9.0f} "
                f"{run.result.p50_ms:8.3f} {run.result.p99_ms:8.3f} "
                f"{run.cpu_us_per_request:10.0f}   {spread}"
            )
        off, on, ceiling = (best_run(runs[name]) for name in SERVERS)
        ratio = on.result.requests_per_second / off.result.requests_per_second
        median = _median_rate(runs["on"]) / _median_rate(runs["off"])
        limit = off.cpu_us_per_request / (ceiling.cpu_us_per_request + result.per_sample_us)
        of_ceiling = on.result.requests_per_second / ceiling.result.requests_per_second
        kind, threshold = model.targets.get(connections, ("", 0.0))
        figure = {"median": median, "best": ratio, "limit": ratio / limit, "ceiling": of_ceiling}
        target = ""
        if kind:
            met = figure[kind] >= threshold
            verdicts.append(met)
            what = {"median": "median", "best": "on/off", "limit": "of limit", "ceiling": "on/ceil"}
            target = f"; target {what[kind]} >= {threshold}x: {'meets' if met else 'BELOW'}"
        print(
            f"{connections:5} {'on/off':8} {ratio:9.3f}x (median {median:.3f}x; p50 "
            f"{on.result.p50_ms / off.result.p50_ms:.2f}x; CPU/req "
            f"{on.cpu_us_per_request / off.cpu_us_per_request:.2f}x; of limit "
            f"{ratio / limit:.2f}x; on/ceil {of_ceiling:.2f}x; mean batch "
            f"{result.mean_batches[connections]:.1f}{target})"
        )
        print(
            f"{connections:5} {'limit':8} {limit:9.3f}x (off {off.cpu_us_per_request:.0f} us/req "
            f"/ (ceiling {ceiling.cpu_us_per_request:.0f} + model {result.per_sample_us:.1f}); "
            f"ceil/off {ceiling.result.requests_per_second / off.result.requests_per_second:.3f}x)"
        )
        mean_batch = max(1, round(result.mean_batches[connections]))
        at_mean = result.at_mean_batch_us[connections]
        limit_at_mean = off.cpu_us_per_request / (ceiling.cpu_us_per_request + at_mean)
        print(
            f"{connections:5} {'at batch':8} {limit_at_mean:9.3f}x (the limit with the model's "
            f"{at_mean:.1f} us a sample in a batch of {mean_batch}, the mean batch; on/off is "
            f"{ratio / limit_at_mean:.2f}x of it)"
        )
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="iris,mlp", help="comma-separated: iris, mlp")
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
    parser.add_argument(
        "--without-orjson",
        action="store_true",
        help="the servers decode JSON bodies with json alone (what orjson is worth)",
    )
    args = parser.parse_args()
    if args.cpus == "shared":
        wrk_servers.share_cpus()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    levels = [int(level) for level in args.connections.split(",")]
    known = models()
    chosen = [known[name] for name in args.models.split(",")]
    with tempfile.TemporaryDirectory(prefix="batching-bench-") as shims:
        if args.without_orjson:
            wrk_servers.hide_module(Path(shims), "orjson", "--without-orjson")
        results = [bench_model(model, args, levels) for model in chosen]
    print(
        f"wrk: 1 thread, {args.warmup}s warm-up + {args.duration}s x {args.rounds} rounds per "
        f"level; {wrk_servers.placement()}; "
        f"JSON bodies: {'json' if args.without_orjson else 'orjson'}"
    )
    verdicts = []
    for result in results:
        verdicts += report(result, args)
    print("all targets met" if all(verdicts) else "some targets missed")


if __name__ == "__main__":
    main()
