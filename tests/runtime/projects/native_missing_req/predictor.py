"""Test predictor whose requirements.txt names a package that is not installed."""


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return payload
