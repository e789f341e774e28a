"""The `start_server` fixture over servers.py's harness (real `python -m cortex_serve` servers)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cortex_build.spec import ApiSpec
from servers import RunningServer, running_server


@pytest.fixture
def start_server() -> Iterator[Callable[..., RunningServer]]:
    """`start_server(project_dir, spec, env=None, args=(), wait=True)`: a healthy server (unless
    wait=False), stopped when the test ends."""
    stack = contextlib.ExitStack()

    def start(project_dir: Path, spec: ApiSpec, **kwargs: Any) -> RunningServer:
        return stack.enter_context(running_server(project_dir, spec, **kwargs))

    with stack:
        yield start
