"""Test predictor importing a module from `predictor.python_path` (lib/)."""

from greetings import HELLO


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self):
        return HELLO
