# A rule-based iris classifier; `config["version"]` says which version answered, so the split
# between iris-v1 and iris-v2 can be seen from the answers. v2 is stricter about versicolor.
import logging

logger = logging.getLogger("iris")


class PythonPredictor:
    def __init__(self, config):
        self.version = config["version"]
        self.versicolor_below = 4.8 if self.version == "v2" else 5.0

    def predict(self, payload):
        petal_length = float(payload["petal_length"])
        if petal_length < 2.5:
            label = "setosa"
        elif petal_length < self.versicolor_below:
            label = "versicolor"
        else:
            label = "virginica"
        if self.version == "shadow":
            logger.info("shadow copy: %s", label)
        return {"label": label, "version": self.version}
