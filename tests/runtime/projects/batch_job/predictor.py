"""A BatchAPI predictor (Cortex v0.19-v0.33 shape) that records what it is given: one JSON file
per batch call under config["out"], one line per on_job_complete call."""

import json
import os
import time
from pathlib import Path


class PythonPredictor:
    def __init__(self, config, job_spec):
        self.out = Path(config["out"])
        self.config = config
        self.job_spec = job_spec
        if config.get("fail_init"):
            raise RuntimeError("init refused")

    def predict(self, payload, batch_id):
        record = {
            "batch_id": batch_id,
            "items": payload,
            "pid": os.getpid(),
            "config": self.config,
            "job_spec": self.job_spec,
        }
        with open(self.out / "attempts.ndjson", "a") as attempts:
            attempts.write(json.dumps({"batch_id": batch_id, "pid": os.getpid()}) + "\n")
        if "slow" in payload:
            time.sleep(60)
        if "crash" in payload:
            os._exit(7)  # the worker process dies
        if "fail" in payload:
            raise ValueError("an item says fail")
        (self.out / f"{batch_id}.json").write_text(json.dumps(record))

    def on_job_complete(self):
        with open(self.out / "complete.txt", "a") as done:
            done.write(f"{os.getpid()} {len(list(self.out.glob('*-*.json')))}\n")
