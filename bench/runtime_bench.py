"""Per-request overhead of the serving runtime against a bare Starlette app, in the same run.

Starts, each with one gunicorn worker of uvicorn-worker's UvicornWorker on loopback:
- `cortex`: `python -m cortex_serve` (the runtime images run) with a trivial predictor,
  once with a synchronous `predict` and once with `async def predict`;
- `bare`: a plain Starlette app with one route calling the same function, through
  `run_in_threadpool` (sync) or directly (async), returning a JSONResponse.

then loads each with `wrk` alternately (cortex, bare, cortex, bare, ...) and prints requests/s,
p50 and p99 latency, and the ratio cortex/bare. Targets: sync >= 0.95x, async >= 0.9x.

Then the unbatched path against hand-written servers, with a real model: scikit-learn's iris
LogisticRegression loaded from a joblib file, the same function calling it in every server:
- `bare-async` (the baseline): a Starlette app calling the model inline in its `async def`
  endpoint;
- `bare-thread`: the same app calling it through `run_in_threadpool`;
- `cortex`: our runtime with a PythonPredictor (`threads_per_process: 1`), which runs predict in
  its thread pool and keeps every guarantee (503 shedding, /healthz during a long predict,
  graceful drain, metrics).
Each level of `--iris-connections` runs the three alternately, `--iris-rounds` times, and prints
each server's CPU time per request (from /proc, the steadier figure on a shared machine; the two
bare servers are one process, so theirs are that process' in its own rounds). Targets:
cortex >= 0.95x bare-async's requests/s at 32 connections (fastest rounds); at 1 connection,
bare-async's median p50 >= 0.9x cortex's.

    python bench/runtime_bench.py [--duration 4] [--rounds 2] [--connections 16] \
        [--iris-connections 32,1] [--iris-rounds 3]

Needs `wrk` on PATH (Debian: apt-get install wrk). See bench/README.md.
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
import urllib.error
import urllib.request
from pathlib import Path

from cortex_build.spec import ApiSpec, PredictorSpec
from wrk_servers import (  # same folder (bench/ is not a package)
    Run,
    best,
    best_run,
    free_port,
    hide_module,
    measure,
    placement,
    python_path,
    run_wrk,
    serve_spec,
    started,
    wrk_script,
)

PAYLOAD = json.dumps({"text": "machine learning is", "values": [1, 2, 3]})

# The function under test, word for word in both apps.
PREDICT_BODY = "return {'prediction': payload['values'][0], 'ok': True}"

SYNC_PREDICTOR = f"""
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        {PREDICT_BODY}
"""

ASYNC_PREDICTOR = f"""
class PythonPredictor:
    def __init__(self, config):
        pass

    async def predict(self, payload):
        {PREDICT_BODY}
"""

BARE_APP = f"""
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route


def predict(payload):
    {PREDICT_BODY}


async def apredict(payload):
    {PREDICT_BODY}


async def sync_handler(request):
    payload = await request.json()
    return JSONResponse(await run_in_threadpool(predict, payload))


async def async_handler(request):
    payload = await request.json()
    return JSONResponse(await apredict(payload))


app = Starlette(
    routes=[
        Route("/sync", sync_handler, methods=["POST"]),
        Route("/async", async_handler, methods=["POST"]),
    ]
)
"""

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS_SAMPLE = dict(zip(IRIS_FEATURES, (6.3, 3.3, 6.0, 2.5), strict=True))
# The function under test with a real model, word for word in every server (`model` is the
# estimator, loaded with joblib before the first request).
IRIS_PREDICT_BODY = (
    "return {'label': LABELS[int(model.predict([[payload[n] for n in FEATURES]])[0])]}"
)
IRIS_COMMON = f"""
import joblib

FEATURES = {IRIS_FEATURES!r}
LABELS = ("setosa", "versicolor", "virginica")
"""

IRIS_PREDICTOR = f"""{IRIS_COMMON}

class PythonPredictor:
    def __init__(self, config):
        global model
        model = joblib.load(config["model"])

    def predict(self, payload):
        {IRIS_PREDICT_BODY}
"""

BARE_IRIS_APP = f"""{IRIS_COMMON}
import os

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

model = joblib.load(os.environ["IRIS_MODEL"])


def predict(payload):
    {IRIS_PREDICT_BODY}


async def inline_handler(request):
    payload = await request.json()
    {IRIS_PREDICT_BODY.replace("return ", "return JSONResponse(", 1)})


async def thread_handler(request):
    payload = await request.json()
    return JSONResponse(await run_in_threadpool(predict, payload))


app = Starlette(
    routes=[
        Route("/async", inline_handler, methods=["POST"]),
        Route("/thread", thread_handler, methods=["POST"]),
    ]
)
"""
IRIS_SERVERS = ("bare-async", "bare-thread", "cortex")
IRIS_TARGET_RATE = 0.95  # cortex / bare-async requests/s at 32 connections (fastest rounds)
IRIS_TARGET_P50 = 0.9  # bare-async / cortex median p50 at 1 connection

# Same log settings as the runtime: no access-log records on the hot path.
BARE_GUNICORN_CONF = """
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"gunicorn.access": {"level": "WARNING", "propagate": False}},
}
"""


WRK_SCRIPT = wrk_script(PAYLOAD)


def cortex_server(
    workdir: Path, name: str, predictor: str, port: int, config: dict[str, str] | None = None
):
    project = workdir / name
    project.mkdir()
    (project / "predictor.py").write_text(predictor)
    spec = ApiSpec(
        name=name,
        generation="v0.2x",
        endpoint=f"/{name}",
        predictor=PredictorSpec(
            type="python", interface="class", path="predictor.py", config=config or {}
        ),
    )
    return serve_spec(workdir, spec, project, port)


def bare_server(
    workdir: Path, port: int, module: str = "bare_app", source: str = BARE_APP, **env_vars: str
):
    (workdir / f"{module}.py").write_text(source)
    (workdir / "bare_conf.py").write_text(BARE_GUNICORN_CONF)
    command = [sys.executable, "-m", "gunicorn", f"{module}:app", "--workers", "1"]
    command += ["--worker-class", "uvicorn_worker.UvicornWorker", "--config", "bare_conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    env = {**os.environ, **env_vars, "PYTHONPATH": python_path(workdir)}
    # The bare app has no GET route; any HTTP answer (405) means it is up.
    return started(command, env, workdir, f"http://127.0.0.1:{port}/sync-ready-probe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per server and variant")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--without-httptools",
        action="store_true",
        help="both servers parse HTTP with h11 (what httptools, a runtime dependency, is worth)",
    )
    parser.add_argument(
        "--without-orjson",
        action="store_true",
        help="cortex decodes JSON bodies with json alone (what orjson, a dependency, is worth)",
    )
    parser.add_argument(
        "--iris-connections", default="32,1", help="levels of the iris comparison ('' skips it)"
    )
    parser.add_argument("--iris-rounds", type=int, default=3, help="runs per iris server and level")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    ports = {name: free_port() for name in ("sync", "async", "bare")}
    targets = {
        "sync": (
            f"http://127.0.0.1:{ports['sync']}/predict",
            f"http://127.0.0.1:{ports['bare']}/sync",
        ),
        "async": (
            f"http://127.0.0.1:{ports['async']}/predict",
            f"http://127.0.0.1:{ports['bare']}/async",
        ),
    }
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="runtime-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        if args.without_httptools:
            hide_module(workdir, "httptools", "--without-httptools")
        if args.without_orjson:
            hide_module(workdir, "orjson", "--without-orjson")
        script = workdir / "post.lua"
        script.write_text(WRK_SCRIPT)
        stack.enter_context(cortex_server(workdir, "sync", SYNC_PREDICTOR, ports["sync"]))
        stack.enter_context(cortex_server(workdir, "async", ASYNC_PREDICTOR, ports["async"]))
        stack.enter_context(bare_server(workdir, ports["bare"]))
        for variant, (cortex_url, bare_url) in targets.items():
            for url in (cortex_url, bare_url):  # warm up both (imports, first allocations)
                run_wrk(url, script, 1, args.connections)
            cortex_runs, bare_runs = [], []
            for _ in range(args.rounds):  # alternate, so drifts in machine load hit both alike
                cortex_runs.append(run_wrk(cortex_url, script, args.duration, args.connections))
                bare_runs.append(run_wrk(bare_url, script, args.duration, args.connections))
            rows.append((variant, best(cortex_runs), best(bare_runs), cortex_runs, bare_runs))
        iris_levels = [int(level) for level in args.iris_connections.split(",") if level]
        iris_rows = bench_iris(workdir, stack, iris_levels, args) if iris_levels else []

    print(
        f"wrk: 1 thread, {args.connections} connections, {args.duration}s x {args.rounds} rounds; "
        f"{placement()}; HTTP parser: {'h11' if args.without_httptools else 'httptools'}; "
        f"JSON bodies: {'json' if args.without_orjson else 'orjson'}"
    )
    print(f"{'predict':8} {'server':7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}   rounds (req/s)")
    targets_ratio = {"sync": 0.95, "async": 0.90}
    for variant, cortex, bare, cortex_runs, bare_runs in rows:
        for name, result, runs in (("cortex", cortex, cortex_runs), ("bare", bare, bare_runs)):
            spread = ", ".join(f"{run.requests_per_second:.0f}" for run in runs)
            print(
                f"{variant:8} {name:7} {result.requests_per_second:9.0f} "
                f"{result.p50_ms:8.3f} {result.p99_ms:8.3f}   {spread}"
            )
        ratio = cortex.requests_per_second / bare.requests_per_second
        medians = statistics.median(r.requests_per_second for r in cortex_runs) / statistics.median(
            r.requests_per_second for r in bare_runs
        )
        verdict = "meets" if ratio >= targets_ratio[variant] else "BELOW"
        print(
            f"{variant:8} ratio   {ratio:9.3f}x (median {medians:.3f}x; p50 "
            f"{cortex.p50_ms / bare.p50_ms:.2f}x; target >= {targets_ratio[variant]}x: {verdict})"
        )
    if iris_rows:
        report_iris(iris_rows, args)


def train_iris(file: Path) -> None:
    """scikit-learn's iris LogisticRegression (lbfgs: deterministic), saved with joblib."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(iris.data, iris.target), file)


def bench_iris(
    workdir: Path, stack: contextlib.ExitStack, levels: list[int], args: argparse.Namespace
) -> list[tuple[int, dict[str, list[Run]]]]:
    """The three iris servers (IRIS_SERVERS), each level's rounds alternating between them."""
    model = workdir / "iris.joblib"
    train_iris(model)
    script = workdir / "iris.lua"
    script.write_text(wrk_script(json.dumps(IRIS_SAMPLE)))
    cortex_port, bare_port = free_port(), free_port()
    cortex = stack.enter_context(
        cortex_server(workdir, "iris", IRIS_PREDICTOR, cortex_port, {"model": str(model)})
    )
    bare = stack.enter_context(
        bare_server(workdir, bare_port, "bare_iris", BARE_IRIS_APP, IRIS_MODEL=str(model))
    )
    pids = {"bare-async": bare.pid, "bare-thread": bare.pid, "cortex": cortex.pid}
    urls = {
        "bare-async": f"http://127.0.0.1:{bare_port}/async",
        "bare-thread": f"http://127.0.0.1:{bare_port}/thread",
        "cortex": f"http://127.0.0.1:{cortex_port}/predict",
    }
    answers = set()
    for url in urls.values():
        request = urllib.request.Request(
            url, json.dumps(IRIS_SAMPLE).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answers.add(response.read())
    if answers != {b'{"label":"virginica"}'}:
        sys.exit(f"the iris servers answer {answers}, expected virginica from each")
    rows = []
    for connections in levels:
        for url in urls.values():  # warm up each at this level
            run_wrk(url, script, 1, connections)
        runs: dict[str, list[Run]] = {name: [] for name in IRIS_SERVERS}
        for _ in range(args.iris_rounds):  # alternate, so drifts in machine load hit all alike
            for name in IRIS_SERVERS:
                runs[name].append(
                    measure(urls[name], pids[name], script, args.duration, connections)
                )
        rows.append((connections, runs))
    return rows


def report_iris(rows: list[tuple[int, dict[str, list[Run]]]], args: argparse.Namespace) -> None:
    print(
        f"iris LogisticRegression from joblib, the same call in every server; cortex: "
        f"PythonPredictor, threads_per_process 1; {args.duration}s x {args.iris_rounds} rounds"
    )
    print(
        f"{'conns':>5} {'server':11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10}"
        "   rounds (req/s)"
    )
    for connections, runs in rows:
        fastest = {name: best_run(runs[name]) for name in IRIS_SERVERS}
        for name in IRIS_SERVERS:
            run = fastest[name]
            spread = ", ".join(f"{each.result.requests_per_second:.0f}" for each in runs[name])
            print(
                f"{connections:5} {name:11} {run.result.requests_per_second:9.0f} "
                f"{run.result.p50_ms:8.3f} {run.result.p99_ms:8.3f} "
                f"{run.cpu_us_per_request:10.0f}   {spread}"
            )
        base = fastest["bare-async"]
        for name in ("bare-thread", "cortex"):
            run = fastest[name]
            ratio = run.result.requests_per_second / base.result.requests_per_second
            median = statistics.median(r.result.requests_per_second for r in runs[name]) / (
                statistics.median(r.result.requests_per_second for r in runs["bare-async"])
            )
            p50 = statistics.median(r.result.p50_ms for r in runs["bare-async"]) / (
                statistics.median(r.result.p50_ms for r in runs[name])
            )
            target = ""
            if name == "cortex" and connections == 32:
                verdict = "meets" if ratio >= IRIS_TARGET_RATE else "BELOW"
                target = f"; target >= {IRIS_TARGET_RATE}x: {verdict}"
            elif name == "cortex" and connections == 1:
                verdict = "meets" if p50 >= IRIS_TARGET_P50 else "BELOW"
                target = f"; target p50 >= {IRIS_TARGET_P50}x: {verdict}"
            print(
                f"{connections:5} {name + '/async':17} {ratio:6.3f}x (median {median:.3f}x; "
                f"median p50 bare-async/{name} {p50:.2f}x; CPU/req "
                f"{run.cpu_us_per_request / base.cpu_us_per_request:.2f}x{target})"
            )


if __name__ == "__main__":
    main()
