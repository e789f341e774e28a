# v0.12-v0.14: a PythonPredictor class taking config; predict takes the payload only.
labels = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config):
        self.threshold = config["threshold"]

    def predict(self, payload):
        return labels[0] if payload["petal_length"] < self.threshold else labels[2]
