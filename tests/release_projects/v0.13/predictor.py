from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class PythonPredictor:
    def __init__(self, config):
        iris = load_iris()
        self.model = LogisticRegression(max_iter=config["max_iter"])
        self.model.fit(iris.data, iris.target)
        self.labels = [str(name) for name in iris.target_names]

    def predict(self, payload):
        measurements = [[payload[name] for name in features]]
        return self.labels[int(self.model.predict(measurements)[0])]
