"""Servers on loopback, pinned to one core, loaded by wrk on another, and what each request costs.

The helpers the benchmark scripts share: start `python -m cortex_serve` (what images run) or any
gunicorn app, once it answers; run wrk and read its rate and latency; read a server's CPU time
from /proc (the steadier figure on a shared machine); pick the fastest of alternating rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cortex_build.runtime_base
from cortex_build.spec import ApiSpec

RUNTIME_DIR = Path(cortex_build.runtime_base.__file__).parent


def wrk_script(body: str) -> str:
    """wrk's Lua script POSTing `body` as JSON."""
    return (
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


# Servers on one core, wrk on another (when there are two): the servers are measured on one core,
# as the targets were, and wrk does not steal their cycles.
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
SERVER_CPUS = set(_CPUS[:1])
WRK_CPUS = set(_CPUS[1:2]) or SERVER_CPUS


def pin(cpus: set[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


# Folders put first on every server's PYTHONPATH (hide_module adds one).
_PATH_FIRST: list[Path] = []


def python_path(folder: Path) -> str:
    return os.pathsep.join(str(each) for each in [*_PATH_FIRST, folder])


def hide_module(workdir: Path, module: str, flag: str) -> None:
    """Servers started from now on cannot import `module` (`flag` is the bench option that asked):
    what the runtime does without that optional dependency, e.g. httptools (uvicorn parses HTTP
    with h11, in pure Python) or orjson (request bodies decoded by json alone)."""
    shim = workdir / f"no-{module}"
    shim.mkdir()
    (shim / f"{module}.py").write_text(f"raise ImportError('hidden by {flag}')\n")
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


def serve_spec(workdir: Path, spec: ApiSpec, project: Path, port: int):
    """`python -m cortex_serve` (what images run) for one API of a project, once healthy."""
    spec_file = workdir / f"{spec.name}.json"
    spec_file.write_text(spec.to_json())
    env = {**os.environ, "PYTHONPATH": python_path(RUNTIME_DIR)}
    command = [sys.executable, "-m", "cortex_serve", "--spec", str(spec_file)]
    command += ["--project", str(project), "--host", "127.0.0.1", "--port", str(port)]
    return started(command, env, workdir, f"http://127.0.0.1:{port}/healthz")


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
