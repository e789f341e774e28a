import json
import os

labels = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config):
        with open(config["model"]) as model_file:
            self.model = json.load(model_file)
        self.label_prefix = os.environ.get("LABEL_PREFIX", "")

    def classify(self, sample):
        features = [float(sample[name]) for name in self.model["features"]]
        scores = [
            intercept + sum(weight * value for weight, value in zip(weights, features))
            for weights, intercept in zip(self.model["coef"], self.model["intercept"])
        ]
        return self.label_prefix + labels[scores.index(max(scores))]

    def predict(self, payload):
        # a list of samples gets a list of predictions (a batch)
        if isinstance(payload, list):
            return [self.classify(sample) for sample in payload]
        return self.classify(payload)
