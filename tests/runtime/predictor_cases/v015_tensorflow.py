# v0.15-v0.17: a TensorFlowPredictor; the client returns {output name: flat list of values}.
labels = ["setosa", "versicolor", "virginica"]
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class TensorFlowPredictor:
    def __init__(self, tensorflow_client, config):
        self.client = tensorflow_client

    def predict(self, payload):
        prediction = self.client.predict({"features": [payload[name] for name in features]})
        return labels[int(prediction["class_ids"][0])]
