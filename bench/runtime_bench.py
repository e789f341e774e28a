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
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cortex_build.runtime_base
from cortex_build.spec import ApiSpec, PredictorSpec

RUNTIME_DIR = Path(cortex_build.runtime_base.__file__).parent
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


def wrk_script(body: str) -> str:
    """wrk's Lua script POSTing `body` as JSON."""
    return (
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


WRK_SCRIPT = wrk_script(PAYLOAD)


# Servers on one core, wrk on another (when there are two): the servers are measured on one core,
# as the targets were, and wrk does not steal their cycles.
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
SERVER_CPUS = set(_CPUS[:1])
WRK_CPUS = set(_CPUS[1:2]) or SERVER_CPUS


def pin(cpus: set[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


# Folders put first on every server's PYTHONPATH (hide_httptools adds one).
_PATH_FIRST: list[Path] = []


def _python_path(folder: Path) -> str:
    return os.pathsep.join(str(each) for each in [*_PATH_FIRST, folder])


def hide_httptools(workdir: Path) -> None:
    """Servers started from now on cannot import httptools, so uvicorn parses HTTP with h11, in
    pure Python: what the runtime would do without its httptools dependency."""
    shim = workdir / "no-httptools"
    shim.mkdir()
    (shim / "httptools.py").write_text("raise ImportError('hidden by --without-httptools')\n")
    _PATH_FIRST.append(shim)


def share_cpus() -> None:
    """No pinning from now on: servers and wrk run wherever the scheduler puts them."""
    SERVER_CPUS.clear()
    WRK_CPUS.clear()


def placement() -> str:
    if not SERVER_CPUS:
        return "servers and wrk on any CPU (not pinned)"
    return f"servers on CPU {sorted(SERVER_CPUS)}, wrk on CPU {sorted(WRK_CPUS)}"


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int  # answered in the run, as wrk counts them


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode} before it was ready ({url})")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            if not url.endswith("/healthz"):  # any HTTP answer: the bare app is up
                return
            error.close()
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"server not ready after {timeout}s ({url})")


@contextlib.contextmanager
def started(
    command: list[str], env: dict[str, str], cwd: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server pinned to SERVER_CPUS, once ready_url answers; stopped (SIGTERM) afterwards."""
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: pin(SERVER_CPUS),
    )
    try:
        wait_healthy(ready_url, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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


def serve_spec(workdir: Path, spec: ApiSpec, project: Path, port: int):
    """`python -m cortex_serve` (what images run) for one API of a project, once healthy."""
    spec_file = workdir / f"{spec.name}.json"
    spec_file.write_text(spec.to_json())
    env = {**os.environ, "PYTHONPATH": _python_path(RUNTIME_DIR)}
    command = [sys.executable, "-m", "cortex_serve", "--spec", str(spec_file)]
    command += ["--project", str(project), "--host", "127.0.0.1", "--port", str(port)]
    return started(command, env, workdir, f"http://127.0.0.1:{port}/healthz")


def bare_server(
    workdir: Path, port: int, module: str = "bare_app", source: str = BARE_APP, **env_vars: str
):
    (workdir / f"{module}.py").write_text(source)
    (workdir / "bare_conf.py").write_text(BARE_GUNICORN_CONF)
    command = [sys.executable, "-m", "gunicorn", f"{module}:app", "--workers", "1"]
    command += ["--worker-class", "uvicorn_worker.UvicornWorker", "--config", "bare_conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    env = {**os.environ, **env_vars, "PYTHONPATH": _python_path(workdir)}
    # The bare app has no GET route; any HTTP answer (405) means it is up.
    return started(command, env, workdir, f"http://127.0.0.1:{port}/sync-ready-probe")


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, script: Path, duration: float, connections: int) -> Result:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: pin(WRK_CPUS),
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)  # type: ignore[union-attr]
    if "Non-2xx" in output or "Socket errors" in output:
        sys.exit(f"wrk saw errors against {url}:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return Result(rate, _milliseconds(p50), _milliseconds(p99), requests)


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
    on a shared machine slow a round down but hardly change this, so it tells a server's cost per
    request apart from noise."""
    total = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def measure(url: str, pid: int, script: Path, duration: float, connections: int) -> Run:
    cpu = cpu_seconds(pid)
    result = run_wrk(url, script, duration, connections)
    return Run(result, (cpu_seconds(pid) - cpu) / max(result.requests, 1) * 1e6)


def best(results: list[Result]) -> Result:
    """The fastest round: other load on the machine only ever slows a round down."""
    return max(results, key=lambda result: result.requests_per_second)


def best_run(runs: list[Run]) -> Run:
    chosen = best([run.result for run in runs])
    return next(run for run in runs if run.result is chosen)


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
            hide_httptools(workdir)
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
        f"{placement()}; HTTP parser: {'h11' if args.without_httptools else 'httptools'}"
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
