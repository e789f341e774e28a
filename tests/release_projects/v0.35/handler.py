import yaml


class Handler:
    def __init__(self, config):
        self.labels = config["labels"]

    def handle_post(self, payload):
        if payload["petal_length"] < 2.5:
            label = self.labels[0]
        elif payload["petal_width"] < 1.75:
            label = self.labels[1]
        else:
            label = self.labels[2]
        return {"label": label}

    def handle_get(self, query_params):
        fields = ["petal_length", "petal_width"]
        if query_params.get("format") == "yaml":
            return yaml.safe_dump({"post": fields})
        return {"post": fields, "labels": self.labels}
