# v0.2x: multi_model_reloading; python_client.get_model() returns what load_model returned.
import json
import os
import threading
import time

loads = []
loads_lock = threading.Lock()


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client
        self.delay = config.get("load_delay", 0)

    def load_model(self, model_path):
        time.sleep(self.delay)  # widens the window for concurrent first uses
        with loads_lock:
            loads.append(model_path)
        with open(os.path.join(model_path, "model.json")) as model_file:
            return json.load(model_file)

    def predict(self, payload, query_params):
        model = self.client.get_model(
            query_params.get("model"), query_params.get("version", "latest")
        )
        return {"answer": model["answer"], "payload": payload}
