"""A TaskAPI task (Cortex v0.27-v0.35): writes its merged config where the config says."""

import json
from pathlib import Path


class Task:
    def __call__(self, config):
        if config.get("fail"):
            raise RuntimeError("the task was told to fail")
        Path(config["out"]).write_text(json.dumps(config, sort_keys=True))
