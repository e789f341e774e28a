"""A BatchAPI Handler (Cortex v0.34-v0.35 shape): handle_batch and on_job_complete."""

import json
from pathlib import Path


class Handler:
    def __init__(self, config, job_spec):
        self.out = Path(config["out"])
        self.job_id = job_spec["job_id"]

    def handle_batch(self, payload, batch_id):
        (self.out / f"{batch_id}.json").write_text(json.dumps({"items": payload}))

    def on_job_complete(self):
        (self.out / "complete.txt").write_text(self.job_id)
