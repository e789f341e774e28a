"""Test predictor: reports the payload it got and answers in the form `?return=` asks for."""

import logging
import os
import signal
import sys
import time
from pathlib import Path

from cortex_internal.lib.log import logger
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

# Read at import: predictor.env must be set before the user's module is imported.
GREETING_AT_IMPORT = os.environ.get("GREETING")


def describe(payload):
    if isinstance(payload, FormData):
        fields = {}
        for key, value in payload.multi_items():
            if isinstance(value, UploadFile):
                fields[key] = {"filename": value.filename, "content": value.file.read().decode()}
            else:
                fields[key] = value
        return {"type": "FormData", "value": fields}
    if isinstance(payload, bytes):
        return {"type": "bytes", "value": list(payload)}
    return {"type": type(payload).__name__, "value": payload}


class BrokenResponse(Response):
    async def __call__(self, scope, receive, send):
        raise RuntimeError("this response cannot be sent")


class PythonPredictor:
    def __init__(self, config):
        self.config = config
        self.cwd_file = Path("values.txt").read_text().strip()  # project files, relative path

    def predict(self, payload, query_params, headers):
        kind = query_params.get("return", "json")
        if kind == "json":
            return {"payload": describe(payload), "query": dict(query_params)}
        if kind == "ascii":  # the payload exactly: types, NaN, lone surrogates (JSON has no way)
            return ascii(payload)
        if kind == "str":
            return "héllo"
        if kind == "bytes":
            return b"\x00\x01\xff"
        if kind == "response":
            return Response("teapot", status_code=418, media_type="text/x-tea")
        if kind == "broken_response":
            return BrokenResponse("never sent")
        if kind == "unserializable":
            return {"value": object()}
        if kind == "header":
            return {"x-test": headers.get("X-Test")}
        if kind == "env":
            return {"at_import": GREETING_AT_IMPORT, "config": self.config, "file": self.cwd_file}
        if kind == "label":
            return {"label": query_params["label"], "value": float(query_params.get("value", 0))}
        if kind == "sleep":
            if "pid_file" in query_params:  # tells the test which worker holds this request
                Path(query_params["pid_file"]).write_text(str(os.getpid()))
            time.sleep(float(query_params["seconds"]))
            return {"slept": float(query_params["seconds"]), "pid": os.getpid()}
        if kind == "log":
            logger.info("user log line", extra={"payload": payload, "nested": {"a": 1}})
            logging.getLogger("echo.own").info("own logger line")  # through the root logger
            return "logged"
        if kind == "http_error":  # Cortex ran on FastAPI, whose HTTPException is this one
            raise HTTPException(status_code=422, detail="payload is missing a field")
        if kind == "retry_later":  # an HTTPException with headers of its own
            raise HTTPException(status_code=503, detail="busy", headers={"Retry-After": "7"})
        if kind == "fail":
            raise ValueError("asked to fail")
        if kind == "exit":  # user code calling sys.exit(): a BaseException, not an Exception
            sys.exit("asked to exit")
        if kind == "interrupt":
            raise KeyboardInterrupt("asked to interrupt")
        if kind == "die":
            if query_params.get("unless_pid") == str(os.getpid()):
                return {"spared": os.getpid()}
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "pid":
            return {"pid": os.getpid()}
        raise KeyError(kind)

    def post_predict(self, response, query_params):
        marker = query_params.get("post_predict_marker")
        if marker:
            time.sleep(float(query_params.get("post_predict_delay", 0)))
            Path(marker).write_text(repr(response))
