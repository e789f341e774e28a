"""The JSON log formatter of the runtime (cortex_internal.lib.log), without a server."""

from __future__ import annotations

import json
import logging

from cortex_internal.lib.log import MAX_LINE_BYTES, JsonFormatter


def format_message(message: str) -> dict:
    record = logging.LogRecord("cortex", logging.INFO, __file__, 1, message, (), None)
    return json.loads(JsonFormatter().format(record))


def test_the_line_limit_counts_utf8_bytes_not_characters():
    # 3 Mi characters of "é" are 6 MiB on the wire (ensure_ascii=False): over the 5 MiB limit.
    line = format_message("é" * (3 * 1024 * 1024))
    assert line["levelname"] == "WARNING"
    assert "dropped" in line["message"]
    bytes_dropped = int(line["message"].split()[3])
    assert bytes_dropped > MAX_LINE_BYTES


def test_a_line_under_the_limit_is_kept_whole():
    message = "é" * (2 * 1024 * 1024)  # 4 MiB in UTF-8
    assert format_message(message)["message"] == message
