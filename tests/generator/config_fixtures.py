"""A small project folder the config tests write their cortex.yaml into."""

from __future__ import annotations

from pathlib import Path

PYTHON_PREDICTOR = """\
class PythonPredictor:
    def __init__(self, config):
        self.config = config

    def predict(self, payload):
        return payload
"""

MULTI_MODEL_PREDICTOR = """\
class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        return model_path

    def predict(self, payload, query_params):
        return self.client.get_model(query_params["model"])
"""

TENSORFLOW_PREDICTOR = """\
class TensorFlowPredictor:
    def __init__(self, tensorflow_client, config):
        self.client = tensorflow_client

    def predict(self, payload):
        return self.client.predict(payload)
"""

ONNX_PREDICTOR = """\
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload):
        return self.client.predict(payload)
"""

# v0.10's module functions
FUNCTIONS_V010 = """\
model = None


def init(model_path, metadata):
    global model
    model = model_path


def predict(sample, metadata):
    return sample
"""

# v0.9's module functions
FUNCTIONS_V09 = """\
def init(metadata):
    pass


def predict(sample, metadata):
    return sample
"""

HANDLERS = """\
def pre_inference(sample, signature, metadata):
    return sample


def post_inference(prediction, signature, metadata):
    return prediction
"""

BROKEN = """\
class PythonPredictor:
    def predict(self, payload):
        return payload +
"""

FILES = {
    "predictor.py": PYTHON_PREDICTOR,
    "mmr_predictor.py": MULTI_MODEL_PREDICTOR,
    "tf_predictor.py": TENSORFLOW_PREDICTOR,
    "onnx_predictor.py": ONNX_PREDICTOR,
    "functions.py": FUNCTIONS_V010,
    "functions_v09.py": FUNCTIONS_V09,
    "handler.py": HANDLERS,
    "broken.py": BROKEN,
    "src/helpers.py": "VALUE = 1\n",
    "models/iris/1/saved_model.pb": "not a real model: the config loader only checks it exists\n",
    "models/iris/2/saved_model.pb": "",
    "models/flowers/1/saved_model.pb": "",
    "model.onnx": "",
    "notes.txt": "",
}


def make_project(root: Path, config: str, name: str = "cortex.yaml") -> Path:
    """Writes the fixture files and `config` into `root`; returns `root`."""
    for relative, text in FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / name).write_text(config)
    return root


RENDER_CONFIG = """\
- name: echo
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    env:
      GREETING: 'say "hi" $HOME `id`'
  compute:
    cpu: 1500m
    mem: 1Gi
    gpu: 1
  autoscaling:
    init_replicas: 2
    min_replicas: 2

- name: tf
  kind: RealtimeAPI
  predictor:
    type: tensorflow
    path: tf_predictor.py
    models:
      path: saved/
  compute:
    cpu: 1
"""

SECRET = "s3cr3t-value-that-must-not-leak"


# A project of two APIs (echo: python with a GPU and autoscaling; tf), and every kind of file
# render copies or leaves out (requirements, dependencies.sh, .env with a secret that must not
# leak).
def make_render_project(
    root: Path, config: str = RENDER_CONFIG, extra: dict[str, str] | None = None
) -> Path:
    files = {
        "cortex.yaml": config,
        "predictor.py": PYTHON_PREDICTOR,
        "tf_predictor.py": TENSORFLOW_PREDICTOR,
        "saved/saved_model.pb": "not really a model",
        "saved/variables/variables.index": "",
        "requirements.txt": "six\n",
        "dependencies.sh": "apt-get update && apt-get install -y --no-install-recommends jq\n",
        "values.json": "{}",
        ".env": f"API_TOKEN={SECRET}\n",
        **(extra or {}),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
