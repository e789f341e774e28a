"""The wire codec of a prediction: the request body read and decoded by Content-Type, and what
predict returned encoded as the response, as Cortex's releases answered it.

Body: 413 past the limit, 408 when it does not arrive within the server's read timeout
(protocol.py); the payload: JSON, text, form data or bytes (400 when it does not parse); the
response: bytes, text (a JSON string up to Cortex v0.15), a starlette Response, or JSON (numpy
values through their .tolist()). Errors are JSON: {"error": ..., "status": ...}.

JSON bodies are read by json's rules (NaN and Infinity as floats, integers of any size, lone
surrogates kept); orjson, when installed, reads those whose result it certainly gives alike, about
five times faster on a body of 256 floats, the check included (bench/README.md). Responses are
always json's bytes: orjson writes NaN as null.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .protocol import READ_TIMED_OUT

JSON_HEADERS = [(b"content-type", b"application/json")]
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
_BYTES_HEADERS = [(b"content-type", b"application/octet-stream")]
_FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
# After an answer that left the request body unread: the rest of it must not be taken for the
# next request, and reading it only to drop it would keep a hostile client's connection open.
CLOSE_CONNECTION = {"Connection": "close"}


_orjson_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _orjson_loads
except ImportError:  # no orjson wheel for this Python or platform: json reads every body
    _orjson_loads = None

# Where orjson's result differs from json's while both parse: an integer beyond 64 bits (orjson
# gives a float), and, before Python 3.12, nesting between json's depth limit (the recursion limit
# less the caller's stack, under 1,000) and orjson's (1,024). From 3.12 json's C scanner has a
# limit of its own, 1,497 or more, so every body orjson nests deep enough to parse, json parses
# too (and orjson's error for a deeper one sends it to json). Digits map to 0 and what may precede
# a number's digits to S, so "S" and 19 zeros finds every integer of 19 digits or more (and some
# exponents and text: those go to json too, which is only slower).
_NESTING_DIFFERS = sys.version_info < (3, 12)
_DIGITS_MARKED = bytes.maketrans(b"0123456789[,: \t\n\r-+eE", b"0" * 10 + b"S" * 11)
_LONG_DIGITS = b"0" * 19
_LONG_NUMBER = b"S" + _LONG_DIGITS


def _orjson_reads_alike(body: bytes) -> bool:
    """Whether orjson, if it parses `body`, gives what json.loads gives."""
    if _NESTING_DIFFERS and body.count(b"[") + body.count(b"{") >= min(
        500, sys.getrecursionlimit() // 2
    ):
        return False  # might nest deeper than json.loads reads (a count: cheap, and safe)
    marked = body.translate(_DIGITS_MARKED)
    return not (marked.startswith(_LONG_DIGITS) or _LONG_NUMBER in marked)


def load_json(body: bytes) -> Any:
    """json.loads(body), results and errors alike; through orjson when that is certain."""
    if _orjson_loads is not None and _orjson_reads_alike(body):
        try:
            return _orjson_loads(body)
        except ValueError:  # NaN, Infinity, 1e400, lone surrogates, a BOM, invalid JSON, ...
            pass  # json.loads answers: its result, or its error message
    return json.loads(body)


class PayloadError(Exception):
    """The request body does not parse as its Content-Type says (400)."""


class BodyError(Exception):
    """The request body cannot be read whole: answered `status`, and the connection closed."""

    status: int


class BodyTooLarge(BodyError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit} bytes")


class BodyTimedOut(BodyError):
    status = 408


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


def _json_default(value: Any) -> Any:
    # numpy arrays and scalars (and anything else with .tolist()) are what predictors return most
    # often that json cannot write; converting them spares every user a conversion.
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Starlette's JSONResponse writes the same bytes (compact, UTF-8); one encoder, built once.
_encode_json = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
).encode


def dump_json(value: Any) -> bytes:
    return _encode_json(value).encode("utf-8")


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> int:
    """A JSON error; `headers` go out with it (e.g. an HTTPException's Retry-After)."""
    response_headers = JSON_HEADERS
    if headers:
        response_headers = [
            *JSON_HEADERS,
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
                if name.lower() not in ("content-type", "content-length")
            ),
        ]
    await send_response(
        send, status, response_headers, dump_json({"error": message, "status": status, **fields})
    )
    return status


def content_info(scope: Scope) -> tuple[str, str | None, int | None]:
    """(media type lowercased, charset, Content-Length) from the request headers, in one pass."""
    media_type, charset, length = "", None, None
    for name, value in scope["headers"]:
        if name == b"content-type":
            parts = value.decode("latin-1").split(";")
            media_type = parts[0].strip().lower()
            for param in parts[1:]:
                key, _, val = param.partition("=")
                if key.strip().lower() == "charset":
                    charset = val.strip().strip('"') or None
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return media_type, charset, length


async def read_body(
    scope: Scope, receive: Receive, declared_length: int | None, limit: int
) -> bytes:
    """The whole request body; BodyTooLarge as soon as it is known to exceed `limit` bytes,
    BodyTimedOut when the server's read timeout woke this up (protocol.READ_TIMED_OUT)."""
    if declared_length is not None and declared_length > limit:
        raise BodyTooLarge(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise BodyTooLarge(limit)
        return body
    chunks, size = [body], len(body)
    while True:
        if READ_TIMED_OUT in scope:
            raise BodyTimedOut(scope[READ_TIMED_OUT])
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def parse_payload(scope: Scope, media_type: str, charset: str | None, body: bytes) -> Any:
    """The payload as Cortex gave it to predict, by Content-Type (see the spec README)."""
    if media_type == "application/json":
        try:
            return load_json(body)  # NaN, Infinity and -Infinity are read as floats
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise PayloadError(f"the request body is not valid JSON: {error}") from error
        except RecursionError as error:  # arrays or objects some 1,000 deep
            raise PayloadError("the request body is not valid JSON: nested too deeply") from error
    if media_type == "text/plain":
        try:
            return body.decode(charset or "utf-8")
        except (LookupError, UnicodeDecodeError) as error:
            raise PayloadError(
                f"the request body is not valid text in charset {charset or 'utf-8'}: {error}"
            ) from error
    if media_type in _FORM_TYPES:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            return await Request(scope, replay).form()
        except HTTPException as error:  # starlette's multipart errors (limits, bad boundary)
            raise PayloadError(f"the form data does not parse: {error.detail}") from error
        except AssertionError as error:  # python-multipart missing: a broken image, not the user
            raise RuntimeError(str(error)) from error
        except Exception as error:
            raise PayloadError(f"the form data does not parse: {error}") from error
    return body


def render_response(
    prediction: Any, strings_as_json: bool = False
) -> tuple[int, list[tuple[bytes, bytes]], bytes] | Response:
    """What predict returned, as Cortex answered it: bytes, str, a starlette Response, or JSON."""
    if isinstance(prediction, Response):
        return prediction
    if isinstance(prediction, bytes):
        return 200, _BYTES_HEADERS, prediction
    if isinstance(prediction, str) and not strings_as_json:
        return 200, _TEXT_HEADERS, prediction.encode("utf-8")
    try:
        return 200, JSON_HEADERS, dump_json(prediction)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{error}; please return an object that is JSON serializable (including its nested "
            "fields), a bytes object, a string, or a starlette.responses.Response object"
        ) from error


def split_callback(result: Any) -> tuple[Any, Callable[[], Any] | None]:
    """A Handler's `(response, callback)`, recognised as Cortex v0.34-v0.35 did: a 2-tuple whose
    second item is callable (any other tuple is a JSON array)."""
    if isinstance(result, tuple) and len(result) == 2 and callable(result[1]):
        return result[0], result[1]
    return result, None
