"""Test predictor for server_side_batching: predict gets a list and answers one entry per item."""

import time


class PythonPredictor:
    def __init__(self, config):
        self.delay = float(config.get("delay", 0))

    def predict(self, payload):
        time.sleep(self.delay)
        if any(item == "short" for item in payload):
            return "not a list"  # every request of this batch fails
        return [{"doubled": item * 2, "batch_size": len(payload)} for item in payload]
