features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client
        self.labels = config["labels"]

    def predict(self, payload):
        model_input = [[float(payload[name]) for name in features]]
        class_ids, _ = self.client.predict(model_input)
        return self.labels[int(class_ids[0])]
