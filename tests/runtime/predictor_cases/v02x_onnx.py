# v0.2x: an ONNXPredictor over the iris classifier; the client returns session.run's outputs.
labels = ["setosa", "versicolor", "virginica"]
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload):
        label, probabilities = self.client.predict([payload[name] for name in features])
        return {"label": labels[int(label[0])], "confidence": max(probabilities[0].values())}
