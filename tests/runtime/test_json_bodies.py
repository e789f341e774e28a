"""JSON request bodies: read through orjson where it gives what json.loads gives, by json.loads
everywhere else, so that values, types and 400 messages are json's own. In process, over HTTP, and
in a Python where orjson cannot be imported."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import orjson
import pytest
from cortex_serve import wire
from servers import PROJECTS, api_spec, running_server

# What orjson refuses or reads otherwise, beside bodies it reads as json does.
BODIES = [
    b"[1.5, -0.0, 0, 5e-324, 1e308, 0.00012345678901234567, true, null]",  # orjson reads these
    b'{"a": 1, "b": [2, {"c": "\\u00e9\\ud83d\\ude00"}], "a": 3}',  # duplicates: the last wins
    b"[NaN, Infinity, -Infinity]",  # floats to json, errors to orjson
    b"[1e400, -1e400]",  # inf to json
    b"18446744073709551616",  # 2**64: a float to orjson
    b'{"big": 123456789012345678901234567890, "low": -9223372036854775809}',
    b"[18446744073709551615, -9223372036854775808]",  # the 64-bit extremes
    b'["\\ud800", "\\udfff x"]',  # lone surrogate escapes
    b'"\xed\xa0\x80"',  # a surrogate's UTF-8 bytes (json reads them with surrogatepass)
    b"\xef\xbb\xbf[1]",  # a UTF-8 byte order mark
    '["utf-16"]'.encode("utf-16"),
    # deeper than json reads from a server's stack before Python 3.12, within orjson's limit
    b"[" * 990 + b"]" * 990,
    b"[" * 1100 + b"]" * 1100,  # beyond orjson's limit; json reads it from Python 3.12
]
INVALID = [b'{"key": ', b"", b"[1,]", b"\xff[1]", b"01", b'"\x01"']


def outcome(body: bytes) -> str:
    """What parse_payload makes of a JSON body: its value as ascii() writes it (types, NaN and
    surrogates shown), or its 400 message."""
    try:
        return ascii(asyncio.run(wire.parse_payload({}, "application/json", None, body)))
    except wire.PayloadError as error:
        return f"400 {error}"


def json_outcome(body: bytes) -> str:
    """The same from json.loads alone, at the same stack depth."""
    try:
        return ascii(json.loads(body))
    except ValueError as error:
        return f"400 the request body is not valid JSON: {error}"
    except RecursionError:
        return "400 the request body is not valid JSON: nested too deeply"


def test_orjson_reads_plain_bodies():
    assert wire._orjson_loads is orjson.loads
    body = json.dumps([0.1 * n for n in range(256)]).encode()
    assert wire._orjson_reads_alike(body)
    assert outcome(body) == ascii(orjson.loads(body)) == ascii(json.loads(body))


@pytest.mark.parametrize("body", BODIES + INVALID, ids=lambda body: ascii(body[:24]))
def test_a_body_reads_as_json_loads_reads_it(body):
    assert outcome(body) == asyncio.run(_at_parse_depth(json_outcome, body))


async def _at_parse_depth(function, body):
    return function(body)  # one coroutine frame, as parse_payload is one


def test_values_orjson_would_change_stay_json_s():
    assert outcome(b"[18446744073709551616]") == "[18446744073709551616]"
    assert outcome(b"[-9223372036854775809]") == "[-9223372036854775809]"
    assert outcome(b"[NaN, -Infinity]") == "[nan, -inf]"
    assert outcome(b'"\\ud800"') == "'\\ud800'"
    if sys.version_info < (3, 12):  # json's depth limit, not orjson's deeper one
        assert outcome(b"[" * 990 + b"]" * 990).endswith("nested too deeply")


def test_the_nesting_check_applies_only_where_json_reads_less_deep_than_orjson():
    many = b"[" + b",".join([b"[1]"] * 600) + b"]"  # 601 brackets, nested two deep
    assert wire._orjson_reads_alike(many) == (sys.version_info >= (3, 12))
    assert outcome(many) == ascii(json.loads(many))


def test_invalid_json_keeps_json_s_message():
    assert outcome(b'{"key": ') == (
        "400 the request body is not valid JSON: Expecting value: line 1 column 9 (char 8)"
    )
    assert outcome(b"\xff").startswith("400 the request body is not valid JSON: 'utf-8' codec")


HIDDEN = """
import asyncio, json, sys
sys.modules["orjson"] = None  # as in a Python with no orjson wheel
from cortex_serve import wire
assert wire._orjson_loads is None
def outcome(body):
    try:
        return ascii(asyncio.run(wire.parse_payload({}, "application/json", None, body)))
    except wire.PayloadError as error:
        return f"400 {error}"
print(json.dumps([outcome(bytes(body)) for body in json.loads(sys.stdin.read())]))
"""


def test_without_orjson_the_outcomes_are_the_same():
    bodies = [body for body in BODIES + INVALID if len(body) < 1000]  # not the stack-bound ones
    done = subprocess.run(
        [sys.executable, "-c", HIDDEN],
        input=json.dumps([list(body) for body in bodies]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [outcome(body) for body in bodies]


def test_bodies_over_http_read_as_json_loads_reads_them():
    with running_server(PROJECTS / "echo", api_spec("echo")) as server:
        for body in [*BODIES[:9], b'{"key": ']:
            response = httpx.post(
                server.url("/predict"),
                params={"return": "ascii"},
                content=body,
                headers={"content-type": "application/json"},
                timeout=10,
            )
            if response.status_code == 400:
                assert f"400 {response.json()['error']}" == json_outcome(body)
            else:
                assert response.text == json_outcome(body), body
