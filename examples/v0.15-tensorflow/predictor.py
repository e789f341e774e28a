class TensorFlowPredictor:
    def __init__(self, tensorflow_client, config):
        self.client = tensorflow_client
        self.labels = config["labels"]

    def predict(self, payload):
        # payload: {"sepal_length": 5.1, ...}, one value per input of the "predict" signature
        prediction = self.client.predict(payload)
        predicted_class_id = int(prediction["class_ids"][0])
        return {
            "label": self.labels[predicted_class_id],
            "probabilities": [round(float(p), 4) for p in prediction["probabilities"]],
        }
