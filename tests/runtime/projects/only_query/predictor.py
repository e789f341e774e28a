"""Test predictor whose predict names only `query_params` (argument injection by name)."""


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, query_params):
        return {"query": dict(query_params)}
