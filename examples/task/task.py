"""The Task of Cortex v0.27-v0.35: called once per job with the merged config."""

import csv
import json


class Task:
    def __call__(self, config):
        counts = {}
        with open(config["dataset"]) as data:
            for row in csv.DictReader(data):
                counts[row["species"]] = counts.get(row["species"], 0) + 1
        report = {"samples": sum(counts.values()), "species": counts}
        if config.get("note"):
            report["note"] = config["note"]
        with open(config["output"], "w") as out:
            json.dump(report, out, sort_keys=True)
        print("iris-report: wrote " + config["output"] + ": " + json.dumps(report, sort_keys=True))
