# v0.34-v0.35: a tensorflow Handler; arguments by name, in any order; GET describes the model.
labels = ["setosa", "versicolor", "virginica"]
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class Handler:
    def __init__(self, tensorflow_client, config):
        self.client = tensorflow_client
        self.config = config

    def handle_post(self, payload):
        prediction = self.client.predict({"features": [payload[name] for name in features]})
        return labels[int(prediction["class_ids"][0])]

    def handle_get(self):
        return {"inputs": sorted(self.client.input_signature()), "config": self.config}
