"""Test predictor with `async def predict`: runs on the event loop, no thread hop."""

import asyncio
import os
import time
from pathlib import Path


class PythonPredictor:
    def __init__(self, config):
        self.config = config

    async def predict(self, payload, query_params):
        if "block" in query_params:  # blocks the event loop: this process accepts nothing more
            started = time.time()
            if query_params.get("started_marker"):  # tells the test this request is in flight
                Path(query_params["started_marker"]).write_text(str(os.getpid()))
            time.sleep(float(query_params["block"]))
            return {"pid": os.getpid(), "started": started, "ended": time.time()}
        seconds = float(query_params.get("sleep", 0))
        if seconds:
            await asyncio.sleep(seconds)
        if query_params.get("fail"):
            raise RuntimeError("async failure")
        return {"payload": payload, "async": True}

    async def post_predict(self, response, query_params):
        marker = query_params.get("post_predict_marker")
        if marker:
            await asyncio.sleep(float(query_params.get("post_predict_delay", 0)))
            Path(marker).write_text(repr(response))
