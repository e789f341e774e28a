"""The overall progress of several builds: a status line at the bottom of a terminal, redrawn
under each log line; periodic lines in a log."""

from __future__ import annotations

import io

from cortex_build import build
from cortex_build.build import BuildProgress, BuildResult, BuildTarget
from cortex_build.engine import StreamLog

CLEAR = "\r\x1b[K"
TARGETS = [BuildTarget("alpha", "ctx/alpha", "alpha:latest"), BuildTarget("beta", "", "beta:1")]


def test_on_a_terminal_log_lines_scroll_above_a_status_line_of_every_api(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    terminal = io.StringIO()
    emitted: list[str] = []
    progress = BuildProgress(TARGETS, emitted.append, terminal)
    progress.log("alpha | step 1/3 FROM base")
    progress.step("alpha", "1/3")
    progress.done(BuildResult("beta", "beta:1", True, 1.25))
    progress.close()
    assert emitted == []  # everything went to the terminal
    assert terminal.getvalue() == (
        f"{CLEAR}alpha | step 1/3 FROM base\n[0/2 built] alpha waiting, beta waiting"
        f"{CLEAR}[0/2 built] alpha step 1/3, beta waiting"
        f"{CLEAR}== beta: built in 1.2s (1 of 2 APIs done)\n[1/2 built] alpha step 1/3, beta built"
        f"{CLEAR}"
    )


def test_the_status_line_never_wraps(monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    terminal = io.StringIO()
    progress = BuildProgress(TARGETS, print, terminal)
    progress.step("alpha", "12/16")
    status = terminal.getvalue().rsplit(CLEAR, 1)[1]
    assert len(status) == 29 and status.endswith("...")


def test_in_a_log_progress_is_a_line_now_and_then(monkeypatch):
    emitted: list[str] = []
    progress = BuildProgress(TARGETS, emitted.append)
    progress.step("alpha", "1/3")  # within PROGRESS_EVERY of the start: no line
    monkeypatch.setattr(build, "PROGRESS_EVERY", 0.0)
    progress.step("beta", "2/3")
    progress.done(BuildResult("alpha", "alpha:latest", False, 3.0))
    assert emitted == [
        "== alpha: step 1/3, beta: step 2/3",
        "== alpha: FAILED in 3.0s (1 of 2 APIs done)",
    ]


def test_steps_come_from_the_engine_stream_not_from_text_that_looks_like_one():
    steps: list[str] = []
    emitted: list[str] = []
    log = StreamLog(emitted.append, steps.append)
    log.feed({"stream": "Step 1/2 : FROM base\n"})
    log.feed({"stream": "step 9/9 from the build's own output\n"})
    log.feed({"stream": "Step 2/2 : RUN true\n"})
    assert steps == ["1/2", "2/2"]
    assert emitted == [
        "step 1/2 FROM base",
        "step 9/9 from the build's own output",
        "step 2/2 RUN true",
    ]
