"""Test predictor for traffic splitters: answers its `config["version"]` with what it received;
with `config["record"]` it appends one line per request to that file (so a test counts the
copies a shadow got), with `config["sleep"]` it takes that long."""

import time
from pathlib import Path


class PythonPredictor:
    def __init__(self, config):
        self.version = config["version"]
        self.sleep = float(config.get("sleep", 0))
        self.record = Path(config["record"]) if config.get("record") else None

    def predict(self, payload, query_params, headers):
        if self.record is not None:
            with self.record.open("a") as file:
                file.write("copy\n")
        time.sleep(self.sleep)
        return {
            "version": self.version,
            "payload": payload,
            "query": dict(query_params),
            "test_header": headers.get("x-test"),
        }
