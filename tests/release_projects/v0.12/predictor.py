import json
import pathlib
import urllib.request


class PythonPredictor:
    def __init__(self, config):
        # download the model into the working folder, as Cortex's examples did from S3
        source = pathlib.Path(config["model_url"]).resolve().as_uri()
        urllib.request.urlretrieve(source, "model.json")
        with open("model.json") as model_file:
            self.model = json.load(model_file)

    def predict(self, payload):
        petal_length = payload["petal_length"]
        for label, upper_bound in zip(self.model["labels"], self.model["petal_length_below"]):
            if petal_length < upper_bound:
                return label
        return self.model["labels"][-1]
