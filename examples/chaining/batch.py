import json
import os
import urllib.request

# Where iris-classifier answers: its Cortex address by default; set IRIS_URL to run elsewhere
# (e.g. IRIS_URL=http://127.0.0.1:8888/predict when both APIs run on one machine).
IRIS_URL = os.environ.get("IRIS_URL", "http://api-iris-classifier:8888/predict")


def classify(sample):
    request = urllib.request.Request(
        IRIS_URL,
        data=json.dumps(sample).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        # payload: {"samples": [{"sepal_length": 5.1, ...}, ...]}
        predictions = [classify(sample) for sample in payload["samples"]]
        counts = {}
        for prediction in predictions:
            counts[prediction["label"]] = counts.get(prediction["label"], 0) + 1
        return {"predictions": predictions, "counts": counts}
