"""The two models of bench/batching_bench.py: the ONNX iris example and an MLP built here.

- `iris`: examples/onnx-iris (a logistic regression, 4 inputs: its run is cheap, so the HTTP
  path dominates);
- `mlp`: an MLP regressor with 256 inputs and hidden layers (1024, 1024), built with fixed
  weights by scikit-learn and exported with skl2onnx (never downloaded), served by a predictor of
  the iris example's shape (one sample or a list of them).

Each comes with what wrk sends, the answers every server must give, and the bench's targets.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "onnx-iris"
MLP_INPUTS = 256
MLP_HIDDEN = (1024, 1024)

# The same predictor shape as the iris example's: one sample ({"x": [256 floats]}) or a list.
MLP_PREDICTOR = """
import numpy as np


class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client

    def predict(self, payload):
        samples = payload if isinstance(payload, list) else [payload]
        (outputs,) = self.client.predict(np.array([s["x"] for s in samples], dtype=np.float32))
        predictions = [{"y": round(float(value), 4)} for value in outputs[:, 0]]
        return predictions if isinstance(payload, list) else predictions[0]
"""
PROJECT_SHAPE = {"processes_per_replica": 1, "threads_per_process": 2}


@dataclass
class Model:
    """One model of the bench: where its project comes from, what wrk sends and what comes back."""

    name: str
    title: str
    make_project: Callable[[Path], Path]  # writes the base project under a folder, returns it
    sample: Any  # the body wrk sends, as JSON
    # (request body, expected answer) pairs checked on every server before measuring; a None
    # answer is computed by the off server (a float model's own output)
    checks: list[tuple[Any, Any]] = field(default_factory=list)
    # level -> (what is compared, threshold): "median" on/off median, "best" on/off best round,
    # "limit" on/off / limit, "ceiling" on / ceiling
    targets: dict[int, tuple[str, float]] = field(default_factory=dict)


def iris_project(workdir: Path) -> Path:
    project = workdir / "iris-base"
    shutil.copytree(EXAMPLE, project)
    return project


def mlp_project(workdir: Path) -> Path:
    """A Cortex project serving an MLP regressor with fixed weights: fit for one step on a small
    seeded data set (so scikit-learn builds it), then given seeded Glorot-scaled weights."""
    import warnings

    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    project = workdir / "mlp-base"
    (project / "model" / "1").mkdir(parents=True)
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (64, MLP_INPUTS)).astype(np.float32)
    model = MLPRegressor(hidden_layer_sizes=MLP_HIDDEN, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, x.sum(axis=1))
    sizes = [MLP_INPUTS, *MLP_HIDDEN, 1]
    model.coefs_ = [
        rng.normal(0, (2 / (a + b)) ** 0.5, (a, b)) for a, b in itertools.pairwise(sizes)
    ]
    model.intercepts_ = [rng.normal(0, 0.01, b) for b in sizes[1:]]
    onnx = to_onnx(model, x[:1], target_opset=15)
    (project / "model" / "1" / "model.onnx").write_bytes(onnx.SerializeToString())
    (project / "predictor.py").write_text(MLP_PREDICTOR)
    api = {
        "name": "mlp-onnx",
        "kind": "RealtimeAPI",
        "predictor": {"type": "onnx", "path": "predictor.py", "models": {"path": "model/"}}
        | PROJECT_SHAPE,
        "compute": {"cpu": 1, "mem": "1Gi"},
    }
    (project / "cortex.yaml").write_text(yaml.safe_dump([api], sort_keys=False))
    return project


def _mlp_sample(seed: int) -> dict[str, list[float]]:
    import numpy as np

    values = np.random.RandomState(seed).uniform(-1, 1, MLP_INPUTS)
    return {"x": [round(float(v), 4) for v in values]}


def models() -> dict[str, Model]:
    samples = yaml.safe_load((EXAMPLE / "samples.yaml").read_text())
    iris_sample = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}
    # Single-sample requests only: with batching on, a request whose body is a list is one batch
    # entry, which the example's predictor (reading a list as samples) does not answer as one.
    iris_checks = [
        (each["request"]["json"], each["response"]["json"])
        for each in samples
        if not isinstance(each["request"]["json"], list)
    ]
    mlp_sample = _mlp_sample(1)
    return {
        "iris": Model(
            "iris",
            "ONNX iris example (logistic regression, 4 inputs)",
            iris_project,
            iris_sample,
            iris_checks,
            {
                1: ("median", 0.95),
                8: ("median", 0.95),
                32: ("ceiling", 0.85),
                64: ("ceiling", 0.85),
            },
        ),
        "mlp": Model(
            "mlp",
            f"ONNX MLP regressor ({MLP_INPUTS} inputs, hidden layers {MLP_HIDDEN})",
            mlp_project,
            mlp_sample,
            [(mlp_sample, None), (_mlp_sample(2), None)],
            {1: ("median", 0.97), 8: ("best", 1.6), 32: ("limit", 0.85), 64: ("limit", 0.85)},
        ),
    }
