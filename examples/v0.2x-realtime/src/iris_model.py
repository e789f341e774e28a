"""The iris model and payload parsers of predictor.py (on PYTHONPATH via predictor.python_path)."""

import json
import math
import struct

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
FLOAT32_SAMPLE = struct.Struct("<4f")  # an octet-stream sample: 4 little-endian float32


class LinearModel:
    """A logistic regression stored as JSON: {"features", "labels", "coef", "intercept"}."""

    def __init__(self, path):
        with open(path) as model_file:
            model = json.load(model_file)
        self.labels = model["labels"]
        self.coef = model["coef"]
        self.intercept = model["intercept"]

    def predict(self, features):
        """(class id, probabilities) for one sample."""
        scores = [
            intercept + sum(weight * value for weight, value in zip(weights, features))
            for weights, intercept in zip(self.coef, self.intercept)
        ]
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        probabilities = [e / total for e in exps]
        return scores.index(top), probabilities


def features_from_mapping(sample):
    """From a JSON object or form data: {"sepal_length": 5.1, ...}."""
    missing = [name for name in FEATURES if name not in sample]
    if missing:
        raise ValueError("missing feature(s): " + ", ".join(missing))
    return [float(sample[name]) for name in FEATURES]


def features_from_csv(text):
    """From text/plain: "5.1,3.5,1.4,0.2"."""
    values = [value.strip() for value in text.strip().split(",")]
    if len(values) != len(FEATURES):
        raise ValueError(f"expected {len(FEATURES)} comma-separated numbers, got {len(values)}")
    return [float(value) for value in values]


def features_from_float32(data):
    """From application/octet-stream: 16 bytes, 4 little-endian float32."""
    if len(data) != FLOAT32_SAMPLE.size:
        raise ValueError(f"expected {FLOAT32_SAMPLE.size} bytes (4 float32), got {len(data)}")
    return list(FLOAT32_SAMPLE.unpack(data))
