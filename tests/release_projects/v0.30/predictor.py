import yaml


class PythonPredictor:
    def __init__(self, config):
        self.rules = yaml.safe_load("setosa: 2.5\nversicolor: 4.9\n")

    def predict(self, payload):
        for label, below in self.rules.items():
            if payload["petal_length"] < below:
                return yaml.safe_dump({"label": label})
        return yaml.safe_dump({"label": "virginica"})
