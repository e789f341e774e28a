"""One prediction without a server: `python -m cortex_serve.once --spec api.json --project DIR`.

`cortex-build predict` runs this, the way `cog predict` runs a model once. The request body comes
on stdin, its media type as --content-type; the predictor is loaded and called exactly as the
server does (same working folder, import path and environment, same argument injection, a list of
one for a batching API), and the response is rendered by the server's own rules. The body goes to
stdout; one JSON line on stderr gives the status and the content type.

Exit status: 0 when the prediction answered 2xx, 1 when predict raised or its result cannot be
sent (the message on stderr), 3 when the predictor failed to load (as the server's boot error).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response

from .__main__ import prepare_process
from .batching import runtime_batching
from .predictor import PredictorError
from .predictor_loading import load_predictor
from .wire import render_response, split_callback

INIT_FAILED = 3  # the server's exit status when a predictor fails to initialise


def parse_body(body: bytes, content_type: str) -> Any:
    """The payload as the server hands it over for the JSON, text and binary media types."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        return json.loads(body) if body else None
    if media_type.startswith("text/"):
        return body.decode("utf-8")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cortex_serve.once")
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--project", required=True, type=Path)
    parser.add_argument("--content-type", default="application/json")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    project_dir = args.project.resolve()
    prepare_process(spec, project_dir)
    try:
        payload = parse_body(sys.stdin.buffer.read(), args.content_type)
    except (ValueError, UnicodeDecodeError) as error:
        print(f"the request body does not parse as {args.content_type}: {error}", file=sys.stderr)
        return 1
    try:
        predictor = load_predictor(spec, project_dir)
    except PredictorError as error:
        print(f"{error}", file=sys.stderr)
        return INIT_FAILED
    batched = runtime_batching(spec["predictor"]) is not None
    headers = Headers({"content-type": args.content_type})
    try:
        result = predictor.predict([payload] if batched else payload, QueryParams(""), headers)
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
        if batched:
            result = result[0]
        callback = None
        if spec["predictor"].get("interface") == "handler":  # v0.34-v0.35's (response, callback)
            result, callback = split_callback(result)
        strings_as_json = (spec.get("cortex") or {}).get("string_response") == "json"
        rendered = render_response(result, strings_as_json)
    except Exception:
        traceback.print_exc()
        return 1
    if isinstance(rendered, Response):
        status, content_type, body = (
            rendered.status_code,
            rendered.headers.get("content-type", ""),
            bytes(rendered.body),
        )
    else:
        status, response_headers, body = rendered
        content_type = dict(response_headers).get(b"content-type", b"").decode("latin-1")
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    print(json.dumps({"status": status, "content_type": content_type}), file=sys.stderr)
    if callback is not None:  # after the response, as the server runs it
        done = callback()
        if inspect.isawaitable(done):
            asyncio.run(_wait(done))
    return 0 if 200 <= status < 300 else 1


async def _wait(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main())
