"""Test predictor for `cortex-build serve`: shows which environment it was given."""

import os


class PythonPredictor:
    def __init__(self, config):
        self.punctuation = config.get("punctuation", ".")

    def predict(self, payload):
        return {
            "greeting": os.environ.get("GREETING"),  # .env wins over predictor.env
            "salutation": os.environ.get("SALUTATION"),  # only predictor.env sets it
            "name": payload["name"] + self.punctuation,
        }
