"""CORTEX_LOG_FORMAT: JSON lines for log shippers, text lines (tracebacks as they are) for a person
at a terminal; unset, the choice follows whether stdout is a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

SNIPPET = """\
from cortex_internal.lib.log import logger
logger.info("hello", extra={"api": "iris"})
try:
    1 / 0
except ZeroDivisionError:
    logger.exception("predict failed")
"""


def run(env_format: str | None, terminal: bool) -> str:
    env = dict(os.environ)
    env.pop("CORTEX_LOG_FORMAT", None)
    if env_format is not None:
        env["CORTEX_LOG_FORMAT"] = env_format
    if not terminal:
        done = subprocess.run(
            [sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=30
        )
        return done.stdout
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", SNIPPET], env=env, stdout=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(30)
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_piped_output_is_json_lines() -> None:
    first, second = (json.loads(line) for line in run(None, terminal=False).splitlines())
    assert (first["message"], first["api"]) == ("hello", "iris")
    assert "ZeroDivisionError" in second["exception"]


def test_a_terminal_gets_text_lines_with_the_traceback_as_it_is() -> None:
    lines = run(None, terminal=True).splitlines()
    assert lines[0].endswith(" INFO hello api=iris")
    assert lines[1].endswith(" ERROR predict failed")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: division by zero"


def test_the_environment_variable_wins_both_ways() -> None:
    assert run("json", terminal=True).lstrip().startswith("{")
    assert " INFO hello api=iris" in run("text", terminal=False).splitlines()[0]
