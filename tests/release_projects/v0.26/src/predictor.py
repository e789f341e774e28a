from iris_rules import classify


class PythonPredictor:
    def __init__(self, config):
        self.unit = config["unit"]

    def predict(self, payload, query_params):
        label = classify(payload["petal_length"], payload["petal_width"])
        if query_params.get("verbose") == "true":
            return {"label": label, "unit": self.unit, "petal": payload["petal_length"]}
        return {"label": label}
