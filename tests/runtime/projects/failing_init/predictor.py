"""Test predictor whose constructor fails: the server must exit non-zero, never healthy."""


class PythonPredictor:
    def __init__(self, config):
        raise RuntimeError("model file is corrupt")

    def predict(self, payload):
        return payload
