import json
import os


class LinearModel:
    """One model version: {"labels", "features", "coef", "intercept"} from model.json."""

    def __init__(self, model):
        self.labels = model["labels"]
        self.features = model["features"]
        self.coef = model["coef"]
        self.intercept = model["intercept"]

    def classify(self, sample):
        values = [float(sample[name]) for name in self.features]
        scores = [
            intercept + sum(weight * value for weight, value in zip(weights, values))
            for weights, intercept in zip(self.coef, self.intercept)
        ]
        return self.labels[scores.index(max(scores))]


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client
        self.default_model = config["default_model"]

    def load_model(self, model_path):
        # Called on the first request for a model version, and again after cache_size evicted
        # it from memory: model_path is a version folder, e.g. models/logistic/2, or models/petal
        # for the unversioned model (version 1).
        with open(os.path.join(model_path, "model.json")) as model_file:
            return LinearModel(json.load(model_file))

    def predict(self, payload, query_params):
        # e.g. POST /iris-cached?model=centroid&version=1 (version defaults to the latest)
        model_name = query_params.get("model", self.default_model)
        model_version = query_params.get("version", "latest")
        model = self.client.get_model(model_name, model_version)
        return {"model": model_name, "version": model_version, "label": model.classify(payload)}
