"""`cortex-build build` / `push` before any engine work: no engine, missing --registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "v0.10-deployment"


def cortex_build(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_no_engine_is_one_sentence_naming_docker_host_and_exit_2(tmp_path):
    # nothing listens on port 1 of loopback
    result = cortex_build(
        "build", str(EXAMPLE), "-o", str(tmp_path / "out"), DOCKER_HOST="tcp://127.0.0.1:1"
    )
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("cortex-build: no Docker engine reachable at tcp://127.0.0.1:1: ")
    assert "DOCKER_HOST" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "nothing is rendered without an engine"


def test_push_needs_a_registry(tmp_path):
    for args in (["push", str(EXAMPLE)], ["build", str(EXAMPLE), "--push"]):
        result = cortex_build(*args, DOCKER_HOST="tcp://127.0.0.1:1")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("cortex-build: --registry: is needed to push"), (
            result.stderr
        )
