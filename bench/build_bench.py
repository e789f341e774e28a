"""Build-side figures of cortex-build, measured in one run on the local Docker engine.

    python bench/build_bench.py [--base-image cortex-build-test/python:3.11] [--starts 3]

For a trivial Python predictor built on BASE (tests/docker_base/build-base-image.sh builds the
default one):

- cold build: `cortex-build build --no-cache` (pip installs the runtime's dependencies from the
  package index, so the network is part of it), then
- rebuild after touching only predictor.py: target <= 15% of the cold build;
- image size minus BASE's size, what the runtime adds: target <= 40 MB;
- container start to healthy (GET /healthz 200), the median of --starts runs: target <= 2 s;
  the baseline is BASE starting `python3 -m http.server` to its first answer.

Everything it creates (a temporary project, the image, containers) is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cortex_build.build import BuildTarget, build_images
from cortex_build.config import load_project
from cortex_build.engine import connect_engine
from cortex_build.render import RenderOptions, render_project

CONFIG = """\
- name: bench
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
"""
PREDICTOR = """\
class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return payload
"""
REBUILD_TARGET = 0.15
SIZE_TARGET_MB = 40.0
START_TARGET_S = 2.0


def build(client: Any, project: Path, out: Path, base: str, image: str, no_cache: bool) -> float:
    rendered = render_project(
        load_project(project), out, RenderOptions(base_image=base, tag=image.split(":")[1])
    )
    [api] = rendered.apis
    started = time.monotonic()
    lines: list[str] = []
    [result] = build_images(
        client,
        [BuildTarget(api.name, api.context, api.image)],
        no_cache=no_cache,
        emit=lines.append,
    )
    seconds = time.monotonic() - started
    if not result.ok:
        raise SystemExit("build failed:\n" + "\n".join(lines[-30:]))
    return seconds


def first_answer(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.01)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s")


def start_to_answer(client: Any, image: str, port: int, path: str, **run: Any) -> float:
    """Seconds from `docker run` (create + start) to the first 200 on loopback."""
    started = time.monotonic()
    container = client.create_container(
        image,
        ports=[port],
        host_config=client.create_host_config(port_bindings={port: ("127.0.0.1", None)}),
        **run,
    )
    try:
        client.start(container)
        host_port = client.port(container, port)[0]["HostPort"]
        first_answer(f"http://127.0.0.1:{host_port}{path}")
        return time.monotonic() - started
    finally:
        client.remove_container(container, force=True)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-image", default="cortex-build-test/python:3.11")
    parser.add_argument(
        "--starts", type=int, default=3, help="container starts to take the median of"
    )
    args = parser.parse_args()
    base = args.base_image
    client = connect_engine()
    image = f"bench:cortex-build-bench-{uuid.uuid4().hex[:10]}"  # the API "bench", a tag of its own
    with tempfile.TemporaryDirectory(prefix="cortex-build-bench-") as scratch:
        project = Path(scratch) / "project"
        project.mkdir()
        (project / "cortex.yaml").write_text(CONFIG)
        (project / "predictor.py").write_text(PREDICTOR)
        out = Path(scratch) / "out"
        try:
            cold = build(client, project, out, base, image, no_cache=True)
            with (project / "predictor.py").open("a") as predictor:
                predictor.write("# touched\n")
            rebuild = build(client, project, out, base, image, no_cache=False)

            size_mb = (
                client.inspect_image(image)["Size"] - client.inspect_image(base)["Size"]
            ) / 1e6
            start = median_of(args.starts, lambda: start_to_answer(client, image, 8888, "/healthz"))
            bare = median_of(
                args.starts,
                lambda: start_to_answer(
                    client, base, 8000, "/", command=["python3", "-m", "http.server", "8000"]
                ),
            )
        finally:
            with contextlib.suppress(Exception):
                client.remove_image(image, force=True)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"base image: {base}")
    print(f"{'figure':<38} {'value':>10} {'baseline':>10} {'ratio':>8}  target")
    print(f"{'cold build (--no-cache), s':<38} {cold:>10.1f}")
    print(
        f"{'rebuild after a predictor edit, s':<38} {rebuild:>10.1f} {cold:>10.1f} "
        f"{rebuild / cold:>8.3f}  <= {REBUILD_TARGET} x cold: "
        f"{verdict(rebuild / cold <= REBUILD_TARGET)}"
    )
    print(
        f"{'image size minus base, MB':<38} {size_mb:>10.1f} {'':>10} {'':>8}  "
        f"<= {SIZE_TARGET_MB:.0f} MB: {verdict(size_mb <= SIZE_TARGET_MB)}"
    )
    print(
        f"{'container start to healthy, s':<38} {start:>10.2f} {bare:>10.2f} {start / bare:>8.2f}  "
        f"<= {START_TARGET_S:.0f} s: {verdict(start <= START_TARGET_S)}"
    )
    print("(baseline of the start: the base image's `python3 -m http.server` to its first answer)")


if __name__ == "__main__":
    main()
