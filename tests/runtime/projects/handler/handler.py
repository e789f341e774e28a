"""Test Handler (Cortex v0.34-v0.35): one method per HTTP verb, each naming only the arguments it
wants. handle_post is async and returns `(response, callback)` when asked; handle_put and
handle_patch are not defined (405)."""

import threading
import time
from pathlib import Path


class Handler:
    def __init__(self, config):
        self.config = config

    async def handle_post(self, payload, query_params):
        kind = query_params.get("return", "json")
        if kind == "pair":  # a tuple without a callable: a JSON array
            return (1, 2)
        if kind == "callback":

            def callback():
                time.sleep(float(query_params.get("callback_delay", 0)))
                Path(query_params["callback_marker"]).write_text(threading.current_thread().name)

            return "sent before the callback", callback
        return {"verb": "POST", "payload": payload, "thread": threading.current_thread().name}

    def handle_get(self, query_params, headers):
        if "fail" in query_params:
            raise ValueError("asked to fail")
        time.sleep(float(query_params.get("sleep", 0)))
        return {
            "verb": "GET",
            "query": dict(query_params),
            "x-test": headers.get("X-Test"),
            "config": self.config,
            "thread": threading.current_thread().name,
        }

    def handle_delete(self, payload):
        return {"verb": "DELETE", "payload": repr(payload)}
