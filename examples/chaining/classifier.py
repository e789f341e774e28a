import json
import math


class PythonPredictor:
    def __init__(self, config):
        with open(config["model"]) as model_file:
            self.model = json.load(model_file)

    def predict(self, payload):
        features = [float(payload[name]) for name in self.model["features"]]
        scores = [
            intercept + sum(weight * value for weight, value in zip(weights, features))
            for weights, intercept in zip(self.model["coef"], self.model["intercept"])
        ]
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        class_id = scores.index(top)
        return {
            "label": self.model["labels"][class_id],
            "confidence": round(exps[class_id] / sum(exps), 4),
        }
