"""Test predictor whose constructor sleeps `config["init_seconds"]`: /healthz is 503 meanwhile."""

import time


class PythonPredictor:
    def __init__(self, config):
        time.sleep(float(config.get("init_seconds", 0)))

    def predict(self, payload):
        return {"ready": True}
