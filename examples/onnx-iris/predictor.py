feature_names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client
        self.labels = config["labels"]

    def predict(self, payload):
        # one sample ({"sepal_length": 5.1, ...}) or a list of them
        samples = payload if isinstance(payload, list) else [payload]
        model_input = [[float(sample[name]) for name in feature_names] for sample in samples]
        # the model's outputs, in order: class ids [batch], probabilities [batch, 3]
        class_ids, probabilities = self.client.predict(model_input)
        predictions = [
            {
                "label": self.labels[int(class_id)],
                "probabilities": [round(float(p), 4) for p in row],
            }
            for class_id, row in zip(class_ids, probabilities)
        ]
        return predictions if isinstance(payload, list) else predictions[0]
