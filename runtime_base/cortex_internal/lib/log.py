"""JSON log lines as Cortex wrote them: `from cortex_internal.lib.log import logger` still works.

CORTEX_LOG_FORMAT picks the format: `json` (what log shippers read), `text` (a line a person reads,
tracebacks as they are), or unset: text when stdout is a terminal (`cortex-build serve` in a shell,
`docker run -t`), JSON otherwise (images under compose or Kubernetes). In JSON every record
becomes one line on stdout:
    {"asctime": "...", "levelname": "INFO", "message": "...", "process": 235, "payload": ...}
`extra={...}` is flattened one level into the line (logging already sets each key as a record
attribute; the formatter writes every attribute that is not a standard LogRecord one). Values that
are not JSON get their `str()`. Lines over 5 MB are dropped, as Cortex's log shipper dropped them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from typing import Any

LOGGER_NAME = "cortex"
MAX_LINE_BYTES = 5 * 1024 * 1024

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn adds color_message: the same, in ANSI
)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt=None)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "asctime": self.formatTime(record),
            "levelname": record.levelname,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        text = json.dumps(line, default=str, ensure_ascii=False)
        # ensure_ascii=False: a character may take up to 4 bytes on the wire. Characters are a
        # lower bound of bytes, so only a line that might be over pays for the encoding.
        size = len(text)
        if size * 4 > MAX_LINE_BYTES:
            size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_LINE_BYTES:
            return json.dumps(
                {
                    "asctime": line["asctime"],
                    "levelname": "WARNING",
                    "message": f"log line of {size} bytes dropped (over 5 MB)",
                    "process": record.process,
                }
            )
        return text


class TextFormatter(logging.Formatter):
    """`2026-12-04 05:10:00,123 INFO message key=value ...`, then the traceback as it is."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        text = f"{self.formatTime(record)} {record.levelname} {record.getMessage()}"
        text += f" {extras}" if extras else ""
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            text += "\n" + record.exc_text
        return text


def log_formatter() -> logging.Formatter:
    """The formatter CORTEX_LOG_FORMAT asks for (see above); also the server's logging config's
    factory, so gunicorn's and uvicorn's lines match the predictor's."""
    wanted = os.environ.get("CORTEX_LOG_FORMAT", "").strip().lower()
    if wanted == "text" or (wanted != "json" and _is_terminal(sys.stdout)):
        return TextFormatter()
    return JsonFormatter()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed
        return False


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(log_formatter())
    return handler


def configure_logging(level: str = "info") -> None:
    """Sets the level of the Cortex logger. (The root logger, which the user's own
    `logging.getLogger(...)` calls reach, gets the same JSON lines and level from the server's
    logging config: cortex_serve.server.log_config.)"""
    logger.setLevel(logging.getLevelName(level.upper()))


logger = logging.getLogger(LOGGER_NAME)
if not logger.handlers:  # usable on import, even outside the server (a user's own tests)
    logger.addHandler(json_handler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
