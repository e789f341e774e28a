"""The BatchAPI predictor of Cortex v0.19-v0.33: built once per worker with the job's config and
job spec, `predict` once per batch, `on_job_complete` once per job."""

import json
import math
import os

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class PythonPredictor:
    def __init__(self, config, job_spec):
        with open(config["model"]) as model_file:
            model = json.load(model_file)
        self.labels = model["labels"]
        self.coef = model["coef"]
        self.intercept = model["intercept"]
        # one folder per job, so that jobs never mix their results
        self.results = os.path.join(config["results_dir"], job_spec["job_id"])
        os.makedirs(self.results, exist_ok=True)

    def classify(self, sample):
        features = [float(sample[name]) for name in FEATURES]
        scores = [
            intercept + sum(w * x for w, x in zip(weights, features))
            for weights, intercept in zip(self.coef, self.intercept)
        ]
        top = max(scores)
        total = sum(math.exp(s - top) for s in scores)
        best = scores.index(top)
        return {"label": self.labels[best], "probability": round(1 / total, 4)}

    def predict(self, payload, batch_id):
        results = [self.classify(sample) for sample in payload]
        with open(os.path.join(self.results, batch_id + ".json"), "w") as out:
            json.dump(results, out)

    def on_job_complete(self):
        counts = {}
        batches = 0
        for name in sorted(os.listdir(self.results)):
            if name == "summary.json":
                continue
            batches += 1
            with open(os.path.join(self.results, name)) as batch:
                for result in json.load(batch):
                    counts[result["label"]] = counts.get(result["label"], 0) + 1
        summary = {"batches": batches, "labels": counts}
        with open(os.path.join(self.results, "summary.json"), "w") as out:
            json.dump(summary, out, sort_keys=True)
        print("iris-batch: " + json.dumps(summary, sort_keys=True))
