"""Test Handler for server_side_batching: handle_post gets lists; handle_get is never batched."""

import time


class Handler:
    def __init__(self, config):
        self.delay = float(config.get("delay", 0))

    def handle_post(self, payload):
        time.sleep(self.delay)
        return [{"doubled": item * 2, "batch_size": len(payload)} for item in payload]

    def handle_get(self, query_params):
        return {"n": query_params.get("n")}
